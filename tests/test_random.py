"""Counter-based random numbers and dropout: the same bits on every backend, fresh per call."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg
from symgrad.graph import topo_sort
from symgrad.ops.random import philox4x32


def counters(tensor):
    return [n for n in topo_sort([tensor]) if n.op == "shared" and "counter" in (n.name or "")]


def test_philox_known_answers():
    # Random123's known-answer vectors for philox4x32-10
    assert [int(v) for v in philox4x32(0, 0, 0, 0, 0, 0)] == \
        [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]
    assert [int(v) for v in philox4x32(0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344,
                                       0xA4093822, 0x299F31D0)] == \
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_uniform_is_identical_on_every_backend(dtype, backend):
    u = sg.random.uniform((7, 33), seed=11, dtype=dtype)
    (counter,) = counters(u)
    ref = sg.function([], u, backend="numpy")
    got = sg.function([], u, backend=backend)
    draws_ref = [ref() for _ in range(3)]
    counter.set_value(0)
    draws = [got() for _ in range(3)]
    for a, b in zip(draws_ref, draws):
        assert a.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(draws[0], draws[1])  # the counter advances per call
    assert 0.0 <= min(d.min() for d in draws) and max(d.max() for d in draws) < 1.0


def test_float64_uniforms_carry_53_bits(backend):
    """Two Philox words per float64 value: no value is a multiple of 2^-24 by construction,
    and the normal's far tails are reachable."""
    u = sg.function([], sg.random.uniform((100_000,), seed=5, dtype="float64"),
                    backend=backend)()
    assert np.mean(u * 2.0 ** 24 == np.floor(u * 2.0 ** 24)) < 0.01
    assert len(np.unique(u)) == u.size
    low_bits = (u * 2.0 ** 53).astype(np.uint64) & np.uint64(1)
    assert 0.45 < low_bits.mean() < 0.55      # the last of the 53 bits is random too


def test_dropout_mask_statistics_scaling_and_gradient(backend):
    x = sg.placeholder("x", ("batch", 1000))
    p = 0.3
    y = sg.dropout(x, p, seed=3)
    g = sg.grad(sg.sum(y * 2), x)
    f = sg.function([x], [y, g], backend=backend)
    a = np.full((100, 1000), 2.0, np.float32)
    out, grad = f(a)
    kept = out != 0
    assert abs(kept.mean() - (1 - p)) < 0.01
    np.testing.assert_allclose(out[kept], 2.0 / (1 - p), rtol=1e-6)
    np.testing.assert_allclose(grad, np.where(kept, 2.0 / (1 - p), 0.0), rtol=1e-6)
    out2, _ = f(a)
    assert not np.array_equal(out, out2)


def test_dropout_same_seed_same_masks_numpy_and_c():
    x = sg.placeholder("x", (None, 64))
    y = sg.dropout(x, 0.5, seed=42)
    (counter,) = counters(y)
    a = np.random.default_rng(0).standard_normal((8, 64)).astype(np.float32)
    ref = sg.function([x], y, backend="numpy")
    first = [ref(a) for _ in range(2)]
    counter.set_value(0)
    fast = sg.function([x], y)
    np.testing.assert_array_equal(fast(a), first[0])
    np.testing.assert_array_equal(fast(a), first[1])


def test_dropout_off_and_switchable():
    x = sg.placeholder("x", (4, 8))
    a = np.ones((4, 8), np.float32)
    assert sg.dropout(x, 0.5, training=False) is x
    flag = sg.placeholder("training", (), dtype="bool")
    f = sg.function([x, flag], sg.dropout(x, 0.5, training=flag, seed=1))
    np.testing.assert_array_equal(f(a, np.array(False)), a)
    assert (f(a, np.array(True)) == 0).any()
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\], got 1.5"):
        sg.dropout(x, 1.5)
    everything = sg.function([x], sg.dropout(x, 1.0))  # drops it all, as torch does
    np.testing.assert_array_equal(everything(a), np.zeros_like(a))


def test_normal_and_bernoulli_statistics():
    z = sg.random.normal((200_000,), seed=7)
    b = sg.random.bernoulli((200_000,), 0.2, seed=8)
    zv, bv = sg.function([], [z, b])()
    assert abs(zv.mean()) < 0.01 and abs(zv.std() - 1) < 0.01
    assert abs(bv.mean() - 0.2) < 0.005
