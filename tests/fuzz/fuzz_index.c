/* fuzz_index.c -- the index decoder (ckpt_index_read_image: what every reader, load, the manager
 * and the tools run on index.h5) on hostile indexes. Mutated raw HDF5 bytes mostly exercise
 * HDF5 1.10's own parser, so this target is structure-aware: the input drives a generator that
 * BUILDS a well-formed HDF5 image in memory with the HDF5 API (core driver, no file on disk) --
 * format version 1 or 2, a coherent index (sorted tensors, grids and explicit boxes that tile, a
 * group map, checksum slots) that the input then bends: root attributes of any type and shape,
 * tables of any row count, field set, field types and values, layouts (chunked, compact,
 * filtered, virtual, external storage, claimed rows without storage), soft and external links,
 * attribute datasets of any shape and type -- and decodes it. An index the decoder accepts is
 * then queried (every box, region queries, file and dataset names), as readers do. No crash, no
 * leak, no large allocation (fuzz.run uses -malloc_limit_mb=2048).
 *
 * Input: a stream of choices. An exhausted input reads as zeros, and choice 0 is always the
 * ordinary one, so the empty input is a valid version-2 index and every prefix is meaningful. */
#include "meta.h"
#include "dtype.h"
#include "grid.h"
#include "h5util.h"
#include "piece.h"

#include <hdf5.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the choices ---- */

typedef struct fz {
    const uint8_t *p;
    size_t n;
} fz;

static uint64_t take(fz *z, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        v = v << 8 | (z->n ? *z->p : 0);
        if (z->n) {
            z->p++;
            z->n--;
        }
    }
    return v;
}

/* 0..n-1 (0 when the input is exhausted) */
static int pick(fz *z, int n) { return n <= 1 ? 0 : (int)(take(z, 1) % (uint64_t)n); }

/* A bend of something ordinary: 1..n-1 when the next byte is below n, else 0 (ordinary), so that
 * arbitrary bytes mostly build a coherent index and each bend is one byte value away. */
static int bend(fz *z, int n)
{
    int v = (int)take(z, 1);
    return v < n ? v : 0;
}

/* one of a list, the first when exhausted */
#define PICK(z, arr) (arr)[pick((z), (int)(sizeof(arr) / sizeof((arr)[0])))]

static const int64_t interesting[] = {0, 1, -1, 2, 7, INT64_MAX, INT64_MIN, INT32_MAX, (int64_t)INT32_MAX + 1,
                                      INT32_MIN, (int64_t)1 << 40, (int64_t)1 << 62, -((int64_t)1 << 62), 200000000};

static int64_t value(fz *z)
{
    int k = pick(z, 16);
    if (k < 14)
        return interesting[k];
    if (k == 14)
        return (int64_t)take(z, 1) - 128;
    return (int64_t)take(z, 8);
}

/* ---- the tables: fields of a few kinds, rows as int64 values or strings ---- */

enum kind { K_I32, K_I64, K_A8, K_STR, K_F64, K_A8F, K_A4, K_U8, K_NONE };

#define MAXF 18
#define MAXROWS 24

typedef struct table {
    const char *path; /* "/index/tensors" */
    int nf;
    const char *fname[MAXF];
    enum kind kind[MAXF];
    int nrows;
    int64_t v[MAXROWS][MAXF][8];
    const char *s[MAXROWS][MAXF];
    int is_atom;    /* a 1-D table of one atom (v1 checksums: u64, files: strings), field 0 */
    int64_t nsums;  /* v1 checksums: rows (values made up; more than MAXROWS) */
} table;

static int add_field(table *t, const char *name, enum kind k)
{
    t->fname[t->nf] = name;
    t->kind[t->nf] = k;
    return t->nf++;
}

static hid_t kind_type(enum kind k, hid_t str)
{
    hsize_t eight = 8, four = 4;
    switch (k) {
    case K_I32: return H5Tcopy(H5T_NATIVE_INT32);
    case K_I64: return H5Tcopy(H5T_NATIVE_INT64);
    case K_U8: return H5Tcopy(H5T_NATIVE_UINT64);
    case K_F64: return H5Tcopy(H5T_NATIVE_DOUBLE);
    case K_STR: return H5Tcopy(str);
    case K_A8: return H5Tarray_create2(H5T_NATIVE_INT64, 1, &eight);
    case K_A8F: return H5Tarray_create2(H5T_NATIVE_DOUBLE, 1, &eight);
    case K_A4: return H5Tarray_create2(H5T_NATIVE_INT64, 1, &four);
    default: return -1;
    }
}

