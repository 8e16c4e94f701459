/* vfd.h -- "ckpt_sysio", an HDF5 virtual file driver (HDF5 1.10 H5FD_class_t) for the files of
 * a checkpoint directory:
 *
 *   - a file is a plain name (no '/', not "." or "..") opened relative to the directory's
 *     descriptor with O_NOFOLLOW: a symlinked data file is refused (ELOOP), and no name can
 *     lead out of the directory;
 *   - every open, read, write, truncate, lock and close goes through sysio.h, so the fault
 *     layer (CKPT_FAULT, fault.h) reaches HDF5's own I/O and the library's descriptor bound
 *     covers HDF5 files too;
 *   - a failed open or read pushes an HDF5 error naming the call, the file and strerror (what
 *     ckpt_error_hdf5_detail reports). A failed write, truncate or close is *not* reported to
 *     HDF5: HDF5 1.10.8 does not survive one inside its metadata cache flush (a failed
 *     H5Fflush/H5Fclose leaves a half-destroyed file that crashes the next close of it, and
 *     the library's shutdown at exit -- the SIGSEGV at MPI_Finalize after a full disk). The
 *     driver records the first such failure (errno, call, offset, file), skips every later
 *     write of that file (a full disk stays full), and hands it back through
 *     ckpt_vfd_error and ckpt_h5_close_file: a file of this driver is written correctly
 *     exactly when ckpt_h5_close_file returns 0.
 *
 * Otherwise it behaves as HDF5's sec2 driver: POSIX pread/pwrite, metadata aggregation, data
 * sieving, reads past the end of file give zeros. Its files are ordinary HDF5 files. */
#ifndef CKPT_VFD_H
#define CKPT_VFD_H

#include <hdf5.h>

/* A new file access property list whose files are opened inside the directory `dirfd`
 * (which must stay open until H5Fopen/H5Fcreate returns; the files do not need it after).
 * Call with the HDF5 lock held (h5util.h); close it with H5Pclose. -1 with the library's error
 * set when HDF5 refuses. */
hid_t ckpt_vfd_fapl(int dirfd);

/* The driver's id (registered on first use; under the HDF5 lock). -1 on failure. */
hid_t ckpt_vfd_id(void);

/* fsyncs an open file of this driver through sysio (no reopening by path). 0 or -errno;
 * -EINVAL when the file does not use this driver. Under the HDF5 lock. */
int ckpt_vfd_fsync(hid_t file);

/* The first write-side failure of an open file of this driver: 0, or -errno with
 * "; ckpt_sysio: write of N bytes at offset X of 'F' failed: ..." in why (may be NULL);
 * -EINVAL for a file of another driver. Under the HDF5 lock. */
int ckpt_vfd_error(hid_t file, char *why, size_t wlen);

/* Closes a file so that no id of it stays open, whatever the disk did: closes the objects
 * still open in it, then the file. Returns 0, or -1 with "; ckpt_sysio: ..." (the first failed
 * write, truncate or close of the file) or "; HDF5: ..." detail in why (may be NULL): the data
 * is not all on disk and the caller reports an error. Always close this driver's files with
 * it (a plain H5Fclose loses the recorded failure). Under the HDF5 lock. */
int ckpt_h5_close_file(hid_t file, char *why, size_t wlen);

#endif
