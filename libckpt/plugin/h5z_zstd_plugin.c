/*
 * h5z_zstd_plugin.c -- the entry points of libh5zstd.so, a dynamically loaded HDF5 filter plugin
 * for zstd (filter id 32015, hdf5plugin's convention; see libckpt/src/codec_zstd.h for the format).
 *
 * HDF5 finds it through HDF5_PLUGIN_PATH or its default plugin directory, dlopen()s it when it
 * meets filter 32015 in a file and no filter with that id is registered, and registers the class
 * returned by H5PLget_plugin_info(). The filter itself is libckpt's (codec_zstd.c, compiled into
 * this module with CKPT_CODEC_ZSTD_PLUGIN_BUILD). The module calls no HDF5 function and links no
 * libhdf5 -- only libzstd -- so the same file loads into the serial libhdf5 (h5py, h5dump on
 * Debian) and the parallel one (libckpt).
 */
#include <H5PLextern.h>

#include "codec_zstd.h"

H5PL_type_t H5PLget_plugin_type(void)
{
    return H5PL_TYPE_FILTER;
}

const void *H5PLget_plugin_info(void)
{
    return &ckpt_codec_zstd_class;
}
