/* test_sysio.c -- the fault layer and the file-system module on their own: CKPT_FAULT parsing
 * (good and malformed items), the k-th call of a kind failing with the asked errno, "from k on",
 * short writes retried to the exact bytes, a crash right after a call, counters and the
 * counting mode's exit report, the trace hook; the plain-name / no-symlink rule, descriptors
 * released on a failed close, the descriptor bound; the text records (COMMITTED marker and
 * manager lock record) parsed and formatted. No MPI. Scratch directory: argv[1]. */
#include "unit.h"

#include "commit.h"
#include "fault.h"
#include "fault_env.h"
#include "kvtext.h"
#include "rootlock.h"
#include "sysio.h"

#include <fcntl.h>
#include <sys/wait.h>

static char dir[4096];

static void set_faults(const char *spec)
{
    expect_ok(test_set_faults(spec));
}

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static int64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

static void test_spec_parsing(void **u)
{
    (void)u;
    const char *bad[] = {"write@0",      "write@",       "write@x",     "frob@1",       "write@1:ENOPE",
                         "fsync@1:short", "write@1:",     "write@1x",    "@1",           "write@99999999999999999999",
                         "write@2++",    "open@1:crash:EIO"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("CKPT_FAULT", bad[i], 1);
        char want[128];
        snprintf(want, sizeof want, "CKPT_FAULT item '%s' is malformed", bad[i]);
        expect_err(ckpt_fault_reset(), CKPT_EINVAL, want);
    }
    /* named points and counted rules mix; named points are read at each check */
    set_faults("commit,write@3:EIO,no_exchange,fsync@2+");
    assert_int_equal(ckpt_fault("commit"), 1);
    assert_int_equal(ckpt_fault("no_exchange"), 1);
    assert_int_equal(ckpt_fault("io_write"), 0);
    assert_int_equal(ckpt_fault("write"), 0);
    for (int k = 1; k <= 4; k++) {
        ckpt_fault_action a = ckpt_fault_next(CKPT_IO_WRITE, "x");
        assert_int_equal(a.err, k == 3 ? EIO : 0);
        ckpt_fault_action b = ckpt_fault_next(CKPT_IO_FSYNC, "x");
        assert_int_equal(b.err, k >= 2 ? ENOSPC : 0); /* ENOSPC by default, from the 2nd on */
    }
    assert_int_equal(ckpt_fault_count(CKPT_IO_WRITE), 4);
    assert_int_equal(ckpt_fault_count(CKPT_IO_READ), 0);
    set_faults(NULL);
    assert_int_equal(ckpt_fault_count(CKPT_IO_WRITE), 0);
    assert_string_equal(ckpt_io_kind_name(CKPT_IO_RMDIR), "rmdir");
    assert_null(ckpt_io_kind_name(CKPT_IO_KINDS));
}

