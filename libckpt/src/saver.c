/* saver.c -- asynchronous saves. ckpt_saver_save plans collectively, then copies this rank's
 * boxes into a staging buffer (allocated once, reused by every save) and returns; a background
 * thread writes the staged boxes (no MPI on that thread); the collective commit runs on the
 * caller's thread in ckpt_saver_wait / ckpt_saver_test / the next save.
 *
 * Bounded memory: boxes are staged in order into the buffer; when the next one does not fit,
 * the caller waits for the writer to drain the buffer and starts over at its beginning. A box
 * larger than the whole buffer is not copied: the writer writes it straight from the caller's
 * memory while the caller waits. So the stall grows with the state beyond the budget, memory
 * does not. The shared layout's write is collective and therefore happens during the save call;
 * only its commit is deferred. */
#include "ckpt.h"
#include "error.h"
#include "gpu.h"
#include "io_per_rank.h"
#include "commit.h"
#include "dtype.h"
#include "save_job.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct ckpt_saver {
    MPI_Comm comm;
    int64_t budget;
    int no_copy;
    unsigned char *stage;
    int64_t stage_cap;

    ckpt_save_job job;
    int in_flight;      /* a job awaits its commit */
    int thread_running; /* the writer thread exists and must be joined */
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int64_t ready;   /* items [0, ready) may be written */
    int64_t written; /* items [0, written) are written */
    int done;        /* writer finished (file closed) */
    int status;      /* writer status */
    char errmsg[CKPT_ERRMSG_MAX];
    int stage_status; /* the caller thread's staging status (GPU copies), owned by that thread */
    char stage_msg[CKPT_ERRMSG_MAX];
};

void ckpt_saver_options_init(ckpt_saver_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->version = CKPT_SAVER_OPTIONS_VERSION;
    o->staging_bytes = (int64_t)1 << 30;
}

int ckpt_saver_create(MPI_Comm comm, const ckpt_saver_options *o, ckpt_saver **out)
{
    ckpt_saver_options d;
    ckpt_saver_options_init(&d);
    if (!o)
        o = &d;
    if (!out)
        return ckpt_error(CKPT_EINVAL, "ckpt_saver_create: out is NULL");
    if (o->version != CKPT_SAVER_OPTIONS_VERSION)
        return ckpt_error(CKPT_EINVAL, "saver options version %u; this library expects %d", o->version,
                          CKPT_SAVER_OPTIONS_VERSION);
    if (o->staging_bytes < 0)
        return ckpt_error(CKPT_EINVAL, "staging_bytes %lld is negative", (long long)o->staging_bytes);
    ckpt_saver *sv = calloc(1, sizeof *sv);
    if (!sv)
        return ckpt_error(CKPT_ENOMEM, "out of memory creating a saver");
    sv->comm = comm;
    sv->budget = o->staging_bytes;
    sv->no_copy = o->no_copy != 0;
    pthread_mutex_init(&sv->mu, NULL);
    pthread_cond_init(&sv->cv, NULL);
    *out = sv;
    return CKPT_OK;
}

static void *writer_main(void *arg)
{
    ckpt_saver *sv = arg;
    ckpt_save_job *j = &sv->job;
    ckpt_io_codec codec = {j->o.compress, j->o.level, j->o.shuffle, j->o.threads};
    char name[64];
    ckpt_save_rank_file(j, name, sizeof name);
    ckpt_rank_file f;
    int rc = ckpt_io_rank_open(j->tmp, name, &f);
    for (int64_t i = 0; i < j->nitems; i++) {
        pthread_mutex_lock(&sv->mu);
        while (sv->ready <= i)
            pthread_cond_wait(&sv->cv, &sv->mu);
        pthread_mutex_unlock(&sv->mu);
        if (rc == CKPT_OK)
            rc = ckpt_io_rank_write(&f, &j->items[i], &codec);
        pthread_mutex_lock(&sv->mu);
        sv->written = i + 1;
        pthread_cond_broadcast(&sv->cv);
        pthread_mutex_unlock(&sv->mu);
    }
    if (f.dirfd >= 0)
        rc = ckpt_io_rank_close(&f, j->o.fsync, rc, j->items, j->nitems);
    pthread_mutex_lock(&sv->mu);
    sv->status = rc;
    if (rc)
        memcpy(sv->errmsg, ckpt_errmsg(), sizeof sv->errmsg);
    sv->done = 1;
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
    return NULL;
}

