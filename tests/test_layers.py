"""Network layers (symgrad/layers.py): conv2d, max_pool2d, avg_pool2d, layer_norm and scaled
dot-product attention, against naive numpy implementations written here (loops over output
pixels), gradchecked in float64, on every backend.  torch is only an optional extra reference."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg

DTYPES = ["float64", "float32"]
# forward tolerance per dtype (the C backend's BLAS and the reference sum in different orders)
TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=2e-5, atol=2e-6)}
GRADCHECK = dict(eps=1e-6, rtol=1e-5, atol=1e-7)  # API.md's defaults, not loosened


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


# ------------------------------------------------------------------------------ references
def ref_conv2d(x, w, b=None, stride=1, padding=0, dilation=1):
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw), x.dtype)
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n, o, ho, wo), np.float64)
    for i in range(ho):
        for j in range(wo):
            patch = xp[:, :, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                       j * sw:j * sw + dw * (kw - 1) + 1:dw]          # (n, c, kh, kw)
            out[:, :, i, j] = np.einsum("nckl,ockl->no", patch, w)
    if b is not None:
        out += b[None, :, None, None]
    return out.astype(x.dtype)


def ref_pool(x, kernel, stride=None, padding=0, kind="max"):
    (kh, kw) = _pair(kernel)
    (sh, sw) = _pair(kernel if stride is None else stride)
    (ph, pw) = _pair(padding)
    n, c, h, w = x.shape
    fill = -np.inf if kind == "max" else 0.0
    xp = np.full((n, c, h + 2 * ph, w + 2 * pw), fill, x.dtype)
    xp[:, :, ph:ph + h, pw:pw + w] = x
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    out = np.zeros((n, c, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            win = xp[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = win.max(axis=(2, 3)) if kind == "max" else win.mean(axis=(2, 3))
    return out


def ref_layer_norm(x, weight=None, bias=None, axis=-1, eps=1e-5):
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    axes = tuple(sorted(a % x.ndim for a in axes))
    mu = x.mean(axis=axes, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=axes, keepdims=True)
    y = (x - mu) / np.sqrt(var + eps)
    view = [x.shape[a] if a in axes else 1 for a in range(axes[0], x.ndim)]
    if weight is not None:
        y = y * weight.reshape(view)
    if bias is not None:
        y = y + bias.reshape(view)
    return y.astype(x.dtype)


def ref_attention(q, k, v, mask=None, causal=False):
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    keep = np.ones(s.shape[-2:], bool)
    if causal:
        keep = np.tril(keep)
    if mask is not None and mask.dtype == bool:
        keep = keep & mask
    elif mask is not None:
        s = s + mask
    s = np.where(keep, s, -np.inf)
    s = s - s.max(axis=-1, keepdims=True)
    p = np.exp(s)
    p = p / p.sum(axis=-1, keepdims=True)
    return (p @ v).astype(q.dtype)


def distinct(rng, shape, dtype="float64"):
    """Values at least 0.01 apart (no ties for max pooling), in a random order."""
    n = int(np.prod(shape))
    return (rng.permutation(n).reshape(shape) * 0.01 - n * 0.005).astype(dtype)


def weighted_sum(y, seed=7):
    """A scalar cost whose adjoint differs per element (a plain sum hides index mix-ups)."""
    r = np.random.default_rng(seed).standard_normal([int(d) for d in y.shape])
    return sg.sum(y * sg.constant(r, y.dtype))


# ------------------------------------------------------------------------------ conv2d
CONV_CASES = {
    # id: (x shape, w shape, kwargs)
    "basic": ((2, 3, 6, 5), (4, 3, 3, 3), dict()),
    "stride2-odd": ((2, 2, 7, 9), (3, 2, 3, 3), dict(stride=2)),
    "pad-gt-half": ((2, 2, 5, 4), (3, 2, 3, 3), dict(padding=2)),
    "dilation2": ((2, 2, 8, 7), (2, 2, 3, 2), dict(dilation=2, padding=1)),
    "batch1": ((1, 1, 5, 5), (2, 1, 2, 2), dict(stride=1, padding=1)),
    "pairs": ((2, 2, 9, 6), (3, 2, 3, 2), dict(stride=(2, 1), padding=(1, 2), dilation=(1, 2))),
    "1x1": ((3, 4, 3, 3), (5, 4, 1, 1), dict()),
    "full": ((2, 1, 4, 4), (3, 1, 4, 4), dict()),
}


def conv_data(case, dtype, seed=0):
    xs, ws, kw = CONV_CASES[case]
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(xs).astype(dtype), rng.standard_normal(ws).astype(dtype),
            rng.standard_normal(ws[0]).astype(dtype), kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(CONV_CASES))
def test_conv2d_matches_reference(case, dtype, backend):
    xa, wa, ba, kw = conv_data(case, dtype)
    x = sg.placeholder("x", (None,) + xa.shape[1:], dtype)   # symbolic batch
    w = sg.placeholder("w", wa.shape, dtype)
    b = sg.placeholder("b", ba.shape, dtype)
    fn = sg.function([x, w, b], [sg.conv2d(x, w, b, **kw), sg.conv2d(x, w, **kw)], backend=backend)
    with_bias, without = fn(xa, wa, ba)
    assert with_bias.dtype == np.dtype(dtype)
    np.testing.assert_allclose(with_bias, ref_conv2d(xa, wa, ba, **kw), **TOL[dtype])
    np.testing.assert_allclose(without, ref_conv2d(xa, wa, None, **kw), **TOL[dtype])
    # one compiled function serves another batch size
    xb = np.random.default_rng(1).standard_normal((1,) + xa.shape[1:]).astype(dtype)
    np.testing.assert_allclose(fn(xb, wa, ba)[0], ref_conv2d(xb, wa, ba, **kw), **TOL[dtype])


@pytest.mark.parametrize("case", ["basic", "stride2-odd", "pad-gt-half", "dilation2", "batch1",
                                  "pairs"])
def test_conv2d_gradcheck(case, backend):
    xa, wa, ba, kw = conv_data(case, "float64")
    sg.gradcheck(lambda x, w, b: weighted_sum(sg.conv2d(x, w, b, **kw)), [xa, wa, ba],
                 backend=backend, **GRADCHECK)


def test_conv2d_static_batch_and_python_arrays():
    rng = np.random.default_rng(3)
    xa, wa = rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((2, 1, 3, 3))
    x = sg.placeholder("x", xa.shape, "float64")
    out = sg.function([x], sg.conv2d(x, wa, padding=1), backend="numpy")(xa)
    np.testing.assert_allclose(out, ref_conv2d(xa, wa, padding=1), rtol=1e-12)


def test_conv2d_errors():
    x = sg.placeholder("x", (None, 3, 5, 5))
    with pytest.raises(sg.ShapeError, match=r"conv2d.*4-D.*\(5, 5\)"):
        sg.conv2d(sg.placeholder("y", (5, 5)), sg.placeholder("w", (2, 3, 3, 3)))
    with pytest.raises(sg.ShapeError, match=r"conv2d.*3 channels.*expects 2.*\(4, 2, 3, 3\)"):
        sg.conv2d(x, sg.placeholder("w", (4, 2, 3, 3)))
    with pytest.raises(sg.ShapeError, match=r"conv2d.*larger than the padded input 7x7"):
        sg.conv2d(x, sg.placeholder("w", (4, 3, 8, 8)), padding=1)
    with pytest.raises(sg.ShapeError, match=r"conv2d.*dilation"):
        sg.conv2d(x, sg.placeholder("w", (4, 3, 3, 3)), dilation=3)
    with pytest.raises(sg.ShapeError, match=r"conv2d.*weight must be 4-D"):
        sg.conv2d(x, sg.placeholder("w", (4, 27)))
    with pytest.raises(sg.ShapeError, match=r"conv2d.*bias must have shape \(4,\)"):
        sg.conv2d(x, sg.placeholder("w", (4, 3, 3, 3)), sg.placeholder("b", (3,)))
    with pytest.raises(sg.ShapeError, match=r"conv2d.*stride"):
        sg.conv2d(x, sg.placeholder("w", (4, 3, 3, 3)), stride=0)
    with pytest.raises(sg.ShapeError, match=r"conv2d.*only the batch dim may be symbolic"):
        sg.conv2d(sg.placeholder("z", (2, 3, None, 5)), sg.placeholder("w", (4, 3, 3, 3)))


# ------------------------------------------------------------------------------ pooling
POOL_CASES = {
    # id: (x shape, args)
    "k2": ((2, 3, 6, 6), (2,)),
    "k3-s2-odd": ((2, 2, 7, 9), (3, 2)),
    "k3-s2-p1": ((1, 2, 7, 6), (3, 2, 1)),
    "k2-s1": ((2, 1, 5, 4), (2, 1)),
    "rect": ((2, 2, 7, 8), ((3, 2), (2, 1), (1, 1))),
    "k3-default-stride-leftover": ((1, 1, 8, 7), (3,)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", list(POOL_CASES))
def test_pool_matches_reference(case, kind, dtype, backend):
    shape, args = POOL_CASES[case]
    xa = distinct(np.random.default_rng(0), shape, dtype)
    x = sg.placeholder("x", (None,) + shape[1:], dtype)
    layer = sg.max_pool2d if kind == "max" else sg.avg_pool2d
    out = sg.function([x], layer(x, *args), backend=backend)(xa)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, ref_pool(xa, *args, kind=kind), **TOL[dtype])


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", ["k2", "k3-s2-odd", "k3-s2-p1", "k2-s1", "rect"])
def test_pool_gradcheck(case, kind, backend):
    shape, args = POOL_CASES[case]
    xa = distinct(np.random.default_rng(1), shape)   # no ties: max is differentiable there
    layer = sg.max_pool2d if kind == "max" else sg.avg_pool2d
    sg.gradcheck(lambda x: weighted_sum(layer(x, *args)), [xa], backend=backend, **GRADCHECK)


def test_max_pool_gradient_goes_to_the_max(backend):
    xa = np.array([[[[1., 5., 2., 0.], [3., 4., 9., 8.], [0., 0., 1., 2.], [7., 1., 3., 6.]]]])
    x = sg.placeholder("x", xa.shape, "float64")
    g = sg.grad(sg.sum(sg.max_pool2d(x, 2)), x)
    got = sg.function([x], g, backend=backend)(xa)
    want = np.zeros_like(xa)
    want[0, 0, 0, 1] = want[0, 0, 1, 2] = want[0, 0, 3, 0] = want[0, 0, 3, 3] = 1
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("kernel, stride", [(2, 2), (3, 3), (3, 2), (2, 1)])
def test_max_pool_adjoint_stored_or_added_equals_numpy(kernel, stride):
    """Windows that share no position (stride == kernel) take the adjoint's stored path, the
    others its added path; both equal the numpy reference bit for bit, with ties (an even
    split), a negative g (its -0.0 shares land as +0.0) and a NaN in the image."""
    rng = np.random.default_rng(kernel * 10 + stride)
    xa = rng.integers(-2, 3, (2, 3, 7, 8)).astype(np.float64)  # many ties
    xa[0, 1, 2, 3] = np.nan
    x = sg.placeholder("x", (None, 3, 7, 8), "float64")
    y = sg.max_pool2d(x, kernel, stride)
    ga = -rng.random(y.shape[1:]) - 0.5
    g = sg.grad(sg.sum(y * sg.constant(ga)), x)
    fast = sg.function([x], g)
    ref = sg.function([x], g, backend="numpy")
    stored = "is stored, not added" in fast.source
    assert stored == (kernel == stride)
    got, want = fast(xa), ref(xa)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


def test_pool_negative_inputs_with_padding(backend):
    # -inf padding: an all-negative image must not see a 0 from the padding
    xa = -1 - distinct(np.random.default_rng(2), (1, 1, 5, 5))
    xa -= xa.max() + 1
    x = sg.placeholder("x", xa.shape, "float64")
    out = sg.function([x], sg.max_pool2d(x, 3, 2, 1), backend=backend)(xa)
    np.testing.assert_array_equal(out, ref_pool(xa, 3, 2, 1, "max"))
    assert np.all(out < 0)


def test_max_pool_padding_materializes_no_inf(backend):
    """Padded taps of max pooling repeat an in-image tap, so check_finite has nothing to flag and
    -inf inputs stay -inf."""
    xa = distinct(np.random.default_rng(3), (2, 1, 5, 5), "float32")
    xa[0, 0, 0, :] = -np.inf
    x = sg.placeholder("x", (None, 1, 5, 5), "float32")
    y = sg.max_pool2d(x, 3, 2, 1)
    g = sg.grad(sg.sum(sg.maximum(y, -10.0)), x)
    options = dict(check_finite=True) if backend == "c" else {}
    out, gx = sg.function([x], [y, g], backend=backend, **options)(np.nan_to_num(xa, neginf=-5))
    np.testing.assert_array_equal(out, ref_pool(np.nan_to_num(xa, neginf=-5), 3, 2, 1, "max"))
    assert gx.sum() == out.size   # each window's unit of gradient lands on one pixel
    out = sg.function([x], y, backend=backend)(xa)
    np.testing.assert_array_equal(out, ref_pool(xa, 3, 2, 1, "max"))


def test_pool_errors():
    x = sg.placeholder("x", (None, 2, 5, 5))
    with pytest.raises(sg.ShapeError, match=r"max_pool2d.*4-D"):
        sg.max_pool2d(sg.placeholder("y", (2, 5, 5)), 2)
    with pytest.raises(sg.ShapeError, match=r"avg_pool2d.*padding.*half the kernel"):
        sg.avg_pool2d(x, 2, padding=2)
    with pytest.raises(sg.ShapeError, match=r"max_pool2d.*larger than the padded input"):
        sg.max_pool2d(x, 6)


# ------------------------------------------------------------------------------ layer_norm
LN_CASES = {
    # id: (x shape, axis)
    "last": ((4, 6), -1),
    "last-3d": ((2, 3, 5), -1),
    "two-trailing": ((2, 3, 4), (1, 2)),
    "middle": ((2, 4, 3), 1),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("case", list(LN_CASES))
def test_layer_norm_matches_reference(case, affine, dtype, backend):
    shape, axis = LN_CASES[case]
    rng = np.random.default_rng(0)
    xa = (rng.standard_normal(shape) * 3 + 1).astype(dtype)
    axes = (axis,) if isinstance(axis, int) else axis
    pshape = tuple(shape[a] for a in axes)
    wa, ba = rng.standard_normal(pshape).astype(dtype), rng.standard_normal(pshape).astype(dtype)
    x = sg.placeholder("x", (None,) + shape[1:], dtype)
    if affine:
        w, b = sg.placeholder("w", pshape, dtype), sg.placeholder("b", pshape, dtype)
        fn = sg.function([x, w, b], sg.layer_norm(x, w, b, axis=axis), backend=backend)
        out, want = fn(xa, wa, ba), ref_layer_norm(xa, wa, ba, axis=axis)
    else:
        fn = sg.function([x], sg.layer_norm(x, axis=axis), backend=backend)
        out, want = fn(xa), ref_layer_norm(xa, axis=axis)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_allclose(out, want, **TOL[dtype])


@pytest.mark.parametrize("case", list(LN_CASES))
def test_layer_norm_gradcheck(case, backend):
    shape, axis = LN_CASES[case]
    rng = np.random.default_rng(1)
    axes = (axis,) if isinstance(axis, int) else axis
    pshape = tuple(shape[a] for a in axes)
    xa = rng.standard_normal(shape) * 2 + 0.5
    wa, ba = rng.standard_normal(pshape), rng.standard_normal(pshape)
    sg.gradcheck(lambda x, w, b: weighted_sum(sg.layer_norm(x, w, b, axis=axis)), [xa, wa, ba],
                 backend=backend, **GRADCHECK)


def test_layer_norm_constant_row_is_finite(backend):
    x = sg.placeholder("x", (None, 4), "float32")
    y = sg.layer_norm(x)
    g = sg.grad(sg.sum(y * sg.constant(np.arange(4.0, dtype=np.float32))), x)
    out, gx = sg.function([x], [y, g], backend=backend)(np.full((2, 4), 3.0, np.float32))
    np.testing.assert_array_equal(out, 0)
    assert np.all(np.isfinite(gx))


def test_layer_norm_errors():
    x = sg.placeholder("x", (None, 3, 4))
    with pytest.raises(sg.ShapeError, match=r"layer_norm.*weight.*\(4,\).*got \(3,\)"):
        sg.layer_norm(x, sg.placeholder("w", (3,)))
    with pytest.raises(sg.ShapeError, match=r"layer_norm.*bias.*\(3, 4\)"):
        sg.layer_norm(x, bias=sg.placeholder("b", (4,)), axis=(1, 2))
    with pytest.raises(sg.ShapeError, match=r"layer_norm.*axis 3"):
        sg.layer_norm(x, axis=3)


# ------------------------------------------------------------------------------ attention
def attention_data(shape_q, shape_k, dv, dtype, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal(shape_q).astype(dtype)
    k = rng.standard_normal(shape_k).astype(dtype)
    v = rng.standard_normal(shape_k[:-1] + (dv,)).astype(dtype)
    return q, k, v


ATTN_CASES = {
    # id: (q shape, k shape, dv, kwargs)
    "plain": ((2, 5, 4), (2, 6, 4), 3, dict()),
    "heads": ((2, 3, 4, 8), (2, 3, 4, 8), 8, dict()),
    "causal": ((2, 2, 5, 4), (2, 2, 5, 4), 3, dict(causal=True)),
    "causal-rect": ((1, 4, 3), (1, 6, 3), 2, dict(causal=True)),
    "float-mask": ((2, 4, 3), (2, 5, 3), 2, dict(mask="float")),
    "bool-mask": ((2, 4, 3), (2, 5, 3), 2, dict(mask="bool")),
    "causal-bool-mask": ((2, 5, 3), (2, 5, 3), 2, dict(causal=True, mask="bool")),
}


def attention_mask(kind, tq, tk):
    rng = np.random.default_rng(5)
    if kind == "float":
        return rng.standard_normal((tq, tk))
    keep = rng.random((tq, tk)) < 0.6
    keep[:, 0] = True   # every row keeps a key, so the reference has no 0/0
    return keep


def attention_args(case, dtype):
    sq, sk, dv, kw = ATTN_CASES[case]
    q, k, v = attention_data(sq, sk, dv, dtype)
    kw = dict(kw)
    if "mask" in kw:
        m = attention_mask(kw["mask"], sq[-2], sk[-2])
        kw["mask"] = m if m.dtype == bool else m.astype(dtype)
    return q, k, v, kw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(ATTN_CASES))
def test_attention_matches_reference(case, dtype, backend):
    qa, ka, va, kw = attention_args(case, dtype)
    q = sg.placeholder("q", (None,) + qa.shape[1:], dtype)
    k = sg.placeholder("k", (None,) + ka.shape[1:], dtype)
    v = sg.placeholder("v", (None,) + va.shape[1:], dtype)
    out = sg.function([q, k, v], sg.scaled_dot_product_attention(q, k, v, **kw),
                      backend=backend)(qa, ka, va)
    assert out.dtype == np.dtype(dtype) and out.shape == qa.shape[:-1] + va.shape[-1:]
    np.testing.assert_allclose(out, ref_attention(qa, ka, va, **kw), **TOL[dtype])


@pytest.mark.parametrize("case", list(ATTN_CASES))
def test_attention_gradcheck(case, backend):
    qa, ka, va, kw = attention_args(case, "float64")
    sg.gradcheck(lambda q, k, v: weighted_sum(sg.scaled_dot_product_attention(q, k, v, **kw)),
                 [qa, ka, va], backend=backend, **GRADCHECK)


@pytest.mark.parametrize("dtype", DTYPES)
def test_attention_masked_rows_give_no_nan(dtype, backend):
    qa, ka, va = attention_data((2, 4, 3), (2, 4, 3), 2, dtype)
    keep = np.ones((4, 4), bool)
    keep[2] = False   # a fully masked query row
    q, k, v = (sg.placeholder(n, a.shape, dtype) for n, a in (("q", qa), ("k", ka), ("v", va)))
    for kw in (dict(causal=True), dict(causal=True, mask=keep), dict(mask=keep)):
        y = sg.scaled_dot_product_attention(q, k, v, **kw)
        grads = sg.grad(weighted_sum(y), [q, k, v])
        out = sg.function([q, k, v], [y] + grads, backend=backend)(qa, ka, va)
        for a in out:
            assert np.all(np.isfinite(a)), kw
        if "mask" in kw and not kw.get("causal"):
            # the fully masked row averages v uniformly
            np.testing.assert_allclose(out[0][:, 2], va.mean(axis=1), **TOL[dtype])
        if kw == dict(causal=True):
            # the first query sees only the first key; later keys get no gradient from it
            np.testing.assert_allclose(out[0][:, 0], va[:, 0], **TOL[dtype])


@pytest.mark.parametrize("case", ["causal", "causal-rect"])
def test_causal_attention_over_a_symbolic_sequence_length(case, backend):
    """Causal attention with the batch and both sequence lengths symbolic: one function serves
    every length (the mask comes from arange), equal to the reference, with gradients equal
    to those of the function built for the static lengths."""
    qa, ka, va, kw = attention_args(case, "float64")
    lead = qa.shape[:-2]
    q = sg.placeholder("q", (None,) + lead[1:] + ("Tq", qa.shape[-1]), "float64")
    k = sg.placeholder("k", (None,) + lead[1:] + ("Tk", ka.shape[-1]), "float64")
    v = sg.placeholder("v", (None,) + lead[1:] + ("Tk", va.shape[-1]), "float64")
    weights = np.random.default_rng(3).standard_normal(va.shape[-1])

    def cost(y):  # an adjoint that differs per element, for any lengths
        return sg.sum(sg.sin(y) * weights)

    y = sg.scaled_dot_product_attention(q, k, v, **kw)
    fn = sg.function([q, k, v], [y] + sg.grad(cost(y), [q, k, v]), backend=backend)
    for cut in (0, 1):  # the full lengths, then one step shorter
        tq, tk = qa.shape[-2] - cut, ka.shape[-2] - cut
        args = (qa[..., :tq, :], ka[..., :tk, :], va[..., :tk, :])
        got = fn(*args)
        np.testing.assert_allclose(got[0], ref_attention(*args, **kw), **TOL["float64"])
        qs, ks, vs = (sg.placeholder(n, a.shape, "float64") for n, a in zip("qkv", args))
        ys = sg.scaled_dot_product_attention(qs, ks, vs, **kw)
        want = sg.function([qs, ks, vs], sg.grad(cost(ys), [qs, ks, vs]),
                           backend=backend)(*args)
        for g, w in zip(got[1:], want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


def test_arange_follows_a_symbolic_dim(backend):
    x = sg.placeholder("x", (None, 3), "float64")
    positions = sg.arange(x.shape[0], dtype="float64")
    fn = sg.function([x], [positions, sg.sum(x * positions[:, None])], backend=backend)
    for n in (0, 1, 5):
        xv = np.random.default_rng(n).standard_normal((n, 3))
        got_pos, got_sum = fn(xv)
        np.testing.assert_array_equal(got_pos, np.arange(n, dtype=np.float64))
        np.testing.assert_allclose(got_sum, np.sum(xv * np.arange(n)[:, None]), rtol=1e-13)
    for args in [(4,), (2, 9), (9, 2, -3), (0.5, 3)]:  # numbers: numpy's values and dtype
        got = sg.function([], sg.arange(*args))()
        np.testing.assert_array_equal(got, np.arange(*args))
        assert got.dtype == np.arange(*args).dtype
    assert sg.arange(3, dtype="float32").dtype == np.float32
    with pytest.raises(ValueError, match="arange: a symbolic stop .* takes start 0 and step 1"):
        sg.arange(1, x.shape[0])
    with pytest.raises(TypeError, match="arange: start must be a number"):
        sg.arange(x.shape[0], 5)


def test_attention_errors():
    q = sg.placeholder("q", (None, 4))
    with pytest.raises(sg.ShapeError, match=r"scaled_dot_product_attention: q and k must share"):
        sg.scaled_dot_product_attention(q, sg.placeholder("k", (6, 3)), sg.placeholder("v", (6, 3)))
    with pytest.raises(sg.ShapeError, match=r"scaled_dot_product_attention.*at least 2-D"):
        sg.scaled_dot_product_attention(sg.placeholder("a", (4,)), q, q)


# ------------------------------------------------------------------------------ C equals numpy
def test_backend_equals_numpy_on_a_small_network(backend):
    """One graph using every layer, forward and all gradients: `backend` against numpy."""
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((3, 2, 9, 9))
    wa, ba = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    ga, bb = rng.standard_normal(25), rng.standard_normal(25)
    x = sg.placeholder("x", (3, 2, 9, 9), "float64")
    w, b = sg.shared(wa, name="w"), sg.shared(ba, name="b")
    gamma, beta = sg.shared(ga, name="gamma"), sg.shared(bb, name="beta")
    h = sg.relu(sg.conv2d(x, w, b, stride=2, padding=2, dilation=2))        # (N, 4, 5, 5)
    h = sg.max_pool2d(h, 3, 1, 1) + sg.avg_pool2d(h, 2, 1, 1)[:, :, :5, :5]
    t = sg.layer_norm(sg.reshape(h, (x.shape[0], 4, 25)), gamma, beta)     # 4 tokens of 25
    y = sg.scaled_dot_product_attention(t, t, t, causal=True)
    cost = weighted_sum(y)
    grads = sg.grad(cost, [x, w, b, gamma, beta])
    outs = [sg.function([x], [cost] + grads, backend=be)(xa) for be in ("numpy", backend)]
    for a, c in zip(*outs):
        np.testing.assert_allclose(c, a, rtol=1e-10, atol=1e-12)


def test_second_order_through_layers(backend):
    """Gradients of gradients: the layers are composites, so grad-of-grad works through them."""
    rng = np.random.default_rng(0)
    xa, wa = rng.standard_normal((2, 2, 6, 6)) * 0.3, rng.standard_normal((3, 2, 3, 3)) * 0.3

    def f(x, w):
        y = sg.max_pool2d(sg.tanh(sg.conv2d(x, w, padding=1, stride=2)), 2, 1, 1)
        y = sg.layer_norm(y, axis=(2, 3))
        gw = sg.grad(sg.sum(y * y * y), w)
        return sg.sum(gw * gw)
    sg.gradcheck(f, [xa, wa], backend=backend, **GRADCHECK)


# ------------------------------------------------------------------------------ torch (optional)
def test_layers_match_torch(backend):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((2, 3, 9, 8))
    wa, ba = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    x = sg.placeholder("x", xa.shape, "float64")
    w, b = sg.placeholder("w", wa.shape, "float64"), sg.placeholder("b", ba.shape, "float64")
    y = sg.conv2d(x, w, b, stride=(2, 1), padding=(2, 1), dilation=(1, 2))
    ys = [y, sg.max_pool2d(y, 3, 2, 1), sg.avg_pool2d(y, 3, 2, 1), sg.layer_norm(y, axis=(2, 3))]
    cost = sum(weighted_sum(t, seed=i) for i, t in enumerate(ys))
    got = sg.function([x, w, b], ys + sg.grad(cost, [x, w, b]), backend=backend)(xa, wa, ba)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba))
    ty = F.conv2d(tx, tw, tb, stride=(2, 1), padding=(2, 1), dilation=(1, 2))
    tys = [ty, F.max_pool2d(ty, 3, 2, 1), F.avg_pool2d(ty, 3, 2, 1),
           F.layer_norm(ty, ty.shape[2:])]
    tcost = sum((t * torch.tensor(np.random.default_rng(i).standard_normal(tuple(t.shape))))
                .sum() for i, t in enumerate(tys))
    tcost.backward()
    for a, t in zip(got, tys + [tx.grad, tw.grad, tb.grad]):
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-9, atol=1e-10)

    qa, ka, va = attention_data((2, 3, 5, 4), (2, 3, 5, 4), 6, "float64")
    q, k, v = (sg.placeholder(n, a.shape, "float64") for n, a in (("q", qa), ("k", ka), ("v", va)))
    ya = sg.scaled_dot_product_attention(q, k, v, causal=True)
    got = sg.function([q, k, v], [ya] + sg.grad(weighted_sum(ya), [q, k, v]),
                      backend=backend)(qa, ka, va)
    tq, tk, tv = (torch.tensor(a, requires_grad=True) for a in (qa, ka, va))
    ty = F.scaled_dot_product_attention(tq, tk, tv, is_causal=True)
    (ty * torch.tensor(np.random.default_rng(7).standard_normal(ty.shape))).sum().backward()
    for a, t in zip(got, [ty, tq.grad, tk.grad, tv.grad]):
        np.testing.assert_allclose(a, t.detach().numpy(), rtol=1e-9, atol=1e-10)
