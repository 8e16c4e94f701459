/* damage.c -- builds the hostile checkpoints of damage.h: a base saved by the library, one edit
 * made with the HDF5 API (as anyone with h5py could), the marker rehashed. Any failure of the
 * construction itself is a broken test: it prints and exits 2. */
#define _GNU_SOURCE /* memmem */
#include "damage.h"

#include <hdf5.h>
#include <xxhash.h>

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_src[4096] = ".";

void hx_set_source_dir(const char *src) { snprintf(g_src, sizeof g_src, "%s", src); }

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "damage: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

#define HX_OK(expr)                                                                              \
    do {                                                                                           \
        if ((expr) < 0)                                                                            \
            die("%s:%d: %s failed", __FILE__, __LINE__, #expr);                                    \
    } while (0)

static void path_in(char *out, size_t len, const char *dir, const char *name)
{
    if (snprintf(out, len, "%s/%s", dir, name) >= (int)len)
        die("path too long: %s/%s", dir, name);
}

void hx_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[4096];
            if (snprintf(sub, sizeof sub, "%s/%s", path, e->d_name) < (int)sizeof sub)
                hx_rmtree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int hx_has_secret(const void *p, size_t n)
{
    return n >= 4 && memmem(p, n, HX_SECRET, 4) != NULL;
}

static void fill_secret(void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ((char *)p)[i] = HX_SECRET[i % 4];
}

/* ---- the marker ---- */

void hx_rehash(const char *dir)
{
    char p[4200], text[256];
    path_in(p, sizeof p, dir, "index.h5");
    FILE *f = fopen(p, "rb");
    if (!f)
        die("cannot open %s", p);
    XXH3_state_t *st = XXH3_createState();
    XXH3_64bits_reset(st);
    unsigned char buf[1 << 14];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        XXH3_64bits_update(st, buf, n);
    fclose(f);
    uint64_t h = XXH3_64bits_digest(st);
    XXH3_freeState(st);
    /* keep the marker's format_version line: the grammar of libckpt/src/commit.c */
    path_in(p, sizeof p, dir, "COMMITTED");
    f = fopen(p, "rb");
    if (!f)
        die("cannot open %s", p);
    n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    const char *v = strstr(text, "format_version ");
    long version = v ? strtol(v + 15, NULL, 10) : 0;
    if (version < 1)
        die("%s has no format_version line", p);
    f = fopen(p, "wb");
    if (!f)
        die("cannot rewrite %s", p);
    fprintf(f, "ckpt-commit\nformat_version %ld\nindex_xxh3 %016" PRIx64 "\n", version, h);
    fclose(f);
}

/* ---- the base checkpoints ---- */

/* The piece-sized regions of every saved box of `name`, gathered from the global array g. */
static void write_tensor(ckpt_writer *w, const char *name, int nd, const int64_t *shape, const void *g, size_t es)
{
    int64_t nb, np;
    if (ckpt_writer_num_boxes(w, name, &nb))
        die("num_boxes %s: %s", name, ckpt_errmsg());
    for (int64_t j = 0; j < nb; j++) {
        if (ckpt_writer_box_piece(w, name, j, -1, NULL, NULL, &np))
            die("box_piece %s: %s", name, ckpt_errmsg());
        for (int64_t k = 0; k < np; k++) {
            int64_t off[8] = {0}, ext[8] = {0}, vol = 1;
            if (ckpt_writer_box_piece(w, name, j, k, off, ext, NULL))
                die("box_piece %s: %s", name, ckpt_errmsg());
            for (int d = 0; d < nd; d++)
                vol *= ext[d];
            unsigned char *part = malloc((size_t)vol * es + 1);
            for (int64_t e = 0; e < vol; e++) {
                int64_t rest = e, lin = 0, stride = 1, idx[8];
                for (int d = nd - 1; d >= 0; d--) {
                    idx[d] = off[d] + rest % ext[d];
                    rest /= ext[d];
                }
                for (int d = nd - 1; d >= 0; d--) {
                    lin += idx[d] * stride;
                    stride *= shape[d];
                }
                memcpy(part + e * (int64_t)es, (const unsigned char *)g + lin * (int64_t)es, es);
            }
            if (ckpt_writer_write(w, name, off, ext, part))
                die("write %s: %s", name, ckpt_errmsg());
            free(part);
        }
    }
}

/* secret: every tensor byte and attribute value is "SECR" */
static void save(const char *dir, hx_base base, int64_t step, int secret)
{
    hx_rmtree(dir);
    ckpt_save_options o;
    ckpt_save_options_init(&o);
    o.fsync = 0;
    o.piece_bytes = 64;
    o.layout = base == HX_V2_SHARED || base == HX_V2_SHARED_ZSTD ? CKPT_LAYOUT_SHARED
               : base == HX_V2_GROUP                           ? CKPT_LAYOUT_GROUP
                                                               : CKPT_LAYOUT_PER_RANK;
    if (base == HX_V2_GROUP)
        o.group_size = 1;
    if (base == HX_V2_ZSTD || base == HX_V2_SHARED_ZSTD)
        o.compress = CKPT_COMPRESS_ZSTD;
    ckpt_writer *w;
    if (ckpt_writer_open(dir, 2, &o, &w))
        die("writer_open %s: %s", dir, ckpt_errmsg());
    int64_t shape[2] = {4, 6}, wshape[2] = {4, HX_W_COLS}, zero[2] = {0, 0};
    float wv[4 * HX_W_COLS], xv[24];
    double sv = 3.25;
    for (int i = 0; i < 4 * HX_W_COLS; i++)
        wv[i] = (float)i + 0.5f;
    for (int i = 0; i < 24; i++)
        xv[i] = 100.0f + (float)i;
    if (secret) {
        fill_secret(wv, sizeof wv);
        fill_secret(xv, sizeof xv);
        fill_secret(&sv, sizeof sv);
    }
    int64_t a_off[2] = {0, 0}, a_ext[2] = {4, 2}, b_off[2] = {0, 2}, b_ext[2] = {2, 4}, c_off[2] = {2, 2},
            c_ext[2] = {2, 4};
    if (ckpt_writer_add_tensor(w, "s", CKPT_F64, 0, NULL) || ckpt_writer_add_box(w, "s", zero, zero, 0) ||
        ckpt_writer_add_tensor(w, "w", CKPT_F32, 2, wshape) || ckpt_writer_add_shard(w, "w", 0, 2) ||
        ckpt_writer_add_tensor(w, "x", CKPT_F32, 2, shape) || ckpt_writer_add_box(w, "x", a_off, a_ext, 0) ||
        ckpt_writer_add_box(w, "x", b_off, b_ext, 1) || ckpt_writer_add_box(w, "x", c_off, c_ext, 0))
        die("declare %s: %s", dir, ckpt_errmsg());
    ckpt_state *attrs;
    unsigned char rng[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    if (secret)
        fill_secret(rng, sizeof rng);
    if (ckpt_state_create(&attrs) || ckpt_state_set_int(attrs, "step", step) ||
        ckpt_state_set_double(attrs, "lr", 0.001) || ckpt_state_set_string(attrs, "note", secret ? "SECRSECR" : "base") ||
        ckpt_state_set_bytes(attrs, "rng", rng, sizeof rng) || ckpt_writer_set_attrs(w, attrs))
        die("attributes %s: %s", dir, ckpt_errmsg());
    ckpt_state_free(attrs);
    write_tensor(w, "s", 0, NULL, &sv, 8);
    write_tensor(w, "w", 2, wshape, wv, 4);
    write_tensor(w, "x", 2, shape, xv, 4);
    if (ckpt_writer_commit(w))
        die("commit %s: %s", dir, ckpt_errmsg());
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out)
        die("cannot copy %s to %s", from, to);
    char buf[1 << 14];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            die("cannot write %s", to);
    fclose(in);
    if (fclose(out) != 0)
        die("cannot write %s", to);
}

static void copy_dir(const char *from, const char *to)
{
    hx_rmtree(to);
    if (mkdir(to, 0755) != 0)
        die("mkdir %s: %s", to, strerror(errno));
    DIR *d = opendir(from);
    if (!d)
        die("cannot list %s", from);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char a[4200], b[4200];
        path_in(a, sizeof a, from, e->d_name);
        path_in(b, sizeof b, to, e->d_name);
        copy_file(a, b);
    }
    closedir(d);
}

