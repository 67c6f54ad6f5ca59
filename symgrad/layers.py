"""Network layers written as composites of symgrad ops: conv2d, max_pool2d, avg_pool2d, layer_norm
and scaled dot-product attention.

Each layer builds a small graph of ops (take, reshape, matmul, mean, softmax, where, ...), so
gradients come from those ops' rules and every backend runs the layers without codegen of its
own; only max pooling has ops of its own (window_max and its adjoint), because as take + max its
windows and its gradient's masks cost more than the rest of a small conv net.

Convolution and pooling gather their windows with ONE `take` along the flattened spatial axis of
an (N, C, H*W) view, using an int64 index array computed here, at graph-build time, from the
static H, W, kernel, stride, padding and dilation.  Padding needs no padded copy of the image: one
constant zero column is appended after the H*W pixels and every tap that falls outside the image
points at it.  The adjoint of `take` is `scatter_add`, which is the col2im of the backward pass.
Max pooling uses the same index with `window_max` (ops/window.py), which reads the image in place;
there a tap outside the image points at an in-image pixel of its own window instead.  Only the
batch dim (axis 0) may be symbolic.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import api as sg
from .graph import ShapeError, Tensor, is_float, resolve_dim, shape_str, user_site

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "layer_norm", "scaled_dot_product_attention"]


def _pair(value, name, op, minimum):
    if isinstance(value, numbers.Integral):
        value = (value, value)
    try:
        a, b = value
    except (TypeError, ValueError):
        raise ShapeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}"
                         + user_site()) from None
    if not all(isinstance(v, numbers.Integral) and v >= minimum for v in (a, b)):
        raise ShapeError(f"{op}: {name} must be ints >= {minimum}, got {value!r}" + user_site())
    return int(a), int(b)


def _float_tensor(x, op, what):
    x = sg.as_tensor(x)
    if not is_float(x.dtype):
        raise TypeError(f"{op}: {what} must be float32 or float64, got {x.dtype.name}")
    return x


def _image(x, op):
    """x as (N, C, H, W) with static C, H, W; returns (C, H, W)."""
    if x.ndim != 4:
        raise ShapeError(f"{op}: input must be 4-D (N, C, H, W), got shape {shape_str(x.shape)}"
                         + user_site())
    dims = [resolve_dim(d) for d in x.shape[1:]]
    if not all(isinstance(d, int) for d in dims):
        raise ShapeError(f"{op}: only the batch dim may be symbolic; input shape "
                         f"{shape_str(x.shape)}" + user_site())
    return tuple(dims)


def _window_index(H, W, kernel, stride, padding, dilation, op, shape_msg, repeat_inside=False):
    """int64 array (kh*kw, Ho*Wo) of flat indices into an (H*W + 1) axis: the tap (i, j) of output
    pixel (oy, ox) reads pixel iy*W + ix, or H*W (the padding column) outside the image.  With
    `repeat_inside`, an outside tap reads an in-image tap of the same window instead (for max
    pooling: a repeated element leaves the max unchanged, and its gradient, split between the
    repeats, adds back up in scatter_add), so no padding column is needed.
    Returns (index, Ho, Wo, needs_pad)."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if H + 2 * ph < dh * (kh - 1) + 1 or W + 2 * pw < dw * (kw - 1) + 1 or Ho <= 0 or Wo <= 0:
        raise ShapeError(f"{op}: kernel {kh}x{kw} (dilation {dh}x{dw}) is larger than the padded "
                         f"input {H + 2 * ph}x{W + 2 * pw}; {shape_msg}" + user_site())
    iy = (np.arange(Ho) * sh)[None, :, None, None] + (np.arange(kh) * dh - ph)[:, None, None, None]
    ix = (np.arange(Wo) * sw)[None, None, :, None] + (np.arange(kw) * dw - pw)[None, None, None, :]
    # iy: (kh, Ho, 1, 1), ix: (1, 1, Wo, kw) -> taps ordered (i, j), outputs (oy, ox)
    iy = np.broadcast_to(iy, (kh, Ho, Wo, kw))
    ix = np.broadcast_to(ix, (kh, Ho, Wo, kw))
    inside = (iy >= 0) & (iy < H) & (ix >= 0) & (ix < W)
    flat = np.where(inside, iy * W + ix, H * W).astype(np.int64)
    index = flat.transpose(0, 3, 1, 2).reshape(kh * kw, Ho * Wo)  # (i, j) taps x (oy, ox)
    inside = inside.transpose(0, 3, 1, 2).reshape(kh * kw, Ho * Wo)
    if repeat_inside:
        # out-of-image taps repeat one in-image tap of their own window
        first = np.argmax(inside, axis=0)
        assert inside[first, np.arange(Ho * Wo)].all(), "a window lies wholly in the padding"
        index = np.where(inside, index, index[first, np.arange(Ho * Wo)])
        return np.ascontiguousarray(index), Ho, Wo, False
    return np.ascontiguousarray(index), Ho, Wo, not inside.all()


