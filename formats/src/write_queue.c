/* A writer thread behind a small pool of buffers: the exporter fills one buffer (reading,
 * transposing, converting) while the thread writes the previous ones, so the file system's copy
 * into the page cache overlaps the work that produces the data. */
#include "error.h"
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define WRITEBACK_BYTES (64u << 20)

typedef struct wq_job {
    void *sink;
    const char *name;
    void *buf;
    size_t n;
} wq_job;

struct write_queue {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void **bufs;           /* every buffer, for free() */
    void **free_bufs;      /* stack of buffers nobody holds */
    int nfree, nbufs;
    wq_job *jobs;          /* FIFO ring of submitted buffers */
    int head, count;
    int busy;              /* the thread is writing a job */
    int stop;
    int started;           /* the thread runs */
    wq_write_fn write;
    wq_writeback_fn writeback; /* start disk writeback as the data come (or NULL) */
    size_t since_writeback; /* bytes written since */
    int status;            /* first failure of the thread */
    char msg[4096];
};

static void *writer_main(void *arg)
{
    write_queue *q = arg;
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (q->count == 0 && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        if (q->count == 0 && q->stop)
            break;
        wq_job j = q->jobs[q->head];
        q->head = (q->head + 1) % q->nbufs;
        q->count--;
        q->busy = 1;
        int failed = q->status != CKPTFMT_OK;
        pthread_mutex_unlock(&q->mu);
        /* after a failure the rest is dropped: the export is abandoned anyway */
        int s = failed ? CKPTFMT_OK : q->write(j.sink, j.name, j.buf, j.n);
        if (q->writeback && (q->since_writeback += j.n) >= WRITEBACK_BYTES) {
            q->writeback(j.sink);
            q->since_writeback = 0;
        }
        pthread_mutex_lock(&q->mu);
        if (s != CKPTFMT_OK && q->status == CKPTFMT_OK) {
            q->status = s;
            strncpy(q->msg, ckptfmt_errmsg(), sizeof q->msg - 1);
        }
        q->free_bufs[q->nfree++] = j.buf;
        q->busy = 0;
        pthread_cond_broadcast(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int wq_create(size_t buf_bytes, int nbufs, wq_write_fn write, wq_writeback_fn writeback, write_queue **out)
{
    write_queue *q = calloc(1, sizeof *q);
    if (!q)
        return fmt_error(CKPTFMT_ENOMEM, "out of memory");
    q->nbufs = nbufs;
    q->write = write;
    q->writeback = writeback;
    q->bufs = calloc((size_t)nbufs, sizeof *q->bufs);
    q->free_bufs = calloc((size_t)nbufs, sizeof *q->free_bufs);
    q->jobs = calloc((size_t)nbufs, sizeof *q->jobs);
    int ok = q->bufs && q->free_bufs && q->jobs;
    for (int k = 0; ok && k < nbufs; k++) {
        ok = (q->bufs[k] = malloc(buf_bytes)) != NULL;
        q->free_bufs[q->nfree++] = q->bufs[k];
    }
    if (!ok || pthread_mutex_init(&q->mu, NULL) != 0) {
        for (int k = 0; q->bufs && k < nbufs; k++)
            free(q->bufs[k]);
        free(q->bufs);
        free(q->free_bufs);
        free(q->jobs);
        free(q);
        return fmt_error(CKPTFMT_ENOMEM, "out of memory for %d output buffers of %zu bytes", nbufs, buf_bytes);
    }
    pthread_cond_init(&q->cv, NULL);
    if (pthread_create(&q->thread, NULL, writer_main, q) != 0) {
        wq_free(q);
        return fmt_error(CKPTFMT_EIO, "cannot start the writer thread");
    }
    q->started = 1;
    *out = q;
    return CKPTFMT_OK;
}

void *wq_acquire(write_queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->nfree == 0)
        pthread_cond_wait(&q->cv, &q->mu);
    void *b = q->free_bufs[--q->nfree];
    pthread_mutex_unlock(&q->mu);
    return b;
}

int wq_submit(write_queue *q, void *sink, const char *name, void *buf, size_t n)
{
    pthread_mutex_lock(&q->mu);
    int s = q->status;
    if (s == CKPTFMT_OK) {
        q->jobs[(q->head + q->count) % q->nbufs] = (wq_job){sink, name, buf, n};
        q->count++;
    } else {
        q->free_bufs[q->nfree++] = buf;
    }
    pthread_cond_broadcast(&q->cv);
    pthread_mutex_unlock(&q->mu);
    return s == CKPTFMT_OK ? CKPTFMT_OK : fmt_error(s, "%s", q->msg);
}

int wq_drain(write_queue *q)
{
    pthread_mutex_lock(&q->mu);
    while (q->count > 0 || q->busy)
        pthread_cond_wait(&q->cv, &q->mu);
    int s = q->status;
    pthread_mutex_unlock(&q->mu);
    return s == CKPTFMT_OK ? CKPTFMT_OK : fmt_error(s, "%s", q->msg);
}

void wq_free(write_queue *q)
{
    if (!q)
        return;
    if (q->started) {
        pthread_mutex_lock(&q->mu);
        q->stop = 1;
        pthread_cond_broadcast(&q->cv);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->thread, NULL);
    }
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    for (int k = 0; k < q->nbufs; k++)
        free(q->bufs[k]);
    free(q->bufs);
    free(q->free_bufs);
    free(q->jobs);
    free(q);
}