static size_t kind_size(enum kind k)
{
    switch (k) {
    case K_I32: return 4;
    case K_I64: case K_U8: case K_F64: return 8;
    case K_STR: return sizeof(char *);
    case K_A8: case K_A8F: return 64;
    case K_A4: return 32;
    default: return 0;
    }
}

static char numbuf[MAXROWS * MAXF][24];

/* Writes the record of field f, row r at p. */
static void put_value(const table *t, int r, int f, unsigned char *p, int *nb)
{
    const int64_t *v = t->v[r][f];
    switch (t->kind[f]) {
    case K_I32: { int32_t x = (int32_t)v[0]; memcpy(p, &x, 4); break; }
    case K_I64: case K_U8: memcpy(p, v, 8); break;
    case K_F64: { double x = (double)v[0]; memcpy(p, &x, 8); break; }
    case K_A8: memcpy(p, v, 64); break;
    case K_A4: memcpy(p, v, 32); break;
    case K_A8F: for (int i = 0; i < 8; i++) { double x = (double)v[i]; memcpy(p + 8 * i, &x, 8); } break;
    case K_STR: {
        const char *s = t->s[r][f];
        if (!s) { /* a numeric field turned into a string */
            snprintf(numbuf[*nb], sizeof numbuf[0], "%lld", (long long)v[0]);
            s = numbuf[(*nb)++];
        }
        memcpy(p, &s, sizeof s);
        break;
    }
    default: break;
    }
}

/* Creates the table in f, shaped and stored as the input says. */
static void write_table(fz *z, hid_t f, table *t, hid_t str)
{
    size_t size = 0;
    for (int i = 0; i < t->nf; i++)
        size += kind_size(t->kind[i]);
    if (size == 0)
        size = 8;
    hid_t type;
    if (t->is_atom)
        type = kind_type(t->kind[0], str);
    else {
        type = H5Tcreate(H5T_COMPOUND, size);
        size_t off = 0;
        for (int i = 0; i < t->nf; i++) {
            hid_t ft = kind_type(t->kind[i], str);
            if (ft < 0)
                continue;
            H5Tinsert(type, t->fname[i], off, ft);
            off += kind_size(t->kind[i]);
            H5Tclose(ft);
        }
    }
    if (t->nsums)
        t->nrows = (int)t->nsums;
    unsigned char *buf = calloc((size_t)t->nrows + 1, size);
    int nb = 0;
    for (int r = 0; t->nsums && r < t->nrows; r++) {
        uint64_t x = 0x9e3779b97f4a7c15ull * (uint64_t)(r + 1);
        memcpy(buf + (size_t)r * 8, &x, 8);
    }
    for (int r = 0; !t->nsums && r < t->nrows; r++) {
        size_t off = 0;
        for (int i = 0; i < t->nf; i++) {
            put_value(t, r, i, buf + (size_t)r * size + off, &nb);
            off += kind_size(t->kind[i]);
        }
    }
    hsize_t n = (hsize_t)t->nrows, dims2[2] = {(hsize_t)t->nrows, 1};
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), sp;
    int write = 1;
    switch (bend(z, 9)) {
    case 1: sp = H5Screate_simple(2, dims2, NULL); break;                        /* 2-D */
    case 2: sp = H5Screate(H5S_SCALAR); write = 0; break;
    case 3: { /* claims many rows, holds none */
        hsize_t big = (hsize_t)(200000000 + pick(z, 3));
        sp = H5Screate_simple(1, &big, NULL);
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE);
        write = 0;
        break;
    }
    case 4: { /* chunked, maybe filtered */
        hsize_t ch = n ? n : 1, mx = H5S_UNLIMITED;
        sp = H5Screate_simple(1, &n, &mx);
        H5Pset_chunk(dcpl, 1, &ch);
        if (pick(z, 2))
            H5Pset_deflate(dcpl, 1);
        break;
    }
    case 5:
        sp = H5Screate_simple(1, &n, NULL);
        if (n * size < 4000)
            H5Pset_layout(dcpl, H5D_COMPACT);
        break;
    case 6: /* raw data in a file that does not exist */
        sp = H5Screate_simple(1, &n, NULL);
        H5Pset_external(dcpl, "/nonexistent/ckpt-fuzz-secret", 0, (hsize_t)(n * size));
        write = 0;
        break;
    case 7: { /* a virtual dataset over a file that does not exist */
        sp = H5Screate_simple(1, &n, NULL);
        hid_t src = H5Screate_simple(1, &n, NULL);
        H5Pset_virtual(dcpl, sp, "/nonexistent/ckpt-fuzz.h5", "/t", src);
        H5Sclose(src);
        write = 0;
        break;
    }
    case 8: /* absent */
        H5Pclose(dcpl);
        H5Tclose(type);
        free(buf);
        return;
    default: sp = H5Screate_simple(1, &n, NULL); break;
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(f, t->path, type, sp, lcpl, dcpl, H5P_DEFAULT);
    if (d >= 0 && write && t->nrows > 0)
        H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    if (d >= 0)
        H5Dclose(d);
    H5Pclose(lcpl);
    H5Sclose(sp);
    H5Pclose(dcpl);
    H5Tclose(type);
    free(buf);
}