def _gather_windows(x, C, H, W, index, needs_pad, pad_value):
    """(N, C, H, W) -> (N, C, K, L): the K taps of each of the L output pixels."""
    n = x.shape[0]
    flat = sg.reshape(x, (n, C, H * W))
    if needs_pad:
        pad = sg.broadcast_to(sg.constant(pad_value, x.dtype), (n, C, 1))
        flat = sg.concatenate([flat, pad], axis=2)
    return sg.take(flat, sg.constant(index, "int64"), axis=2)


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1) -> Tensor:
    """2-D cross-correlation, as torch.nn.functional.conv2d (groups=1).

    x: (N, C, H, W), N may be symbolic; w: (O, C, kh, kw); b: (O,) or None.  stride, padding and
    dilation are ints or (h, w) pairs; padding is zeros.  Returns (N, O, Ho, Wo) with
    Ho = (H + 2*ph - dh*(kh-1) - 1) // sh + 1 (likewise Wo)."""
    op = "conv2d"
    x, w = sg.promote(_float_tensor(x, op, "input"), _float_tensor(w, op, "weight"))
    stride = _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op, 0)
    dilation = _pair(dilation, "dilation", op, 1)
    shapes = f"input {shape_str(x.shape)}, weight {shape_str(w.shape)}"
    C, H, W = _image(x, op)
    if w.ndim != 4:
        raise ShapeError(f"{op}: weight must be 4-D (O, C, kh, kw); {shapes}" + user_site())
    O, Cw, kh, kw = (resolve_dim(d) for d in w.shape)
    if not all(isinstance(d, int) for d in (O, Cw, kh, kw)):
        raise ShapeError(f"{op}: weight dims must be static; {shapes}" + user_site())
    if Cw != C:
        raise ShapeError(f"{op}: input has {C} channels but weight expects {Cw}; {shapes}"
                         + user_site())
    index, Ho, Wo, needs_pad = _window_index(H, W, (kh, kw), stride, padding, dilation, op, shapes)
    n, K, L = x.shape[0], kh * kw, Ho * Wo
    # Channels last, so that the whole batch is ONE product, (N*L, K*C) @ (K*C, O), and so are
    # both of its gradients (the weight's sums over N*L inside the GEMM); a per-image product,
    # (O, C*K) @ (C*K, L), would be N small GEMMs forward and a batched one plus a sum backward.
    pixels = sg.transpose(sg.reshape(x, (n, C, H * W)), (0, 2, 1))   # (N, H*W, C)
    if needs_pad:
        pixels = sg.concatenate([pixels, sg.broadcast_to(sg.constant(0, x.dtype), (n, 1, C))],
                                axis=1)
    cols = sg.take(pixels, sg.constant(np.ascontiguousarray(index.T), "int64"), axis=1)
    cols = sg.reshape(cols, (n, L, K * C))                           # taps (k, c)
    weight = sg.reshape(sg.transpose(w, (2, 3, 1, 0)), (K * C, O))   # rows (i, j, c)
    out = sg.matmul(cols, weight)                                    # (N, L, O)
    if b is not None:
        b = sg.cast(_float_tensor(b, op, "bias"), out.dtype)
        if b.ndim != 1 or resolve_dim(b.shape[0]) != O:
            raise ShapeError(f"{op}: bias must have shape ({O},), got {shape_str(b.shape)}; "
                             f"{shapes}" + user_site())
        out = out + b
    out = sg.transpose(out, (0, 2, 1))                               # (N, O, L)
    return sg.reshape(out, (n, O, Ho, Wo))


