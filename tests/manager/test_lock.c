/* test_lock.c -- one job per checkpoint root, in one process without MPI_Init (MPI_COMM_NULL)
 * and its children: a second manager of the root in this process and in another process gets
 * CKPT_EBUSY naming the holder (pid, host, since when); closing releases it and removes the
 * lock file; a record left by a process that is gone, a record of a reused pid, one from
 * another host whose lock was released and an unreadable one are taken over with a warning; a
 * live process on this host named by the record is refused even when the file system let the
 * lock through (locks not shared, e.g. NFS with local_lock); a file system without locks
 * (injected ENOLCK) opens with a warning; a symlinked lock file is refused; ckpt_manager_peek_latest
 * needs no lock. Scratch directory: argv[1]. */
#include "pattern.h"

#include "fault.h"
#include "rootlock.h"
#include "sysio.h"

#include <ckpt.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "unit.h"

static char dir[1024], root[1100], lockpath[1200];

static char warned[8192];
static void on_warn(const char *msg, void *user)
{
    (void)user;
    snprintf(warned + strlen(warned), sizeof warned - strlen(warned), "%s\n", msg);
}

static int open_mgr(ckpt_manager **m)
{
    ckpt_manager_options o;
    ckpt_manager_options_init(&o);
    o.warn = on_warn;
    warned[0] = '\0';
    *m = NULL;
    return ckpt_manager_open(MPI_COMM_NULL, root, &o, m);
}

static void host_of(char *buf, size_t len)
{
    ckpt_lock_record r;
    ckpt_lock_record_self(&r);
    snprintf(buf, len, "%s", r.host);
}

/* Writes a lock record naming pid/host/start into the lock file (no lock held). */
static void plant_record(int64_t pid, const char *host, uint64_t start)
{
    ckpt_lock_record r;
    ckpt_lock_record_self(&r);
    r.pid = pid;
    r.start = start;
    r.since = 1700000000;
    snprintf(r.host, sizeof r.host, "%s", host);
    snprintf(r.job, sizeof r.job, "777");
    char text[4096];
    int n = ckpt_lock_record_format(&r, text, sizeof text);
    FILE *f = fopen(lockpath, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, (size_t)n, f), (size_t)n);
    fclose(f);
}

