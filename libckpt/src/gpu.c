/* gpu.c -- CUDA device buffers: pointer classification and staged copies (CUDA runtime API,
 * called from C; compiled with CKPT_HAVE_CUDA only when the toolkit was found). */
#include "gpu.h"
#include "ckpt.h"
#include "error.h"

#include <stdlib.h>
#include <string.h>

#ifdef CKPT_HAVE_CUDA
#include <cuda_runtime_api.h>
#include <pthread.h>

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static int have_device;

static void probe(void)
{
    int n = 0;
    have_device = cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
    cudaGetLastError();
}

int ckpt_gpu_is_device(const void *p)
{
    pthread_once(&probe_once, probe);
    struct cudaPointerAttributes a;
    if (!have_device || !p || cudaPointerGetAttributes(&a, p) != cudaSuccess) {
        cudaGetLastError(); /* no device, no driver, or an unknown host pointer: host memory */
        return 0;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged;
}

int ckpt_gpu_copy(void *dst, const void *src, size_t n)
{
    if (n == 0)
        return CKPT_OK;
    if (!ckpt_gpu_is_device(dst) && !ckpt_gpu_is_device(src)) {
        memcpy(dst, src, n);
        return CKPT_OK;
    }
    cudaStream_t s;
    cudaError_t e = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking);
    if (e == cudaSuccess) {
        e = cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, s);
        cudaError_t e2 = cudaStreamSynchronize(s);
        if (e == cudaSuccess)
            e = e2;
        cudaStreamDestroy(s);
    }
    if (e != cudaSuccess)
        return ckpt_error(CKPT_EIO, "CUDA copy of %zu bytes failed: %s", n, cudaGetErrorString(e));
    return CKPT_OK;
}

void *ckpt_gpu_host_alloc(size_t n)
{
    void *p = NULL;
    pthread_once(&probe_once, probe);
    if (!have_device || cudaMallocHost(&p, n ? n : 1) != cudaSuccess) {
        cudaGetLastError();
        return malloc(n ? n : 1); /* no device: ordinary memory */
    }
    return p;
}

void ckpt_gpu_host_free(void *p)
{
    if (!p)
        return;
    struct cudaPointerAttributes a;
    if (have_device && cudaPointerGetAttributes(&a, p) == cudaSuccess && a.type == cudaMemoryTypeHost)
        cudaFreeHost(p);
    else {
        cudaGetLastError();
        free(p);
    }
}

#else

int ckpt_gpu_is_device(const void *p)
{
    (void)p;
    return 0;
}

int ckpt_gpu_copy(void *dst, const void *src, size_t n)
{
    if (n)
        memcpy(dst, src, n);
    return CKPT_OK;
}

void *ckpt_gpu_host_alloc(size_t n) { return malloc(n ? n : 1); }

void ckpt_gpu_host_free(void *p) { free(p); }

#endif
