"""How graph values are spelled in C: the names a graph name must not take, and literals."""
from __future__ import annotations

import math

import numpy as np

from .kernels import ctype


# C keywords, runtime helpers, the local names of the templates, the lower-case object-like
# macros of the headers the step includes, and the math functions a kernel may call (tgmath.h
# turns exp into expf): graph names that would collide get a trailing underscore, as do names in
# capitals (a shared named I or NULL would meet <complex.h>'s or <stddef.h>'s macro).
RESERVED_NAMES = set("""
auto break case char const continue default do double else enum extern float for goto if inline
int long register restrict return short signed sizeof static struct switch typedef union unsigned
void volatile while bool true false int32_t int64_t NAN INFINITY exp log sqrt tanh sin cos pow
inner o j x y m total scale shift label bad mi row g c acc parts threads best best_index pos
offsets workspace dims args t result main n b w draw seed lane other error status debug
cuda_error failed epilogue tid tx ty log_total g_row row_max threadIdx blockIdx blockDim gridDim
warpSize dim3 uint3
at block blocks by_rows c0 end extent first found i k l last last_block lo nan_block nan_seen
r0 run_best run_block run_nan saw_nan start sum tile tile_acc top width
alignas alignof and asm bitand bitor catch char16_t char32_t class compl concept consteval
constexpr constinit const_cast co_await co_return co_yield decltype delete dynamic_cast explicit
export friend mutable namespace new noexcept not nullptr operator or private protected public
reinterpret_cast requires static_assert static_cast template this thread_local throw try typeid
typename using virtual wchar_t xor
complex imaginary linux unix errno math_errhandling memset memcpy
""".split()) | {name + suffix for name in
                 "exp log tanh sin cos pow sqrt log1p expm1 fabs floor ceil fmod round trunc "
                 "isnan isinf isfinite signbit fmax fmin copysign".split()
                 for suffix in ("", "f", "l")}


def literal_text(value, dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "1" if value else "0"
    if dtype.kind in "iu":
        return f"INT64_C({int(value)})" if dtype.itemsize == 8 else str(int(value))
    value = float(value)
    if math.isnan(value):
        return "NAN"
    if math.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    text = repr(float(np.float32(value))) + "f" if dtype == np.float32 else repr(value)
    if "e" not in text and "." not in text and not text.endswith("f"):
        text += ".0"
    if dtype == np.float32 and "." not in text and "e" not in text:
        text = text[:-1] + ".0f"
    return f"({text})" if text.startswith("-") else text


def extreme_literal(dtype, lowest: bool) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return "(-INFINITY)" if lowest else "INFINITY"
    if dtype.kind == "b":
        return "0" if lowest else "1"
    info = np.iinfo(dtype)
    return f"(({ctype(dtype)}){info.min}{'LL' if dtype.itemsize == 8 else ''})" if lowest \
        else f"(({ctype(dtype)}){info.max}{'LL' if dtype.itemsize == 8 else ''})"
