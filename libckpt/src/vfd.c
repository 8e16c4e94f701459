/* vfd.c -- the "ckpt_sysio" HDF5 virtual file driver (see vfd.h). */
#include "vfd.h"
#include "error.h"
#include "sysio.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define VFD_NAME "ckpt_sysio"
#define VFD_MAXADDR (((haddr_t)1 << 62) - 1)

/* The driver info a file access property list carries. */
typedef struct vfd_info {
    int dirfd;
} vfd_info;

typedef struct vfd_file {
    H5FD_t pub; /* HDF5's part: first */
    int fd;
    int dirfd; /* as given at open (not owned) */
    haddr_t eoa, eof;
    dev_t dev;
    ino_t ino;
    char name[256];
    /* The first failed write, truncate or close (sticky; see vfd.h): errno and what failed. */
    int err;
    char errmsg[320];
    struct vfd_late *late; /* where vfd_close leaves them (ckpt_h5_close_file) */
} vfd_file;

typedef struct vfd_late {
    int err;
    char msg[320];
} vfd_late;

/* Records a write-side failure instead of reporting it to HDF5 (see vfd.h for why). */
static void record(vfd_file *f, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void record(vfd_file *f, int err, const char *fmt, ...)
{
    if (f->err)
        return;
    f->err = -err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->errmsg, sizeof f->errmsg, fmt, ap);
    va_end(ap);
}

static hid_t driver_id = -1;

#define PUSH(maj, min, ...) H5Epush2(H5E_DEFAULT, __FILE__, __func__, __LINE__, H5E_ERR_CLS, maj, min, __VA_ARGS__)

static void *vfd_fapl_copy(const void *info)
{
    vfd_info *c = malloc(sizeof *c);
    if (c && info)
        *c = *(const vfd_info *)info;
    else if (c)
        c->dirfd = -1;
    return c;
}

static herr_t vfd_fapl_free(void *info)
{
    free(info);
    return 0;
}

static void *vfd_fapl_get(H5FD_t *f)
{
    vfd_info i = {((vfd_file *)f)->dirfd};
    return vfd_fapl_copy(&i);
}

static H5FD_t *vfd_open(const char *name, unsigned flags, hid_t fapl, haddr_t maxaddr)
{
    const vfd_info *info = H5Pget_driver_info(fapl);
    if (!info || info->dirfd < 0) {
        H5Eclear2(H5E_DEFAULT); /* H5Pget_driver_info's own complaint: ours says more */
        PUSH(H5E_VFL, H5E_BADVALUE, VFD_NAME ": the file access property list has no directory (use ckpt_vfd_fapl)");
        return NULL;
    }
    if (!ckpt_sys_plain_name(name)) {
        PUSH(H5E_VFL, H5E_BADVALUE, VFD_NAME ": '%s' is not a plain file name inside the checkpoint directory", name);
        return NULL;
    }
    if (maxaddr == 0 || maxaddr == HADDR_UNDEF || maxaddr > VFD_MAXADDR) {
        PUSH(H5E_VFL, H5E_BADRANGE, VFD_NAME ": bad maximum address for '%s'", name);
        return NULL;
    }
    int o = (flags & H5F_ACC_RDWR) ? O_RDWR : O_RDONLY;
    if (flags & H5F_ACC_TRUNC)
        o |= O_TRUNC;
    if (flags & H5F_ACC_CREAT)
        o |= O_CREAT;
    if (flags & H5F_ACC_EXCL)
        o |= O_EXCL;
    int fd = ckpt_sys_open_in(info->dirfd, name, o, 0644);
    if (fd < 0) {
        PUSH(H5E_FILE, H5E_CANTOPENFILE, VFD_NAME ": cannot open '%s': %s", name,
             fd == -ELOOP ? "it is a symbolic link (refused)" : strerror(-fd));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ckpt_sys_close(fd);
        PUSH(H5E_FILE, H5E_CANTOPENFILE, VFD_NAME ": '%s' is not a regular file", name);
        return NULL;
    }
    vfd_file *f = calloc(1, sizeof *f);
    if (!f) {
        ckpt_sys_close(fd);
        PUSH(H5E_RESOURCE, H5E_NOSPACE, VFD_NAME ": out of memory opening '%s'", name);
        return NULL;
    }
    f->fd = fd;
    f->dirfd = info->dirfd;
    f->eof = (haddr_t)st.st_size;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    snprintf(f->name, sizeof f->name, "%s", name);
    return &f->pub;
}

