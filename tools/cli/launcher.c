/* launcher.c -- see launcher.h. */
#include "launcher.h"

#include "args.h"

#include <limits.h>
#include <stdlib.h>

int launcher_rank(void)
{
    static const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        long r;
        if (args_int(getenv(vars[i]), 0, INT_MAX, &r))
            return (int)r;
    }
    return 0;
}