static void read_record(ckpt_lock_record *r)
{
    char buf[4096], why[256];
    FILE *f = fopen(lockpath, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (ckpt_lock_record_parse(buf, n, r, why, sizeof why) != 0)
        fail_msg("the lock file does not hold a record: %s", why);
}

static void test_second_manager_refused(void **u)
{
    (void)u;
    ckpt_manager *a = NULL, *b = NULL;
    expect_ok(open_mgr(&a));
    assert_string_equal(warned, "");
    ckpt_lock_record r;
    read_record(&r);
    assert_int_equal(r.pid, (int64_t)getpid());
    char host[256], want[2048];
    host_of(host, sizeof host);
    assert_string_equal(r.host, host);
    /* the same process */
    snprintf(want, sizeof want,
             "checkpoint root '%s' is in use by another checkpoint manager of this process (pid %ld): close it "
             "first; one manager per root", root, (long)getpid());
    int rc = open_mgr(&b);
    if (rc != CKPT_EBUSY || strcmp(ckpt_errmsg(), want) != 0 || b)
        fail_msg("second manager: %s '%s'", ckpt_status_name(rc), ckpt_errmsg());
    /* another process (a job that would resume from the root while this one runs) */
    pid_t pid = fork();
    if (pid == 0) {
        ckpt_manager *c = NULL;
        int crc = open_mgr(&c);
        char w2[2048];
        snprintf(w2, sizeof w2, "checkpoint root '%s' is in use by another job: pid %ld on host %s since ", root,
                 (long)getppid(), host);
        if (crc != CKPT_EBUSY || strncmp(ckpt_errmsg(), w2, strlen(w2)) != 0 ||
            !strstr(ckpt_errmsg(), " UTC holds '") || !strstr(ckpt_errmsg(), "ckpt-manager.lock'; two jobs saving") ||
            !strstr(ckpt_errmsg(), "after a kill -9 of mpirun its ranks may still be running")) {
            fprintf(stderr, "child: %s '%s'\n", ckpt_status_name(crc), ckpt_errmsg());
            _exit(1);
        }
        /* reading the root needs no lock */
        int64_t step = -1;
        int prc = ckpt_manager_peek_latest(root, &step, NULL, 0);
        _exit(prc == CKPT_ENOTFOUND ? 0 : 2);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    ckpt_manager_close(a);
    assert_int_equal(access(lockpath, F_OK), -1); /* released and removed */
    expect_ok(open_mgr(&b));
    assert_string_equal(warned, "");
    ckpt_manager_close(b);
    assert_int_equal(ckpt_sys_open_files(), 0);
}

/* A pid that is certainly gone: a child that has exited and been reaped. */
static pid_t dead_pid(void)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    waitpid(pid, NULL, 0);
    return pid;
}

static void expect_takeover(const char *needle)
{
    ckpt_manager *m = NULL;
    expect_ok(open_mgr(&m));
    if (!strstr(warned, needle))
        fail_msg("warnings '%s' lack '%s'", warned, needle);
    ckpt_lock_record r;
    read_record(&r);
    assert_int_equal(r.pid, (int64_t)getpid()); /* ours now */
    ckpt_manager_close(m);
    assert_int_equal(access(lockpath, F_OK), -1);
}

static void test_stale_records(void **u)
{
    (void)u;
    char host[256], want[2048];
    host_of(host, sizeof host);
    pid_t gone = dead_pid();
    plant_record(gone, host, 12345);
    snprintf(want, sizeof want,
             "taking over the stale lock of checkpoint root '%s' from pid %ld on host %s since 2023-11-14 22:13:20 UTC "
             "(job 777): that process is gone", root, (long)gone, host);
    expect_takeover(want);
    /* a live pid whose start time differs: the pid was reused */
    plant_record(getpid(), host, 1);
    pid_t child = fork();
    if (child == 0) { /* the record names the parent, which holds no lock: for the child, stale */
        ckpt_manager *m = NULL;
        int rc = open_mgr(&m);
        int ok = rc == CKPT_OK && strstr(warned, "that process is gone") != NULL;
        ckpt_manager_close(m);
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    waitpid(child, &st, 0);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    /* another host, its lock released */
    plant_record(4242, "node-far-away", 99);
    snprintf(want, sizeof want, "taking over the lock of checkpoint root '%s' from pid 4242 on host node-far-away since "
             "2023-11-14 22:13:20 UTC (job 777): its lock was released (that job ended or its host went down)", root);
    expect_takeover(want);
    /* garbage */
    FILE *f = fopen(lockpath, "w");
    fputs("not a record\n", f);
    fclose(f);
    expect_takeover("whose record is unreadable (it does not start with the line 'ckpt-manager-lock'");
    /* an empty file (a holder killed between creating and writing it): silently ours */
    fclose(fopen(lockpath, "w"));
    ckpt_manager *m = NULL;
    expect_ok(open_mgr(&m));
    assert_string_equal(warned, "");
    ckpt_manager_close(m);
}

static void test_live_holder_without_lock(void **u)
{
    (void)u;
    /* a live process of this host named by a record, holding no lock: what a file system whose
     * locks do not reach other processes looks like. Refused. */
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t holder = fork();
    if (holder == 0) {
        char c;
        close(pfd[1]);
        ssize_t r = read(pfd[0], &c, 1); /* lives until the parent closes the pipe */
        (void)r;
        _exit(0);
    }
    close(pfd[0]);
    ckpt_lock_record self;
    ckpt_lock_record_self(&self);
    char sp[64], s[1024];
    snprintf(sp, sizeof sp, "/proc/%ld/stat", (long)holder);
    FILE *f = fopen(sp, "r");
    assert_non_null(f);
    assert_non_null(fgets(s, sizeof s, f));
    fclose(f);
    const char *q = strrchr(s, ')');
    int field = 2;
    for (q++; *q && field < 22; q++)
        if (*q == ' ')
            field++;
    plant_record(holder, self.host, strtoull(q, NULL, 10));
    ckpt_manager *m = NULL;
    int rc = open_mgr(&m);
    char want[512];
    snprintf(want, sizeof want, "is in use by another job: pid %ld on host %s since", (long)holder, self.host);
    if (rc != CKPT_EBUSY || !strstr(ckpt_errmsg(), want) || !strstr(ckpt_errmsg(), "its locks are not shared"))
        fail_msg("%s '%s'", ckpt_status_name(rc), ckpt_errmsg());
    close(pfd[1]);
    waitpid(holder, NULL, 0);
    expect_takeover("that process is gone");
}

static void test_no_locks_and_symlink(void **u)
{
    (void)u;
    setenv("CKPT_FAULT", "lock@1:ENOLCK", 1);
    expect_ok(ckpt_fault_reset());
    ckpt_manager *m = NULL;
    expect_ok(open_mgr(&m));
    unsetenv("CKPT_FAULT");
    expect_ok(ckpt_fault_reset());
    char want[2048];
    snprintf(want, sizeof want, "the file system of checkpoint root '%s' has no file locks (No locks available): "
             "only the lock record keeps a second job on this host out", root);
    if (!strstr(warned, want))
        fail_msg("warnings '%s'", warned);
    ckpt_manager_close(m);
    /* without locks, a record of another host is never taken over */
    plant_record(4242, "node-far-away", 99);
    setenv("CKPT_FAULT", "lock@1:ENOLCK", 1);
    expect_ok(ckpt_fault_reset());
    int rc = open_mgr(&m);
    unsetenv("CKPT_FAULT");
    expect_ok(ckpt_fault_reset());
    if (rc != CKPT_EBUSY || !strstr(ckpt_errmsg(), "pid 4242 on host node-far-away") ||
        !strstr(ckpt_errmsg(), "no locks to tell whether it still runs: when that job is gone, remove the lock file"))
        fail_msg("%s '%s'", ckpt_status_name(rc), ckpt_errmsg());
    unlink(lockpath);
    /* a symlink planted as the lock file */
    char target[1200];
    snprintf(target, sizeof target, "%s/elsewhere", dir);
    fclose(fopen(target, "w"));
    assert_int_equal(symlink(target, lockpath), 0);
    rc = open_mgr(&m);
    if (rc != CKPT_EIO || !strstr(ckpt_errmsg(), "ckpt-manager.lock' of checkpoint root") ||
        !strstr(ckpt_errmsg(), "it is a symbolic link (refused)"))
        fail_msg("%s '%s'", ckpt_status_name(rc), ckpt_errmsg());
    unlink(lockpath);
    assert_int_equal(ckpt_sys_open_files(), 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: test_lock SCRATCH_DIR\n");
        return 2;
    }
    snprintf(dir, sizeof dir, "%s", argv[1]);
    snprintf(root, sizeof root, "%s/root", dir);
    snprintf(lockpath, sizeof lockpath, "%s/%s", root, CKPT_ROOT_LOCK_FILE);
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", dir, root);
    if (system(cmd) != 0)
        return 1;
    unsetenv("CKPT_FAULT");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_manager_refused),
        cmocka_unit_test(test_stale_records),
        cmocka_unit_test(test_live_holder_without_lock),
        cmocka_unit_test(test_no_locks_and_symlink),
    };
    return cmocka_run_group_tests_name("lock", tests, NULL, NULL);
}