/* Blocks until the writer has written items [0, n). */
static void wait_written(ckpt_saver *sv, int64_t n)
{
    pthread_mutex_lock(&sv->mu);
    while (sv->written < n && !sv->done)
        pthread_cond_wait(&sv->cv, &sv->mu);
    pthread_mutex_unlock(&sv->mu);
}

static void publish(ckpt_saver *sv, int64_t ready)
{
    pthread_mutex_lock(&sv->mu);
    sv->ready = ready;
    pthread_cond_broadcast(&sv->cv);
    pthread_mutex_unlock(&sv->mu);
}

/* The writer's status, once it is done (joins the thread). */
static int writer_status(ckpt_saver *sv)
{
    if (sv->thread_running) {
        pthread_join(sv->thread, NULL);
        sv->thread_running = 0;
    }
    if (sv->status)
        return ckpt_error(sv->status, "%s", sv->errmsg);
    if (sv->stage_status)
        return ckpt_error(sv->stage_status, "%s", sv->stage_msg);
    return CKPT_OK;
}

int ckpt_saver_wait(ckpt_saver *sv)
{
    if (!sv)
        return ckpt_error(CKPT_EINVAL, "ckpt_saver_wait: saver is NULL");
    if (!sv->in_flight)
        return CKPT_OK;
    int rc = writer_status(sv);
    rc = ckpt_save_finish(&sv->job, rc);
    ckpt_save_job_free(&sv->job);
    sv->in_flight = 0;
    return rc;
}

int ckpt_saver_test(ckpt_saver *sv, int *done)
{
    if (!sv || !done)
        return ckpt_error(CKPT_EINVAL, "ckpt_saver_test: NULL argument");
    if (!sv->in_flight) {
        *done = 1;
        return CKPT_OK;
    }
    pthread_mutex_lock(&sv->mu);
    int mine = sv->done, all = mine;
    pthread_mutex_unlock(&sv->mu);
    if (sv->job.c.active && MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, sv->job.c.comm) != MPI_SUCCESS)
        return ckpt_error(CKPT_EMPI, "MPI_Allreduce in ckpt_saver_test failed");
    *done = all;
    return all ? ckpt_saver_wait(sv) : CKPT_OK;
}

int ckpt_saver_in_flight(const ckpt_saver *sv, const char **path)
{
    if (path)
        *path = sv && sv->in_flight ? sv->job.path : NULL;
    return sv ? sv->in_flight : 0;
}

/* Marks the in-flight save as finished with status rc (reported at wait/test). */
static void finish_early(ckpt_saver *sv, int rc)
{
    sv->done = 1;
    sv->status = rc;
    memcpy(sv->errmsg, ckpt_errmsg(), sizeof sv->errmsg);
}

static int start_writer(ckpt_saver *sv)
{
    if (pthread_create(&sv->thread, NULL, writer_main, sv) != 0) {
        finish_early(sv, ckpt_error(CKPT_ENOMEM, "cannot start the background writer thread"));
        return CKPT_ENOMEM;
    }
    sv->thread_running = 1;
    return CKPT_OK;
}