static herr_t vfd_close(H5FD_t *pf)
{
    vfd_file *f = (vfd_file *)pf;
    int err = ckpt_sys_close(f->fd); /* the descriptor is released even when this fails */
    if (err)
        record(f, err, VFD_NAME ": close of '%s' failed: %s", f->name, strerror(-err));
    if (f->late) {
        f->late->err = f->err;
        snprintf(f->late->msg, sizeof f->late->msg, "%s", f->errmsg);
    }
    free(f);
    return 0; /* a failed close would leave HDF5 with a half-destroyed file */
}

static int vfd_cmp(const H5FD_t *a, const H5FD_t *b)
{
    const vfd_file *x = (const vfd_file *)a, *y = (const vfd_file *)b;
    if (x->dev != y->dev)
        return x->dev < y->dev ? -1 : 1;
    if (x->ino != y->ino)
        return x->ino < y->ino ? -1 : 1;
    return 0;
}

static herr_t vfd_query(const H5FD_t *f, unsigned long *flags)
{
    (void)f;
    /* not H5FD_FEAT_POSIX_COMPAT_HANDLE: with it HDF5 lstat()s the name relative to the working
     * directory to resolve symlinks, which is exactly what this driver must not do */
    *flags = H5FD_FEAT_AGGREGATE_METADATA | H5FD_FEAT_ACCUMULATE_METADATA | H5FD_FEAT_DATA_SIEVE |
             H5FD_FEAT_AGGREGATE_SMALLDATA;
    return 0;
}

static haddr_t vfd_get_eoa(const H5FD_t *f, H5FD_mem_t type)
{
    (void)type;
    return ((const vfd_file *)f)->eoa;
}

static herr_t vfd_set_eoa(H5FD_t *f, H5FD_mem_t type, haddr_t addr)
{
    (void)type;
    if (addr > VFD_MAXADDR) {
        PUSH(H5E_VFL, H5E_OVERFLOW, VFD_NAME ": address %llu past the maximum in '%s'", (unsigned long long)addr,
             ((vfd_file *)f)->name);
        return -1;
    }
    ((vfd_file *)f)->eoa = addr;
    return 0;
}

static haddr_t vfd_get_eof(const H5FD_t *f, H5FD_mem_t type)
{
    (void)type;
    return ((const vfd_file *)f)->eof;
}

static herr_t vfd_get_handle(H5FD_t *f, hid_t fapl, void **handle)
{
    (void)fapl;
    *handle = &((vfd_file *)f)->fd;
    return 0;
}

/* addr + size inside the address space, without overflow. */
static int in_range(haddr_t addr, size_t size)
{
    return addr != HADDR_UNDEF && addr <= VFD_MAXADDR && (haddr_t)size <= VFD_MAXADDR - addr;
}

static herr_t vfd_read(H5FD_t *pf, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, void *buf)
{
    (void)type;
    (void)dxpl;
    vfd_file *f = (vfd_file *)pf;
    if (!in_range(addr, size)) {
        PUSH(H5E_IO, H5E_OVERFLOW, VFD_NAME ": read of %zu bytes at %llu out of range in '%s'", size,
             (unsigned long long)addr, f->name);
        return -1;
    }
    int64_t got = ckpt_sys_pread_full(f->fd, buf, size, (int64_t)addr);
    if (got < 0) {
        PUSH(H5E_IO, H5E_READERROR, VFD_NAME ": read of %zu bytes at offset %llu of '%s' failed: %s", size,
             (unsigned long long)addr, f->name, strerror((int)-got));
        return -1;
    }
    if ((size_t)got < size)
        memset((char *)buf + got, 0, size - (size_t)got); /* past the end of file: zeros, as sec2 */
    return 0;
}