void hx_save_base(const char *dir, hx_base base, int64_t step)
{
    if (base == HX_V1) {
        char fx[4200];
        snprintf(fx, sizeof fx, "%s/tests/fixtures/v1/per-rank", g_src);
        copy_dir(fx, dir);
        return;
    }
    save(dir, base, step, 0);
}

/* ---- HDF5 editing helpers ---- */

static hid_t open_rw(const char *dir, const char *name)
{
    char p[4200];
    path_in(p, sizeof p, dir, name);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0)
        die("cannot open %s", p);
    return f;
}

static hid_t vlen_str(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* Replaces attribute `name` of obj with one of the given type and space holding buf. */
static void put_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *buf)
{
    if (H5Aexists(obj, name) > 0)
        HX_OK(H5Adelete(obj, name));
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    HX_OK(a);
    HX_OK(H5Awrite(a, type, buf));
    H5Aclose(a);
}

static void put_attr_i64(hid_t obj, const char *name, int64_t v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    put_attr(obj, name, H5T_STD_I64LE, sp, &v);
    H5Sclose(sp);
}

static void put_attr_str(hid_t obj, const char *name, const char *v)
{
    hid_t sp = H5Screate(H5S_SCALAR), t = vlen_str();
    put_attr(obj, name, t, sp, &v);
    H5Tclose(t);
    H5Sclose(sp);
}

/* An attribute of n vlen strings (each `v`). */
static void put_attr_strs(hid_t obj, const char *name, const char *v, hsize_t n)
{
    const char **a = malloc(n * sizeof *a);
    for (hsize_t i = 0; i < n; i++)
        a[i] = v;
    hid_t sp = H5Screate_simple(1, &n, NULL), t = vlen_str();
    put_attr(obj, name, t, sp, a);
    H5Tclose(t);
    H5Sclose(sp);
    free(a);
}

static void put_attr_i64s(hid_t obj, const char *name, int64_t v, hsize_t n)
{
    int64_t *a = malloc(n * sizeof *a);
    for (hsize_t i = 0; i < n; i++)
        a[i] = v;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    put_attr(obj, name, H5T_STD_I64LE, sp, a);
    H5Sclose(sp);
    free(a);
}

static void put_attr_f64(hid_t obj, const char *name, double v)
{
    hid_t sp = H5Screate(H5S_SCALAR);
    put_attr(obj, name, H5T_IEEE_F64LE, sp, &v);
    H5Sclose(sp);
}

/* A fixed-length string attribute of `len` bytes: `v` then NULs. */
static void put_attr_fixed(hid_t obj, const char *name, const char *v, size_t len)
{
    char *buf = calloc(1, len);
    memcpy(buf, v, strlen(v) < len ? strlen(v) : len);
    hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, len);
    put_attr(obj, name, t, sp, buf);
    H5Tclose(t);
    H5Sclose(sp);
    free(buf);
}

/* Removes the link at path (the object it named goes unreachable). */
static void unlink_obj(hid_t f, const char *path) { HX_OK(H5Ldelete(f, path, H5P_DEFAULT)); }

static void index_unlink(const char *dir, const char *path)
{
    hid_t f = open_rw(dir, "index.h5");
    unlink_obj(f, path);
    HX_OK(H5Fclose(f));
}

/* Creates dataset path (replacing what is there) of type/space/dcpl; writes buf when given; sets
 * the `type` attribute of the attribute datasets when tname is given. */
static hid_t put_dataset(hid_t f, const char *path, hid_t type, hid_t space, hid_t dcpl, const void *buf,
                         const char *tname)
{
    if (H5Lexists(f, path, H5P_DEFAULT) > 0)
        unlink_obj(f, path);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(f, path, type, space, lcpl, dcpl > 0 ? dcpl : H5P_DEFAULT, H5P_DEFAULT);
    H5Pclose(lcpl);
    HX_OK(d);
    if (buf)
        HX_OK(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf));
    if (tname)
        put_attr_str(d, "type", tname);
    return d;
}

/* Writes (write) or reads field `field` of one table row as n int64 values: n == 1 a scalar field,
 * else an array field. */
static void row_field(hid_t f, const char *table, const char *field, int64_t row, int64_t *v, int n, int write)
{
    hid_t d = H5Dopen2(f, table, H5P_DEFAULT);
    HX_OK(d);
    hsize_t dn = (hsize_t)n, start = (hsize_t)row, cnt = 1;
    hid_t ft = n == 1 ? H5Tcopy(H5T_NATIVE_INT64) : H5Tarray_create2(H5T_NATIVE_INT64, 1, &dn);
    hid_t mt = H5Tcreate(H5T_COMPOUND, sizeof(int64_t) * (size_t)n);
    HX_OK(H5Tinsert(mt, field, 0, ft));
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &cnt, NULL);
    HX_OK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &cnt, NULL));
    HX_OK(write ? H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, v) : H5Dread(d, mt, ms, fs, H5P_DEFAULT, v));
    H5Sclose(ms);
    H5Sclose(fs);
    H5Tclose(mt);
    H5Tclose(ft);
    H5Dclose(d);
}

static void set_field(hid_t f, const char *table, const char *field, int64_t row, int64_t *v, int n)
{
    row_field(f, table, field, row, v, n, 1);
}

static void get_field(hid_t f, const char *table, const char *field, int64_t row, int64_t *v, int n)
{
    row_field(f, table, field, row, v, n, 0);
}

static void set1(const char *dir, const char *table, const char *field, int64_t row, int64_t v)
{
    hid_t f = open_rw(dir, "index.h5");
    set_field(f, table, field, row, &v, 1);
    HX_OK(H5Fclose(f));
}

/* Sets element d of array field `field` of one row. */
static void set_elem(const char *dir, const char *table, const char *field, int64_t row, int d, int64_t v)
{
    hid_t f = open_rw(dir, "index.h5");
    int64_t a[8];
    get_field(f, table, field, row, a, 8);
    a[d] = v;
    set_field(f, table, field, row, a, 8);
    HX_OK(H5Fclose(f));
}

/* Writes n strings into rows row0.. of string field `field` of an index table (field NULL: a
 * table of strings). */
static void set_strs(const char *dir, const char *table, const char *field, hsize_t row0, hsize_t n, const char **v)
{
    hid_t f = open_rw(dir, "index.h5");
    hid_t d = H5Dopen2(f, table, H5P_DEFAULT), t = vlen_str(), mt = t;
    HX_OK(d);
    if (field) {
        mt = H5Tcreate(H5T_COMPOUND, sizeof(char *));
        H5Tinsert(mt, field, 0, t);
    }
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &n, NULL);
    HX_OK(H5Sselect_hyperslab(fs, H5S_SELECT_SET, &row0, NULL, &n, NULL));
    HX_OK(H5Dwrite(d, mt, ms, fs, H5P_DEFAULT, v));
    H5Sclose(ms);
    H5Sclose(fs);
    if (field)
        H5Tclose(mt);
    H5Tclose(t);
    H5Dclose(d);
    HX_OK(H5Fclose(f));
}

/* Replaces table path by one of `rows` rows of the same record type with no storage at all, in an
 * index of about 0.5 MB. */
static void huge_table(const char *dir, const char *path, hsize_t rows)
{
    hid_t f = open_rw(dir, "index.h5");
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    HX_OK(d);
    hid_t t = H5Dget_type(d);
    H5Dclose(d);
    hid_t sp = H5Screate_simple(1, &rows, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE);
    H5Dclose(put_dataset(f, path, t, sp, dcpl, NULL, NULL));
    /* half a megabyte of something else, as in the issue: the file is not tiny, the table still
     * has no storage */
    static unsigned char pad[512 * 1024];
    hsize_t n = sizeof pad;
    hid_t ps = H5Screate_simple(1, &n, NULL);
    H5Dclose(put_dataset(f, "/padding", H5T_STD_U8LE, ps, 0, pad, NULL));
    H5Sclose(ps);
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
    HX_OK(H5Fclose(f));
}

/* Absolute path of a secret beside dir: "<dir>.<suffix>". */
static void secret_path(char *out, size_t len, const char *dir, const char *suffix)
{
    if (dir[0] != '/')
        die("damage needs an absolute directory, not '%s'", dir);
    if (snprintf(out, len, "%s.%s", dir, suffix) >= (int)len)
        die("path too long");
}