/* Bends a table's schema: a field dropped, retyped, or one added. */
static void bend_schema(fz *z, table *t)
{
    int k = bend(z, 4);
    if (k == 0 || t->nf == 0 || t->is_atom)
        return;
    int f = pick(z, t->nf);
    static const enum kind kinds[] = {K_I32, K_I64, K_A8, K_STR, K_F64, K_A8F, K_A4};
    if (k == 1) { /* dropped */
        for (int i = f; i + 1 < t->nf; i++) {
            t->fname[i] = t->fname[i + 1];
            t->kind[i] = t->kind[i + 1];
            for (int r = 0; r < t->nrows; r++) {
                memcpy(t->v[r][i], t->v[r][i + 1], sizeof t->v[r][i]);
                t->s[r][i] = t->s[r][i + 1];
            }
        }
        t->nf--;
    } else if (k == 2) {
        t->kind[f] = PICK(z, kinds);
    } else if (k == 3 && t->nf < MAXF) {
        add_field(t, "extra_field", PICK(z, kinds));
    }
}

/* A few values anywhere in the table. */
static void bend_values(fz *z, table *t)
{
    if (t->nsums)
        return;
    int m = bend(z, 4);
    for (int i = 0; i < m && t->nrows > 0 && t->nf > 0; i++) {
        int r = pick(z, t->nrows), f = pick(z, t->nf), e = pick(z, 8);
        if (t->kind[f] == K_STR && t->s[r][f]) {
            static const char *names[] = {"", "a", "zz", "../x", "a//b", "a\nb", "f8e4m3", "f32", "/boxes/0",
                                          "boxes/0", "rank-00000.h5", "..", "x/./y"};
            t->s[r][f] = PICK(z, names);
        } else {
            t->v[r][f][e] = value(z);
        }
    }
    if (t->nrows > 0 && bend(z, 2))
        t->nrows = pick(z, t->nrows); /* rows cut off */
}

/* ---- the index ---- */

static const char *dtypes[] = {"f32", "f64", "f16", "bf16", "i8", "i16", "i32", "i64", "u8", "bool"};
static const char *tnames[] = {"a", "b/c", "b/d", "e", "z/y/x"};

typedef struct model {
    int version, world, layout; /* layout: ckpt_layout */
    int64_t piece_bytes;
    table tensors, boxes, groups, sums, files;
} model;

static int64_t vol_of(int nd, const int64_t *shape)
{
    int64_t v = 1;
    for (int d = 0; d < nd; d++)
        v *= shape[d];
    return v;
}

