/* h5util.c -- HDF5 locking, type mapping and attribute helpers. */
#include "h5util.h"
#include "sysio.h"
#include "vfd.h"

#include <pthread.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>

static pthread_mutex_t h5_mutex;
static pthread_once_t h5_once = PTHREAD_ONCE_INIT;
static _Thread_local int h5_depth;
static _Thread_local H5E_auto2_t saved_func;
static _Thread_local void *saved_data;
static hid_t f16_type = -1;

static void h5_init(void)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&h5_mutex, &a);
    pthread_mutexattr_destroy(&a);
}

void ckpt_h5_lock(void)
{
    pthread_once(&h5_once, h5_init);
    pthread_mutex_lock(&h5_mutex);
    if (h5_depth++ == 0) {
        H5Eget_auto2(H5E_DEFAULT, &saved_func, &saved_data);
        H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    }
}

void ckpt_h5_unlock(void)
{
    if (--h5_depth == 0)
        H5Eset_auto2(H5E_DEFAULT, saved_func, saved_data);
    pthread_mutex_unlock(&h5_mutex);
}

/* IEEE binary16 as HDF5 describes it (the same layout h5py uses for numpy float16). */
static hid_t make_f16(void)
{
    hid_t t = H5Tcopy(H5T_IEEE_F32LE);
    if (t < 0)
        return -1;
    if (H5Tset_fields(t, 15, 10, 5, 0, 10) < 0 || H5Tset_size(t, 2) < 0 || H5Tset_ebias(t, 15) < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

hid_t ckpt_h5_type(ckpt_dtype d)
{
    switch (d) {
    case CKPT_F32: return H5T_IEEE_F32LE;
    case CKPT_F64: return H5T_IEEE_F64LE;
    case CKPT_F16:
        if (f16_type < 0)
            f16_type = make_f16(); /* called under the HDF5 lock */
        return f16_type;
    case CKPT_BF16: return H5T_STD_U16LE; /* no HDF5/numpy bf16: raw bits, dtype attribute says bf16 */
    case CKPT_I8: return H5T_STD_I8LE;
    case CKPT_I16: return H5T_STD_I16LE;
    case CKPT_I32: return H5T_STD_I32LE;
    case CKPT_I64: return H5T_STD_I64LE;
    case CKPT_U8: return H5T_STD_U8LE;
    case CKPT_BOOL: return H5T_STD_U8LE;
    default: return -1;
    }
}

const char *ckpt_h5_data_elsewhere(hid_t ds)
{
    hid_t dcpl = H5Dget_create_plist(ds);
    if (dcpl < 0)
        return "has no readable creation properties";
    const char *why = NULL;
    H5D_layout_t lay = H5Pget_layout(dcpl);
    if (lay != H5D_CONTIGUOUS && lay != H5D_CHUNKED && lay != H5D_COMPACT)
        why = "is a virtual dataset (its data would come from other files)";
    else if (H5Pget_external_count(dcpl) != 0)
        why = "keeps its data in external files";
    H5Pclose(dcpl);
    return why;
}

hid_t ckpt_h5_data_fapl(int dirfd)
{
    hid_t fapl = ckpt_vfd_fapl(dirfd);
    if (fapl < 0)
        return -1;
    H5Pset_libver_bounds(fapl, H5F_LIBVER_EARLIEST, H5F_LIBVER_LATEST);
    H5AC_cache_config_t mdc;
    memset(&mdc, 0, sizeof mdc);
    mdc.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    if (H5Pget_mdc_config(fapl, &mdc) >= 0) {
        /* data files hold few objects: start small, grow only if a file needs it */
        mdc.set_initial_size = 1;
        mdc.initial_size = 64 * 1024;
        mdc.min_size = 16 * 1024;
        if (mdc.max_size < mdc.initial_size)
            mdc.max_size = mdc.initial_size;
        H5Pset_mdc_config(fapl, &mdc);
    }
    return fapl;
}

int ckpt_h5_failure_status(const char *detail, int otherwise)
{
    return strstr(detail, "ckpt_sysio: ") && strstr(detail, " failed: ") ? CKPT_EIO : otherwise;
}

hid_t ckpt_h5_vlen_str(void)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0)
        return -1;
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static int write_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *buf)
{
    if (H5Aexists(obj, name) > 0)
        H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0)
        return -1;
    herr_t rc = H5Awrite(a, type, buf);
    H5Aclose(a);
    return rc < 0 ? -1 : 0;
}

