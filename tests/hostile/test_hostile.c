/* test_hostile.c -- every damage class of damage.c through the public API (issue 12):
 *   - classes caught at open: ckpt_reader_open and ckpt_load give the exact status and message,
 *     the load leaves every buffer at its fill pattern, and ckpt_manager_latest skips such a
 *     step with a warning naming it and falls back to the previous step;
 *   - classes caught at read: the index opens; reading rank 0's box of w (verify on and off) and
 *     ckpt_load give the exact status and message, and the caller's buffer keeps its fill
 *     pattern -- never a byte of the secret the edit points at;
 *   - classes caught when verifying: refused with verification, bit-exact without it;
 *   - harmless edits: the checkpoint opens and w reads back bit-exact;
 * and: no byte of a piece reaches the caller before its checksum matched; tables claiming 2*10^8
 * rows are refused without a large allocation (peak RSS). argv[1]: scratch directory. */
#include "damage.h"
#include "unit.h"

#include <hdf5.h>
#include <sys/resource.h>
#include <sys/wait.h>

static char scratch[4096];

typedef struct expect {
    const char *cls;
    int status;
    const char *msg; /* "@D@" stands for the checkpoint's directory */
} expect;

/* What the library says of each class: of ckpt_reader_open (HX_AT_OPEN), of reading rank 0's box
 * of w (HX_AT_READ, with and without verification; HX_AT_VERIFY, with it). */
