/* fault.c -- CKPT_FAULT: named failure points and counted system-call faults (see fault.h). */
#include "fault.h"
#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RULES 64

typedef struct rule {
    ckpt_io_kind kind;
    uint64_t k;
    int from_on; /* K+ */
    ckpt_fault_action act;
} rule;

static const char *const kind_names[CKPT_IO_KINDS] = {"open",   "read",  "write", "truncate", "fsync", "rename",
                                                      "mkdir",  "unlink", "rmdir", "close",    "lock",
                                                      "mpiio"};

static const struct {
    const char *name;
    int err;
} errnos[] = {{"ENOSPC", ENOSPC}, {"EIO", EIO},       {"EDQUOT", EDQUOT}, {"EROFS", EROFS},
              {"EACCES", EACCES}, {"EMFILE", EMFILE}, {"ENOLCK", ENOLCK}};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static rule rules[MAX_RULES];
static int nrules;
static _Atomic uint64_t counts[CKPT_IO_KINDS];
static ckpt_fault_trace_fn trace_fn;
static void *trace_user;

int ckpt_fault(const char *point)
{
    const char *v = getenv("CKPT_FAULT");
    if (!v || !*v)
        return 0;
    size_t n = strlen(point);
    for (const char *p = v; (p = strstr(p, point)) != NULL; p += n)
        if ((p == v || p[-1] == ',') && (p[n] == '\0' || p[n] == ','))
            return 1;
    return 0;
}

const char *ckpt_io_kind_name(ckpt_io_kind kind)
{
    return (unsigned)kind < CKPT_IO_KINDS ? kind_names[kind] : NULL;
}

/* One item "KIND@K[+][:WHAT]" of length len at s into *r; 0 for a named point (no '@'), 1 for
 * a rule, -1 when malformed. */
static int parse_item(const char *s, size_t len, rule *r)
{
    const char *at = memchr(s, '@', len);
    if (!at)
        return 0;
    memset(r, 0, sizeof *r);
    int kind = -1;
    for (int i = 0; i < CKPT_IO_KINDS; i++)
        if ((size_t)(at - s) == strlen(kind_names[i]) && memcmp(s, kind_names[i], (size_t)(at - s)) == 0)
            kind = i;
    if (kind < 0)
        return -1;
    r->kind = (ckpt_io_kind)kind;
    const char *p = at + 1, *end = s + len;
    uint64_t k = 0;
    if (p == end || *p < '0' || *p > '9')
        return -1;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (k > (UINT64_MAX - 9) / 10)
            return -1;
        k = k * 10 + (uint64_t)(*p - '0');
    }
    if (k == 0)
        return -1;
    r->k = k;
    if (p < end && *p == '+') {
        r->from_on = 1;
        p++;
    }
    r->act.err = ENOSPC;
    if (p == end)
        return 1;
    if (*p++ != ':')
        return -1;
    size_t wl = (size_t)(end - p);
    r->act.err = 0;
    if (wl == 5 && memcmp(p, "short", 5) == 0)
        r->act.half = 1;
    else if (wl == 5 && memcmp(p, "crash", 5) == 0)
        r->act.crash = 1;
    else {
        for (size_t i = 0; i < sizeof errnos / sizeof errnos[0]; i++)
            if (wl == strlen(errnos[i].name) && memcmp(p, errnos[i].name, wl) == 0)
                r->act.err = errnos[i].err;
        if (!r->act.err)
            return -1;
    }
    if (r->act.half && r->kind != CKPT_IO_WRITE)
        return -1;
    return 1;
}

