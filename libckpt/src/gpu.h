/* gpu.h -- boxes that live in GPU memory. With CUDA (CKPT_HAVE_CUDA) device pointers are
 * recognised and copied through pinned host memory on a CUDA stream; without it every pointer
 * is host memory and the copies are memcpy. The CPU build needs no CUDA header. */
#ifndef CKPT_GPU_H
#define CKPT_GPU_H

#include <stddef.h>

/* 1 when p points at CUDA device memory. */
int ckpt_gpu_is_device(const void *p);

/* Copies n bytes device->host or host->device (either side may also be host memory); waits for
 * the copy. Returns CKPT_OK or CKPT_EIO with the CUDA error named. */
int ckpt_gpu_copy(void *dst, const void *src, size_t n);

/* Page-locked host memory when CUDA is present (faster device copies), plain malloc otherwise. */
void *ckpt_gpu_host_alloc(size_t n);
void ckpt_gpu_host_free(void *p);

#endif
