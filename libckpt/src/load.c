/* load.c -- ckpt_load: every rank reads what it wants through its own reader; the ranks then
 * agree on the outcome, so all return the same status. */
#include "ckpt.h"
#include "comm.h"
#include "error.h"

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
    if (rc == CKPT_OK)
        rc = ckpt_reader_open(path, &r);
    if (rc == CKPT_OK)
        rc = ckpt_reader_load(r, state, opts);
    ckpt_reader_close(r);
    rc = ckpt_comm_agree(&c, rc);
    ckpt_comm_close(&c);
    return rc;
}