def _pool_index(x, kernel_size, stride, padding, op, repeat_inside=False):
    """The pooling arguments checked, and the window index (see _window_index).
    Returns (x as a float tensor, C, H, W, index, Ho, Wo, needs_pad)."""
    x = _float_tensor(x, op, "input")
    C, H, W = _image(x, op)
    kernel = _pair(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None else _pair(stride, "stride", op, 1)
    padding = _pair(padding, "padding", op, 0)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ShapeError(f"{op}: padding {padding} must be at most half the kernel {kernel} "
                         f"(as in torch); input {shape_str(x.shape)}" + user_site())
    index, Ho, Wo, needs_pad = _window_index(H, W, kernel, stride, padding, (1, 1), op,
                                             f"input {shape_str(x.shape)}", repeat_inside)
    return x, C, H, W, index, Ho, Wo, needs_pad


def max_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Max over kernel_size windows of an (N, C, H, W) input, as torch's max_pool2d: stride
    defaults to kernel_size, padding (at most half the kernel) acts as -inf (padded taps are
    never the max; no -inf is materialized, so check_finite stays quiet).  The gradient goes to
    the maximal element of each window, split evenly between ties."""
    x, C, H, W, index, Ho, Wo, _ = _pool_index(x, kernel_size, stride, padding, "max_pool2d",
                                               repeat_inside=True)
    # one kernel each way (ops/window.py), reading the image in place: no gathered windows
    flat = sg.reshape(x, (x.shape[0], C, H * W))
    out = sg.apply("window_max", flat, sg.constant(index, "int64"), axis=2)
    return sg.reshape(out, (x.shape[0], C, Ho, Wo))


def avg_pool2d(x, kernel_size, stride=None, padding=0) -> Tensor:
    """Mean over kernel_size windows of an (N, C, H, W) input, as torch's avg_pool2d with its
    defaults: stride defaults to kernel_size, and zero padding counts in the mean
    (count_include_pad=True)."""
    x, C, H, W, index, Ho, Wo, needs_pad = _pool_index(x, kernel_size, stride, padding,
                                                       "avg_pool2d")
    windows = _gather_windows(x, C, H, W, index, needs_pad, 0)   # (N, C, K, L)
    out = sg.mean(windows, axis=2)
    return sg.reshape(out, (x.shape[0], out.shape[1], Ho, Wo))


def layer_norm(x, weight=None, bias=None, axis=-1, eps=1e-5) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias over `axis` (an int or a tuple), with the
    biased variance (mean of squared deviations), as torch's layer_norm.  weight and bias have
    the shape of the normalized dims (x.shape[a] for a in axis, in order)."""
    op = "layer_norm"
    x = _float_tensor(x, op, "input")
    axes = sg._axes(x, axis, op)
    mu = sg.mean(x, axis=axes, keepdims=True)
    d = x - mu
    var = sg.mean(sg.square(d), axis=axes, keepdims=True)
    y = d / sg.sqrt(var + eps)
    norm_shape = tuple(x.shape[a] for a in axes)
    # affine parameters viewed with 1s on the non-normalized axes after the first normalized one
    view = tuple(x.shape[a] if a in axes else 1 for a in range(axes[0], x.ndim))
    for name, p in (("weight", weight), ("bias", bias)):
        if p is None:
            continue
        p = sg.cast(_float_tensor(p, op, name), x.dtype)
        if p.ndim != len(norm_shape) or not all(
                resolve_dim(a) == resolve_dim(b) for a, b in zip(p.shape, norm_shape)):
            raise ShapeError(f"{op}: {name} must have the normalized shape "
                             f"{shape_str(norm_shape)} of input {shape_str(x.shape)} over axis "
                             f"{axis!r}, got {shape_str(p.shape)}" + user_site())
        p = sg.reshape(p, view)
        y = y * p if name == "weight" else y + p
    return y


def scaled_dot_product_attention(q, k, v, mask=None, causal=False, scale=None) -> Tensor:
    """softmax(q @ kᵀ * scale + mask) @ v over inputs (..., T, d); scale defaults to 1/sqrt(d).

    q: (..., Tq, d), k: (..., Tk, d), v: (..., Tk, dv); leading dims broadcast.  `mask`
    broadcasts to (..., Tq, Tk): a bool mask keeps the True positions (as torch's attn_mask); a
    float mask is added to the scores.  `causal=True` lets query i attend to keys j <= i
    (top-left aligned, as torch's is_causal).  Masked-out positions get a large finite negative
    score, not -inf, so a fully masked row gives a uniform average instead of NaN, and no NaN
    reaches the gradient."""
    op = "scaled_dot_product_attention"
    q, k, v = sg.promote(_float_tensor(q, op, "q"), _float_tensor(k, op, "k"),
                         _float_tensor(v, op, "v"))
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ShapeError(f"{op}: q, k, v must be at least 2-D (..., T, d), got "
                         f"{shape_str(q.shape)}, {shape_str(k.shape)}, {shape_str(v.shape)}"
                         + user_site())
    d = resolve_dim(q.shape[-1])
    if not isinstance(d, int):
        raise ShapeError(f"{op}: the feature dim of q must be static, got {shape_str(q.shape)}"
                         + user_site())
    if scale is None:
        scale = 1.0 / math.sqrt(d)
    if mask is not None:
        mask = sg.as_tensor(mask)
    shapes = (f"q {shape_str(q.shape)}, k {shape_str(k.shape)}, v {shape_str(v.shape)}"
              + (f", mask {shape_str(mask.shape)}" if mask is not None else ""))
    for what, a, b in (("q and k must share the feature dim d", q.shape[-1], k.shape[-1]),
                       ("k and v must share the key length Tk", k.shape[-2], v.shape[-2])):
        a, b = resolve_dim(a), resolve_dim(b)
        if isinstance(a, int) and isinstance(b, int) and a != b:
            raise ShapeError(f"{op}: {what} ((..., Tq, d), (..., Tk, d), (..., Tk, dv)); "
                             f"got {shapes}" + user_site())
    try:
        return _attention(q, k, v, mask, causal, scale)
    except ShapeError as exc:  # leading dims or the mask: name this op and the user's shapes
        raise ShapeError(f"{op}: {shapes} do not broadcast: {exc}") from None


def _attention(q, k, v, mask, causal, scale) -> Tensor:
    kt = sg.transpose(k, tuple(range(k.ndim - 2)) + (k.ndim - 1, k.ndim - 2))
    scores = sg.matmul(q, kt) * float(scale)          # (..., Tq, Tk)
    lowest = float(np.finfo(scores.dtype).min) / 2    # finite: masked rows stay NaN-free
    if causal:
        # query i keeps keys j <= i; positions come from arange, so a symbolic length works
        keep = sg.arange(scores.shape[-2])[:, None] >= sg.arange(scores.shape[-1])
        scores = sg.where(keep, scores, lowest)
    if mask is not None:
        if mask.dtype == np.dtype(bool):
            scores = sg.where(mask, scores, lowest)
        else:
            scores = scores + sg.cast(mask, scores.dtype)
    return sg.matmul(sg.softmax(scores, axis=-1), v)