/* A coherent index: what the library itself would write (the input chooses sizes and kinds). */
static void build_model(fz *z, model *m)
{
    memset(m, 0, sizeof *m);
    m->version = pick(z, 4) == 3 ? 1 : 2;
    m->world = 1 + pick(z, 4);
    m->layout = pick(z, 3);
    if (m->version == 1 && m->layout == CKPT_LAYOUT_GROUP)
        m->layout = CKPT_LAYOUT_PER_RANK;
    static const int64_t pbs[] = {64, 100, 4096, 1, 1 << 30, 8};
    m->piece_bytes = PICK(z, pbs);
    table *T = &m->tensors, *B = &m->boxes;
    T->path = "/index/tensors";
    B->path = "/index/boxes";
    int fn = add_field(T, "name", K_STR), fd = add_field(T, "dtype", K_STR), fnd = add_field(T, "ndim", K_I32);
    int fsh = -1, fsp = add_field(T, "shape", K_A8), fch = -1, fw0 = -1, fst = -1, ffr = -1, ffp = -1, fps = -1;
    if (m->version >= 2) {
        fsh = add_field(T, "sharding", K_I32);
        fch = add_field(T, "chunk", K_A8);
        fw0 = add_field(T, "writer0", K_I64);
        fst = add_field(T, "stride", K_A8);
    }
    int ffb = add_field(T, "first_box", K_I64), fnb = add_field(T, "nboxes", K_I64);
    if (m->version >= 2) {
        ffr = add_field(T, "first_row", K_I64);
        ffp = add_field(T, "first_piece", K_I64);
        fps = add_field(T, "piece_stride", K_I64);
    }
    int frb = add_field(T, "raw_bytes", K_I64), fsb = add_field(T, "stored_bytes", K_I64);
    int bt = add_field(B, "tensor", K_I32), bfile = -1, bw = add_field(B, "writer", K_I32), bpd = -1;
    if (m->version < 2) {
        bfile = add_field(B, "file", K_I32);
        bpd = add_field(B, "piece_dim", K_I32);
    }
    int bo = add_field(B, "offset", K_A8), be = add_field(B, "extent", K_A8), bpl = -1;
    if (m->version < 2)
        bpl = add_field(B, "piece_len", K_I64);
    int bfp = add_field(B, "first_piece", K_I64), bnp = -1, bsb = -1, bds = -1;
    if (m->version < 2) {
        bnp = add_field(B, "npieces", K_I64);
        bsb = add_field(B, "stored_bytes", K_I64);
        bds = add_field(B, "dataset", K_STR);
    }
    static const int counts[] = {2, 1, 3, 0, 4, 5};
    int nt = PICK(z, counts);
    int64_t next_box = 0, next_piece = 0, v1_piece = 0;
    for (int i = 0; i < nt; i++) {
        static const int ndims[] = {2, 1, 0, 3, 4};
        static const int64_t dims[] = {4, 1, 6, 0, 3, 7};
        int nd = PICK(z, ndims);
        int64_t shape[8] = {0};
        for (int d = 0; d < nd; d++)
            shape[d] = PICK(z, dims);
        ckpt_dtype dt;
        const char *dts = PICK(z, dtypes);
        ckpt_dtype_from_name(dts, &dt);
        size_t es = ckpt_dtype_size(dt);
        T->s[i][fn] = tnames[i];
        T->s[i][fd] = dts;
        T->v[i][fnd][0] = nd;
        memcpy(T->v[i][fsp], shape, sizeof shape);
        T->v[i][frb][0] = T->v[i][fsb][0] = vol_of(nd, shape) * (int64_t)es;
        int grid = m->version >= 2 && pick(z, 2) == 0;
        int64_t nb = 0, first_row = B->nrows, slots = 0;
        if (grid) {
            ckpt_grid g;
            memset(&g, 0, sizeof g);
            g.ndim = nd;
            memcpy(g.shape, shape, sizeof shape);
            for (int d = 0; d < nd; d++) {
                int64_t parts = 1 + pick(z, 3);
                g.chunk[d] = shape[d] ? (shape[d] + parts - 1) / parts : 1;
                g.stride[d] = pick(z, 2);
            }
            if (ckpt_grid_init(&g, m->world) != 0) {
                memset(g.stride, 0, sizeof g.stride);
                ckpt_grid_init(&g, m->world);
            }
            nb = g.nboxes;
            memcpy(T->v[i][fch], g.chunk, sizeof g.chunk);
            memcpy(T->v[i][fst], g.stride, sizeof g.stride);
            T->v[i][fw0][0] = g.writer0;
            if (m->layout == CKPT_LAYOUT_SHARED) {
                T->v[i][fps][0] = ckpt_grid_max_pieces(&g, es, m->piece_bytes);
                slots = nb * T->v[i][fps][0];
            }
        } else if (vol_of(nd, shape) > 0) {
            /* explicit: cut along dim 0 into up to 3 boxes (one box for 0-D) */
            int64_t parts = nd ? 1 + pick(z, 3) : 1;
            if (nd && parts > shape[0])
                parts = shape[0];
            int64_t at = 0;
            for (int64_t k = 0; k < parts && B->nrows < MAXROWS; k++) {
                int r = B->nrows++;
                int64_t ext[8] = {0}, off[8] = {0};
                memcpy(ext, shape, sizeof ext);
                if (nd) {
                    off[0] = at;
                    ext[0] = k == parts - 1 ? shape[0] - at : shape[0] / parts;
                    at += ext[0];
                }
                for (int d = nd; d < 8; d++)
                    ext[d] = 0;
                B->v[r][bt][0] = i;
                B->v[r][bw][0] = pick(z, m->world);
                memcpy(B->v[r][bo], off, sizeof off);
                memcpy(B->v[r][be], ext, sizeof ext);
                ckpt_pieces pc;
                ckpt_pieces_of(nd, ext, es, m->piece_bytes, &pc);
                if (m->version < 2) {
                    B->v[r][bfile][0] = m->layout == CKPT_LAYOUT_SHARED ? 0 : B->v[r][bw][0];
                    B->v[r][bpd][0] = pc.dim;
                    B->v[r][bpl][0] = pc.len;
                    B->v[r][bfp][0] = v1_piece;
                    B->v[r][bnp][0] = pc.count;
                    B->v[r][bsb][0] = vol_of(nd, ext) * (int64_t)es;
                    B->s[r][bds] = "/boxes/0";
                    v1_piece += pc.count;
                } else if (m->layout == CKPT_LAYOUT_SHARED) {
                    B->v[r][bfp][0] = slots;
                    slots += pc.count;
                }
                nb++;
            }
        }
        if (m->version >= 2) {
            T->v[i][fsh][0] = grid ? 0 : 1;
            T->v[i][ffr][0] = grid ? 0 : first_row;
            T->v[i][ffp][0] = m->layout == CKPT_LAYOUT_SHARED ? next_piece : 0;
        }
        T->v[i][ffb][0] = next_box;
        T->v[i][fnb][0] = nb;
        next_box += nb;
        next_piece += slots;
        T->nrows++;
    }
    if (m->layout == CKPT_LAYOUT_GROUP) {
        table *G = &m->groups;
        G->path = "/index/groups";
        int gf = add_field(G, "first_rank", K_I64), gn = add_field(G, "nranks", K_I64), gg = add_field(G, "group", K_I64);
        int per = 1 + pick(z, 2);
        for (int r = 0; r < m->world && G->nrows < MAXROWS; r += per) {
            int k = G->nrows++;
            G->v[k][gf][0] = r;
            G->v[k][gn][0] = r + per <= m->world ? per : m->world - r;
            G->v[k][gg][0] = r / per;
        }
    }
    if (m->version < 2) {
        table *S = &m->sums, *F = &m->files;
        S->path = "/index/checksums";
        S->is_atom = 1;
        add_field(S, "checksum", K_U8);
        S->nsums = v1_piece - bend(z, 2); /* one short, sometimes */
        F->path = "/index/files";
        F->is_atom = 1;
        add_field(F, "name", K_STR);
        static const char *fnames[] = {"rank-00000.h5", "rank-00001.h5", "rank-00002.h5", "rank-00003.h5"};
        F->nrows = m->layout == CKPT_LAYOUT_SHARED ? 1 : m->world;
        for (int r = 0; r < F->nrows; r++)
            F->s[r][0] = m->layout == CKPT_LAYOUT_SHARED ? "data.h5" : fnames[r];
    }
}

