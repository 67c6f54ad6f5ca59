/* symgrad runtime for generated C: scalar helpers shared by every kernel, the BLAS bridge and the
 * finite check.  The scalar helpers are type-generic (C11 _Generic) so one expression string
 * serves float32 and float64; their CUDA twins live in symgrad_cuda.h. */
#ifndef SYMGRAD_RUNTIME_H
#define SYMGRAD_RUNTIME_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <tgmath.h>
#ifdef _OPENMP
#include <omp.h>
#else
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_num_threads(void) { return 1; }
static inline int omp_in_parallel(void) { return 0; }
#include <time.h>
static inline double omp_get_wtime(void) {
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
#endif

/* Constant tables reach the kernels through a pointer the compiler cannot follow, so their
 * values are loaded, not folded into the code: gcc 12.2 (-O3, 512-bit vectors) folded a copy of
 * {1, 2, 3, 4, NAN, NAN, NAN, 0.0} into four NaNs for the last four. */
static inline const void *sg_opaque(const void *p)
{
    __asm__("" : "+r"(p));
    return p;
}

#if defined(SG_USE_MVEC) && defined(__GNUC__) && !defined(__clang__) && defined(__GLIBC__)
/* glibc only declares these SIMD variants (libmvec) under -ffast-math, which symgrad does not
 * use; declaring them here lets gcc vectorize loops that call them, with IEEE semantics kept.
 * The names are parenthesized so tgmath.h's type-generic macros do not expand them. */
#define SG_SIMD __attribute__((simd("notinbranch")))
SG_SIMD float (expf)(float); SG_SIMD double (exp)(double);
SG_SIMD float (logf)(float); SG_SIMD double (log)(double);
SG_SIMD float (sinf)(float); SG_SIMD double (sin)(double);
SG_SIMD float (cosf)(float); SG_SIMD double (cos)(double);
SG_SIMD float (powf)(float, float); SG_SIMD double (pow)(double, double);
#if __GLIBC_PREREQ(2, 35)
SG_SIMD float (tanhf)(float); SG_SIMD double (tanh)(double);
SG_SIMD float (expm1f)(float); SG_SIMD double (expm1)(double);
SG_SIMD float (log1pf)(float); SG_SIMD double (log1p)(double);
#endif
#endif

#define SG_EXPORT __attribute__((visibility("default")))
/* Hides where a pointer points.  Given a kernel that reads a constant index table (pooling
 * windows, im2col), gcc specializes the loop on the table's known contents, threads jumps
 * through them, and then no longer vectorizes the loop: max pooling ran 10x slower. */
#define SG_OPAQUE(pointer) __asm__("" : "+r"(pointer))
#define SG_MAX(a, b) ((a) > (b) ? (a) : (b))

/* max/min that propagate NaN like numpy.maximum/minimum (fmax would drop it), and give b on a
 * tie as numpy does.  b's NaN test folds away when b is a literal (maximum(x, 0)), leaving one
 * compare a lane: the two-compare form cost W2 about 5%. */
#define sg_max(a, b) ((b) != (b) ? (b) : (a) <= (b) ? (b) : (a))
#define sg_min(a, b) ((b) != (b) ? (b) : (a) >= (b) ? (b) : (a))
/* numpy.maximum(x, 0): NaN stays NaN (x <= 0 fails), and -0.0 becomes +0.0 */
#define sg_relu(x) ((x) <= 0 ? 0 : (x))

/* e = exp(-|x|) never overflows; one division serves both signs (e / (1 + e) as e * r): a
 * vectorized loop computes both arms, and a second division cost W1 about 10% */
static inline float sg_sigmoid_f32(float x) {
    const float e = expf(-fabsf(x)), r = 1.0f / (1.0f + e);
    return x >= 0 ? r : e * r;
}
static inline double sg_sigmoid_f64(double x) {
    const double e = exp(-fabs(x)), r = 1.0 / (1.0 + e);
    return x >= 0 ? r : e * r;
}
static inline float sg_softplus_f32(float x) { return sg_max(x, 0.0f) + log1pf(expf(-fabsf(x))); }
static inline double sg_softplus_f64(double x) { return sg_max(x, 0.0) + log1p(exp(-fabs(x))); }
static inline float sg_sign_f32(float x) { return x != x ? x : (float)((x > 0) - (x < 0)); }
static inline double sg_sign_f64(double x) { return x != x ? x : (double)((x > 0) - (x < 0)); }
static inline int32_t sg_sign_i32(int32_t x) { return (x > 0) - (x < 0); }
static inline int64_t sg_sign_i64(int64_t x) { return (x > 0) - (x < 0); }
static inline int32_t sg_abs_i32(int32_t x) { return x < 0 ? -x : x; }
static inline int64_t sg_abs_i64(int64_t x) { return x < 0 ? -x : x; }
static inline bool sg_bool_id(bool x) { return x; }

#define sg_sigmoid(x) _Generic((x), float: sg_sigmoid_f32, double: sg_sigmoid_f64)(x)
#define sg_softplus(x) _Generic((x), float: sg_softplus_f32, double: sg_softplus_f64)(x)
#define sg_sign(x) _Generic((x), float: sg_sign_f32, double: sg_sign_f64, int32_t: sg_sign_i32, \
                            int64_t: sg_sign_i64, bool: sg_bool_id)(x)