int ckpt_saver_save(ckpt_saver *sv, const char *path, const ckpt_state *state, const ckpt_save_options *opts)
{
    if (!sv)
        return ckpt_error(CKPT_EINVAL, "ckpt_saver_save: saver is NULL");
    int rc = ckpt_saver_wait(sv); /* one save at a time; a failed previous save is reported here */
    if (rc)
        return rc;
    rc = ckpt_save_prepare(&sv->job, sv->comm, path, state, opts);
    if (rc) {
        ckpt_save_job_free(&sv->job);
        return rc;
    }
    sv->in_flight = 1;
    sv->status = sv->stage_status = CKPT_OK;
    ckpt_save_job *j = &sv->job;
    if (j->o.layout != CKPT_LAYOUT_PER_RANK) {
        finish_early(sv, ckpt_save_write_collective(j)); /* the commit (and any error) comes at wait/test */
        return CKPT_OK;
    }
    sv->ready = sv->written = 0;
    sv->done = 0;
    sv->status = sv->stage_status = CKPT_OK;
    if (j->nitems == 0) {
        sv->done = 1;
        return CKPT_OK;
    }
    if (sv->no_copy) {
        int rc = ckpt_save_stage_device(j); /* GPU memory cannot be written in place */
        if (rc) {
            finish_early(sv, rc);
            return CKPT_OK;
        }
        if (start_writer(sv) == CKPT_OK)
            publish(sv, j->nitems); /* written straight from the caller's memory */
        return CKPT_OK;
    }
    /* the staging buffer: allocated once, at most the budget */
    int64_t need = 0;
    for (int64_t i = 0; i < j->nitems; i++) {
        int64_t b = ckpt_box_volume(&j->items[i].box) * (int64_t)ckpt_dtype_size(j->items[i].dtype);
        need += b <= sv->budget ? b : 0;
    }
    int64_t want = need < sv->budget ? need : sv->budget;
    if (want > sv->stage_cap) { /* pinned when a GPU is present: device copies run at full speed */
        ckpt_gpu_host_free(sv->stage);
        sv->stage = ckpt_gpu_host_alloc((size_t)want);
        sv->stage_cap = sv->stage ? want : 0;
    }
    if (start_writer(sv) != CKPT_OK)
        return CKPT_OK; /* reported at wait */
    int64_t used = 0;
    for (int64_t i = 0; i < j->nitems; i++) {
        ckpt_write_item *it = &j->items[i];
        int64_t b = ckpt_box_volume(&it->box) * (int64_t)ckpt_dtype_size(it->dtype);
        if (b > sv->stage_cap) { /* larger than the whole buffer: written from the caller's memory */
            if (j->device[i]) { /* ...after a host copy, for GPU memory */
                wait_written(sv, i);
                int rc = ckpt_save_stage_device_item(j, i);
                if (rc && !sv->stage_status) { /* reported at wait */
                    sv->stage_status = rc;
                    memcpy(sv->stage_msg, ckpt_errmsg(), sizeof sv->stage_msg);
                }
            }
            publish(sv, i + 1);
            wait_written(sv, i + 1);
            continue;
        }
        if (used + b > sv->stage_cap) { /* buffer full: let the writer drain it */
            wait_written(sv, i);
            used = 0;
        }
        if (ckpt_gpu_copy(sv->stage + used, it->data, (size_t)b) != CKPT_OK && !sv->stage_status) {
            sv->stage_status = CKPT_EIO;
            memcpy(sv->stage_msg, ckpt_errmsg(), sizeof sv->stage_msg);
        }
        it->data = sv->stage + used;
        used += b;
        publish(sv, i + 1);
    }
    return CKPT_OK;
}

void ckpt_saver_free(ckpt_saver *sv)
{
    if (!sv)
        return;
    if (sv->in_flight) {
        /* not committed: the caller did not wait. Let the writer finish, leave it uncommitted. */
        writer_status(sv);
        if (sv->job.c.rank == 0 && sv->job.have_tmp)
            ckpt_remove_tree(sv->job.tmp);
        ckpt_save_job_free(&sv->job);
    }
    pthread_mutex_destroy(&sv->mu);
    pthread_cond_destroy(&sv->cv);
    ckpt_gpu_host_free(sv->stage);
    free(sv);
}