/* ---- attributes ---- */

static void put_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *buf)
{
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a >= 0) {
        H5Awrite(a, type, buf);
        H5Aclose(a);
    }
}

/* A root attribute: normally `s` (a string) or `v` (an integer); the input may drop it, retype it,
 * make it an array or a fixed-length string, or change its value. */
static void root_attr(fz *z, hid_t f, const char *name, const char *s, int64_t v, hid_t str)
{
    hid_t sc = H5Screate(H5S_SCALAR);
    int k = bend(z, 8);
    hsize_t n = 1 + (hsize_t)pick(z, 64);
    hid_t arr = H5Screate_simple(1, &n, NULL);
    const char *strs[64];
    int64_t ints[64];
    for (int i = 0; i < 64; i++) {
        strs[i] = s ? s : "x";
        ints[i] = v;
    }
    switch (k) {
    case 1: break; /* absent */
    case 2: /* the other kind */
        if (s) {
            int64_t x = value(z);
            put_attr(f, name, H5T_NATIVE_INT64, sc, &x);
        } else {
            put_attr(f, name, str, sc, &strs[0]);
        }
        break;
    case 3: /* an array */
        if (s)
            put_attr(f, name, str, arr, strs);
        else
            put_attr(f, name, H5T_NATIVE_INT64, arr, ints);
        break;
    case 4: { /* a double */
        double x = (double)v;
        put_attr(f, name, H5T_NATIVE_DOUBLE, sc, &x);
        break;
    }
    case 5: { /* a fixed-length string */
        size_t len = 1 + (size_t)pick(z, 200);
        char *b = calloc(1, len + 1);
        snprintf(b, len + 1, "%s", s ? s : "17");
        hid_t t = H5Tcopy(H5T_C_S1);
        H5Tset_size(t, len);
        put_attr(f, name, t, sc, b);
        H5Tclose(t);
        free(b);
        break;
    }
    case 6: /* another value */
        if (s) {
            static const char *others[] = {"", "ckpt", "shared", "file-per-group", "file-per-rank", "md5", "xxh3-64",
                                           "zstd:3+shuffle", "none", "a\nb"};
            const char *o = PICK(z, others);
            put_attr(f, name, str, sc, &o);
        } else {
            int64_t x = value(z);
            put_attr(f, name, H5T_NATIVE_INT64, sc, &x);
        }
        break;
    case 7: { /* an unsigned or narrow integer */
        if (s)
            put_attr(f, name, str, sc, &strs[0]);
        else {
            uint64_t x = (uint64_t)v | (pick(z, 2) ? 0x8000000000000000ull : 0);
            put_attr(f, name, pick(z, 2) ? H5T_NATIVE_UINT64 : H5T_NATIVE_UINT8, sc, &x);
        }
        break;
    }
    default:
        if (s)
            put_attr(f, name, str, sc, &s);
        else
            put_attr(f, name, H5T_NATIVE_INT64, sc, &v);
        break;
    }
    H5Sclose(arr);
    H5Sclose(sc);
}

