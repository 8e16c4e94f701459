/* mpi_test.h -- the frame every multi-rank CMocka test shares: MPI up, rank/size known, a clean
 * scratch directory from argv[1], and one exit status agreed by all ranks. */
#ifndef CKPT_TEST_MPI_TEST_H
#define CKPT_TEST_MPI_TEST_H

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

/* MPI_Init, rank/size, and (rank 0) an emptied scratch directory argv[1] copied to base.
 * Returns 0, or 2 after MPI_Finalize when the arguments or rank count are wrong. */
static inline int mpi_test_begin(int *argc, char ***argv, const char *prog, int min_ranks, int *rank,
                                 int *nranks, char *base, size_t len)
{
    MPI_Init(argc, argv);
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, nranks);
    if (*argc != 2 || *nranks < min_ranks) {
        if (*rank == 0)
            fprintf(stderr, "usage: mpiexec -n N>=%d %s SCRATCH_DIR\n", min_ranks, prog);
        MPI_Finalize();
        return 2;
    }
    snprintf(base, len, "%s", (*argv)[1]);
    if (*rank == 0) {
        char cmd[8600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", base, base);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot prepare %s\n", base);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    return 0;
}

/* Agrees on the outcome (any rank's failures fail all), finalizes MPI; the exit status. */
static inline int mpi_test_end(int failed)
{
    int any = 0;
    MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return any ? 1 : 0;
}

#endif