/* <dir>.secret.bin: 4096 bytes of "SECR". */
static void make_secret_bin(const char *dir, char *path, size_t len)
{
    secret_path(path, len, dir, "secret.bin");
    char buf[4096];
    fill_secret(buf, sizeof buf);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(buf, 1, sizeof buf, f) != sizeof buf || fclose(f) != 0)
        die("cannot write %s", path);
}

/* <dir>.secret-ckpt: the base checkpoint with "SECR" for every value. */
static void make_secret_ckpt(const char *dir, char *path, size_t len)
{
    secret_path(path, len, dir, "secret-ckpt");
    save(path, HX_V2, 99, 1);
}

/* <dir>.secret.h5: /data f32 [2, HX_W_COLS] (the shape of w's boxes) and /boxes/<gid> (with first_piece 0) and /checksums u64[64],
 * all "SECR". */
static void make_secret_h5(const char *dir, const char *gid, char *path, size_t len)
{
    secret_path(path, len, dir, "secret.h5");
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    HX_OK(f);
    float v[HX_W_BOX];
    uint64_t sums[64];
    fill_secret(v, sizeof v);
    fill_secret(sums, sizeof sums);
    hsize_t dims[2] = {2, HX_W_COLS}, n = 64;
    hid_t sp = H5Screate_simple(2, dims, NULL), s1 = H5Screate_simple(1, &n, NULL);
    H5Dclose(put_dataset(f, "/data", H5T_IEEE_F32LE, sp, 0, v, NULL));
    char p[300];
    snprintf(p, sizeof p, "/boxes/%s", gid);
    hid_t d = put_dataset(f, p, H5T_IEEE_F32LE, sp, 0, v, NULL);
    put_attr_i64(d, "first_piece", 0);
    H5Dclose(d);
    H5Dclose(put_dataset(f, "/checksums", H5T_STD_U64LE, s1, 0, sums, NULL));
    H5Sclose(s1);
    H5Sclose(sp);
    HX_OK(H5Fclose(f));
}

/* The file and dataset holding box j of tensor `name` (through the library's reader). */
static void box_loc(const char *dir, const char *name, int64_t j, char *file, size_t flen, char *ds, size_t dlen)
{
    ckpt_reader *r;
    int i;
    ckpt_box_info b;
    if (ckpt_reader_open(dir, &r) || ckpt_reader_find(r, name, &i) || ckpt_reader_box_info(r, i, j, &b))
        die("cannot locate box %lld of '%s' in %s: %s", (long long)j, name, dir, ckpt_errmsg());
    snprintf(file, flen, "%s", b.file);
    snprintf(ds, dlen, "%s", b.dataset);
    ckpt_reader_close(r);
}

/* Rank 0's box of w: its data file (opened read-write), dataset path and first_piece. */
typedef struct wbox {
    hid_t f;
    char file[64], ds[128], gid[128];
    int64_t first_piece;
} wbox;

static void open_wbox(const char *dir, wbox *b)
{
    box_loc(dir, "w", 0, b->file, sizeof b->file, b->ds, sizeof b->ds);
    const char *slash = strrchr(b->ds, '/');
    snprintf(b->gid, sizeof b->gid, "%s", slash ? slash + 1 : b->ds);
    b->f = open_rw(dir, b->file);
    b->first_piece = -1;
    hid_t d = H5Dopen2(b->f, b->ds, H5P_DEFAULT);
    if (d >= 0 && H5Aexists(d, "first_piece") > 0) {
        hid_t a = H5Aopen(d, "first_piece", H5P_DEFAULT);
        HX_OK(H5Aread(a, H5T_NATIVE_INT64, &b->first_piece));
        H5Aclose(a);
    }
    if (d >= 0)
        H5Dclose(d);
}

static void close_wbox(wbox *b) { HX_OK(H5Fclose(b->f)); }

/* Replaces the box dataset by one of type/dcpl (its shape), with its first_piece attribute. */
static void replace_wbox(wbox *b, hid_t type, hid_t dcpl, const void *buf)
{
    hsize_t dims[2] = {2, HX_W_COLS};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t d = put_dataset(b->f, b->ds, type, sp, dcpl, buf, NULL);
    if (b->first_piece >= 0)
        put_attr_i64(d, "first_piece", b->first_piece);
    H5Dclose(d);
    H5Sclose(sp);
}

/* ---- the edits: attribute datasets (section 3.5) ---- */

/* Replaces attribute dataset `path` of the index by one of type, `rank` dims (0: scalar) and dcpl,
 * holding buf (NULL: nothing written), tagged with type attribute `tag`. */
static void attr_dataset(const char *dir, const char *path, hid_t type, int rank, const hsize_t *dims, hid_t dcpl,
                         const void *buf, const char *tag)
{
    hid_t f = open_rw(dir, "index.h5");
    hid_t sp = rank ? H5Screate_simple(rank, dims, NULL) : H5Screate(H5S_SCALAR);
    H5Dclose(put_dataset(f, path, type, sp, dcpl, buf, tag));
    H5Sclose(sp);
    HX_OK(H5Fclose(f));
}

static void attr_int_array(const char *dir)
{
    int64_t v[512];
    hsize_t n = 512;
    for (int i = 0; i < 512; i++)
        v[i] = 1000 + i;
    attr_dataset(dir, "/attributes/step", H5T_STD_I64LE, 1, &n, 0, v, "int");
}

static void attr_string_array(const char *dir)
{
    static const char *v[4096];
    hsize_t n = 4096;
    for (hsize_t i = 0; i < n; i++)
        v[i] = "a string that is one of 4096";
    hid_t t = vlen_str();
    attr_dataset(dir, "/attributes/note", t, 1, &n, 0, v, "string");
    H5Tclose(t);
}

static void attr_double_array(const char *dir)
{
    double v[3] = {1, 2, 3};
    hsize_t n = 3;
    attr_dataset(dir, "/attributes/lr", H5T_IEEE_F64LE, 1, &n, 0, v, "double");
}

static void attr_int_as_string(const char *dir)
{
    const char *v = "1234";
    hid_t t = vlen_str();
    attr_dataset(dir, "/attributes/step", t, 0, NULL, 0, &v, "int");
    H5Tclose(t);
}

static void attr_bytes_2d(const char *dir)
{
    unsigned char v[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    hsize_t dims[2] = {2, 4};
    attr_dataset(dir, "/attributes/rng", H5T_STD_U8LE, 2, dims, 0, v, "bytes");
}

static void attr_bytes_huge(const char *dir)
{
    hsize_t n = (hsize_t)1 << 31;
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE);
    attr_dataset(dir, "/attributes/rng", H5T_STD_U8LE, 1, &n, dcpl, NULL, "bytes");
    H5Pclose(dcpl);
}

/* a key no ckpt_state accepts, with a newline in it */
static void attr_key_control(const char *dir)
{
    int64_t v = 1;
    attr_dataset(dir, "/attributes/bad\nkey", H5T_STD_I64LE, 0, NULL, 0, &v, "int");
}

/* the type attribute of /attributes/step: 2 strings, or a 60000-byte string */
static void step_type(const char *dir, int array)
{
    hid_t f = open_rw(dir, "index.h5");
    hid_t d = H5Dopen2(f, "/attributes/step", H5P_DEFAULT);
    HX_OK(d);
    if (array)
        put_attr_strs(d, "type", "int", 2);
    else
        put_attr_fixed(d, "type", "int-and-then-a-very-long-tail-that-is-no-type-at-all", 60000);
    H5Dclose(d);
    HX_OK(H5Fclose(f));
}
static void attr_type_array(const char *dir) { step_type(dir, 1); }
static void attr_type_long(const char *dir) { step_type(dir, 0); }

/* ---- root attributes (section 3.1) ---- */

#define ROOT_EDIT(fname, stmt)                                                                     \
    static void fname(const char *dir)                                                             \
    {                                                                                              \
        hid_t f = open_rw(dir, "index.h5");                                                        \
        stmt;                                                                                      \
        HX_OK(H5Fclose(f));                                                                      \
    }