/* An attribute dataset under /attributes: the four types of formats/SPEC.md section 3.5, then
 * bent in shape, type, storage or type tag. */
static void attr_dataset(fz *z, hid_t f, int i, hid_t str)
{
    static const char *keys[] = {"step", "lr", "note", "rng", "opt/lr", "opt/m/v", "a\nb", "x y", "z"};
    char path[128];
    const char *key = PICK(z, keys);
    if (i) /* distinct keys */
        snprintf(path, sizeof path, "/attributes/%s%d", key, i);
    else
        snprintf(path, sizeof path, "/attributes/%s", key);
    static const char *tags[] = {"int", "double", "string", "bytes", "", "integer", "int\n"};
    int kind = pick(z, 4);
    const char *tag = tags[kind];
    int how = bend(z, 10);
    if (how == 1)
        tag = PICK(z, tags);
    hsize_t n = (hsize_t)(1 + pick(z, 40)), dims2[2] = {2, 3};
    hid_t sp = kind == 3 ? H5Screate_simple(1, &n, NULL) : H5Screate(H5S_SCALAR);
    if (how == 2) {
        H5Sclose(sp);
        sp = H5Screate_simple(1, &n, NULL);
    } else if (how == 3) {
        H5Sclose(sp);
        sp = H5Screate_simple(2, dims2, NULL);
    } else if (how == 4) {
        H5Sclose(sp);
        sp = H5Screate(H5S_NULL);
    }
    hid_t types[4] = {H5T_NATIVE_INT64, H5T_NATIVE_DOUBLE, str, H5T_NATIVE_UINT8};
    hid_t type = types[kind];
    if (how == 5)
        type = types[pick(z, 4)];
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    int write = 1;
    if (how == 6) { /* claims more than it holds */
        H5Sclose(sp);
        hsize_t big = (hsize_t)1 << (20 + pick(z, 20));
        sp = H5Screate_simple(1, &big, NULL);
        H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_LATE);
        write = 0;
    } else if (how == 7 && H5Sget_simple_extent_type(sp) == H5S_SIMPLE && type != str) {
        H5Pset_external(dcpl, "/nonexistent/ckpt-fuzz-secret", 0, H5Sget_simple_extent_npoints(sp) * H5Tget_size(type));
        write = 0;
    }
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(f, path, type, sp, lcpl, dcpl, H5P_DEFAULT);
    if (d >= 0) {
        hssize_t np = H5Sget_simple_extent_npoints(sp);
        if (write && np > 0 && np <= 4096) {
            size_t es = H5Tget_size(type);
            unsigned char *buf = calloc((size_t)np, es > sizeof(char *) ? es : sizeof(char *));
            if (type == str) {
                static const char *svals[] = {"base", "", "a\nb", "SECRSECR"};
                for (hssize_t k = 0; k < np; k++)
                    ((const char **)buf)[k] = PICK(z, svals);
            } else {
                for (size_t k = 0; k < (size_t)np * es; k++)
                    buf[k] = (unsigned char)take(z, 1);
            }
            H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
            free(buf);
        }
        int tk = how == 8 ? pick(z, 3) : 0;
        hid_t tsp = H5Screate(H5S_SCALAR);
        if (tk == 0)
            put_attr(d, "type", str, tsp, &tag);
        else if (tk == 1) {
            hsize_t two = 2;
            hid_t a2 = H5Screate_simple(1, &two, NULL);
            const char *tt[2] = {tag, tag};
            put_attr(d, "type", str, a2, tt);
            H5Sclose(a2);
        } /* tk == 2: no type */
        H5Sclose(tsp);
        H5Dclose(d);
    }
    H5Pclose(lcpl);
    H5Pclose(dcpl);
    H5Sclose(sp);
    if (how == 9) { /* a link instead of (or beside) the dataset */
        char lp[160];
        snprintf(lp, sizeof lp, "%s-link", path);
        if (pick(z, 2))
            H5Lcreate_soft(path, f, lp, H5P_DEFAULT, H5P_DEFAULT);
        else
            H5Lcreate_external("/nonexistent/ckpt-fuzz.h5", "/x", f, lp, H5P_DEFAULT, H5P_DEFAULT);
    }
}

