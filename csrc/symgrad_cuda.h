/* symgrad runtime for generated CUDA: the scalar helpers (C++ overloads standing in for the C
 * runtime's _Generic macros, so the ops' one expression string serves both), the launch macro,
 * block reductions' warp shuffle, the tiled GEMM, Philox and the finite check.
 *
 * The same source compiles with nvcc for a GPU, or with g++ -DSG_CUDA_EMULATE against
 * symgrad_cuda_emulate.h, which runs it on the CPU (each block's threads as fibers). */
#ifndef SYMGRAD_CUDA_H
#define SYMGRAD_CUDA_H

#include <stdint.h>

#ifdef SG_CUDA_EMULATE
#include "symgrad_cuda_emulate.h"
#define SG_LAUNCH(kernel, grid, block, ...) \
    sg_emu::launch(#kernel, kernel, dim3(grid), dim3(block), __VA_ARGS__)
/* Emulated blocks cost a fiber per thread: a few of them, with every kernel's grid-stride loop
 * covering the rest, exercise the same code paths at a fraction of the time. */
#define SG_GRID_CAP 3
#define SG_SYMBOL_ADDRESS(ptr, symbol) ((ptr) = (symbol), cudaSuccess)
#else
#include <cuda_runtime.h>
#include <math.h>
#define SG_LAUNCH(kernel, grid, block, ...) kernel<<<(grid), (block)>>>(__VA_ARGS__)
#define SG_GRID_CAP 65535
/* a __device__ array's address as the device sees it (host code holds only a shadow) */
#define SG_SYMBOL_ADDRESS(ptr, symbol) cudaGetSymbolAddress((void **)&(ptr), symbol)
#endif

#define SG_EXPORT extern "C" __attribute__((visibility("default")))
#define SG_BLOCK 256
#define SG_MAX(a, b) ((a) > (b) ? (a) : (b))

/* max/min that propagate NaN like numpy.maximum/minimum (fmax would drop it), and give b on a
 * tie as numpy does.  b's NaN test folds away when b is a literal (maximum(x, 0)), leaving one
 * compare a lane: the two-compare form cost W2 about 5%. */
#define sg_max(a, b) ((b) != (b) ? (b) : (a) <= (b) ? (b) : (a))
#define sg_min(a, b) ((b) != (b) ? (b) : (a) >= (b) ? (b) : (a))
/* numpy.maximum(x, 0): NaN stays NaN (x <= 0 fails), and -0.0 becomes +0.0 */
#define sg_relu(x) ((x) <= 0 ? 0 : (x))

/* the C runtime's formula (one division for both signs), so both backends agree */
__device__ __forceinline__ float sg_sigmoid(float x) {
    const float e = expf(-fabsf(x)), r = 1.0f / (1.0f + e);
    return x >= 0 ? r : e * r;
}
__device__ __forceinline__ double sg_sigmoid(double x) {
    const double e = exp(-fabs(x)), r = 1.0 / (1.0 + e);
    return x >= 0 ? r : e * r;
}
__device__ __forceinline__ float sg_softplus(float x) {
    return sg_max(x, 0.0f) + log1pf(expf(-fabsf(x)));
}
__device__ __forceinline__ double sg_softplus(double x) {
    return sg_max(x, 0.0) + log1p(exp(-fabs(x)));
}
__device__ __forceinline__ float sg_sign(float x) { return x != x ? x : (float)((x > 0) - (x < 0)); }
__device__ __forceinline__ double sg_sign(double x) { return x != x ? x : (double)((x > 0) - (x < 0)); }
__device__ __forceinline__ int32_t sg_sign(int32_t x) { return (x > 0) - (x < 0); }
__device__ __forceinline__ int64_t sg_sign(int64_t x) { return (x > 0) - (x < 0); }
__device__ __forceinline__ bool sg_sign(bool x) { return x; }
__device__ __forceinline__ float sg_abs(float x) { return fabsf(x); }
__device__ __forceinline__ double sg_abs(double x) { return fabs(x); }
__device__ __forceinline__ int32_t sg_abs(int32_t x) { return x < 0 ? -x : x; }
__device__ __forceinline__ int64_t sg_abs(int64_t x) { return x < 0 ? -x : x; }
__device__ __forceinline__ bool sg_abs(bool x) { return x; }

/* Warp shuffles have no bool overload; reductions over bool (any/all-like max and min) go
 * through int. */
#define SG_DEFINE_SHUFFLE(NAME, SHUFFLE)                                                      \
    template <typename T>                                                                    \
    __device__ __forceinline__ T NAME(T v, int lane) {                                       \
        return SHUFFLE(0xffffffffu, v, lane);                                                \
    }                                                                                        \
    template <>                                                                              \
    __device__ __forceinline__ bool NAME<bool>(bool v, int lane) {                           \
        return SHUFFLE(0xffffffffu, (int)v, lane) != 0;                                      \
    }
SG_DEFINE_SHUFFLE(sg_shfl_down, __shfl_down_sync)
SG_DEFINE_SHUFFLE(sg_shfl_xor, __shfl_xor_sync)

/* Launch geometry: enough blocks of SG_BLOCK threads to cover n work items, at least one (a
 * zero-sized grid is an invalid configuration), at most SG_GRID_CAP (grid-stride loops do the
 * rest). */
static inline unsigned sg_grid(int64_t n) {
    const int64_t blocks = (n + SG_BLOCK - 1) / SG_BLOCK;
    return (unsigned)(blocks < 1 ? 1 : blocks > SG_GRID_CAP ? SG_GRID_CAP : blocks);
}
static inline unsigned sg_grid_rows(int64_t rows) {
    return (unsigned)(rows < 1 ? 1 : rows > SG_GRID_CAP ? SG_GRID_CAP : rows);
}

/* The first failure of a step wins: later kernels see a set status and keep it. */
__device__ __forceinline__ void sg_fail(int *status, int code) { atomicCAS(status, 0, code); }

#define SG_PHILOX_FN __device__ __forceinline__
#include "symgrad_philox.h"
#define SG_DIVMOD_FN __device__ __forceinline__
#include "symgrad_divmod.h"
#define SG_OVERLOAD_DIVMOD(T, SUFFIX)                                                        \
    __device__ __forceinline__ T sg_floordiv(T a, T b) { return sg_floordiv_##SUFFIX(a, b); } \
    __device__ __forceinline__ T sg_mod(T a, T b) { return sg_mod_##SUFFIX(a, b); }
SG_OVERLOAD_DIVMOD(float, f32)
SG_OVERLOAD_DIVMOD(double, f64)
SG_OVERLOAD_DIVMOD(int32_t, i32)
SG_OVERLOAD_DIVMOD(int64_t, i64)

/* ---- GEMM: op(A) @ op(B), row-major, transposes as template flags (no copies) ----
 * cuBLAS is not assumed.  Each block computes a 64x64 tile of the product from 16-deep slices of
 * A and B staged in shared memory; each of its 256 threads keeps a 4x4 block in registers.
 * Tiles are visited grid-stride, so any grid (the emulation's few blocks included) covers C.
 * Each finished element goes to `epilogue(i, j, value)`: a plain store (sg_store), or the
 * element-wise kernel that follows the product in the step (bias, activation, ...), generated
 * as a functor so the product never makes a round trip through memory. */
/* 256 threads a block; at most 128 registers each keeps two blocks per SM.  Without the cap
 * ptxas aims for 64 and spills the double-precision variants. */
#if defined(__CUDACC__) && (__CUDACC_VER_MAJOR__ > 12 || (__CUDACC_VER_MAJOR__ == 12 && __CUDACC_VER_MINOR__ >= 4))
#define SG_GEMM_REGISTERS __maxnreg__(128)
#else
#define SG_GEMM_REGISTERS __launch_bounds__(256)
#endif
#define SG_GEMM_BM 64
#define SG_GEMM_BN 64
#define SG_GEMM_BK 16

template <typename T>
struct sg_store {
    T *c;
    int64_t ldc;
    __device__ __forceinline__ void operator()(int64_t i, int64_t j, T value) const {
        c[i * ldc + j] = value;
    }
};

template <typename T, int TA, int TB, typename Epilogue>
__global__ void SG_GEMM_REGISTERS
sg_gemm_kernel(int64_t m, int64_t n, int64_t k, const T *__restrict__ a, int64_t lda,
               const T *__restrict__ b, int64_t ldb, Epilogue epilogue) {
    /* +4 padding: the column reads of the inner product do not all hit one bank */
    __shared__ T a_tile[SG_GEMM_BK][SG_GEMM_BM + 4];
    __shared__ T b_tile[SG_GEMM_BK][SG_GEMM_BN + 4];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t tiles_m = (m + SG_GEMM_BM - 1) / SG_GEMM_BM;
    const int64_t tiles_n = (n + SG_GEMM_BN - 1) / SG_GEMM_BN;
    for (int64_t tm = blockIdx.y; tm < tiles_m; tm += gridDim.y)
    for (int64_t tn = blockIdx.x; tn < tiles_n; tn += gridDim.x) {
        const int64_t row0 = tm * SG_GEMM_BM, col0 = tn * SG_GEMM_BN;
        T acc[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) acc[i][j] = 0;
        for (int64_t p0 = 0; p0 < k; p0 += SG_GEMM_BK) {
            /* 1024 elements per tile, 4 per thread; out-of-range elements load as 0 */
            for (int e = tid; e < SG_GEMM_BK * SG_GEMM_BM; e += 256) {
                /* walk along the operand's contiguous axis for coalesced reads */
                const int p = TA ? e / SG_GEMM_BM : e % SG_GEMM_BK;
                const int i = TA ? e % SG_GEMM_BM : e / SG_GEMM_BK;
                const int64_t gi = row0 + i, gp = p0 + p;
                a_tile[p][i] = (gi < m && gp < k) ? (TA ? a[gp * lda + gi] : a[gi * lda + gp]) : (T)0;
            }
            for (int e = tid; e < SG_GEMM_BK * SG_GEMM_BN; e += 256) {
                const int p = TB ? e % SG_GEMM_BK : e / SG_GEMM_BN;
                const int j = TB ? e / SG_GEMM_BK : e % SG_GEMM_BN;
                const int64_t gj = col0 + j, gp = p0 + p;
                b_tile[p][j] = (gj < n && gp < k) ? (TB ? b[gj * ldb + gp] : b[gp * ldb + gj]) : (T)0;
            }
            __syncthreads();
            for (int p = 0; p < SG_GEMM_BK; p++) {
                T av[4], bv[4];
                for (int i = 0; i < 4; i++) av[i] = a_tile[p][ty + 16 * i];
                for (int j = 0; j < 4; j++) bv[j] = b_tile[p][tx + 16 * j];
                for (int i = 0; i < 4; i++)
                    for (int j = 0; j < 4; j++) acc[i][j] += av[i] * bv[j];
            }
            __syncthreads();  /* the next slice overwrites the tiles */
        }
        /* thread (tx, ty) holds rows ty + 16i and columns tx + 16j: neighbouring threads write
         * neighbouring columns (coalesced) */
        for (int i = 0; i < 4; i++) {
            const int64_t gi = row0 + ty + 16 * i;
            if (gi >= m) continue;
            for (int j = 0; j < 4; j++) {
                const int64_t gj = col0 + tx + 16 * j;
                if (gj < n) epilogue(gi, gj, acc[i][j]);
            }
        }
    }
}

/* The transposes are template arguments: the generated code knows them, and each call then
 * instantiates one kernel instead of four. */
template <int TA, int TB, typename T, typename Epilogue>
static cudaError_t sg_gemm_into(int64_t m, int64_t n, int64_t k, const T *a, int64_t lda,
                                const T *b, int64_t ldb, Epilogue epilogue) {
    if (m == 0 || n == 0) return cudaSuccess;
    const int64_t tiles_m = (m + SG_GEMM_BM - 1) / SG_GEMM_BM;
    const int64_t tiles_n = (n + SG_GEMM_BN - 1) / SG_GEMM_BN;
    const dim3 grid((unsigned)(tiles_n < SG_GRID_CAP ? tiles_n : SG_GRID_CAP),
                    (unsigned)(tiles_m < SG_GRID_CAP ? tiles_m : SG_GRID_CAP));
    SG_LAUNCH((sg_gemm_kernel<T, TA, TB, Epilogue>), grid, 256, m, n, k, a, lda, b, ldb, epilogue);
    return cudaGetLastError();
}

template <int TA, int TB, typename T>
static cudaError_t sg_gemm(int64_t m, int64_t n, int64_t k, const T *a, int64_t lda,
                           const T *b, int64_t ldb, T *c, int64_t ldc) {
    return sg_gemm_into<TA, TB>(m, n, k, a, lda, b, ldb, sg_store<T>{c, ldc});
}

/* ---- the non-finite check mode ---- */
template <typename T>
__global__ void sg_check_finite(const T *__restrict__ p, int64_t n, int *status, int code) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        if (!isfinite(p[i])) { sg_fail(status, code); return; }
}

template <typename T>
static cudaError_t sg_all_finite(const T *p, int64_t n, int *status, int code) {
    SG_LAUNCH(sg_check_finite<T>, sg_grid(n), SG_BLOCK, p, n, status, code);
    return cudaGetLastError();
}

/* ---- what Python calls besides the step: device memory and errors ---- */
SG_EXPORT int sg_cuda_device_count(int *count) { return (int)cudaGetDeviceCount(count); }
SG_EXPORT int sg_cuda_malloc(void **p, int64_t bytes) {
    return (int)cudaMalloc(p, (size_t)(bytes > 0 ? bytes : 1));
}
SG_EXPORT int sg_cuda_free(void *p) { return (int)cudaFree(p); }
SG_EXPORT int sg_cuda_upload(void *dst, const void *src, int64_t bytes) {
    return (int)cudaMemcpy(dst, src, (size_t)bytes, cudaMemcpyHostToDevice);
}
SG_EXPORT int sg_cuda_download(void *dst, const void *src, int64_t bytes) {
    return (int)cudaMemcpy(dst, src, (size_t)bytes, cudaMemcpyDeviceToHost);
}
SG_EXPORT int sg_cuda_zero(void *p, int64_t bytes) { return (int)cudaMemset(p, 0, (size_t)bytes); }
SG_EXPORT int sg_cuda_synchronize(void) { return (int)cudaDeviceSynchronize(); }
SG_EXPORT const char *sg_cuda_error_string(int error) {
    return cudaGetErrorString((cudaError_t)error);
}

#endif
