/* progress.c -- see progress.h. */
#include "progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define LINE_WIDTH 79

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void progress_begin(progress *p, const char *label, int64_t total)
{
    memset(p, 0, sizeof *p);
    p->enabled = total > 0 && isatty(STDERR_FILENO);
    p->total = total;
    p->start = p->last = now();
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
}

static void draw(progress *p, const char *what)
{
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 1.0;
    if (frac > 1)
        frac = 1;
    int fill = (int)(frac * BAR_WIDTH);
    char bar[BAR_WIDTH + 1];
    for (int i = 0; i < BAR_WIDTH; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[BAR_WIDTH] = 0;
    char line[256];
    int n = snprintf(line, sizeof line, "\r%s [%s] %3d%% %s", p->label, bar, (int)(frac * 100), what ? what : "");
    if (n > LINE_WIDTH + 1)
        line[LINE_WIDTH + 1] = 0; /* \r + 79 columns */
    fprintf(stderr, "%-*s", LINE_WIDTH + 1, line);
    fflush(stderr);
    p->drawn = 1;
}

void progress_add(progress *p, int64_t n, const char *what)
{
    p->done += n;
    if (!p->enabled)
        return;
    double t = now();
    if (t - p->start < 0.3 || t - p->last < 0.1) /* no flicker for quick runs */
        return;
    p->last = t;
    draw(p, what);
}

void progress_clear(progress *p)
{
    if (p->enabled && p->drawn) {
        fprintf(stderr, "\r%*s\r", LINE_WIDTH, "");
        fflush(stderr);
    }
    p->drawn = 0;
}

void progress_end(progress *p)
{
    progress_clear(p);
    p->enabled = 0;
}