/* ---- the image ---- */

static void *build_image(fz *z, size_t *len)
{
    model *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    build_model(z, m);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0); /* in memory only */
    H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG);
    hid_t f = H5Fcreate("ckpt-fuzz-index.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) {
        free(m);
        return NULL;
    }
    hid_t str = ckpt_h5_vlen_str();
    static const char *layouts[] = {"file-per-rank", "shared", "file-per-group"};
    root_attr(z, f, "format", "ckpt", 0, str);
    root_attr(z, f, "format_version", NULL, m->version, str);
    root_attr(z, f, "library_version", "0.2.0", 0, str);
    root_attr(z, f, "layout", layouts[m->layout], 0, str);
    root_attr(z, f, "world_size", NULL, m->world, str);
    root_attr(z, f, "checksum", "xxh3-64", 0, str);
    root_attr(z, f, "piece_bytes", NULL, m->piece_bytes, str);
    root_attr(z, f, "compression", "none", 0, str);
    table *tabs[5] = {&m->tensors, &m->boxes, &m->groups, &m->sums, &m->files};
    for (int i = 0; i < 5; i++) {
        if (!tabs[i]->path)
            continue;
        bend_schema(z, tabs[i]);
        bend_values(z, tabs[i]);
    }
    int top = bend(z, 6);
    if (top == 1) { /* /index a dataset */
        hid_t sp = H5Screate(H5S_SCALAR);
        hid_t d = H5Dcreate2(f, "/index", H5T_NATIVE_INT64, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        if (d >= 0)
            H5Dclose(d);
        H5Sclose(sp);
    } else if (top == 2) {
        H5Lcreate_external("/nonexistent/ckpt-fuzz.h5", "/index", f, "/index", H5P_DEFAULT, H5P_DEFAULT);
    } else {
        for (int i = 0; i < 5; i++)
            if (tabs[i]->path)
                write_table(z, f, tabs[i], str);
        if (top == 3) /* a table replaced by a soft link to another */
            H5Ldelete(f, "/index/boxes", H5P_DEFAULT),
                H5Lcreate_soft("/index/tensors", f, "/index/boxes", H5P_DEFAULT, H5P_DEFAULT);
        else if (top == 4)
            H5Ldelete(f, "/index/tensors", H5P_DEFAULT),
                H5Lcreate_external("/nonexistent/ckpt-fuzz.h5", "/t", f, "/index/tensors", H5P_DEFAULT, H5P_DEFAULT);
    }
    if (top == 5) {
        H5Lcreate_external("/nonexistent/ckpt-fuzz.h5", "/attributes", f, "/attributes", H5P_DEFAULT, H5P_DEFAULT);
    } else {
        static const int nattrs[] = {2, 0, 1, 4, 6};
        int na = PICK(z, nattrs);
        for (int i = 0; i < na; i++)
            attr_dataset(z, f, i, str);
    }
    H5Tclose(str);
    free(m);
    void *image = NULL;
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) >= 0) {
        ssize_t n = H5Fget_file_image(f, NULL, 0);
        if (n > 0 && (image = malloc((size_t)n)) != NULL && H5Fget_file_image(f, image, (size_t)n) != n) {
            free(image);
            image = NULL;
        }
        *len = n > 0 ? (size_t)n : 0;
    }
    H5Fclose(f);
    return image;
}

