/* test_vfd.c -- the ckpt_sysio HDF5 file driver on its own: files written and read through it
 * are ordinary HDF5 files (bit-exact, also through HDF5's sec2 driver); a name that is not
 * plain and a symlinked file are refused; an injected ENOSPC/EIO at every write, read,
 * truncate, open and close call of a create-write-close-reopen-read cycle is reported as an
 * error, with no crash, no HDF5 id and no descriptor left open; short writes are retried to
 * the exact bytes. No MPI. Scratch directory: argv[1]. */
#include "unit.h"

#include "error.h"
#include "fault.h"
#include "fault_env.h"
#include "h5util.h"
#include "sysio.h"
#include "vfd.h"

#include <fcntl.h>
#include <hdf5.h>

static char dir[4096];
static int dfd = -1;

#define N_CONTIG 20000 /* floats in the contiguous dataset */
#define N_CHUNKED 5000 /* int64 in the chunked one */

static float contig[N_CONTIG];
static int64_t chunked[N_CHUNKED];

static void fill(void)
{
    unit_rng r = {7};
    for (int i = 0; i < N_CONTIG; i++)
        contig[i] = (float)(int64_t)(unit_next(&r) % 100000) / 7.0f;
    for (int i = 0; i < N_CHUNKED; i++)
        chunked[i] = (int64_t)unit_next(&r);
}

static void set_faults(const char *spec)
{
    expect_ok(test_set_faults(spec));
}

static int open_ids(void)
{
    return (int)H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL);
}

/* Innermost HDF5 error message, "" when none. */
static void h5_detail(char *buf, size_t len)
{
    ckpt_error_hdf5_detail(buf, len);
}

/* Closes f; the close's failure becomes rc (-1, detail in why) unless an earlier one is there. */
static int close_into(hid_t f, int rc, char *why, size_t wlen)
{
    char cwhy[512];
    H5Eclear2(H5E_DEFAULT);
    if (ckpt_h5_close_file(f, cwhy, sizeof cwhy) < 0 && rc == 0) {
        snprintf(why, wlen, "%s", cwhy);
        rc = -1;
    }
    return rc;
}

/* Creates `name` through the driver with both datasets and closes it. 0, or -1 with the
 * HDF5 detail of the first failure in why. Leaves no id open whatever happens. */