static void test_errors_and_short_writes(void **u)
{
    (void)u;
    char p[4200];
    unsigned char data[1000];
    for (int i = 0; i < 1000; i++)
        data[i] = (unsigned char)(i * 7 + 1);
    path_of(p, sizeof p, "w.bin");

    set_faults("write@2:ENOSPC,fsync@1:EIO");
    int fd = ckpt_sys_open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ckpt_sys_open_files(), 1);
    assert_int_equal(ckpt_sys_write_all(fd, data, 100), 0);
    assert_int_equal(ckpt_sys_write_all(fd, data, 100), -ENOSPC);
    assert_int_equal(ckpt_sys_fsync(fd), -EIO);
    assert_int_equal(ckpt_sys_fsync(fd), 0);
    assert_int_equal(ckpt_sys_close(fd), 0);
    assert_int_equal(file_size(p), 100); /* the failed write wrote nothing */

    /* a short write is retried: the bytes are exact, the write took two calls */
    set_faults("write@1:short");
    fd = ckpt_sys_open(p, O_RDWR | O_TRUNC, 0);
    assert_int_equal(ckpt_sys_pwrite_all(fd, data, 1000, 0), 0);
    assert_int_equal(ckpt_fault_count(CKPT_IO_WRITE), 2);
    unsigned char back[1001];
    assert_int_equal(ckpt_sys_pread_full(fd, back, sizeof back, 0), 1000);
    assert_memory_equal(back, data, 1000);
    /* every write short: 500 + 250 + ... + 1 bytes, then ENOSPC (nothing fits any more) */
    set_faults("write@1+:short");
    assert_int_equal(ckpt_sys_pwrite_all(fd, data, 1000, 2000), -ENOSPC);
    assert_int_equal(file_size(p), 2000 + 500 + 250 + 125 + 62 + 31 + 16 + 8 + 4 + 2 + 1);
    /* a failed close still releases the descriptor */
    set_faults("close@1:EIO");
    assert_int_equal(ckpt_sys_close(fd), -EIO);
    assert_int_equal(ckpt_sys_open_files(), 0);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    /* reads */
    set_faults("read@1:EIO");
    fd = ckpt_sys_open(p, O_RDONLY, 0);
    assert_int_equal(ckpt_sys_read_full(fd, back, 10), -EIO);
    assert_int_equal(ckpt_sys_read_full(fd, back, 10), 10);
    assert_int_equal(ckpt_sys_close(fd), 0);
    /* the other kinds */
    set_faults("mkdir@1:EDQUOT,rename@1:EROFS,unlink@1:EACCES,rmdir@1:EIO,open@1:EMFILE,truncate@1:EIO,lock@1:ENOLCK");
    char d[4200], q[4200];
    path_of(d, sizeof d, "sub");
    path_of(q, sizeof q, "w2.bin");
    assert_int_equal(ckpt_sys_mkdir(d, 0755), -EDQUOT);
    assert_int_equal(ckpt_sys_mkdir(d, 0755), 0);
    assert_int_equal(ckpt_sys_rename(p, q), -EROFS);
    assert_int_equal(ckpt_sys_rename(p, q), 0);
    assert_int_equal(ckpt_sys_unlink(q) == -EACCES && ckpt_sys_unlink(q) == 0, 1);
    assert_int_equal(ckpt_sys_rmdir(d), -EIO);
    assert_int_equal(ckpt_sys_rmdir(d), 0);
    assert_int_equal(ckpt_sys_open(p, O_RDWR | O_CREAT, 0644), -EMFILE);
    fd = ckpt_sys_open(p, O_RDWR | O_CREAT, 0644);
    assert_int_equal(ckpt_sys_ftruncate(fd, 10), -EIO);
    assert_int_equal(ckpt_sys_ftruncate(fd, 10), 0);
    assert_int_equal(ckpt_sys_lock(fd), -ENOLCK);
    assert_int_equal(ckpt_sys_lock(fd), 0); /* an OFD lock on this kernel */
    assert_int_equal(ckpt_sys_close(fd), 0);
    assert_int_equal(ckpt_sys_open_files(), 0);
    set_faults(NULL);
}

static void test_plain_names(void **u)
{
    (void)u;
    char p[4200], t[4200];
    int dfd = ckpt_sys_open_dir(dir, 1);
    assert_true(dfd >= 0);
    const char *bad[] = {"", ".", "..", "a/b", "/etc/passwd", "../x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(ckpt_sys_plain_name(bad[i]), 0);
        assert_int_equal(ckpt_sys_open_in(dfd, bad[i], O_RDONLY, 0), -EINVAL);
    }
    char long_name[300];
    memset(long_name, 'a', 256);
    long_name[256] = '\0';
    assert_int_equal(ckpt_sys_plain_name(long_name), 0);
    assert_int_equal(ckpt_sys_plain_name("rank-00000.h5"), 1);
    /* a symlink inside the directory, to a file inside it: refused all the same */
    path_of(t, sizeof t, "target.txt");
    FILE *f = fopen(t, "w");
    fputs("secret\n", f);
    fclose(f);
    path_of(p, sizeof p, "link.txt");
    unlink(p);
    assert_int_equal(symlink("target.txt", p), 0);
    assert_int_equal(ckpt_sys_open_in(dfd, "link.txt", O_RDONLY, 0), -ELOOP);
    int fd = ckpt_sys_open_in(dfd, "target.txt", O_RDONLY, 0);
    assert_true(fd >= 0);
    assert_int_equal(ckpt_sys_close(fd), 0);
    /* a symlinked directory is refused by open_dir(nofollow) */
    path_of(p, sizeof p, "dirlink");
    unlink(p);
    assert_int_equal(symlink(".", p), 0);
    assert_int_equal(ckpt_sys_open_dir(p, 1), -ELOOP);
    assert_int_equal(ckpt_sys_unlink_in(dfd, "../x"), -EINVAL);
    assert_int_equal(ckpt_sys_close(dfd), 0);
    assert_int_equal(ckpt_sys_open_files(), 0);
}