#define sg_abs(x) _Generic((x), float: fabsf, double: fabs, int32_t: sg_abs_i32, \
                           int64_t: sg_abs_i64, bool: sg_bool_id)(x)

/* ---- BLAS: OpenBLAS from the scipy-openblas32 wheel (cblas symbols prefixed scipy_) ---- */
#ifdef SG_USE_BLAS
void scipy_cblas_sgemm(int order, int ta, int tb, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta,
                       float *c, int ldc);
void scipy_cblas_dgemm(int order, int ta, int tb, int m, int n, int k, double alpha,
                       const double *a, int lda, const double *b, int ldb, double beta,
                       double *c, int ldc);
void scipy_cblas_sgemv(int order, int trans, int m, int n, float alpha, const float *a, int lda,
                       const float *x, int incx, float beta, float *y, int incy);
void scipy_cblas_dgemv(int order, int trans, int m, int n, double alpha, const double *a,
                       int lda, const double *x, int incx, double beta, double *y, int incy);

void scipy_openblas_set_num_threads(int);

/* OpenBLAS runs single-threaded and each GEMM is split across the step's own OpenMP team: one
 * pool of threads for the whole step, so no OpenBLAS worker spins for the cores while OpenMP
 * runs the element-wise kernels between GEMMs (or the reverse). */
__attribute__((constructor)) static void sg_blas_single_threaded(void) {
    scipy_openblas_set_num_threads(1);
}

#define SG_BLAS_FITS(v) ((v) <= (int64_t)INT_MAX)
/* below this many multiply-adds a second thread costs more than it saves */
#define SG_GEMM_SPLIT_WORK ((int64_t)1 << 18)
/* a batch of products each below this runs one product per thread instead */
#define SG_GEMM_BATCH_WORK ((int64_t)1 << 21)
/* Whether a batch of products runs one product per thread (else each product is split across
 * the threads): always when the batch is at least one product a thread, as torch's bmm does
 * (splitting eight 256^3 products ran 1.4x slower), and for small products of any batch. */
static inline bool sg_gemm_by_batch(int64_t batch, double work) {
    return batch > 1 && (batch >= omp_get_max_threads() || work < (double)SG_GEMM_BATCH_WORK);
}
/* Products with a short inner dim (a classifier's last layer, a single-channel 3x3 conv): there
 * OpenBLAS's packing costs more than the arithmetic (one took 14 GFLOP/s), so a plain loop
 * runs them instead: B's rows staged in a panel of 256 columns, c's row summed tap by tap in a
 * local buffer (so nothing aliases and each pass vectorizes), then stored once. */