ROOT_EDIT(root_format_array, put_attr_strs(f, "format", "ckpt", 2))
ROOT_EDIT(root_format_int, put_attr_i64(f, "format", 7))
ROOT_EDIT(root_format_long, put_attr_fixed(f, "format", "ckpt", 60000))
ROOT_EDIT(root_version_string, put_attr_str(f, "format_version", "2"))
ROOT_EDIT(root_version_array, put_attr_i64s(f, "format_version", 2, 512))
ROOT_EDIT(root_version_double, put_attr_f64(f, "format_version", 2.0))
ROOT_EDIT(root_libver_array, put_attr_strs(f, "library_version", "0.2.0", 1000))
ROOT_EDIT(root_libver_int, put_attr_i64(f, "library_version", 2))
ROOT_EDIT(root_libver_long, put_attr_fixed(f, "library_version", "0.2.0-and-a-very-long-build-tag-of-a-custom-build", 60000))
ROOT_EDIT(root_layout_array, put_attr_strs(f, "layout", "file-per-rank", 1000))
ROOT_EDIT(root_layout_double, put_attr_f64(f, "layout", 1.0))
ROOT_EDIT(root_world_array, put_attr_i64s(f, "world_size", 2, 2))
ROOT_EDIT(root_world_double, put_attr_f64(f, "world_size", 2.0))
ROOT_EDIT(root_world_huge, put_attr_i64(f, "world_size", (int64_t)1 << 40))
ROOT_EDIT(root_checksum_array, put_attr_strs(f, "checksum", "xxh3-64", 16))
ROOT_EDIT(root_pieces_string, put_attr_str(f, "piece_bytes", "32"))
ROOT_EDIT(root_pieces_huge, put_attr_i64(f, "piece_bytes", INT64_MAX))
ROOT_EDIT(root_compression_array, put_attr_strs(f, "compression", "none", 16))

/* ---- tables (sections 3.2-3.4, appendix) ---- */

/* version 2: x's third box [2:4, 2:6] moved to [1:3, 2:6]: overlaps [0:2, 2:6], leaves row 3 of
 * columns 2..5 uncovered, the volumes still add up to 24 */
static void v2_overlap_gap(const char *dir) { set_elem(dir, "/index/boxes", "offset", 2, 0, 1); }
/* version 1: big's third box [200:300, 0:70] moved to [150:250, 0:70] */
static void v1_overlap_gap(const char *dir) { set_elem(dir, "/index/boxes", "offset", 2, 0, 150); }
static void v1_piece_overflow(const char *dir) { set1(dir, "/index/boxes", "first_piece", 0, INT64_MAX - 10); }
static void v1_piece_negative(const char *dir) { set1(dir, "/index/boxes", "first_piece", 1, -5); }
static void v1_piece_past_end(const char *dir)
{
    hid_t f = open_rw(dir, "index.h5");
    hid_t d = H5Dopen2(f, "/index/checksums", H5P_DEFAULT);
    hid_t sp = H5Dget_space(d);
    int64_t n = (int64_t)H5Sget_simple_extent_npoints(sp);
    H5Sclose(sp);
    H5Dclose(d);
    set_field(f, "/index/boxes", "first_piece", 0, (int64_t[]){n - 1}, 1);
    HX_OK(H5Fclose(f));
}
static void v1_npieces_negative(const char *dir) { set1(dir, "/index/boxes", "npieces", 0, -1); }
static void v1_file_range(const char *dir) { set1(dir, "/index/boxes", "file", 0, 1000); }
static void v1_piece_dim(const char *dir) { set1(dir, "/index/boxes", "piece_dim", 0, 7); }
static void v1_piece_len(const char *dir) { set1(dir, "/index/boxes", "piece_len", 0, INT64_MAX); }
static void v1_file_path(const char *dir)
{
    const char *v[1] = {"../secret.h5"};
    set_strs(dir, "/index/files", NULL, 0, 1, v);
}
static void v1_dataset_path(const char *dir)
{
    const char *v[1] = {"boxes/0"};
    set_strs(dir, "/index/boxes", "dataset", 0, 1, v);
}
static void v2_huge_boxes(const char *dir) { huge_table(dir, "/index/boxes", 200000000); }
static void v2_huge_tensors(const char *dir) { huge_table(dir, "/index/tensors", 200000000); }
static void v1_huge_checksums(const char *dir) { huge_table(dir, "/index/checksums", 200000000); }
static void v1_huge_files(const char *dir) { huge_table(dir, "/index/files", 200000000); }
/* w is tensor row 1 (rows by name: s, w, x) */
static void grid_stride_overflow(const char *dir) { set_elem(dir, "/index/tensors", "stride", 1, 0, INT64_MAX); }
static void grid_stride_negative(const char *dir) { set_elem(dir, "/index/tensors", "stride", 1, 0, INT64_MIN); }
static void grid_chunk_huge(const char *dir) { set_elem(dir, "/index/tensors", "chunk", 1, 0, INT64_MAX); }
static void grid_chunk_zero(const char *dir) { set_elem(dir, "/index/tensors", "chunk", 1, 0, 0); }
static void grid_chunk_extra(const char *dir) { set_elem(dir, "/index/tensors", "chunk", 1, 5, INT64_MAX); }
static void grid_writer0(const char *dir) { set1(dir, "/index/tensors", "writer0", 1, INT64_MIN); }
static void grid_nboxes(const char *dir) { set1(dir, "/index/tensors", "nboxes", 1, INT64_MAX); }
static void shape_overflow(const char *dir)
{
    set_elem(dir, "/index/tensors", "shape", 1, 0, (int64_t)1 << 62);
    set_elem(dir, "/index/tensors", "shape", 1, 1, (int64_t)1 << 62);
}
static void ndim_huge(const char *dir) { set1(dir, "/index/tensors", "ndim", 1, (int64_t)1 << 40); }
static void ndim_negative(const char *dir) { set1(dir, "/index/tensors", "ndim", 1, -1); }
static void first_box_overflow(const char *dir) { set1(dir, "/index/tensors", "first_box", 2, INT64_MAX); }
static void first_row_overflow(const char *dir) { set1(dir, "/index/tensors", "first_row", 2, INT64_MAX - 1); }
static void row_tensor_huge(const char *dir) { set1(dir, "/index/boxes", "tensor", 0, (int64_t)1 << 40); }
static void row_writer_negative(const char *dir) { set1(dir, "/index/boxes", "writer", 1, -1); }
static void row_extent_overflow(const char *dir)
{
    set_elem(dir, "/index/boxes", "offset", 0, 0, INT64_MAX - 1);
    set_elem(dir, "/index/boxes", "extent", 0, 0, INT64_MAX - 1);
}
static void row_extent_zero(const char *dir) { set_elem(dir, "/index/boxes", "extent", 1, 1, 0); }

static void tensor_name_dotdot(const char *dir)
{
    const char *v[1] = {"../../w"};
    set_strs(dir, "/index/tensors", "name", 1, 1, v);
}

static void tensor_name_control(const char *dir)
{
    const char *v[1] = {"w\nx"};
    set_strs(dir, "/index/tensors", "name", 1, 1, v);
}

/* /index/boxes rewritten with `field` of another type: offset as float64[8], or tensor as a string */
static void boxes_field_type(const char *dir, const char *field)
{
    hid_t f = open_rw(dir, "index.h5");
    hsize_t eight = 8;
    hid_t iarr = H5Tarray_create2(H5T_STD_I64LE, 1, &eight), farr = H5Tarray_create2(H5T_IEEE_F64LE, 1, &eight);
    hid_t str = vlen_str();
    int off = !strcmp(field, "offset"), ten = !strcmp(field, "tensor");
    size_t size = (ten ? sizeof(char *) : 4) + 4 + 8 * 8 * 2 + 8;
    hid_t t = H5Tcreate(H5T_COMPOUND, size);
    size_t at = 0;
    H5Tinsert(t, "tensor", at, ten ? str : H5T_STD_I32LE);
    at += ten ? sizeof(char *) : 4;
    H5Tinsert(t, "writer", at, H5T_STD_I32LE);
    at += 4;
    H5Tinsert(t, "offset", at, off ? farr : iarr);
    at += 64;
    H5Tinsert(t, "extent", at, iarr);
    at += 64;
    H5Tinsert(t, "first_piece", at, H5T_STD_I64LE);
    hsize_t n = 3;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    unsigned char *buf = calloc(n, size);
    char *one = "1";
    for (hsize_t i = 0; ten && i < n; i++)
        memcpy(buf + i * size, &one, sizeof one);
    H5Dclose(put_dataset(f, "/index/boxes", t, sp, 0, buf, NULL));
    free(buf);
    H5Sclose(sp);
    H5Tclose(t);
    H5Tclose(str);
    H5Tclose(farr);
    H5Tclose(iarr);
    HX_OK(H5Fclose(f));
}
static void boxes_offset_float(const char *dir) { boxes_field_type(dir, "offset"); }
static void boxes_tensor_string(const char *dir) { boxes_field_type(dir, "tensor"); }