/* What readers ask of an index the decoder accepted: every box, the boxes of the whole tensor,
 * file and dataset names. Any inconsistency left behind would show here as a crash. */
static int count_box(const ckpt_boxref *b, void *arg)
{
    (void)b;
    (*(int64_t *)arg)++;
    return 0;
}

static void query(ckpt_index *ix)
{
    char name[64], ds[CKPT_MAX_NAME + 32];
    for (int64_t t = 0; t < ix->ntensors; t++) {
        const ckpt_itensor *it = &ix->tensors[t];
        for (int64_t j = 0; j < it->nboxes && j < 64; j++) {
            ckpt_boxref b;
            ckpt_index_box(ix, t, j, &b);
            ckpt_index_file_name(ix, b.file, name, sizeof name);
            ckpt_index_dataset(ix, &b, ds, sizeof ds);
            if (b.writer < 0 || b.writer >= ix->world_size || !ckpt_box_in_shape(&b.box, it->shape))
                abort(); /* validated indexes name only boxes inside their tensor, written by a rank of the world */
        }
        ckpt_box whole;
        ckpt_box_set(&whole, it->ndim, NULL, it->shape);
        int64_t hits = 0;
        if (ckpt_index_foreach_in(ix, t, &whole, count_box, &hits) == 0 && it->nboxes <= 64 && hits != it->nboxes)
            abort(); /* the whole tensor overlaps every box exactly once */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
        quiet = 1;
    }
    fz z = {data, size};
    size_t len = 0;
    void *image = build_image(&z, &len);
    if (!image)
        return 0;
    ckpt_index *ix = NULL;
    int rc = ckpt_index_read_image(image, len, "fuzz/index.h5", &ix);
    if (getenv("CKPT_FUZZ_VERBOSE")) { /* what the decoder said (for choosing seeds) */
        if (rc == CKPT_OK) {
            int64_t grids = 0;
            for (int64_t t = 0; t < ix->ntensors; t++)
                grids += ix->tensors[t].sharding == CKPT_SHARDING_GRID;
            printf("ok: version %d, %s, world %d, %lld tensors (%lld grids), %lld rows, %lld groups, %d attributes\n",
                   ix->format_version, ckpt_layout_name(ix->layout), ix->world_size, (long long)ix->ntensors,
                   (long long)grids, (long long)ix->nrows, (long long)ix->ngroups, ckpt_state_num_attrs(ix->attrs));
        } else {
            printf("%s %s\n", ckpt_status_name(rc), ckpt_errmsg());
        }
    }
    if (rc == CKPT_OK) {
        query(ix);
        ckpt_index_free(ix);
    }
    free(image);
    return 0;
}
