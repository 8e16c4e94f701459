/* load.c -- ckpt_load: rank 0 checks the commit marker and reads the index once; its bytes are
 * broadcast and every rank opens them in memory, so no other rank touches the metadata on the
 * file system. Every rank then reads what it wants through its own reader, and the ranks agree
 * on the outcome, so all return the same status. */
#include "ckpt.h"
#include "comm.h"
#include "error.h"
#include "reader.h"

#include <stdlib.h>
#include <string.h>

void ckpt_load_options_init(ckpt_load_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->version = CKPT_LOAD_OPTIONS_VERSION;
    o->verify = 1;
    o->threads = 1;
}

int ckpt_load(MPI_Comm comm, const char *path, ckpt_state *state, const ckpt_load_options *opts)
{
    ckpt_error_clear();
    ckpt_comm c;
    int rc = ckpt_comm_open(comm, &c);
    if (rc)
        return rc;
    ckpt_reader *r = NULL;
    if (!state)
        rc = ckpt_error(CKPT_EINVAL, "ckpt_load: state is NULL");
    rc = ckpt_comm_agree(&c, rc);
    unsigned char *image = NULL;
    size_t len = 0;
    if (rc == CKPT_OK) {
        int st = c.rank == 0 ? ckpt_reader_read_index(path, &image, &len) : CKPT_OK;
        rc = ckpt_comm_bcast_bytes(&c, st, &image, &len);
    }
    if (rc == CKPT_OK)
        rc = ckpt_reader_open_image(path, image, len, &r);
    free(image);
    if (rc == CKPT_OK)
        rc = ckpt_reader_load(r, state, opts);
    ckpt_reader_close(r);
    rc = ckpt_comm_agree(&c, rc);
    ckpt_comm_close(&c);
    return rc;
}