#define SG_GEMM_SHORT_K 16
#define SG_GEMM_PANEL 256
#define SG_DEFINE_SHORT_GEMM(NAME, T)                                                        \
    static void NAME(int ta, int tb, int64_t m, int64_t n, int64_t k, const T *a, int64_t lda, \
                     const T *b, int64_t ldb, T *c, int64_t ldc) {                           \
        T panel[SG_GEMM_SHORT_K * SG_GEMM_PANEL], sum[SG_GEMM_PANEL];                        \
        const int64_t a_row = ta ? 1 : lda, a_col = ta ? lda : 1;                            \
        for (int64_t j0 = 0; j0 < n; j0 += SG_GEMM_PANEL) {                                  \
            const int64_t w = n - j0 < SG_GEMM_PANEL ? n - j0 : SG_GEMM_PANEL;               \
            for (int64_t p = 0; p < k; p++) {                                                \
                T *restrict line = panel + p * SG_GEMM_PANEL;                                \
                if (tb) for (int64_t jj = 0; jj < w; jj++) line[jj] = b[(j0 + jj) * ldb + p]; \
                else for (int64_t jj = 0; jj < w; jj++) line[jj] = b[p * ldb + j0 + jj];     \
            }                                                                                \
            for (int64_t i = 0; i < m; i++) {                                                \
                const T *a_i = a + i * a_row;                                                \
                for (int64_t jj = 0; jj < w; jj++) sum[jj] = a_i[0] * panel[jj];             \
                for (int64_t p = 1; p < k; p++) {                                            \
                    const T ap = a_i[p * a_col];                                             \
                    for (int64_t jj = 0; jj < w; jj++)                                       \
                        sum[jj] += ap * panel[p * SG_GEMM_PANEL + jj];                       \
                }                                                                            \
                memcpy(c + i * ldc + j0, sum, w * sizeof(T));                                \
            }                                                                                \
        }                                                                                    \
    }
SG_DEFINE_SHORT_GEMM(sg_short_gemm_f32, float)
SG_DEFINE_SHORT_GEMM(sg_short_gemm_f64, double)

/* Whether a product's dims fit BLAS's int arguments. */
static inline bool sg_gemm_fits(int64_t m, int64_t n, int64_t k, int64_t lda, int64_t ldb,
                                int64_t ldc) {
    return SG_BLAS_FITS(m) && SG_BLAS_FITS(n) && SG_BLAS_FITS(k) && SG_BLAS_FITS(lda)
        && SG_BLAS_FITS(ldb) && SG_BLAS_FITS(ldc);
}

/* How many threads share an m x n x k product, and how: each thread takes whole rows of c, or
 * whole columns where c is wider than tall (each then packs only its part of B: the MLP step
 * ran 10% faster than with rows); the short-k loop takes rows whenever each thread gets 32
 * (contiguous stores, 2x).  One thread inside a parallel region or for a small product. */
static inline int sg_gemm_threads(int64_t m, int64_t n, int64_t k, bool *by_rows) {
    const int threads = omp_get_max_threads();
    *by_rows = m >= n || (k <= SG_GEMM_SHORT_K && m >= 32 * (int64_t)threads);
    const int64_t extent = *by_rows ? m : n;
    if (threads == 1 || omp_in_parallel() || extent < 32
        || (double)m * n * k < (double)SG_GEMM_SPLIT_WORK)
        return 1;
    return threads;
}

/* The calling thread's share [*lo, *hi) of `extent` rows or columns: chunks of a multiple of
 * 16, so each thread's block starts on a cache line. */
static inline void sg_gemm_share(int64_t extent, int64_t *lo, int64_t *hi) {
    const int nt = omp_get_num_threads();
    const int64_t chunk = ((extent + nt - 1) / nt + 15) / 16 * 16;
    const int64_t start = chunk * omp_get_thread_num();
    *lo = start < extent ? start : extent;
    *hi = *lo + chunk < extent ? *lo + chunk : extent;
}

/* NAME##_block computes rows [r0, r1) and columns [c0, c1) of c = op(a) @ op(b) (callers have
 * checked sg_gemm_fits); NAME computes all of c, its blocks shared out as sg_gemm_threads says.
 * A fused GEMM epilogue (templates/c/loops.c.j2) shares them out the same way and runs its
 * element-wise loop over each block right after the block's product, while it is in cache. */