int ckpt_h5_attr_str(hid_t obj, const char *name, const char *value)
{
    hid_t t = ckpt_h5_vlen_str(), s = H5Screate(H5S_SCALAR);
    int rc = (t < 0 || s < 0) ? -1 : write_attr(obj, name, t, s, &value);
    if (t >= 0)
        H5Tclose(t);
    if (s >= 0)
        H5Sclose(s);
    return rc;
}

int ckpt_h5_attr_i64(hid_t obj, const char *name, int64_t value)
{
    hid_t s = H5Screate(H5S_SCALAR);
    int rc = s < 0 ? -1 : write_attr(obj, name, H5T_STD_I64LE, s, &value);
    if (s >= 0)
        H5Sclose(s);
    return rc;
}

int ckpt_h5_attr_i64_array(hid_t obj, const char *name, const int64_t *v, int n)
{
    hsize_t dims[1] = {(hsize_t)n};
    hid_t s = n > 0 ? H5Screate_simple(1, dims, NULL) : H5Screate(H5S_NULL);
    int rc = s < 0 ? -1 : write_attr(obj, name, H5T_STD_I64LE, s, v);
    if (s >= 0)
        H5Sclose(s);
    return rc;
}

int ckpt_h5_read_attr_str(hid_t obj, const char *name, char *buf, size_t len)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    int rc = -1;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    /* one string, nothing else: an array of them would overrun the single pointer read into */
    int scalar = sp >= 0 && H5Sget_simple_extent_type(sp) == H5S_SCALAR;
    if (sp >= 0)
        H5Sclose(sp);
    if (ft >= 0 && scalar && H5Tget_class(ft) == H5T_STRING) {
        if (H5Tis_variable_str(ft) > 0) {
            hid_t mt = ckpt_h5_vlen_str();
            char *p = NULL;
            if (H5Aread(a, mt, &p) >= 0 && p) {
                snprintf(buf, len, "%s", p);
                H5free_memory(p);
                rc = 0;
            }
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(ft);
            char *tmp = sz < (1u << 20) ? calloc(1, sz + 1) : NULL;
            hid_t mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, sz + 1);
            if (tmp && H5Aread(a, mt, tmp) >= 0) {
                snprintf(buf, len, "%s", tmp);
                rc = 0;
            }
            H5Tclose(mt);
            free(tmp);
        }
    }
    if (ft >= 0)
        H5Tclose(ft);
    H5Aclose(a);
    return rc;
}

int ckpt_h5_read_attr_i64(hid_t obj, const char *name, int64_t *out)
{
    if (H5Aexists(obj, name) <= 0)
        return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t ft = H5Aget_type(a), sp = H5Aget_space(a);
    int rc = -1;
    if (ft >= 0 && sp >= 0 && H5Tget_class(ft) == H5T_INTEGER && H5Sget_simple_extent_npoints(sp) == 1)
        rc = H5Aread(a, H5T_NATIVE_INT64, out) < 0 ? -1 : 0;
    if (ft >= 0)
        H5Tclose(ft);
    if (sp >= 0)
        H5Sclose(sp);
    H5Aclose(a);
    return rc;
}

int ckpt_fsync_path(const char *path)
{
    return ckpt_sys_fsync_path(path); /* counted and fault-injectable like every file-system call */
}