static int write_file(const char *name, char *why, size_t wlen)
{
    why[0] = '\0';
    int rc = 0;
    hid_t fapl = ckpt_vfd_fapl(dfd);
    if (fapl < 0) {
        snprintf(why, wlen, "fapl: %s", ckpt_errmsg());
        return -1;
    }
    hid_t f = H5Fcreate(name, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (f < 0)
        h5_detail(why, wlen); /* before the next HDF5 call clears the error stack */
    H5Pclose(fapl);
    if (f < 0)
        return -1;
    hsize_t n1 = N_CONTIG, n2 = N_CHUNKED, c2 = 512;
    hid_t s1 = H5Screate_simple(1, &n1, NULL), s2 = H5Screate_simple(1, &n2, NULL);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &c2);
    hid_t d1 = H5Dcreate2(f, "contig", H5T_IEEE_F32LE, s1, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    hid_t d2 = d1 < 0 ? -1 : H5Dcreate2(f, "chunked", H5T_STD_I64LE, s2, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d1 < 0 || d2 < 0 || H5Dwrite(d1, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, contig) < 0 ||
        H5Dwrite(d2, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, chunked) < 0) {
        h5_detail(why, wlen);
        rc = -1;
    }
    if (d1 >= 0 && H5Dclose(d1) < 0 && rc == 0) {
        h5_detail(why, wlen);
        rc = -1;
    }
    if (d2 >= 0 && H5Dclose(d2) < 0 && rc == 0) {
        h5_detail(why, wlen);
        rc = -1;
    }
    H5Pclose(dcpl);
    H5Sclose(s1);
    H5Sclose(s2);
    return close_into(f, rc, why, wlen);
}

/* Opens `name` (through the driver, or sec2 when plain) and compares both datasets bit for bit.
 * 0 equal, 1 different, -1 an HDF5 failure (detail in why). */
static int read_file(const char *name, int plain, char *why, size_t wlen)
{
    static float got1[N_CONTIG];
    static int64_t got2[N_CHUNKED];
    why[0] = '\0';
    char p[4200];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    hid_t fapl = plain ? H5Pcreate(H5P_FILE_ACCESS) : ckpt_vfd_fapl(dfd);
    hid_t f = H5Fopen(plain ? p : name, H5F_ACC_RDONLY, fapl);
    if (f < 0)
        h5_detail(why, wlen);
    H5Pclose(fapl);
    if (f < 0)
        return -1;
    int rc = 0;
    hid_t d1 = H5Dopen2(f, "contig", H5P_DEFAULT), d2 = d1 < 0 ? -1 : H5Dopen2(f, "chunked", H5P_DEFAULT);
    if (d1 < 0 || d2 < 0 || H5Dread(d1, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, got1) < 0 ||
        H5Dread(d2, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, got2) < 0) {
        h5_detail(why, wlen);
        rc = -1;
    } else if (memcmp(got1, contig, sizeof contig) != 0 || memcmp(got2, chunked, sizeof chunked) != 0) {
        rc = 1;
    }
    if (d1 >= 0)
        H5Dclose(d1);
    if (d2 >= 0)
        H5Dclose(d2);
    return close_into(f, rc, why, wlen);
}

static void test_roundtrip(void **u)
{
    (void)u;
    char why[512];
    set_faults(NULL);
    unlinkat(dfd, "a.h5", 0); /* a rerun in the same scratch must count as a fresh one does */
    if (write_file("a.h5", why, sizeof why) != 0)
        fail_msg("write: %s", why);
    uint64_t opens = ckpt_fault_count(CKPT_IO_OPEN), writes = ckpt_fault_count(CKPT_IO_WRITE);
    assert_true(opens >= 1); /* H5Fcreate may probe an existing file first */
    assert_true(writes >= 2); /* HDF5's own writes went through sysio */
    /* H5Fcreate's probe of a file that is not there is an open that fails, with nothing to close */
    uint64_t closes = ckpt_fault_count(CKPT_IO_CLOSE);
    assert_true(closes >= 1 && closes <= opens);
    assert_int_equal(read_file("a.h5", 0, why, sizeof why), 0);
    assert_true(ckpt_fault_count(CKPT_IO_READ) >= 2);
    assert_int_equal(read_file("a.h5", 1, why, sizeof why), 0); /* an ordinary HDF5 file */
    assert_int_equal(open_ids(), 0);
    assert_int_equal(ckpt_sys_open_files(), 0);

    /* fsync through the driver's descriptor */
    hid_t fapl = ckpt_vfd_fapl(dfd);
    hid_t f = H5Fopen("a.h5", H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    assert_true(f >= 0);
    uint64_t fs = ckpt_fault_count(CKPT_IO_FSYNC);
    assert_int_equal(ckpt_vfd_fsync(f), 0);
    assert_int_equal(ckpt_fault_count(CKPT_IO_FSYNC), fs + 1);
    assert_int_equal(ckpt_h5_close_file(f, NULL, 0), 0);
    /* after the close, by name inside the directory */
    assert_int_equal(ckpt_sys_fsync_in(dfd, "a.h5"), 0);
    assert_int_equal(ckpt_fault_count(CKPT_IO_FSYNC), fs + 2);
    assert_int_equal(ckpt_sys_fsync_in(dfd, "../a.h5"), -EINVAL);
    /* a file of another driver is not ours to fsync */
    char p[4200];
    snprintf(p, sizeof p, "%s/a.h5", dir);
    f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_int_equal(ckpt_vfd_fsync(f), -EINVAL);
    assert_int_equal(ckpt_h5_close_file(f, NULL, 0), 0);
    assert_int_equal(open_ids(), 0);
    assert_int_equal(ckpt_sys_open_files(), 0);
}

static void test_refusals(void **u)
{
    (void)u;
    char why[512], p[4200], q[4200];
    set_faults(NULL);
    if (write_file("b.h5", why, sizeof why) != 0)
        fail_msg("write: %s", why);
    const char *bad[] = {"sub/b.h5", "../b.h5", "..", ".", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hid_t fapl = ckpt_vfd_fapl(dfd);
        hid_t f = H5Fopen(bad[i], H5F_ACC_RDONLY, fapl);
        h5_detail(why, sizeof why);
        H5Pclose(fapl);
        if (f >= 0)
            fail_msg("'%s' was opened", bad[i]);
        H5Eclear2(H5E_DEFAULT);
        if (bad[i][0] && !strstr(why, "is not a plain file name inside the checkpoint directory"))
            fail_msg("'%s': detail '%s'", bad[i], why);
    }
    /* a symlink to a real HDF5 file, inside the directory: refused */
    snprintf(p, sizeof p, "%s/link.h5", dir);
    snprintf(q, sizeof q, "b.h5");
    unlink(p);
    assert_int_equal(symlink(q, p), 0);
    if (read_file("link.h5", 1, why, sizeof why) != 0)
        fail_msg("sec2 through the link: %s", why); /* sec2 follows it */
    assert_int_equal(read_file("link.h5", 0, why, sizeof why), -1);
    if (!strstr(why, "ckpt_sysio: cannot open 'link.h5': it is a symbolic link (refused)"))
        fail_msg("detail '%s'", why);
    /* a directory with a file's name */
    snprintf(p, sizeof p, "%s/adir.h5", dir);
    unit_mkdir(p);
    assert_int_equal(read_file("adir.h5", 0, why, sizeof why), -1);
    /* a fapl without the directory */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    assert_true(H5Pset_driver(fapl, ckpt_vfd_id(), NULL) >= 0);
    hid_t f = H5Fopen("b.h5", H5F_ACC_RDONLY, fapl);
    h5_detail(why, sizeof why);
    H5Pclose(fapl);
    assert_true(f < 0);
    H5Eclear2(H5E_DEFAULT);
    if (!strstr(why, "has no directory"))
        fail_msg("detail '%s'", why);
    assert_int_equal(open_ids(), 0);
    assert_int_equal(ckpt_sys_open_files(), 0);
}

/* Every call of `kind` in a write + read-back cycle fails once with `what`: each run reports an
 * error naming the call (or, for reads, a failed read) and leaves nothing open. */
static int sweep(ckpt_io_kind kind, const char *what, const char *needle, int may_pass, int from_on)
{
    char why[512], spec[64];
    set_faults(NULL);
    if (write_file("s.h5", why, sizeof why) != 0 || read_file("s.h5", 0, why, sizeof why) != 0)
        fail_msg("clean run: %s", why);
    uint64_t total = ckpt_fault_count(kind);
    assert_true(total >= 1);
    int points = 0;
    for (uint64_t k = 1; k <= total; k++) {
        snprintf(spec, sizeof spec, "%s@%llu%s:%s", ckpt_io_kind_name(kind), (unsigned long long)k, from_on ? "+" : "",
                 what);
        set_faults(spec);
        int w = write_file("s.h5", why, sizeof why);
        int r = 1;
        if (w == 0)
            r = read_file("s.h5", 0, why, sizeof why);
        uint64_t seen = ckpt_fault_count(kind);
        if (seen >= k) { /* the fault fired: something must have failed, naming it */
            points++;
            if (w == 0 && r == 0 && !(may_pass && k == 1))
                fail_msg("%s: the fault fired but write and read both succeeded", spec);
            if (w == 0 && r == 0)
                continue; /* the probe of H5Fcreate (opens and closes the old file first) */
            if (r == 1 && w == 0)
                fail_msg("%s: read back different data without an error", spec);
            if (!strstr(why, needle) || !strstr(why, "ckpt_sysio: "))
                fail_msg("%s: the error does not name the failed call: '%s'", spec, why);
        }
        if (open_ids() != 0)
            fail_msg("%s: %d HDF5 ids left open", spec, open_ids());
        if (ckpt_sys_open_files() != 0)
            fail_msg("%s: %d descriptors left open", spec, ckpt_sys_open_files());
    }
    set_faults(NULL);
    return points;
}

static int fault_points;

/* A failed write is not reported to HDF5 (see vfd.h) but kept: ckpt_vfd_error says it at once,
 * later writes are skipped, and the close reports it. */
static void test_sticky_error(void **u)
{
    (void)u;
    char why[512];
    set_faults(NULL);
    hid_t fapl = ckpt_vfd_fapl(dfd);
    hid_t f = H5Fcreate("k.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    assert_true(f >= 0);
    hsize_t n = N_CONTIG;
    hid_t sp = H5Screate_simple(1, &n, NULL);
    hid_t d = H5Dcreate2(f, "contig", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(d >= 0);
    assert_int_equal(ckpt_vfd_error(f, why, sizeof why), 0);
    set_faults("write@1:EDQUOT");
    assert_true(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, contig) >= 0);
    assert_int_equal(ckpt_vfd_error(f, why, sizeof why), -EDQUOT);
    char want[256];
    snprintf(want, sizeof want, "; ckpt_sysio: write of %zu bytes at offset ", sizeof contig);
    if (strncmp(why, want, strlen(want)) != 0 || !strstr(why, "of 'k.h5' failed: Disk quota exceeded"))
        fail_msg("why '%s'", why);
    uint64_t w = ckpt_fault_count(CKPT_IO_WRITE);
    H5Dclose(d);
    H5Sclose(sp);
    assert_int_equal(ckpt_h5_close_file(f, why, sizeof why), -1);
    assert_int_equal(ckpt_fault_count(CKPT_IO_WRITE), w); /* nothing more written */
    assert_non_null(strstr(why, "Disk quota exceeded"));
    assert_int_equal(open_ids(), 0);
    assert_int_equal(ckpt_sys_open_files(), 0);
    /* a dataset left open is closed with its file */
    set_faults(NULL);
    fapl = ckpt_vfd_fapl(dfd);
    f = H5Fcreate("k.h5", H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    sp = H5Screate_simple(1, &n, NULL);
    d = H5Dcreate2(f, "contig", H5T_IEEE_F32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Sclose(sp);
    assert_true(d >= 0);
    assert_int_equal(ckpt_h5_close_file(f, why, sizeof why), 0);
    assert_int_equal(open_ids(), 0);
    assert_int_equal(ckpt_sys_open_files(), 0);
}

static void test_fault_sweep(void **u)
{
    (void)u;
    fault_points += sweep(CKPT_IO_WRITE, "ENOSPC", "No space left on device", 0, 0);
    fault_points += sweep(CKPT_IO_WRITE, "ENOSPC", "No space left on device", 0, 1); /* a full disk */
    fault_points += sweep(CKPT_IO_WRITE, "EIO", "Input/output error", 0, 0);
    fault_points += sweep(CKPT_IO_READ, "EIO", "Input/output error", 0, 0);
    fault_points += sweep(CKPT_IO_READ, "EIO", "Input/output error", 0, 1);
    /* H5Fcreate first probes an existing file (open, close): a failed open reads as "absent",
     * a failed close of a file nothing was written to loses nothing */
    fault_points += sweep(CKPT_IO_OPEN, "EMFILE", "Too many open files", 1, 0);
    fault_points += sweep(CKPT_IO_CLOSE, "EIO", "Input/output error", 1, 0);
    print_message("ckpt_sysio driver: %d fault points swept\n", fault_points);
}

static void test_short_writes(void **u)
{
    (void)u;
    char why[512];
    set_faults(NULL);
    if (write_file("t.h5", why, sizeof why) != 0)
        fail_msg("write: %s", why);
    uint64_t total = ckpt_fault_count(CKPT_IO_WRITE);
    for (uint64_t k = 1; k <= total; k++) {
        char spec[64];
        snprintf(spec, sizeof spec, "write@%llu:short", (unsigned long long)k);
        set_faults(spec);
        if (write_file("t.h5", why, sizeof why) != 0)
            fail_msg("%s: a short write was not retried: %s", spec, why);
        assert_int_equal(ckpt_fault_count(CKPT_IO_WRITE), total + 1); /* the rest, written by a second call */
        set_faults(NULL);
        if (read_file("t.h5", 1, why, sizeof why) != 0)
            fail_msg("%s: the file differs after a short write", spec);
    }
    /* every write short from the first on: the disk "fills", the error is ENOSPC */
    set_faults("write@1+:short");
    assert_int_equal(write_file("t.h5", why, sizeof why), -1);
    if (!strstr(why, "ckpt_sysio: write of") || !strstr(why, "No space left on device"))
        fail_msg("why '%s'", why);
    set_faults(NULL);
    assert_int_equal(open_ids(), 0);
    assert_int_equal(ckpt_sys_open_files(), 0);
}

int main(int argc, char **argv)
{
    unit_scratch(argc, argv, "unit.vfd", dir, sizeof dir);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    fill();
    dfd = open(dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) {
        fprintf(stderr, "cannot open %s\n", dir);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sticky_error),
        cmocka_unit_test(test_fault_sweep),
        cmocka_unit_test(test_short_writes),
    };
    int rc = cmocka_run_group_tests_name("vfd", tests, NULL, NULL);
    close(dfd);
    return rc;
}
