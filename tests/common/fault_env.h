/* fault_env.h -- tests: sets CKPT_FAULT (NULL or "" unsets it) and restarts the fault layer's
 * counters and rules (fault.h); returns ckpt_fault_reset's status. */
#ifndef CKPT_TEST_FAULT_ENV_H
#define CKPT_TEST_FAULT_ENV_H

#include "fault.h"

#include <stdlib.h>

static inline int test_set_faults(const char *spec)
{
    if (spec && *spec)
        setenv("CKPT_FAULT", spec, 1);
    else
        unsetenv("CKPT_FAULT");
    return ckpt_fault_reset();
}

#endif
