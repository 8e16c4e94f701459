/* io_group.h -- the file-per-group layout: the ranks of a group (a node, or every group_size
 * ranks) write one HDF5 file together through MPI-IO on their own communicator. Its contents are
 * those of a file-per-rank file for all the group's boxes (one dataset per box, chunks = pieces,
 * a checksum table), so the readers are the same. */
#ifndef CKPT_IO_GROUP_H
#define CKPT_IO_GROUP_H

#include "io_per_rank.h"

#include <mpi.h>

/*
 * Collective over `group`: every member learns every member's items (allgather), numbers their
 * checksum slots in global box id order (gids[i] is items[i]'s), creates `path` and every box
 * dataset, writes its own items (independently; collectively when compressed, as HDF5 requires
 * for filtered datasets), writes the checksum table, closes and (group rank 0) fsyncs. Fills
 * items' first_piece, checksums and stored_bytes. Returns this rank's status (the caller agrees).
 */
int ckpt_io_write_group(MPI_Comm group, const char *path, ckpt_write_item *items, const int64_t *gids, int64_t n,
                        const ckpt_io_codec *codec, int do_fsync);

#endif