#define SG_DEFINE_GEMM(NAME, T, BLAS, GEMV, SHORT)                                           \
    static void NAME##_block(int ta, int tb, int64_t k, const T *a, int64_t lda, const T *b, \
                             int64_t ldb, T *c, int64_t ldc, int64_t r0, int64_t r1,         \
                             int64_t c0, int64_t c1) {                                       \
        const int64_t rows = r1 - r0, cols = c1 - c0;                                        \
        if (rows <= 0 || cols <= 0) return;                                                  \
        a += ta ? r0 : r0 * lda;                                                             \
        b += tb ? c0 * ldb : c0;                                                             \
        c += r0 * ldc + c0;                                                                  \
        if (k == 0) {                                                                        \
            for (int64_t i = 0; i < rows; i++) memset(c + i * ldc, 0, cols * sizeof(T));     \
        } else if (k <= SG_GEMM_SHORT_K) {                                                   \
            SHORT(ta, tb, rows, cols, k, a, lda, b, ldb, c, ldc);                            \
        } else if (cols == 1) { /* c's column = op(a) @ op(b)'s column: gemv, as numpy does */ \
            GEMV(101, ta ? 112 : 111, (int)(ta ? k : rows), (int)(ta ? rows : k), 1, a,      \
                 (int)SG_MAX(lda, 1), b, tb ? 1 : (int)SG_MAX(ldb, 1), 0, c,                 \
                 (int)SG_MAX(ldc, 1));                                                       \
        } else if (rows == 1) { /* c's row = op(a)'s row @ op(b): gemv on b */               \
            GEMV(101, tb ? 111 : 112, (int)(tb ? cols : k), (int)(tb ? k : cols), 1, b,      \
                 (int)SG_MAX(ldb, 1), a, ta ? (int)SG_MAX(lda, 1) : 1, 0, c, 1);             \
        } else {                                                                             \
            BLAS(101, ta ? 112 : 111, tb ? 112 : 111, (int)rows, (int)cols, (int)k, 1, a,    \
                 (int)SG_MAX(lda, 1), b, (int)SG_MAX(ldb, 1), 0, c, (int)SG_MAX(ldc, 1));    \
        }                                                                                    \
    }                                                                                        \
    static int NAME(int ta, int tb, int64_t m, int64_t n, int64_t k, const T *a, int64_t lda, \
                    const T *b, int64_t ldb, T *c, int64_t ldc) {                              \
        if (m == 0 || n == 0) return 0;                                                      \
        if (!sg_gemm_fits(m, n, k, lda, ldb, ldc)) return 1;                                 \
        bool by_rows;                                                                        \
        const int threads = sg_gemm_threads(m, n, k, &by_rows);                              \
        if (threads == 1) {                                                                  \
            NAME##_block(ta, tb, k, a, lda, b, ldb, c, ldc, 0, m, 0, n);                     \
            return 0;                                                                        \
        }                                                                                    \
        _Pragma("omp parallel num_threads(threads)")                                         \
        {                                                                                    \
            int64_t lo, hi;                                                                  \
            sg_gemm_share(by_rows ? m : n, &lo, &hi);                                        \
            NAME##_block(ta, tb, k, a, lda, b, ldb, c, ldc, by_rows ? lo : 0,                \
                         by_rows ? hi : m, by_rows ? 0 : lo, by_rows ? n : hi);              \
        }                                                                                    \
        return 0;                                                                            \
    }
SG_DEFINE_GEMM(sg_gemm_f32, float, scipy_cblas_sgemm, scipy_cblas_sgemv, sg_short_gemm_f32)
SG_DEFINE_GEMM(sg_gemm_f64, double, scipy_cblas_dgemm, scipy_cblas_dgemv, sg_short_gemm_f64)
#endif

#define SG_PHILOX_FN static inline
#include "symgrad_philox.h"
#define SG_DIVMOD_FN static inline
#include "symgrad_divmod.h"
#define sg_floordiv(a, b) _Generic((a), float: sg_floordiv_f32, double: sg_floordiv_f64,     \
                                    int32_t: sg_floordiv_i32, int64_t: sg_floordiv_i64)(a, b)
#define sg_mod(a, b) _Generic((a), float: sg_mod_f32, double: sg_mod_f64, int32_t: sg_mod_i32, \
                               int64_t: sg_mod_i64)(a, b)

/* ---- the non-finite check mode ---- */
#define SG_DEFINE_FINITE(NAME, T)                                   \
    static int NAME(const T *p, int64_t n) {                        \
        for (int64_t i = 0; i < n; i++)                             \
            if (!isfinite(p[i])) return 0;                          \
        return 1;                                                   \
    }
SG_DEFINE_FINITE(sg_all_finite_f32, float)
SG_DEFINE_FINITE(sg_all_finite_f64, double)
#define sg_all_finite(p, n) _Generic((p), float *: sg_all_finite_f32, double *: sg_all_finite_f64, \
                                     const float *: sg_all_finite_f32,                             \
                                     const double *: sg_all_finite_f64)(p, n)

#endif
