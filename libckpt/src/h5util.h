/* h5util.h -- the library's door to HDF5: one lock (Debian's parallel HDF5 is not
 * thread-safe), silenced auto-printing, dtype <-> HDF5 type mapping, small attribute helpers. */
#ifndef CKPT_H5UTIL_H
#define CKPT_H5UTIL_H

#include "ckpt.h"

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* Takes the library-wide HDF5 lock (recursive) and turns HDF5's error printing off for
 * this thread's calls until the matching unlock restores it. */
void ckpt_h5_lock(void);
void ckpt_h5_unlock(void);

/* The HDF5 file type a dtype is stored as (a shared handle: do not close it). */
hid_t ckpt_h5_type(ckpt_dtype dtype);

/* Sets a scalar attribute on an object. Return 0 or -1 (HDF5 error). */
int ckpt_h5_attr_str(hid_t obj, const char *name, const char *value);
int ckpt_h5_attr_i64(hid_t obj, const char *name, int64_t value);
int ckpt_h5_attr_i64_array(hid_t obj, const char *name, const int64_t *v, int n);

/* Reads a scalar string attribute into buf (NUL-terminated); -1 when absent or not a string. */
int ckpt_h5_read_attr_str(hid_t obj, const char *name, char *buf, size_t len);
/* Reads an integer attribute (any integer file type); -1 when absent. */
int ckpt_h5_read_attr_i64(hid_t obj, const char *name, int64_t *out);

/* Why the raw data of dataset ds would not come from its own file -- "is a virtual dataset (its
 * data would come from other files)" or "keeps its data in external files" -- or NULL when it
 * does (filters aside). Under the HDF5 lock. */
const char *ckpt_h5_data_elsewhere(hid_t ds);

/* A file access property list for data files (caller closes; under the HDF5 lock): files opened
 * by plain name inside the directory dirfd through the library's own driver (vfd.h: no symlink
 * followed, every call fault-injectable, write failures kept for ckpt_h5_close_file), the
 * 1.8-compatible format, so older readers (and h5py builds) open them, and a small metadata
 * cache -- HDF5's default 2 MiB per open file would make a bounded set of open files cost
 * gigabytes. -1 with the error set when HDF5 refuses. */
hid_t ckpt_h5_data_fapl(int dirfd);

/* The status of a failed HDF5 call given its error detail (ckpt_error_hdf5_detail): CKPT_EIO when
 * the library's driver reports a failed system call (the disk, not the data), else `otherwise`. */
int ckpt_h5_failure_status(const char *detail, int otherwise);

/* A variable-length UTF-8 string type (caller closes). */
hid_t ckpt_h5_vlen_str(void);

/* fsyncs a path (file or directory). Returns 0 or -errno. */
int ckpt_fsync_path(const char *path);

#endif
