/* launcher.h -- whether this process was started by an MPI launcher (mpirun/mpiexec of Open MPI
 * or MPICH, srun) as one of several, told from the environment the launcher sets, without
 * initialising MPI. The writing tools are one-process programs (ckpt_writer): under a launcher
 * only the process of rank 0 works and the others exit at once. */
#ifndef CKPT_TOOLS_LAUNCHER_H
#define CKPT_TOOLS_LAUNCHER_H

/* This process's rank under a launcher (OMPI_COMM_WORLD_RANK, PMIX_RANK, PMI_RANK,
 * SLURM_PROCID), 0 when started otherwise. */
int launcher_rank(void);

#endif