/* Parses CKPT_FAULT into the rule table (called with mu held). */
static int load_rules(void)
{
    nrules = 0;
    const char *v = getenv("CKPT_FAULT");
    if (!v)
        return CKPT_OK;
    for (const char *s = v; *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        rule r;
        int got = parse_item(s, len, &r);
        if (got < 0) {
            int n = len > 200 ? 200 : (int)len;
            nrules = 0;
            return ckpt_error(CKPT_EINVAL,
                              "CKPT_FAULT item '%.*s' is malformed: expected a point name or KIND@K[+][:WHAT] "
                              "(KIND open|read|write|truncate|fsync|rename|mkdir|unlink|rmdir|close|lock, K >= 1, "
                              "WHAT ENOSPC|EIO|EDQUOT|EROFS|EACCES|EMFILE|ENOLCK|short|crash; short only for write)",
                              n, s);
        }
        if (got == 1) {
            if (nrules == MAX_RULES) {
                nrules = 0;
                return ckpt_error(CKPT_EINVAL, "CKPT_FAULT has more than %d counted rules", MAX_RULES);
            }
            rules[nrules++] = r;
        }
        s += len;
        if (*s == ',')
            s++;
    }
    return CKPT_OK;
}

static void first_load(void)
{
    pthread_mutex_lock(&mu);
    int st = ckpt_errcode();
    char msg[CKPT_ERRMSG_MAX];
    snprintf(msg, sizeof msg, "%s", ckpt_errmsg());
    if (load_rules() != CKPT_OK)
        fprintf(stderr, "libckpt: warning: %s; no counted faults are injected\n", ckpt_errmsg());
    ckpt_error(st, "%s", msg); /* the caller's last error stays as it was */
    pthread_mutex_unlock(&mu);
}

int ckpt_fault_reset(void)
{
    pthread_once(&once, first_load);
    pthread_mutex_lock(&mu);
    for (int i = 0; i < CKPT_IO_KINDS; i++)
        atomic_store(&counts[i], 0);
    int rc = load_rules();
    pthread_mutex_unlock(&mu);
    return rc;
}

ckpt_fault_action ckpt_fault_next(ckpt_io_kind kind, const char *what)
{
    ckpt_fault_action a = {0, 0, 0};
    if ((unsigned)kind >= CKPT_IO_KINDS)
        return a;
    pthread_once(&once, first_load);
    uint64_t k = atomic_fetch_add(&counts[kind], 1) + 1;
    if (nrules == 0 && !trace_fn)
        return a;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nrules; i++) {
        const rule *r = &rules[i];
        if (r->kind == kind && (k == r->k || (r->from_on && k > r->k))) {
            a = r->act;
            break;
        }
    }
    if (trace_fn)
        trace_fn(kind, k, what ? what : "", trace_user);
    pthread_mutex_unlock(&mu);
    return a;
}

void ckpt_fault_after(const ckpt_fault_action *a)
{
    if (a && a->crash)
        _exit(CKPT_FAULT_CRASH_EXIT);
}

uint64_t ckpt_fault_count(ckpt_io_kind kind)
{
    return (unsigned)kind < CKPT_IO_KINDS ? atomic_load(&counts[kind]) : 0;
}

void ckpt_fault_set_trace(ckpt_fault_trace_fn fn, void *user)
{
    pthread_once(&once, first_load);
    pthread_mutex_lock(&mu);
    trace_fn = fn;
    trace_user = user;
    pthread_mutex_unlock(&mu);
}

/* Counting mode: one line per process at exit (a destructor also runs when the library is
 * unloaded). Plain write(2): these calls are not counted themselves. */
static void report_counts(void)
{
    const char *dest = getenv("CKPT_FAULT_COUNT");
    if (!dest || !*dest)
        return;
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    if (!rank)
        rank = getenv("PMI_RANK");
    if (!rank)
        rank = getenv("PMIX_RANK");
    char line[512];
    int n = snprintf(line, sizeof line, "ckpt-fault-count pid=%ld rank=%s", (long)getpid(), rank ? rank : "-1");
    for (int i = 0; i < CKPT_IO_KINDS && n > 0 && (size_t)n < sizeof line; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, " %s=%llu", kind_names[i],
                      (unsigned long long)atomic_load(&counts[i]));
    if (n <= 0 || (size_t)n >= sizeof line - 1)
        return;
    line[n++] = '\n';
    int fd = strcmp(dest, "stderr") == 0 ? 2 : open(dest, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, (size_t)n); /* one O_APPEND write: lines of ranks do not mix */
    (void)w;
    if (fd != 2)
        close(fd);
}

__attribute__((destructor)) static void at_exit_report(void)
{
    report_counts();
}