static const expect EXPECT[] = {
    {"attr-int-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'step' (type 'int') is not a scalar of that type"},
    {"attr-string-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'note' (type 'string') is not a scalar of that type"},
    {"attr-double-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'lr' (type 'double') is not a scalar of that type"},
    {"attr-int-as-string", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'step' (type 'int') is not a scalar of that type"},
    {"attr-type-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'step' has no readable type"},
    {"attr-type-long", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'step' (type 'int-and-then-a-very-long-tail-t') is not one of the types int, double, string, bytes"},
    {"attr-bytes-2d", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'rng' (type 'bytes') is not a 1-D array of bytes"},
    {"attr-bytes-huge", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'rng' (type 'bytes') is not a 1-D array of bytes"},
    {"attr-key-control", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute key 'bad\\x0akey' contains control character 0x0a at byte 3"},
    {"root-format-array", CKPT_ECORRUPT, "'@D@/index.h5' is not a ckpt index (no format=\"ckpt\" attribute)"},
    {"root-format-int", CKPT_ECORRUPT, "'@D@/index.h5' is not a ckpt index (no format=\"ckpt\" attribute)"},
    {"root-format-long", CKPT_OK, ""},
    {"root-version-string", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'format_version' is not an integer scalar"},
    {"root-version-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'format_version' is not an integer scalar"},
    {"root-version-double", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'format_version' is not an integer scalar"},
    {"root-libver-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'library_version' is not a scalar string"},
    {"root-libver-int", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'library_version' is not a scalar string"},
    {"root-libver-long", CKPT_OK, ""},
    {"root-layout-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'layout' is not a scalar string"},
    {"root-layout-double", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'layout' is not a scalar string"},
    {"root-world-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'world_size' is not an integer scalar"},
    {"root-world-double", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'world_size' is not an integer scalar"},
    {"root-world-huge", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'world_size' is 1099511627776, outside 1..2147483647"},
    {"root-checksum-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'checksum' is not a scalar string"},
    {"root-pieces-string", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'piece_bytes' is not an integer scalar"},
    {"root-pieces-huge", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'piece_bytes' is 9223372036854775807, outside 1..1073741824"},
    {"root-compression-array", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: root attribute 'compression' is not a scalar string"},
    {"v1-piece-overflow", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 0 (tensor 'big'): its 34 checksums from 9223372036854775797 lie outside /index/checksums (152 rows)"},
    {"v1-piece-negative", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 1 (tensor 'big'): its 34 checksums from -5 lie outside /index/checksums (152 rows)"},
    {"v1-piece-past-end", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 0 (tensor 'big'): its 34 checksums from 151 lie outside /index/checksums (152 rows)"},
    {"v1-npieces-negative", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 0 has a negative piece count"},
    {"v1-file-range", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 0 (tensor 'big'): file 1000 outside /index/files (3 rows)"},
    {"v1-piece-dim", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 0 (tensor 'big'): pieces of 3 along dim 7 do not cut its box [0:100, 0:70]"},
    {"v1-piece-len", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 0 (tensor 'big'): pieces of 9223372036854775807 along dim 0 do not cut its box [0:100, 0:70]"},
    {"v1-file-path", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/files row 0 ('../secret.h5') is not a plain file name"},
    {"v1-dataset-path", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 0: dataset 'boxes/0' is not an absolute path"},
    {"v2-overlap-gap", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'x': saved boxes [0:2, 2:6] and [1:3, 2:6] overlap"},
    {"v1-overlap-gap", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'big': saved boxes [100:200, 0:70] and [150:250, 0:70] overlap"},
    {"v2-huge-boxes", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes claims 200000000 rows of 144 bytes but the file holds 0 bytes of them"},
    {"v2-huge-tensors", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/tensors claims 200000000 rows of 280 bytes but the file holds 0 bytes of them"},
    {"v1-huge-checksums", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/checksums claims 200000000 rows of 8 bytes but the file holds 0 bytes of them"},
    {"v1-huge-files", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/files claims 200000000 rows of 8 bytes but the file holds 0 bytes of them"},
    {"grid-stride-overflow", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'w': its grid descriptor is invalid (chunks, box count or writers outside the world of 2 ranks)"},
    {"grid-stride-negative", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'w': its grid descriptor is invalid (chunks, box count or writers outside the world of 2 ranks)"},
    {"grid-chunk-huge", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'w': its grid descriptor is invalid (chunks, box count or writers outside the world of 2 ranks)"},
    {"grid-chunk-zero", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'w': its grid descriptor is invalid (chunks, box count or writers outside the world of 2 ranks)"},
    {"grid-chunk-extra", CKPT_OK, ""},
    {"grid-writer0", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'w': its grid descriptor is invalid (chunks, box count or writers outside the world of 2 ranks)"},
    {"grid-nboxes", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'w': its grid descriptor is invalid (chunks, box count or writers outside the world of 2 ranks)"},
    {"shape-overflow", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'w' has a negative or too large shape [4611686018427387904, 4611686018427387904]"},
    {"ndim-huge", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'w' has 2147483647 dims (0..8 allowed)"},
    {"ndim-negative", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'w' has -1 dims (0..8 allowed)"},
    {"first-box-overflow", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'x': first_box 9223372036854775807 / nboxes 3 do not continue at box 3"},
    {"first-row-overflow", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: tensor 'x': its boxes (rows 9223372036854775806+3) are not the next rows of /index/boxes (0 of 3)"},
    {"row-tensor-huge", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 0 belongs to tensor row 2147483647, not to 'x'"},
    {"row-writer-negative", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 1 (tensor 'x'): writer -1 outside 0..1"},
    {"row-extent-overflow", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 0: the box of offset [9223372036854775806, 0] and extent [9223372036854775806, 2] lies outside the shape [4, 6] of tensor 'x'"},
    {"row-extent-zero", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes row 1: the box of offset [0, 2] and extent [2, 0] lies outside the shape [4, 6] of tensor 'x'"},
    {"tensor-name-dotdot", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/tensors row 1: tensor name '../../w' has an empty, '.' or '..' component (leading, trailing or doubled '/'?)"},
    {"tensor-name-control", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/tensors row 1: tensor name 'w\\x0ax' contains control character 0x0a at byte 1"},
    {"boxes-offset-float", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes field 'offset' has the wrong type"},
    {"boxes-tensor-string", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/boxes field 'tensor' has the wrong type"},
    {"tensors-2d", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/tensors is not a 1-D table"},
    {"tensors-group", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/tensors is not a dataset"},
    {"tensors-missing", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/tensors is missing"},
    {"dtype-unknown", CKPT_EVERSION, "index '@D@/index.h5': tensor 'w' has dtype 'f8e4m3' this library does not know"},
    {"groups-swapped", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/groups row 0 (ranks 1+1, group 1) does not continue the map at rank 0"},
    {"groups-overlap", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/groups row 1 (ranks 0+1, group 1) does not continue the map at rank 1"},
    {"groups-nranks-huge", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/groups row 1 (ranks 1+9223372036854775807, group 1) does not continue the map at rank 1"},
    {"groups-id-huge", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/groups row 1 (ranks 1+1, group 1099511627776) does not continue the map at rank 1"},
    {"groups-missing", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/groups is missing"},
    {"index-elink-tensors", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/tensors is an external link, not an object of the index: links out of the index are refused"},
    {"index-elink-group", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index is an external link, not an object of the index: links out of the index are refused"},
    {"index-elink-attrs", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /attributes is an external link, not an object of the index: links out of the index are refused"},
    {"index-elink-attr", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'note' is an external link, not an object of the index: links out of the index are refused"},
    {"index-soft-link", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'note' is a soft link, not an object of the index: links out of the index are refused"},
    {"index-external-storage", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'rng' keeps its data in external files: refused"},
    {"index-vds", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: attribute 'rng' is a virtual dataset (its data would come from other files): refused"},
    {"v1-checksums-external", CKPT_ECORRUPT, "index '@D@/index.h5' is malformed: /index/checksums keeps its data in external files: refused"},
    {"index-symlink", CKPT_ECORRUPT, "cannot read index '@D@/index.h5': it is a symbolic link (refused)"},
    {"no-rehash", CKPT_ECORRUPT, "index '@D@/index.h5' does not match its commit marker (xxh3 @H@, marker says @H@): the index was modified or damaged"},
    {"data-elink", CKPT_ECORRUPT, "tensor 'w': data file '@D@/rank-00000.h5': '/boxes/1' is an external link, not an object of the file: links out of a data file are refused"},
    {"data-elink-group", CKPT_ECORRUPT, "tensor 'w': data file '@D@/rank-00000.h5': '/boxes' is an external link, not an object of the file: links out of a data file are refused"},
    {"data-soft-link", CKPT_ECORRUPT, "tensor 'w': data file '@D@/rank-00000.h5': '/boxes/1' is a soft link, not an object of the file: links out of a data file are refused"},
    {"data-external-storage", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' keeps its data in external files: refused"},
    {"data-vds", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' is a virtual dataset (its data would come from other files): refused"},
    {"data-symlink", CKPT_ECORRUPT, "tensor 'w': data file '@D@/rank-00000.h5' (written by rank 0) is not a regular file (a symbolic link or a directory is never followed out of the checkpoint)"},
    {"data-filter", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' uses HDF5 filter 1, which a checkpoint never declares: refused"},
    {"data-dtype-int", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' holds 32-bit signed integers, not the f32 (32-bit floats) the index records"},
    {"data-dtype-double", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' holds 64-bit floats, not the f32 (32-bit floats) the index records"},
    {"data-dtype-string", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' holds strings, not the f32 (32-bit floats) the index records"},
    {"data-shape", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' does not have the shape the index records"},
    {"data-missing", CKPT_ENOTFOUND, "tensor 'w': data file '@D@/rank-00000.h5' (written by rank 0) is missing: No such file or directory"},
    {"data-directory", CKPT_ECORRUPT, "tensor 'w': data file '@D@/rank-00000.h5' (written by rank 0) is not a regular file (a symbolic link or a directory is never followed out of the checkpoint)"},
    {"data-not-hdf5", CKPT_ECORRUPT, "tensor 'w': data file '@D@/rank-00000.h5' (written by rank 0) cannot be opened: truncated or not HDF5; HDF5: file signature not found (in H5F__super_read)"},
    {"zstd-chunk-huge", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' is damaged: the chunk of piece 0 claims 65535 bytes"},
    {"zstd-frame-huge", CKPT_ECORRUPT, "tensor 'w': cannot read dataset '/boxes/1' of data file '@D@/rank-00000.h5' (truncated or damaged): the zstd chunk of piece 0 does not decompress"},
    {"shared-zstd-frame-huge", CKPT_ECORRUPT, "tensor 'w': cannot read dataset '/tensors/w' of data file '@D@/data.h5' (truncated or damaged); HDF5: filter returned failure during read (in H5Z_pipeline)"},
    {"shared-elink", CKPT_ECORRUPT, "tensor 'w': data file '@D@/data.h5': '/tensors/w' is an external link, not an object of the file: links out of a data file are refused"},
    {"sums-short", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5': its 4 checksums from first_piece 1 lie outside the file's checksum table (1 entries)"},
    {"sums-float", CKPT_ECORRUPT, "tensor 'w': the checksum table of data file '@D@/rank-00000.h5' is not a complete 1-D uint64 table"},
    {"sums-elink", CKPT_ECORRUPT, "tensor 'w': data file '@D@/rank-00000.h5': '/checksums' is an external link, not an object of the file: links out of a data file are refused"},
    {"sums-first-huge", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5': its 4 checksums from first_piece 9223372036854775807 lie outside the file's checksum table (7 entries)"},
    {"sums-first-string", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' has no valid first_piece attribute"},
    {"sums-first-array", CKPT_ECORRUPT, "tensor 'w': dataset '/boxes/1' of data file '@D@/rank-00000.h5' has no valid first_piece attribute"},
    {"shared-sums-short", CKPT_ECORRUPT, "tensor 'w': data file '@D@/data.h5': 4 checksums from 1 lie outside its table of 1"},
    {NULL, 0, NULL},
};

static const expect *expect_of(const char *cls)
{
    for (const expect *e = EXPECT; e->cls; e++)
        if (!strcmp(e->cls, cls))
            return e;
    fail_msg("no expectation for damage class '%s'", cls);
    return NULL;
}

/* The expected message with @D@ replaced by dir (@H@, 16 hex digits, is kept). */
static void want_msg(const expect *e, const char *dir, char *out, size_t len)
{
    size_t o = 0, dl = strlen(dir);
    for (const char *p = e->msg; *p && o + 1 < len;) {
        if (!strncmp(p, "@D@", 3)) {
            if (o + dl >= len)
                break;
            memcpy(out + o, dir, dl);
            o += dl;
            p += 3;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
}

/* got equals want, where "@H@" in want stands for 16 lowercase hex digits (a hash). */
static int msg_matches(const char *got, const char *want)
{
    while (*want) {
        if (!strncmp(want, "@H@", 3)) {
            for (int i = 0; i < 16; i++, got++)
                if (!((*got >= '0' && *got <= '9') || (*got >= 'a' && *got <= 'f')))
                    return 0;
            want += 3;
        } else if (*got++ != *want++) {
            return 0;
        }
    }
    return *got == '\0';
}

/* Every class is tried; each failed check is printed, and the test fails at its end. */
static int failures;

static void failed(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failed(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failures++;
}

static void expect_status(const char *cls, const char *what, int rc, int status, const char *want)
{
    const char *got = ckpt_errmsg();
    if (rc != status || (status != CKPT_OK && !msg_matches(got, want)))
        failed("class %s, %s: got %s \"%s\"\n  want %s \"%s\"", cls, what, ckpt_status_name(rc), rc ? got : "",
               ckpt_status_name(status), want);
}

static void end_of_classes(void)
{
    int n = failures;
    failures = 0;
    if (n)
        fail_msg("%d checks failed", n);
}

#define FILL 0xa5

static int all_fill(const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (((const unsigned char *)p)[i] != FILL)
            return 0;
    return 1;
}

/* The buffers of a load of the base checkpoint, at the fill pattern: what: 0 all of it, 1 only w,
 * 2 big of the version-1 fixture. */
typedef struct bufs {
    float w[4 * HX_W_COLS], x[24], big[300 * 70];
    double s;
} bufs;

static ckpt_state *load_state(bufs *b, int what)
{
    memset(b, FILL, sizeof *b);
    ckpt_state *s;
    expect_ok(ckpt_state_create(&s));
    int64_t ws[2] = {4, HX_W_COLS}, xs[2] = {4, 6}, bs[2] = {300, 70}, zero[2] = {0, 0};
    if (what == 2) {
        expect_ok(ckpt_state_add_tensor(s, "big", CKPT_F32, 2, bs, 0));
        expect_ok(ckpt_state_add_box(s, "big", zero, bs, b->big));
        return s;
    }
    expect_ok(ckpt_state_add_tensor(s, "w", CKPT_F32, 2, ws, 0));
    expect_ok(ckpt_state_add_box(s, "w", zero, ws, b->w));
    if (what == 1)
        return s;
    expect_ok(ckpt_state_add_tensor(s, "s", CKPT_F64, 0, NULL, 0));
    expect_ok(ckpt_state_add_box(s, "s", NULL, NULL, &b->s));
    expect_ok(ckpt_state_add_tensor(s, "x", CKPT_F32, 2, xs, 0));
    expect_ok(ckpt_state_add_box(s, "x", zero, xs, b->x));
    return s;
}

/* Makes the checkpoint of class c in the scratch directory: its path in dir, the message
 * expected of it in want. */
static const expect *make_class(const hx_class *c, char *dir, size_t dlen, char *want, size_t wlen)
{
    const expect *e = expect_of(c->name);
    snprintf(dir, dlen, "%s/%s", scratch, c->name);
    hx_make(dir, c, 2);
    want_msg(e, dir, want, wlen);
    return e;
}

/* ---- caught at open ---- */

static void test_open_classes(void **st)
{
    (void)st;
    int n = 0;
    for (const hx_class *c = hx_classes; c->name; c++) {
        if (c->where != HX_AT_OPEN)
            continue;
        char dir[4200], want[8192];
        const expect *e = make_class(c, dir, sizeof dir, want, sizeof want);
        ckpt_reader *r = (ckpt_reader *)dir;
        int rc = ckpt_reader_open(dir, &r);
        expect_status(c->name, "ckpt_reader_open", rc, e->status, want);
        if (rc == CKPT_OK)
            ckpt_reader_close(r);
        else if (r)
            failed("class %s: ckpt_reader_open failed but set its handle", c->name);
        /* ckpt_load in one process: the same refusal, nothing written into the buffers */
        bufs b;
        ckpt_state *s = load_state(&b, c->base == HX_V1 ? 2 : 0);
        expect_status(c->name, "ckpt_load", ckpt_load(MPI_COMM_NULL, dir, s, NULL), e->status, want);
        if (!all_fill(&b, sizeof b))
            failed("class %s: a refused ckpt_load wrote into the state's buffers", c->name);
        ckpt_state_free(s);
        n++;
    }
    printf("# %d classes refused at open\n", n);
    end_of_classes();
}

/* ---- the manager skips them ---- */

typedef struct warnings {
    char text[64][2048];
    int n;
} warnings;

static void collect(const char *msg, void *user)
{
    warnings *w = user;
    if (w->n < 64)
        snprintf(w->text[w->n++], sizeof w->text[0], "%s", msg);
}

static void test_manager_skips(void **st)
{
    (void)st;
    static warnings w;
    for (const hx_class *c = hx_classes; c->name; c++) {
        if (c->where != HX_AT_OPEN)
            continue;
        const expect *e = expect_of(c->name);
        char root[4200], step1[4300], step2[4300], made[4300], want[8192], line[8400];
        snprintf(root, sizeof root, "%s/manager-%s", scratch, c->name);
        hx_rmtree(root);
        unit_mkdir(root);
        snprintf(step1, sizeof step1, "%s/step-00000001", root);
        snprintf(step2, sizeof step2, "%s/step-00000002", root);
        snprintf(made, sizeof made, "%s/made-%s", scratch, c->name);
        hx_save_base(step1, HX_V2, 1);
        hx_make(made, c, 2);
        if (rename(made, step2) != 0)
            fail_msg("rename %s: %s", made, strerror(errno));
        ckpt_manager_options o;
        ckpt_manager_options_init(&o);
        memset(&w, 0, sizeof w);
        o.warn = collect;
        o.warn_user = &w;
        ckpt_manager *m;
        expect_ok(ckpt_manager_open(MPI_COMM_NULL, root, &o, &m));
        int64_t step = -1;
        char path[4200];
        int rc = ckpt_manager_latest(m, &step, path, sizeof path);
        ckpt_manager_close(m);
        if (rc != CKPT_OK || step != 1 || strcmp(path, step1) != 0)
            failed("class %s: ckpt_manager_latest gave %s, step %lld '%s' (%s), want step 1", c->name,
                   ckpt_status_name(rc), (long long)step, rc ? "" : path, rc ? ckpt_errmsg() : "");
        want_msg(e, step2, want, sizeof want);
        snprintf(line, sizeof line, "skipping step 2 (%s): %s", e->status == CKPT_ECORRUPT ? "corrupt" : "unreadable",
                 want);
        int found = 0;
        for (int i = 0; i < w.n; i++)
            found |= msg_matches(w.text[i], line);
        if (!found || w.n != 1)
            failed("class %s: %d warnings, the first \"%s\"; want exactly \"%s\"", c->name, w.n,
                   w.n ? w.text[0] : "", line);
        hx_rmtree(root);
    }
    end_of_classes();
}

/* ---- caught at read, when verifying, or harmless ---- */

static void check_w_values(const char *cls, const float *v, int64_t row0, int64_t nrows)
{
    for (int64_t i = 0; i < nrows * HX_W_COLS; i++) {
        float want = (float)(row0 * HX_W_COLS + i) + 0.5f;
        if (memcmp(&v[i], &want, 4) != 0)
        {
            failed("class %s: w element %lld is %g, want %g", cls, (long long)(row0 * HX_W_COLS + i), (double)v[i],
                   (double)want);
            return;
        }
    }
}

static void test_read_classes(void **st)
{
    (void)st;
    int n = 0;
    for (const hx_class *c = hx_classes; c->name; c++) {
        if (c->where == HX_AT_OPEN)
            continue;
        char dir[4200], want[8192];
        const expect *e = make_class(c, dir, sizeof dir, want, sizeof want);
        ckpt_reader *r = NULL;
        int rc = ckpt_reader_open(dir, &r);
        if (rc != CKPT_OK) {
            failed("class %s: ckpt_reader_open gave %s \"%s\"; the index is intact", c->name, ckpt_status_name(rc),
                   ckpt_errmsg());
            continue;
        }
        int64_t off[2] = {0, 0}, ext[2] = {2, HX_W_COLS};
        for (int verify = 1; verify >= 0; verify--) {
            float buf[HX_W_BOX];
            memset(buf, FILL, sizeof buf);
            rc = ckpt_reader_read(r, "w", CKPT_F32, off, ext, buf, verify);
            if (hx_has_secret(buf, sizeof buf))
                failed("class %s: the secret reached the caller's buffer (verify %d)", c->name, verify);
            if (c->where == HX_AT_READ || (c->where == HX_AT_VERIFY && verify)) {
                expect_status(c->name, verify ? "ckpt_reader_read (verify)" : "ckpt_reader_read (no verify)", rc,
                              e->status, want);
                if (!all_fill(buf, sizeof buf))
                    failed("class %s: a refused read (verify %d) wrote into the caller's buffer", c->name, verify);
            } else {
                expect_status(c->name, "ckpt_reader_read", rc, CKPT_OK, "");
                check_w_values(c->name, buf, 0, 2);
            }
        }
        ckpt_reader_close(r);
        /* ckpt_load of w: the same outcome, no secret anywhere */
        for (int verify = 1; verify >= 0; verify--) {
            bufs b;
            ckpt_state *s = load_state(&b, 1);
            ckpt_load_options lo;
            ckpt_load_options_init(&lo);
            lo.verify = verify;
            rc = ckpt_load(MPI_COMM_NULL, dir, s, &lo);
            if (hx_has_secret(&b, sizeof b))
                failed("class %s: the secret reached a state's buffer (verify %d)", c->name, verify);
            if (c->where == HX_AT_READ || (c->where == HX_AT_VERIFY && verify)) {
                expect_status(c->name, verify ? "ckpt_load (verify)" : "ckpt_load (no verify)", rc, e->status, want);
                if (!all_fill(b.w, HX_W_BOX * sizeof(float)))
                    failed("class %s: a refused load wrote rank 0's box of w (verify %d)", c->name, verify);
            } else {
                expect_status(c->name, "ckpt_load", rc, CKPT_OK, "");
                check_w_values(c->name, b.w, 0, 4);
            }
            ckpt_state_free(s);
        }
        n++;
    }
    printf("# %d classes checked at read\n", n);
    end_of_classes();
}

/* ---- no byte of a piece lands before its checksum matched ---- */

static void test_piece_verified_before_copy(void **st)
{
    (void)st;
    char dir[4200], file[4300], want[8192];
    snprintf(dir, sizeof dir, "%s/bitflip", scratch);
    hx_save_base(dir, HX_V2, 2);
    /* w's box 0 is [0:2, 0:32] in 4 pieces of 16 elements: change element 40 (piece 2) */
    snprintf(file, sizeof file, "%s/rank-00000.h5", dir);
    hid_t f = H5Fopen(file, H5F_ACC_RDWR, H5P_DEFAULT);
    assert_true(f >= 0);
    hid_t d = H5Dopen2(f, "/boxes/1", H5P_DEFAULT);
    assert_true(d >= 0);
    hsize_t start[2] = {1, 8}, cnt[2] = {1, 1};
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(2, cnt, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, cnt, NULL);
    float v = 1e9f;
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, &v) >= 0);
    H5Sclose(ms);
    H5Sclose(fs);
    H5Dclose(d);
    assert_true(H5Fclose(f) >= 0);
    ckpt_reader *r;
    expect_ok(ckpt_reader_open(dir, &r));
    float buf[HX_W_BOX];
    memset(buf, FILL, sizeof buf);
    int64_t off[2] = {0, 0}, ext[2] = {2, HX_W_COLS};
    int rc = ckpt_reader_read(r, "w", CKPT_F32, off, ext, buf, 1);
    assert_int_equal(rc, CKPT_ECORRUPT);
    snprintf(want, sizeof want, "checksum mismatch in tensor 'w', box 0 [0:2, 0:32] (written by rank 0), piece 2 of 4, "
             "file '%s/rank-00000.h5' dataset /boxes/1: stored xxh3 ", dir);
    if (strncmp(ckpt_errmsg(), want, strlen(want)) != 0)
        fail_msg("got \"%s\", want \"%s...\"", ckpt_errmsg(), want);
    check_w_values("bitflip", buf, 0, 1);             /* pieces 0 and 1: row 0, verified */
    assert_true(all_fill(buf + 32, 16 * sizeof(float))); /* piece 2: never copied */
    /* without verification the changed value is what the file holds */
    memset(buf, FILL, sizeof buf);
    expect_ok(ckpt_reader_read(r, "w", CKPT_F32, off, ext, buf, 0));
    assert_true(buf[40] == 1e9f);
    ckpt_reader_close(r);
}

/* ---- huge tables: refused before anything is allocated for them ---- */

static long max_rss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* Opens dir in a child and reports its peak RSS growth (KiB) through the exit status (MiB). */
static void open_in_child(const char *dir, int status, const char *want)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        long before = max_rss_kb();
        ckpt_reader *r = NULL;
        int rc = ckpt_reader_open(dir, &r);
        long grew = (max_rss_kb() - before) / 1024;
        if (rc != status || !msg_matches(ckpt_errmsg(), want)) {
            fprintf(stderr, "got %s \"%s\"\n", ckpt_status_name(rc), ckpt_errmsg());
            _exit(255);
        }
        _exit(grew > 250 ? 250 : (int)grew);
    }
    int ws;
    assert_true(waitpid(pid, &ws, 0) == pid);
    assert_true(WIFEXITED(ws));
    int mib = WEXITSTATUS(ws);
    assert_int_not_equal(mib, 255);
    printf("# %s: peak RSS grew by %d MiB\n", strrchr(dir, '/') + 1, mib);
    /* the tables claim 28 GB, 56 GB and 1.6 GB */
    assert_true(mib < 32);
}

static void test_huge_tables_memory(void **st)
{
    (void)st;
    const char *names[] = {"v2-huge-boxes", "v2-huge-tensors", "v1-huge-checksums", "v1-huge-files"};
    for (int i = 0; i < 4; i++) {
        const hx_class *c = hx_find(names[i]);
        assert_non_null(c);
        char dir[4200], want[8192];
        snprintf(dir, sizeof dir, "%s/rss-%s", scratch, c->name);
        hx_make(dir, c, 2);
        want_msg(expect_of(c->name), dir, want, sizeof want);
        open_in_child(dir, expect_of(c->name)->status, want);
    }
}

int main(int argc, char **argv)
{
    unit_scratch(argc, argv, "hostile-api", scratch, sizeof scratch);
    hx_set_source_dir(CKPT_SOURCE_DIR);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_huge_tables_memory),
        cmocka_unit_test(test_open_classes),
        cmocka_unit_test(test_manager_skips),
        cmocka_unit_test(test_read_classes),
        cmocka_unit_test(test_piece_verified_before_copy),
    };
    int rc = cmocka_run_group_tests_name("hostile.api", tests, NULL, NULL);
    if (rc == 0)
        unit_rmtree(scratch);
    return rc;
}
