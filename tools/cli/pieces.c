/* pieces.c -- see pieces.h. */
#include "pieces.h"

#include "interrupt.h"
#include "slab.h"

#include <stdio.h>
#include <string.h>

static pieces_status lib_fail(pieces_job *j, pieces_status s, int rc)
{
    j->lib_status = rc;
    snprintf(j->err, sizeof j->err, "%s", ckpt_errmsg());
    return s;
}

int pieces_fill_read(void *arg, const char *name, int ndim, const int64_t *off, const int64_t *ext, int64_t n,
                     void *buf, char *err, size_t errlen)
{
    (void)ndim;
    (void)n;
    pieces_source *s = arg;
    if (ckpt_reader_read(s->r, name, s->dtype, off, ext, buf, 1) != CKPT_OK) {
        snprintf(err, errlen, "cannot read the source: %s", ckpt_errmsg());
        return -1;
    }
    return 0;
}

pieces_status pieces_plan(pieces_job *j, const char *name)
{
    int64_t np;
    int rc = ckpt_writer_box_piece(j->w, name, 0, -1, NULL, NULL, &np);
    return rc == CKPT_OK ? PIECES_OK : lib_fail(j, PIECES_PLAN, rc);
}

pieces_status pieces_tensor(pieces_job *j, const char *name, int ndim, size_t es)
{
    int64_t off[CKPT_MAX_NDIM] = {0}, ext[CKPT_MAX_NDIM] = {0};
    for (int64_t b = 0;; b++) {
        int64_t np = 0;
        int rc = ckpt_writer_box_piece(j->w, name, b, -1, NULL, NULL, &np);
        if (rc == CKPT_ENOTFOUND)
            return PIECES_OK; /* past the last saved box (the checkpoint is planned already) */
        if (rc != CKPT_OK)
            return lib_fail(j, PIECES_WRITE, rc);
        j->boxes++;
        for (int64_t k = 0; k < np; k++) {
            if (interrupt_signal()) {
                snprintf(j->err, sizeof j->err, "interrupted by signal %d", interrupt_signal());
                return PIECES_INTERRUPTED;
            }
            if ((rc = ckpt_writer_box_piece(j->w, name, b, k, off, ext, NULL)) != CKPT_OK)
                return lib_fail(j, PIECES_WRITE, rc);
            int64_t n = box_volume(ndim, ext);
            if ((size_t)n * es > j->buf_bytes) {
                snprintf(j->err, sizeof j->err, "tensor '%s': piece %lld of box %lld has %lld bytes, more than the "
                         "%zu-byte buffer", name, (long long)k, (long long)b, (long long)(n * (int64_t)es),
                         j->buf_bytes);
                return PIECES_WRITE;
            }
            if (j->fill(j->arg, name, ndim, off, ext, n, j->buf, j->err, sizeof j->err) != 0)
                return PIECES_FILL;
            if ((rc = ckpt_writer_write(j->w, name, off, ext, j->buf)) != CKPT_OK)
                return lib_fail(j, PIECES_WRITE, rc);
            j->pieces++;
            j->bytes += n * (int64_t)es;
            if (j->bar)
                progress_add(j->bar, n * (int64_t)es, name);
        }
    }
}