static herr_t vfd_write(H5FD_t *pf, H5FD_mem_t type, hid_t dxpl, haddr_t addr, size_t size, const void *buf)
{
    (void)type;
    (void)dxpl;
    vfd_file *f = (vfd_file *)pf;
    if (!in_range(addr, size)) {
        PUSH(H5E_IO, H5E_OVERFLOW, VFD_NAME ": write of %zu bytes at %llu out of range in '%s'", size,
             (unsigned long long)addr, f->name);
        return -1;
    }
    if (f->err)
        return 0; /* the file is lost already: nothing more to write (a full disk stays full) */
    int err = ckpt_sys_pwrite_all(f->fd, buf, size, (int64_t)addr);
    if (err)
        record(f, err, VFD_NAME ": write of %zu bytes at offset %llu of '%s' failed: %s", size,
               (unsigned long long)addr, f->name, strerror(-err));
    if (addr + size > f->eof)
        f->eof = addr + size;
    return 0;
}

static herr_t vfd_flush(H5FD_t *f, hid_t dxpl, hbool_t closing)
{
    (void)f;
    (void)dxpl;
    (void)closing;
    return 0; /* nothing buffered here; durability is ckpt_vfd_fsync's */
}

static herr_t vfd_truncate(H5FD_t *pf, hid_t dxpl, hbool_t closing)
{
    (void)dxpl;
    (void)closing;
    vfd_file *f = (vfd_file *)pf;
    if (f->eoa == f->eof)
        return 0;
    int err = f->err ? 0 : ckpt_sys_ftruncate(f->fd, (int64_t)f->eoa);
    if (err)
        record(f, err, VFD_NAME ": truncating '%s' to %llu bytes failed: %s", f->name, (unsigned long long)f->eoa,
               strerror(-err));
    f->eof = f->eoa;
    return 0;
}

static herr_t vfd_lock(H5FD_t *pf, hbool_t rw)
{
    vfd_file *f = (vfd_file *)pf;
    int err = ckpt_sys_flock(f->fd, rw ? 1 : 0);
    if (err == 0 || err == -ENOSYS || err == -EOPNOTSUPP)
        return 0; /* no flock on this file system: as HDF5 does when told to ignore it */
    PUSH(H5E_FILE, H5E_CANTLOCKFILE, VFD_NAME ": cannot lock '%s': %s", f->name, strerror(-err));
    return -1;
}

static herr_t vfd_unlock(H5FD_t *pf)
{
    vfd_file *f = (vfd_file *)pf;
    int err = ckpt_sys_flock(f->fd, -1);
    if (err == 0 || err == -ENOSYS || err == -EOPNOTSUPP)
        return 0;
    PUSH(H5E_FILE, H5E_CANTUNLOCKFILE, VFD_NAME ": cannot unlock '%s': %s", f->name, strerror(-err));
    return -1;
}

static const H5FD_class_t vfd_class = {
    .name = VFD_NAME,
    .maxaddr = VFD_MAXADDR,
    .fc_degree = H5F_CLOSE_WEAK,
    .terminate = NULL,
    .sb_size = NULL,
    .sb_encode = NULL,
    .sb_decode = NULL,
    .fapl_size = sizeof(vfd_info),
    .fapl_get = vfd_fapl_get,
    .fapl_copy = vfd_fapl_copy,
    .fapl_free = vfd_fapl_free,
    .dxpl_size = 0,
    .dxpl_copy = NULL,
    .dxpl_free = NULL,
    .open = vfd_open,
    .close = vfd_close,
    .cmp = vfd_cmp,
    .query = vfd_query,
    .get_type_map = NULL,
    .alloc = NULL,
    .free = NULL,
    .get_eoa = vfd_get_eoa,
    .set_eoa = vfd_set_eoa,
    .get_eof = vfd_get_eof,
    .get_handle = vfd_get_handle,
    .read = vfd_read,
    .write = vfd_write,
    .flush = vfd_flush,
    .truncate = vfd_truncate,
    .lock = vfd_lock,
    .unlock = vfd_unlock,
    .fl_map = H5FD_FLMAP_DICHOTOMY,
};

