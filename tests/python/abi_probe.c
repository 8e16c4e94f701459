/* abi_probe -- the layout of ckpt.h's structs as the C compiler sees it, one line per struct
 * ("S name size align") and per field ("F struct.field offset"), for test_abi.py to compare
 * with the ctypes declarations of python/ckpt/_lib.py. */
#include <ckpt.h>

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>

#define S(t) printf("S %s %zu %zu\n", #t, sizeof(t), alignof(t))
#define F(t, f) printf("F %s.%s %zu\n", #t, #f, offsetof(t, f))

int main(void)
{
    S(ckpt_save_options);
    F(ckpt_save_options, version); F(ckpt_save_options, layout); F(ckpt_save_options, overwrite);
    F(ckpt_save_options, fsync); F(ckpt_save_options, piece_bytes); F(ckpt_save_options, compress);
    F(ckpt_save_options, level); F(ckpt_save_options, shuffle); F(ckpt_save_options, threads); F(ckpt_save_options, group_size);
    S(ckpt_load_options);
    F(ckpt_load_options, version); F(ckpt_load_options, verify); F(ckpt_load_options, threads);
    S(ckpt_tensor_info);
    F(ckpt_tensor_info, name); F(ckpt_tensor_info, dtype); F(ckpt_tensor_info, ndim);
    F(ckpt_tensor_info, shape); F(ckpt_tensor_info, nboxes); F(ckpt_tensor_info, raw_bytes);
    F(ckpt_tensor_info, stored_bytes);
    S(ckpt_box_info);
    F(ckpt_box_info, offset); F(ckpt_box_info, extent); F(ckpt_box_info, writer_rank);
    F(ckpt_box_info, file); F(ckpt_box_info, dataset); F(ckpt_box_info, npieces);
    S(ckpt_manager_options);
    F(ckpt_manager_options, version); F(ckpt_manager_options, keep_last);
    F(ckpt_manager_options, keep_every); F(ckpt_manager_options, keep_best);
    F(ckpt_manager_options, best_metric); F(ckpt_manager_options, best_mode);
    F(ckpt_manager_options, save_every_steps); F(ckpt_manager_options, save_every_secs);
    F(ckpt_manager_options, warn); F(ckpt_manager_options, warn_user);
    S(ckpt_manager_entry);
    F(ckpt_manager_entry, step); F(ckpt_manager_entry, state); F(ckpt_manager_entry, status);
    F(ckpt_manager_entry, bytes); F(ckpt_manager_entry, has_metric); F(ckpt_manager_entry, metric);
    F(ckpt_manager_entry, name);
    printf("E %d %d %d\n", CKPT_DTYPE_COUNT, CKPT_MAX_NDIM, CKPT_MAX_NAME);
    return 0;
}