static void test_descriptor_bound(void **u)
{
    (void)u;
    /* CKPT_MAX_OPEN_FILES=8 was set before the first call (main) */
    assert_int_equal(ckpt_sys_max_files(), 8);
    int fds[8];
    for (int i = 0; i < 8; i++) {
        fds[i] = ckpt_sys_open(dir, O_RDONLY, 0);
        assert_true(fds[i] >= 0);
    }
    assert_int_equal(ckpt_sys_open(dir, O_RDONLY, 0), -EMFILE);
    int err = 0;
    assert_null(ckpt_sys_opendir(dir, &err));
    assert_int_equal(err, -EMFILE);
    for (int i = 0; i < 8; i++)
        assert_int_equal(ckpt_sys_close(fds[i]), 0);
    DIR *d = ckpt_sys_opendir(dir, &err);
    assert_non_null(d);
    assert_int_equal(ckpt_sys_open_files(), 1);
    assert_int_equal(ckpt_sys_closedir(d), 0);
    assert_int_equal(ckpt_sys_open_files(), 0);
}

/* Runs fn in a child with CKPT_FAULT=spec; returns its wait status. */
static int in_child(const char *spec, void (*fn)(void))
{
    pid_t pid = fork();
    if (pid == 0) {
        setenv("CKPT_FAULT", spec, 1);
        if (ckpt_fault_reset() != CKPT_OK)
            _exit(3);
        fn();
        exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static void two_renames(void)
{
    char a[4200], b[4200], c[4200];
    path_of(a, sizeof a, "c1");
    path_of(b, sizeof b, "c2");
    path_of(c, sizeof c, "c3");
    if (ckpt_sys_rename(a, b) != 0 || ckpt_sys_rename(b, c) != 0)
        _exit(4);
}

static void some_calls(void)
{
    char a[4200];
    path_of(a, sizeof a, "counted.bin");
    int fd = ckpt_sys_open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ckpt_sys_write_all(fd, "abc", 3);
    ckpt_sys_write_all(fd, "def", 3);
    ckpt_sys_fsync(fd);
    ckpt_sys_close(fd);
}

static void test_crash_and_counting(void **u)
{
    (void)u;
    char a[4200], b[4200], c[4200];
    path_of(a, sizeof a, "c1");
    path_of(b, sizeof b, "c2");
    path_of(c, sizeof c, "c3");
    unlink(b);
    unlink(c);
    fclose(fopen(a, "w"));
    /* the crash comes right after the first rename was made */
    int st = in_child("rename@1:crash", two_renames);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), CKPT_FAULT_CRASH_EXIT);
    assert_int_equal(access(a, F_OK), -1);
    assert_int_equal(access(b, F_OK), 0);
    assert_int_equal(access(c, F_OK), -1);
    /* counting mode: one line at exit */
    char report[4200];
    path_of(report, sizeof report, "counts.txt");
    unlink(report);
    setenv("CKPT_FAULT_COUNT", report, 1);
    st = in_child("", some_calls);
    unsetenv("CKPT_FAULT_COUNT");
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    FILE *f = fopen(report, "r");
    assert_non_null(f);
    char line[512] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    /* the child's counters start at zero (ckpt_fault_reset) */
    if (!strstr(line, " open=1 read=0 write=2 truncate=0 fsync=1 rename=0 mkdir=0 unlink=0 rmdir=0 close=1 lock=0 mpiio=0\n") ||
        strncmp(line, "ckpt-fault-count pid=", 21) != 0 || !strstr(line, " rank=-1 "))
        fail_msg("report line '%s'", line);
}

typedef struct trace_log {
    char text[1024];
} trace_log;

static void on_trace(ckpt_io_kind kind, uint64_t k, const char *what, void *user)
{
    trace_log *t = user;
    const char *base = strrchr(what, '/');
    snprintf(t->text + strlen(t->text), sizeof t->text - strlen(t->text), " %s#%llu:%s", ckpt_io_kind_name(kind),
             (unsigned long long)k, base ? base + 1 : what);
}