hid_t ckpt_vfd_id(void)
{
    if (driver_id >= 0 && H5Iis_valid(driver_id) > 0)
        return driver_id;
    driver_id = H5FDregister(&vfd_class);
    return driver_id;
}

hid_t ckpt_vfd_fapl(int dirfd)
{
    char detail[300];
    hid_t id = ckpt_vfd_id();
    if (id < 0) {
        ckpt_error_hdf5_detail(detail, sizeof detail);
        ckpt_error(CKPT_EIO, "cannot register the HDF5 file driver " VFD_NAME "%s", detail);
        return -1;
    }
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    vfd_info info = {dirfd};
    if (fapl < 0 || H5Pset_driver(fapl, id, &info) < 0) {
        ckpt_error_hdf5_detail(detail, sizeof detail);
        if (fapl >= 0)
            H5Pclose(fapl);
        ckpt_error(CKPT_EIO, "cannot set up the HDF5 file driver " VFD_NAME "%s", detail);
        return -1;
    }
    return fapl;
}

/* The driver's file behind an open HDF5 file, NULL when it uses another driver. */
static vfd_file *file_of(hid_t file)
{
    hid_t fapl = H5Fget_access_plist(file);
    if (fapl < 0)
        return NULL;
    int ours = H5Pget_driver(fapl) == ckpt_vfd_id();
    void *h = NULL;
    herr_t rc = ours ? H5Fget_vfd_handle(file, fapl, &h) : -1;
    H5Pclose(fapl);
    if (!ours || rc < 0 || !h)
        return NULL;
    return (vfd_file *)(void *)((char *)h - offsetof(vfd_file, fd));
}

int ckpt_vfd_fsync(hid_t file)
{
    vfd_file *f = file_of(file);
    return f ? ckpt_sys_fsync(f->fd) : -EINVAL;
}

int ckpt_vfd_error(hid_t file, char *why, size_t wlen)
{
    vfd_file *f = file_of(file);
    if (!f)
        return -EINVAL;
    if (f->err && why && wlen)
        snprintf(why, wlen, "; %s", f->errmsg);
    return f->err ? -f->err : 0;
}

int ckpt_h5_close_file(hid_t file, char *why, size_t wlen)
{
    if (why && wlen)
        why[0] = '\0';
    if (file < 0)
        return 0;
    int rc = 0;
    vfd_late late = {0, ""};
    vfd_file *vf = file_of(file);
    if (vf)
        vf->late = &late;
    unsigned types = H5F_OBJ_DATASET | H5F_OBJ_GROUP | H5F_OBJ_DATATYPE | H5F_OBJ_ATTR | H5F_OBJ_LOCAL;
    ssize_t n = H5Fget_obj_count(file, types);
    if (n > 0) { /* objects left open keep a (weakly closed) file open */
        hid_t *ids = malloc((size_t)n * sizeof *ids);
        ssize_t got = ids ? H5Fget_obj_ids(file, types, (size_t)n, ids) : 0;
        for (ssize_t i = 0; i < got; i++)
            while (H5Iis_valid(ids[i]) > 0 && H5Idec_ref(ids[i]) > 0)
                ;
        free(ids);
    }
    if (H5Fclose(file) < 0) {
        if (why)
            ckpt_error_hdf5_detail(why, wlen);
        rc = -1;
    }
    if (late.err) {
        if (why && wlen)
            snprintf(why, wlen, "; %s", late.msg);
        rc = -1;
    }
    return rc;
}