static void tensors_2d(const char *dir)
{
    hid_t f = open_rw(dir, "index.h5");
    hid_t d = H5Dopen2(f, "/index/tensors", H5P_DEFAULT);
    hid_t t = H5Dget_type(d);
    H5Dclose(d);
    hsize_t dims[2] = {3, 3};
    hid_t sp = H5Screate_simple(2, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY);
    H5Dclose(put_dataset(f, "/index/tensors", t, sp, dcpl, NULL, NULL));
    H5Pclose(dcpl);
    H5Sclose(sp);
    H5Tclose(t);
    HX_OK(H5Fclose(f));
}

static void tensors_group(const char *dir)
{
    hid_t f = open_rw(dir, "index.h5");
    unlink_obj(f, "/index/tensors");
    H5Gclose(H5Gcreate2(f, "/index/tensors", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    HX_OK(H5Fclose(f));
}

static void tensors_missing(const char *dir) { index_unlink(dir, "/index/tensors"); }

/* ---- links and storage out of the index ---- */

static void index_elink(const char *dir, const char *path)
{
    char secret[4200], target[4300];
    make_secret_ckpt(dir, secret, sizeof secret);
    snprintf(target, sizeof target, "%s/index.h5", secret);
    hid_t f = open_rw(dir, "index.h5");
    unlink_obj(f, path);
    HX_OK(H5Lcreate_external(target, path, f, path, H5P_DEFAULT, H5P_DEFAULT));
    HX_OK(H5Fclose(f));
}
static void index_elink_tensors(const char *dir) { index_elink(dir, "/index/tensors"); }
static void index_elink_group(const char *dir) { index_elink(dir, "/index"); }
static void index_elink_attrs(const char *dir) { index_elink(dir, "/attributes"); }
static void index_elink_attr(const char *dir) { index_elink(dir, "/attributes/note"); }

static void index_soft_link(const char *dir)
{
    hid_t f = open_rw(dir, "index.h5");
    unlink_obj(f, "/attributes/note");
    HX_OK(H5Lcreate_soft("/attributes/step", f, "/attributes/note", H5P_DEFAULT, H5P_DEFAULT));
    HX_OK(H5Fclose(f));
}

/* /attributes/rng (8 bytes) kept in the secret file */
static void index_external_storage(const char *dir)
{
    char secret[4200];
    make_secret_bin(dir, secret, sizeof secret);
    hid_t f = open_rw(dir, "index.h5");
    hsize_t n = 8;
    hid_t sp = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    HX_OK(H5Pset_external(dcpl, secret, 0, 8));
    H5Dclose(put_dataset(f, "/attributes/rng", H5T_STD_U8LE, sp, dcpl, NULL, "bytes"));
    H5Pclose(dcpl);
    H5Sclose(sp);
    HX_OK(H5Fclose(f));
}

/* version 1: the checksum table kept in the secret file */
static void v1_checksums_external(const char *dir)
{
    char secret[4200];
    make_secret_bin(dir, secret, sizeof secret);
    hid_t f = open_rw(dir, "index.h5");
    hid_t d = H5Dopen2(f, "/index/checksums", H5P_DEFAULT), s = H5Dget_space(d);
    hsize_t n = (hsize_t)H5Sget_simple_extent_npoints(s);
    H5Sclose(s);
    H5Dclose(d);
    hid_t sp = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    HX_OK(H5Pset_external(dcpl, secret, 0, n * 8));
    H5Dclose(put_dataset(f, "/index/checksums", H5T_STD_U64LE, sp, dcpl, NULL, NULL));
    H5Pclose(dcpl);
    H5Sclose(sp);
    HX_OK(H5Fclose(f));
}

/* /attributes/rng a virtual dataset over bytes of the secret file */
static void index_vds(const char *dir)
{
    char secret[4200];
    make_secret_h5(dir, "0", secret, sizeof secret);
    hsize_t n = 8, n48 = 48, s0 = 0;
    unsigned char b[48];
    fill_secret(b, sizeof b);
    hid_t sf = H5Fopen(secret, H5F_ACC_RDWR, H5P_DEFAULT);
    HX_OK(sf);
    hid_t bs = H5Screate_simple(1, &n48, NULL);
    H5Dclose(put_dataset(sf, "/bytes", H5T_STD_U8LE, bs, 0, b, NULL));
    HX_OK(H5Fclose(sf));
    HX_OK(H5Sselect_hyperslab(bs, H5S_SELECT_SET, &s0, NULL, &n, NULL));
    hid_t vs = H5Screate_simple(1, &n, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    HX_OK(H5Pset_virtual(dcpl, vs, secret, "/bytes", bs));
    hid_t f = open_rw(dir, "index.h5");
    H5Dclose(put_dataset(f, "/attributes/rng", H5T_STD_U8LE, vs, dcpl, NULL, "bytes"));
    HX_OK(H5Fclose(f));
    H5Pclose(dcpl);
    H5Sclose(vs);
    H5Sclose(bs);
}

static void index_symlink(const char *dir)
{
    char secret[4200], idx[4200], target[4300];
    make_secret_ckpt(dir, secret, sizeof secret);
    path_in(idx, sizeof idx, dir, "index.h5");
    snprintf(target, sizeof target, "%s/index.h5", secret);
    /* the marker then matches the linked index: only the symlink rule refuses it */
    unlink(idx);
    if (symlink(target, idx) != 0)
        die("symlink %s: %s", idx, strerror(errno));
}

static void no_rehash_edit(const char *dir)
{
    hid_t f = open_rw(dir, "index.h5");
    put_attr_i64(f, "world_size", 3);
    HX_OK(H5Fclose(f));
}

static void dtype_unknown(const char *dir)
{
    const char *v[1] = {"f8e4m3"};
    set_strs(dir, "/index/tensors", "dtype", 1, 1, v);
}

/* ---- the group map (file-per-group, one rank per group) ---- */

static void groups_swapped(const char *dir)
{
    hid_t f = open_rw(dir, "index.h5");
    int64_t a[3], b[3];
    const char *fl[3] = {"first_rank", "nranks", "group"};
    for (int k = 0; k < 3; k++) {
        get_field(f, "/index/groups", fl[k], 0, &a[k], 1);
        get_field(f, "/index/groups", fl[k], 1, &b[k], 1);
    }
    for (int k = 0; k < 3; k++) {
        set_field(f, "/index/groups", fl[k], 0, &b[k], 1);
        set_field(f, "/index/groups", fl[k], 1, &a[k], 1);
    }
    HX_OK(H5Fclose(f));
}
static void groups_overlap(const char *dir) { set1(dir, "/index/groups", "first_rank", 1, 0); }
static void groups_nranks_huge(const char *dir) { set1(dir, "/index/groups", "nranks", 1, INT64_MAX); }
static void groups_id_huge(const char *dir) { set1(dir, "/index/groups", "group", 1, (int64_t)1 << 40); }
static void groups_missing(const char *dir) { index_unlink(dir, "/index/groups"); }

/* ---- data files: reads must stay inside the checkpoint ---- */

/* In the file of w's box 0, `link` (NULL: the box dataset) replaced by an external link to
 * `target` of the secret HDF5 file. */
static void elink_in_wfile(const char *dir, const char *link, const char *target)
{
    wbox b;
    open_wbox(dir, &b);
    char secret[4200];
    make_secret_h5(dir, b.gid, secret, sizeof secret);
    if (!link)
        link = b.ds;
    unlink_obj(b.f, link);
    HX_OK(H5Lcreate_external(secret, target, b.f, link, H5P_DEFAULT, H5P_DEFAULT));
    close_wbox(&b);
}
static void data_elink(const char *dir) { elink_in_wfile(dir, NULL, "/data"); }

static void data_elink_group(const char *dir) { elink_in_wfile(dir, "/boxes", "/boxes"); }

static void data_soft_link(const char *dir)
{
    wbox b;
    open_wbox(dir, &b);
    float v[HX_W_BOX];
    fill_secret(v, sizeof v);
    hsize_t dims[2] = {2, HX_W_COLS};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t d = put_dataset(b.f, "/secret", H5T_IEEE_F32LE, sp, 0, v, NULL);
    put_attr_i64(d, "first_piece", b.first_piece);
    H5Dclose(d);
    H5Sclose(sp);
    unlink_obj(b.f, b.ds);
    HX_OK(H5Lcreate_soft("/secret", b.f, b.ds, H5P_DEFAULT, H5P_DEFAULT));
    close_wbox(&b);
}

static void data_external_storage(const char *dir)
{
    wbox b;
    open_wbox(dir, &b);
    char secret[4200];
    make_secret_bin(dir, secret, sizeof secret);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    HX_OK(H5Pset_external(dcpl, secret, 0, HX_W_BOX * 4));
    replace_wbox(&b, H5T_IEEE_F32LE, dcpl, NULL);
    H5Pclose(dcpl);
    close_wbox(&b);
}

static void data_vds(const char *dir)
{
    wbox b;
    open_wbox(dir, &b);
    char secret[4200];
    make_secret_h5(dir, b.gid, secret, sizeof secret);
    hsize_t dims[2] = {2, HX_W_COLS};
    hid_t vs = H5Screate_simple(2, dims, NULL), ss = H5Screate_simple(2, dims, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    HX_OK(H5Pset_virtual(dcpl, vs, secret, "/data", ss));
    replace_wbox(&b, H5T_IEEE_F32LE, dcpl, NULL);
    H5Pclose(dcpl);
    H5Sclose(ss);
    H5Sclose(vs);
    close_wbox(&b);
}

/* rank 0's data file a symbolic link to the same file of another checkpoint (whose checksums are
 * right for its own, secret, data) */
static void data_symlink(const char *dir)
{
    char secret[4200], file[64], ds[128], p[4200], target[4300];
    box_loc(dir, "w", 0, file, sizeof file, ds, sizeof ds);
    make_secret_ckpt(dir, secret, sizeof secret);
    path_in(p, sizeof p, dir, file);
    snprintf(target, sizeof target, "%s/%s", secret, file);
    unlink(p);
    if (symlink(target, p) != 0)
        die("symlink %s: %s", p, strerror(errno));
}

static void data_filter(const char *dir)
{
    wbox b;
    open_wbox(dir, &b);
    float v[HX_W_BOX];
    for (int i = 0; i < HX_W_BOX; i++)
        v[i] = (float)i + 0.5f;
    hsize_t chunk[2] = {1, 6};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    H5Pset_deflate(dcpl, 1);
    replace_wbox(&b, H5T_IEEE_F32LE, dcpl, v);
    H5Pclose(dcpl);
    close_wbox(&b);
}

/* w's box 0 replaced by one of another element type: int32 0..63, float64 i + 0.5 (w's values), or
 * strings */
static void wbox_of_type(const char *dir, int kind)
{
    wbox b;
    open_wbox(dir, &b);
    int32_t iv[HX_W_BOX];
    double dv[HX_W_BOX];
    const char *sv[HX_W_BOX];
    for (int i = 0; i < HX_W_BOX; i++) {
        iv[i] = i;
        dv[i] = (double)i + 0.5;
        sv[i] = "SECRSECRSECR";
    }
    hid_t t = vlen_str();
    replace_wbox(&b, kind == 0 ? H5T_STD_I32LE : kind == 1 ? H5T_IEEE_F64LE : t, 0,
                 kind == 0 ? (const void *)iv : kind == 1 ? (const void *)dv : (const void *)sv);
    H5Tclose(t);
    close_wbox(&b);
}
static void data_dtype_int(const char *dir) { wbox_of_type(dir, 0); }
static void data_dtype_double(const char *dir) { wbox_of_type(dir, 1); }
static void data_dtype_string(const char *dir) { wbox_of_type(dir, 2); }

static void data_shape(const char *dir)
{
    wbox b;
    open_wbox(dir, &b);
    float v[3 * HX_W_COLS] = {0};
    hsize_t dims[2] = {3, HX_W_COLS};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    H5Dclose(put_dataset(b.f, b.ds, H5T_IEEE_F32LE, sp, 0, v, NULL));
    H5Sclose(sp);
    close_wbox(&b);
}

static void data_missing(const char *dir)
{
    char file[64], ds[128], p[4200];
    box_loc(dir, "w", 0, file, sizeof file, ds, sizeof ds);
    path_in(p, sizeof p, dir, file);
    unlink(p);
}

static void data_directory(const char *dir)
{
    char file[64], ds[128], p[4200];
    box_loc(dir, "w", 0, file, sizeof file, ds, sizeof ds);
    path_in(p, sizeof p, dir, file);
    unlink(p);
    mkdir(p, 0755);
}

static void data_not_hdf5(const char *dir)
{
    char file[64], ds[128], p[4200];
    box_loc(dir, "w", 0, file, sizeof file, ds, sizeof ds);
    path_in(p, sizeof p, dir, file);
    FILE *f = fopen(p, "wb");
    fputs("not an HDF5 file\n", f);
    fclose(f);
}

/* zstd files: a chunk of w's box rewritten raw (H5Dwrite_chunk) */
static void write_chunk(const char *dir, const void *bytes, size_t n)
{
    wbox b;
    open_wbox(dir, &b);
    hid_t d = H5Dopen2(b.f, b.ds, H5P_DEFAULT);
    hsize_t off[2] = {0, 0};
    HX_OK(d);
    HX_OK(H5Dwrite_chunk(d, H5P_DEFAULT, 0, off, n, bytes));
    H5Dclose(d);
    close_wbox(&b);
}

/* (the most HDF5 encodes for a 64-byte chunk) */
static void zstd_chunk_huge(const char *dir)
{
    size_t n = 65535;
    unsigned char *junk = malloc(n);
    fill_secret(junk, n);
    write_chunk(dir, junk, n);
    free(junk);
}

/* A zstd frame whose header claims 2^40 content bytes, with one empty last block. */
static const unsigned char lying_frame[] = {0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 0x01, 0, 0};

static void zstd_frame_huge(const char *dir) { write_chunk(dir, lying_frame, sizeof lying_frame); }

/* ---- checksums (only read when verifying) ---- */

/* Replaces /checksums of data file `file` (NULL: the file of w's box 0) by n zeros of type. */
static void replace_sums(const char *dir, const char *file, hid_t type, hsize_t n)
{
    char fbuf[64], ds[128];
    if (!file) {
        box_loc(dir, "w", 0, fbuf, sizeof fbuf, ds, sizeof ds);
        file = fbuf;
    }
    hid_t f = open_rw(dir, file);
    uint64_t zeros[64] = {0};
    hid_t sp = H5Screate_simple(1, &n, NULL);
    H5Dclose(put_dataset(f, "/checksums", type, sp, 0, zeros, NULL));
    H5Sclose(sp);
    HX_OK(H5Fclose(f));
}

static void sums_short(const char *dir) { replace_sums(dir, NULL, H5T_STD_U64LE, 1); }
static void sums_float(const char *dir) { replace_sums(dir, NULL, H5T_IEEE_F64LE, 64); }

static void sums_elink(const char *dir) { elink_in_wfile(dir, "/checksums", "/checksums"); }

static void first_piece_attr(const char *dir, int kind)
{
    wbox b;
    open_wbox(dir, &b);
    hid_t d = H5Dopen2(b.f, b.ds, H5P_DEFAULT);
    HX_OK(d);
    if (kind == 0)
        put_attr_i64(d, "first_piece", INT64_MAX);
    else if (kind == 1)
        put_attr_str(d, "first_piece", "1");
    else
        put_attr_i64s(d, "first_piece", 1, 512);
    H5Dclose(d);
    close_wbox(&b);
}
static void sums_first_huge(const char *dir) { first_piece_attr(dir, 0); }
static void sums_first_string(const char *dir) { first_piece_attr(dir, 1); }
static void sums_first_array(const char *dir) { first_piece_attr(dir, 2); }

static void shared_sums_short(const char *dir) { replace_sums(dir, "data.h5", H5T_STD_U64LE, 1); }

static void shared_zstd_frame_huge(const char *dir)
{
    hid_t f = open_rw(dir, "data.h5");
    hid_t d = H5Dopen2(f, "/tensors/w", H5P_DEFAULT);
    hsize_t off[2] = {0, 0};
    HX_OK(d);
    HX_OK(H5Dwrite_chunk(d, H5P_DEFAULT, 0, off, sizeof lying_frame, lying_frame));
    H5Dclose(d);
    HX_OK(H5Fclose(f));
}

static void shared_elink(const char *dir)
{
    char secret[4200];
    make_secret_h5(dir, "0", secret, sizeof secret);
    hid_t f = open_rw(dir, "data.h5");
    unlink_obj(f, "/tensors/w");
    /* /data has the shape of one box, not of w: link a secret of w's shape */
    hid_t sf = H5Fopen(secret, H5F_ACC_RDWR, H5P_DEFAULT);
    float v[4 * HX_W_COLS];
    fill_secret(v, sizeof v);
    hsize_t dims[2] = {4, HX_W_COLS};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    H5Dclose(put_dataset(sf, "/w", H5T_IEEE_F32LE, sp, 0, v, NULL));
    H5Sclose(sp);
    HX_OK(H5Fclose(sf));
    HX_OK(H5Lcreate_external(secret, "/w", f, "/tensors/w", H5P_DEFAULT, H5P_DEFAULT));
    HX_OK(H5Fclose(f));
}

/* the symlink and missing-file edits change no HDF5 object: nothing to rehash, but harmless */

const hx_class hx_classes[] = {
    /* (a) attribute datasets that are not scalars */
    {"attr-int-array", HX_V2, HX_AT_OPEN, "/attributes/step: int64[512] with type 'int'", attr_int_array},
    {"attr-string-array", HX_V2, HX_AT_OPEN, "/attributes/note: 4096 vlen strings with type 'string'", attr_string_array},
    {"attr-double-array", HX_V2, HX_AT_OPEN, "/attributes/lr: float64[3] with type 'double'", attr_double_array},
    {"attr-int-as-string", HX_V2, HX_AT_OPEN, "/attributes/step: a string with type 'int'", attr_int_as_string},
    {"attr-type-array", HX_V2, HX_AT_OPEN, "the type attribute of /attributes/step: 2 strings", attr_type_array},
    {"attr-type-long", HX_V2, HX_AT_OPEN, "the type attribute of /attributes/step: a 60000-byte string", attr_type_long},
    {"attr-bytes-2d", HX_V2, HX_AT_OPEN, "/attributes/rng: uint8[2][4] with type 'bytes'", attr_bytes_2d},
    {"attr-bytes-huge", HX_V2, HX_AT_OPEN, "/attributes/rng: uint8[2^31] with no storage", attr_bytes_huge},
    {"attr-key-control", HX_V2, HX_AT_OPEN, "an attribute dataset named 'bad\\nkey'", attr_key_control},
    /* (b) root attributes of other shapes and types */
    {"root-format-array", HX_V2, HX_AT_OPEN, "format: 2 strings", root_format_array},
    {"root-format-int", HX_V2, HX_AT_OPEN, "format: int64", root_format_int},
    {"root-format-long", HX_V2, HX_OPENS, "format: a 60000-byte fixed-length string 'ckpt'", root_format_long},
    {"root-version-string", HX_V2, HX_AT_OPEN, "format_version: a string", root_version_string},
    {"root-version-array", HX_V2, HX_AT_OPEN, "format_version: int64[512]", root_version_array},
    {"root-version-double", HX_V2, HX_AT_OPEN, "format_version: float64", root_version_double},
    {"root-libver-array", HX_V2, HX_AT_OPEN, "library_version: 1000 strings", root_libver_array},
    {"root-libver-int", HX_V2, HX_AT_OPEN, "library_version: int64", root_libver_int},
    {"root-libver-long", HX_V2, HX_OPENS, "library_version: a 60000-byte fixed-length string", root_libver_long},
    {"root-layout-array", HX_V2, HX_AT_OPEN, "layout: 1000 strings", root_layout_array},
    {"root-layout-double", HX_V2, HX_AT_OPEN, "layout: float64", root_layout_double},
    {"root-world-array", HX_V2, HX_AT_OPEN, "world_size: int64[2]", root_world_array},
    {"root-world-double", HX_V2, HX_AT_OPEN, "world_size: float64", root_world_double},
    {"root-world-huge", HX_V2, HX_AT_OPEN, "world_size: 2^40", root_world_huge},
    {"root-checksum-array", HX_V2, HX_AT_OPEN, "checksum: 16 strings", root_checksum_array},
    {"root-pieces-string", HX_V2, HX_AT_OPEN, "piece_bytes: a string", root_pieces_string},
    {"root-pieces-huge", HX_V2, HX_AT_OPEN, "piece_bytes: INT64_MAX", root_pieces_huge},
    {"root-compression-array", HX_V2, HX_AT_OPEN, "compression: 16 strings", root_compression_array},
    /* (c) version-1 piece ranges */
    {"v1-piece-overflow", HX_V1, HX_AT_OPEN, "v1 /index/boxes row 0: first_piece INT64_MAX - 10", v1_piece_overflow},
    {"v1-piece-negative", HX_V1, HX_AT_OPEN, "v1 /index/boxes row 1: first_piece -5", v1_piece_negative},
    {"v1-piece-past-end", HX_V1, HX_AT_OPEN, "v1 /index/boxes row 0: first_piece = checksums - 1", v1_piece_past_end},
    {"v1-npieces-negative", HX_V1, HX_AT_OPEN, "v1 /index/boxes row 0: npieces -1", v1_npieces_negative},
    {"v1-file-range", HX_V1, HX_AT_OPEN, "v1 /index/boxes row 0: file 1000 of 3", v1_file_range},
    {"v1-piece-dim", HX_V1, HX_AT_OPEN, "v1 /index/boxes row 0: piece_dim 7", v1_piece_dim},
    {"v1-piece-len", HX_V1, HX_AT_OPEN, "v1 /index/boxes row 0: piece_len INT64_MAX", v1_piece_len},
    {"v1-file-path", HX_V1, HX_AT_OPEN, "v1 /index/files row 0: '../secret.h5'", v1_file_path},
    {"v1-dataset-path", HX_V1, HX_AT_OPEN, "v1 /index/boxes row 0: dataset 'boxes/0' (relative)", v1_dataset_path},
    /* (d) overlap with an equal-sized gap */
    {"v2-overlap-gap", HX_V2, HX_AT_OPEN, "x's box [2:4, 2:6] moved to [1:3, 2:6]", v2_overlap_gap},
    {"v1-overlap-gap", HX_V1, HX_AT_OPEN, "v1 big's box [200:300, 0:70] moved to [150:250, 0:70]", v1_overlap_gap},
    /* (f) tables claiming more rows than the file holds */
    {"v2-huge-boxes", HX_V2, HX_AT_OPEN, "/index/boxes: 2*10^8 rows, no storage", v2_huge_boxes},
    {"v2-huge-tensors", HX_V2, HX_AT_OPEN, "/index/tensors: 2*10^8 rows, no storage", v2_huge_tensors},
    {"v1-huge-checksums", HX_V1, HX_AT_OPEN, "v1 /index/checksums: 2*10^8 rows, no storage", v1_huge_checksums},
    {"v1-huge-files", HX_V1, HX_AT_OPEN, "v1 /index/files: 2*10^8 rows, no storage", v1_huge_files},
    /* grid descriptors and rows */
    {"grid-stride-overflow", HX_V2, HX_AT_OPEN, "w stride[0] INT64_MAX", grid_stride_overflow},
    {"grid-stride-negative", HX_V2, HX_AT_OPEN, "w stride[0] INT64_MIN", grid_stride_negative},
    {"grid-chunk-huge", HX_V2, HX_AT_OPEN, "w chunk[0] INT64_MAX", grid_chunk_huge},
    {"grid-chunk-zero", HX_V2, HX_AT_OPEN, "w chunk[0] 0", grid_chunk_zero},
    {"grid-chunk-extra", HX_V2, HX_OPENS, "w chunk[5] (beyond ndim) INT64_MAX", grid_chunk_extra},
    {"grid-writer0", HX_V2, HX_AT_OPEN, "w writer0 INT64_MIN", grid_writer0},
    {"grid-nboxes", HX_V2, HX_AT_OPEN, "w nboxes INT64_MAX", grid_nboxes},
    {"shape-overflow", HX_V2, HX_AT_OPEN, "w shape [2^62, 2^62]", shape_overflow},
    {"ndim-huge", HX_V2, HX_AT_OPEN, "w ndim 2^40 (an int32 field)", ndim_huge},
    {"ndim-negative", HX_V2, HX_AT_OPEN, "w ndim -1", ndim_negative},
    {"first-box-overflow", HX_V2, HX_AT_OPEN, "x first_box INT64_MAX", first_box_overflow},
    {"first-row-overflow", HX_V2, HX_AT_OPEN, "x first_row INT64_MAX - 1", first_row_overflow},
    {"row-tensor-huge", HX_V2, HX_AT_OPEN, "/index/boxes row 0: tensor 2^40 (an int32 field)", row_tensor_huge},
    {"row-writer-negative", HX_V2, HX_AT_OPEN, "/index/boxes row 1: writer -1", row_writer_negative},
    {"row-extent-overflow", HX_V2, HX_AT_OPEN, "/index/boxes row 0: offset and extent INT64_MAX - 1", row_extent_overflow},
    {"row-extent-zero", HX_V2, HX_AT_OPEN, "/index/boxes row 1: extent[1] 0", row_extent_zero},
    {"tensor-name-dotdot", HX_V2, HX_AT_OPEN, "tensor name '../../w'", tensor_name_dotdot},
    {"tensor-name-control", HX_V2, HX_AT_OPEN, "tensor name 'w\\nx'", tensor_name_control},
    {"boxes-offset-float", HX_V2, HX_AT_OPEN, "/index/boxes with offset float64[8]", boxes_offset_float},
    {"boxes-tensor-string", HX_V2, HX_AT_OPEN, "/index/boxes with tensor a string", boxes_tensor_string},
    {"tensors-2d", HX_V2, HX_AT_OPEN, "/index/tensors 2-D", tensors_2d},
    {"tensors-group", HX_V2, HX_AT_OPEN, "/index/tensors a group", tensors_group},
    {"tensors-missing", HX_V2, HX_AT_OPEN, "/index/tensors absent", tensors_missing},
    {"dtype-unknown", HX_V2, HX_AT_OPEN, "w dtype 'f8e4m3'", dtype_unknown},
    {"groups-swapped", HX_V2_GROUP, HX_AT_OPEN, "/index/groups rows 0 and 1 swapped", groups_swapped},
    {"groups-overlap", HX_V2_GROUP, HX_AT_OPEN, "/index/groups row 1 first_rank 0", groups_overlap},
    {"groups-nranks-huge", HX_V2_GROUP, HX_AT_OPEN, "/index/groups row 1 nranks INT64_MAX", groups_nranks_huge},
    {"groups-id-huge", HX_V2_GROUP, HX_AT_OPEN, "/index/groups row 1 group 2^40", groups_id_huge},
    {"groups-missing", HX_V2_GROUP, HX_AT_OPEN, "/index/groups absent", groups_missing},
    /* links and storage out of the index */
    {"index-elink-tensors", HX_V2, HX_AT_OPEN, "/index/tensors an external link into another index", index_elink_tensors},
    {"index-elink-group", HX_V2, HX_AT_OPEN, "/index an external link into another index", index_elink_group},
    {"index-elink-attrs", HX_V2, HX_AT_OPEN, "/attributes an external link into another index", index_elink_attrs},
    {"index-elink-attr", HX_V2, HX_AT_OPEN, "/attributes/note an external link into another index", index_elink_attr},
    {"index-soft-link", HX_V2, HX_AT_OPEN, "/attributes/note a soft link to /attributes/step", index_soft_link},
    {"index-external-storage", HX_V2, HX_AT_OPEN, "/attributes/rng kept in an external file", index_external_storage},
    {"index-vds", HX_V2, HX_AT_OPEN, "/attributes/rng a virtual dataset over another file", index_vds},
    {"v1-checksums-external", HX_V1, HX_AT_OPEN, "v1 /index/checksums kept in an external file", v1_checksums_external},
    {"index-symlink", HX_V2, HX_AT_OPEN, "index.h5 a symbolic link to another checkpoint's index", index_symlink},
    {"no-rehash", HX_V2, HX_AT_OPEN, "world_size edited, marker not rehashed", no_rehash_edit},
    /* (e) data files: refused when the box is read, with verification on and off */
    {"data-elink", HX_V2, HX_AT_READ, "w's box in rank-00000.h5: an external link to a secret file", data_elink},
    {"data-elink-group", HX_V2, HX_AT_READ, "/boxes of rank-00000.h5: an external link to a secret file", data_elink_group},
    {"data-soft-link", HX_V2, HX_AT_READ, "w's box: a soft link to a secret dataset of the file", data_soft_link},
    {"data-external-storage", HX_V2, HX_AT_READ, "w's box: raw data in an external (secret) file", data_external_storage},
    {"data-vds", HX_V2, HX_AT_READ, "w's box: a virtual dataset over a secret file", data_vds},
    {"data-symlink", HX_V2, HX_AT_READ, "rank-00000.h5: a symbolic link to another checkpoint's file", data_symlink},
    {"data-filter", HX_V2, HX_AT_READ, "w's box: deflate (a filter no checkpoint declares)", data_filter},
    {"data-dtype-int", HX_V2, HX_AT_READ, "w's box: int32 instead of f32", data_dtype_int},
    {"data-dtype-double", HX_V2, HX_AT_READ, "w's box: float64 instead of f32", data_dtype_double},
    {"data-dtype-string", HX_V2, HX_AT_READ, "w's box: vlen strings instead of f32", data_dtype_string},
    {"data-shape", HX_V2, HX_AT_READ, "w's box: shape [3, 32] instead of [2, 32]", data_shape},
    {"data-missing", HX_V2, HX_AT_READ, "rank-00000.h5 deleted", data_missing},
    {"data-directory", HX_V2, HX_AT_READ, "rank-00000.h5 a directory", data_directory},
    {"data-not-hdf5", HX_V2, HX_AT_READ, "rank-00000.h5 a text file", data_not_hdf5},
    {"zstd-chunk-huge", HX_V2_ZSTD, HX_AT_READ, "w's first chunk: 65535 bytes of junk", zstd_chunk_huge},
    {"zstd-frame-huge", HX_V2_ZSTD, HX_AT_READ, "w's first chunk: a zstd frame claiming 2^40 bytes", zstd_frame_huge},
    {"shared-zstd-frame-huge", HX_V2_SHARED_ZSTD, HX_AT_READ, "data.h5 /tensors/w chunk 0: a zstd frame claiming 2^40 bytes", shared_zstd_frame_huge},
    {"shared-elink", HX_V2_SHARED, HX_AT_READ, "data.h5 /tensors/w: an external link to a secret file", shared_elink},
    /* checksums: refused when verifying */
    {"sums-short", HX_V2, HX_AT_VERIFY, "rank-00000.h5 /checksums: 1 entry", sums_short},
    {"sums-float", HX_V2, HX_AT_VERIFY, "rank-00000.h5 /checksums: float64", sums_float},
    {"sums-elink", HX_V2, HX_AT_VERIFY, "rank-00000.h5 /checksums: an external link to a secret file", sums_elink},
    {"sums-first-huge", HX_V2, HX_AT_VERIFY, "w's box: first_piece INT64_MAX", sums_first_huge},
    {"sums-first-string", HX_V2, HX_AT_VERIFY, "w's box: first_piece a string", sums_first_string},
    {"sums-first-array", HX_V2, HX_AT_VERIFY, "w's box: first_piece int64[512]", sums_first_array},
    {"shared-sums-short", HX_V2_SHARED, HX_AT_VERIFY, "data.h5 /checksums: 1 entry", shared_sums_short},
    {NULL, HX_V2, HX_AT_OPEN, NULL, NULL},
};

const hx_class *hx_find(const char *name)
{
    for (const hx_class *c = hx_classes; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

void hx_make(const char *dir, const hx_class *c, int64_t step)
{
    hx_save_base(dir, c->base, step);
    if (!getenv("HX_H5_ERRORS"))
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    c->edit(dir);
    if (c->edit != no_rehash_edit && c->edit != index_symlink)
        hx_rehash(dir);
}