static void test_trace(void **u)
{
    (void)u;
    trace_log t = {""};
    set_faults(NULL);
    ckpt_fault_set_trace(on_trace, &t);
    some_calls();
    ckpt_fault_set_trace(NULL, NULL);
    assert_string_equal(t.text, " open#1:counted.bin write#1: write#2: fsync#1: close#1:");
}

static void test_commit_marker(void **u)
{
    (void)u;
    ckpt_commit_marker m = {1, 0x2c69a70521273dbbull}, got;
    char buf[256], why[256];
    int n = ckpt_commit_marker_format(&m, buf, sizeof buf);
    assert_string_equal(buf, "ckpt-commit\nformat_version 1\nindex_xxh3 2c69a70521273dbb\n");
    expect_ok(ckpt_commit_marker_parse(buf, (size_t)n, &got, why, sizeof why));
    assert_true(got.format_version == 1 && got.index_xxh3 == m.index_xxh3);
    /* later lines may be added; upper-case hex reads */
    const char *ok = "ckpt-commit\nindex_xxh3 2C69A70521273DBB\nformat_version 3\nwriter_host node7 rack 2\n";
    expect_ok(ckpt_commit_marker_parse(ok, strlen(ok), &got, why, sizeof why));
    assert_true(got.format_version == 3 && got.index_xxh3 == m.index_xxh3);
    struct {
        const char *text, *why;
    } bad[] = {
        {"", "does not start with the line 'ckpt-commit'"},
        {"ckpt-commit", "does not start with the line 'ckpt-commit'"},
        {"ckpt-commitx\nformat_version 1\nindex_xxh3 2c69a70521273dbb\n", "does not start"},
        {"ckpt-commit\nformat_version 1\nindex_xxh3 2c69a70521273dbb", "line 3 is not 'key value' ending in a newline"},
        {"ckpt-commit\nformat_version 1\n", "it has no index_xxh3 line"},
        {"ckpt-commit\nindex_xxh3 2c69a70521273dbb\n", "it has no format_version line"},
        {"ckpt-commit\nformat_version 0\nindex_xxh3 2c69a70521273dbb\n", "format_version '0' is not a version number"},
        {"ckpt-commit\nformat_version 01\nindex_xxh3 2c69a70521273dbb\n", "format_version '01' is not"},
        {"ckpt-commit\nformat_version -1\nindex_xxh3 2c69a70521273dbb\n", "format_version '-1' is not"},
        {"ckpt-commit\nformat_version 2147483648\nindex_xxh3 2c69a70521273dbb\n", "format_version '2147483648'"},
        {"ckpt-commit\nformat_version 99999999999999999999999\nindex_xxh3 2c69a70521273dbb\n", "is not a version"},
        {"ckpt-commit\nformat_version 1\nindex_xxh3 2c69a70521273db\n", "is not 16 hex digits"},
        {"ckpt-commit\nformat_version 1\nindex_xxh3 2c69a70521273dbbb\n", "is not 16 hex digits"},
        {"ckpt-commit\nformat_version 1\nindex_xxh3 2c69a70521273dbg\n", "is not 16 hex digits"},
        {"ckpt-commit\nformat_version 1\nformat_version 1\nindex_xxh3 2c69a70521273dbb\n", "line 3: format_version given twice"},
        {"ckpt-commit\nformat_version 1\nindex_xxh3 2c69a70521273dbb\nindex_xxh3 2c69a70521273dbb\n", "index_xxh3 given twice"},
        {"ckpt-commit\n\nformat_version 1\nindex_xxh3 2c69a70521273dbb\n", "line 2 is not 'key value'"},
        {"ckpt-commit\nformat_version  1\nindex_xxh3 2c69a70521273dbb\n", "format_version ' 1' is not"},
        {"ckpt-commit\nFormat_version 1\nindex_xxh3 2c69a70521273dbb\n", "line 2 is not 'key value'"},
        {"ckpt-commit\nformat_version 1\r\nindex_xxh3 2c69a70521273dbb\n", "line 2 is not 'key value'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        int rc = ckpt_commit_marker_parse(bad[i].text, strlen(bad[i].text), &got, why, sizeof why);
        if (rc != CKPT_ECORRUPT || !strstr(why, bad[i].why))
            fail_msg("marker %zu: %s '%s', want '%s'", i, ckpt_status_name(rc), why, bad[i].why);
    }
    /* a NUL byte inside, and a marker over the size bound */
    char nul[] = "ckpt-commit\nformat_version 1\0\nindex_xxh3 2c69a70521273dbb\n";
    assert_int_equal(ckpt_commit_marker_parse(nul, sizeof nul - 1, &got, why, sizeof why), CKPT_ECORRUPT);
    char *big = malloc(CKPT_KV_MAX + 10);
    memset(big, 'a', CKPT_KV_MAX + 10);
    assert_int_equal(ckpt_commit_marker_parse(big, CKPT_KV_MAX + 1, &got, why, sizeof why), CKPT_ECORRUPT);
    assert_string_equal(why, "it is 4097 bytes; a commit marker is at most 4096");
    free(big);
}

static void test_displaced_names(void **u)
{
    (void)u;
    char base[256], fresh[256];
    assert_int_equal(ckpt_commit_displaced("step-00000005.tmp-00ff00ff00ff00ff.old", base, sizeof base, fresh,
                                           sizeof fresh), 1);
    assert_string_equal(base, "step-00000005");
    assert_string_equal(fresh, "step-00000005.tmp-00ff00ff00ff00ff");
    assert_int_equal(ckpt_commit_displaced("ckpt.tmp-1.old", base, sizeof base, fresh, sizeof fresh), 1);
    assert_string_equal(base, "ckpt");
    const char *no[] = {"step-00000005.tmp-.old", ".tmp-1.old", "step-00000005.old", "step-00000005.tmp-1",
                        "step-00000005.tmp-1.2.old", "", "x.tmp-1.oldx"};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (ckpt_commit_displaced(no[i], base, sizeof base, fresh, sizeof fresh))
            fail_msg("'%s' was taken for a displaced copy", no[i]);
}

static void test_lock_record(void **u)
{
    (void)u;
    ckpt_lock_record self, got;
    ckpt_lock_record_self(&self);
    assert_int_equal(self.pid, (int64_t)getpid());
    assert_true(self.start > 0);
    assert_true(self.since > 1600000000);
    char buf[CKPT_KV_MAX], why[256], who[512];
    int n = ckpt_lock_record_format(&self, buf, sizeof buf);
    assert_true(n > 0);
    assert_int_equal(ckpt_lock_record_parse(buf, (size_t)n, &got, why, sizeof why), 0);
    assert_string_equal(got.host, self.host);
    assert_string_equal(got.boot_id, self.boot_id);
    assert_string_equal(got.job, self.job);
    assert_true(got.pid == self.pid && got.start == self.start && got.since == self.since);
    ckpt_lock_record r;
    memset(&r, 0, sizeof r);
    snprintf(r.host, sizeof r.host, "node7");
    snprintf(r.boot_id, sizeof r.boot_id, "-");
    snprintf(r.job, sizeof r.job, "4242");
    r.pid = 31337;
    r.since = 1700000000;
    ckpt_lock_record_describe(&r, who, sizeof who);
    assert_string_equal(who, "pid 31337 on host node7 since 2023-11-14 22:13:20 UTC (job 4242)");
    const char *bad[] = {"ckpt-manager-lock\nhost a\n",
                         "ckpt-manager-lock\nhost a\nboot -\njob -\npid 0\nstart 1\nsince 1\n",
                         "ckpt-manager-lock\nhost a\nboot -\njob -\npid 12\nstart 1\nsince 1\npid 13\n",
                         "ckpt-manager-lock\nhost a\nboot -\njob -\npid 12\nstart x\nsince 1\n",
                         "ckpt-commit\nhost a\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (ckpt_lock_record_parse(bad[i], strlen(bad[i]), &got, why, sizeof why) == 0)
            fail_msg("lock record %zu parsed", i);
}

int main(int argc, char **argv)
{
    setenv("CKPT_MAX_OPEN_FILES", "8", 1); /* before the first call reads it */
    unsetenv("CKPT_FAULT");
    unit_scratch(argc, argv, "unit.sysio", dir, sizeof dir);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spec_parsing),     cmocka_unit_test(test_errors_and_short_writes),
        cmocka_unit_test(test_plain_names),      cmocka_unit_test(test_descriptor_bound),
        cmocka_unit_test(test_crash_and_counting), cmocka_unit_test(test_trace),
        cmocka_unit_test(test_commit_marker),    cmocka_unit_test(test_displaced_names),
        cmocka_unit_test(test_lock_record),
    };
    return cmocka_run_group_tests_name("sysio", tests, NULL, NULL);
}
