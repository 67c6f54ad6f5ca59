/* numpy's floor_divide and remainder, element by element, for the C and the CUDA runtime alike
 * (the includer defines SG_DIVMOD_FN: "static inline" in C, "__device__ __forceinline__" in
 * CUDA).  Floats follow numpy's npy_divmod, so the quotient and the remainder agree with each
 * other and with numpy at the boundaries (a = b*q + r, r with b's sign).  Integers floor as
 * numpy does; a zero divisor gives 0 (numpy warns and gives 0), and MIN // -1 wraps, where C's
 * own division would trap and stop the process. */
#ifndef SYMGRAD_DIVMOD_H
#define SYMGRAD_DIVMOD_H

#define SG_DEFINE_FLOAT_DIVMOD(T, SUFFIX, FMOD, FLOOR, COPYSIGN)                             \
    SG_DIVMOD_FN T sg_floordiv_##SUFFIX(T a, T b) {                                          \
        const T mod = FMOD(a, b);                                                            \
        if (b == 0) return a / b;                                                            \
        T div = (a - mod) / b;                                                               \
        if (mod != 0 && ((b < 0) != (mod < 0))) div -= 1;                                    \
        if (div == 0) return COPYSIGN((T)0, a / b);                                          \
        T floordiv = FLOOR(div);                                                             \
        if (div - floordiv > (T)0.5) floordiv += 1;                                          \
        return floordiv;                                                                     \
    }                                                                                        \
    SG_DIVMOD_FN T sg_mod_##SUFFIX(T a, T b) {                                               \
        T mod = FMOD(a, b);                                                                  \
        if (b == 0) return mod;                                                              \
        if (mod != 0) {                                                                      \
            if ((b < 0) != (mod < 0)) mod += b;                                              \
        } else {                                                                             \
            mod = COPYSIGN((T)0, b);                                                         \
        }                                                                                    \
        return mod;                                                                          \
    }
SG_DEFINE_FLOAT_DIVMOD(float, f32, fmodf, floorf, copysignf)
SG_DEFINE_FLOAT_DIVMOD(double, f64, fmod, floor, copysign)

#define SG_DEFINE_INT_DIVMOD(T, U, SUFFIX)                                                   \
    SG_DIVMOD_FN T sg_floordiv_##SUFFIX(T a, T b) {                                          \
        if (b == 0) return 0;                                                                \
        if (b == -1) return (T)(0 - (U)a);  /* wraps at MIN, as numpy's does */               \
        T q = a / b;                                                                         \
        if ((a % b != 0) && ((a < 0) != (b < 0))) q -= 1;                                    \
        return q;                                                                            \
    }                                                                                        \
    SG_DIVMOD_FN T sg_mod_##SUFFIX(T a, T b) {                                               \
        if (b == 0 || b == -1) return 0;                                                     \
        T r = a % b;                                                                         \
        if (r != 0 && ((r < 0) != (b < 0))) r += b;                                          \
        return r;                                                                            \
    }
SG_DEFINE_INT_DIVMOD(int32_t, uint32_t, i32)
SG_DEFINE_INT_DIVMOD(int64_t, uint64_t, i64)

#endif
