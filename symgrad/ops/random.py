"""Random numbers inside the graph: Philox4x32-10, a counter-based generator.  Element i of a
draw is a pure function of (seed, the draw's counter, i), so every backend (the numpy reference
included) produces the same bits, and a shared counter, bumped by each call, gives fresh numbers
per step without any hidden state."""
from __future__ import annotations

import numpy as np

from ..graph import DTYPES, is_float
from . import Op, register

PHILOX_M = (0xD2511F53, 0xCD9E8D57)
PHILOX_W = (0x9E3779B9, 0xBB67AE85)
MASK32 = np.uint64(0xFFFFFFFF)


def philox4x32(c0, c1, c2, c3, k0, k1, rounds=10):
    """Vectorized Philox4x32 on uint64 arrays holding 32-bit words."""
    c = [np.asarray(v, np.uint64) & MASK32 for v in (c0, c1, c2, c3)]
    k = [np.uint64(k0) & MASK32, np.uint64(k1) & MASK32]
    for r in range(rounds):
        p0 = c[0] * np.uint64(PHILOX_M[0])
        p1 = c[2] * np.uint64(PHILOX_M[1])
        c = [((p1 >> np.uint64(32)) ^ c[1] ^ k[0]) & MASK32, p1 & MASK32,
             ((p0 >> np.uint64(32)) ^ c[3] ^ k[1]) & MASK32, p0 & MASK32]
        if r < rounds - 1:
            k = [(k[0] + np.uint64(PHILOX_W[0])) & MASK32, (k[1] + np.uint64(PHILOX_W[1])) & MASK32]
    return c


def uniform_bits(n: int, seed: int, counter: int) -> np.ndarray:
    """n uint32 words: element i is word i % 4 of Philox((i // 4, 0, counter lo, counter hi),
    (seed lo, seed hi))."""
    blocks = np.arange((n + 3) // 4, dtype=np.uint64)
    counter = int(counter) & 0xFFFFFFFFFFFFFFFF
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    words = philox4x32(blocks & MASK32, blocks >> np.uint64(32),
                       np.full_like(blocks, counter & 0xFFFFFFFF),
                       np.full_like(blocks, counter >> 32), seed & 0xFFFFFFFF, seed >> 32)
    return np.stack(words, axis=1).reshape(-1)[:n]


def uniform_values(n: int, seed: int, counter: int, dtype) -> np.ndarray:
    """n values in [0, 1): float32 takes one word each, 24 bits ((word >> 8) * 2^-24, four
    values per Philox block); float64 takes two, 53 bits (((w0 >> 5) * 2^26 + (w1 >> 6)) *
    2^-53, two values per block), as numpy's generators build a double."""
    if np.dtype(dtype).itemsize == 8:
        words = uniform_bits(2 * n, seed, counter).reshape(n, 2)
        high, low = words[:, 0] >> np.uint64(5), words[:, 1] >> np.uint64(6)
        return ((high << np.uint64(26)) | low).astype(np.float64) * 2.0 ** -53
    bits = uniform_bits(n, seed, counter)
    return ((bits >> np.uint64(8)).astype(np.float64) * 2.0 ** -24).astype(np.float32)


@register
class RandomUniform(Op):
    """U[0, 1) with the shape of `like`, from the int64 scalar `counter` (see
    uniform_values)."""
    name, kind, differentiable = "random_uniform", "special", False

    def infer(self, inputs, attrs):
        counter, like = inputs
        if counter.ndim != 0 or counter.dtype != DTYPES["int64"]:
            raise self.error("the counter must be an int64 scalar")
        if not is_float(DTYPES[attrs["dtype"]]):
            raise self.error(f"dtype must be float32 or float64, got {attrs['dtype']}")
        return like._shape, DTYPES[attrs["dtype"]]

    def numpy(self, attrs, counter, like):
        values = uniform_values(like.size, attrs["seed"], int(counter), attrs["dtype"])
        return values.astype(attrs["dtype"]).reshape(like.shape)
