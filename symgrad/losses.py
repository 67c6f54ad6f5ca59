"""Softmax and the losses: numpy-style front ends over the fused ops of symgrad/ops/nn.py.
Re-exported by api (so `sg.softmax` is one name everywhere)."""
from __future__ import annotations

from .api import (_axis, _float_operand, _is_python_scalar, apply, as_tensor, cast, mean,
                  promote, softplus, square, subtract)
from .api import sum  # noqa: A004  (symgrad's sum, as in numpy)
from .graph import (ShapeError, Tensor, broadcast_shapes, is_float, shape_str, unify_dims,
                    user_site)


def softmax(x, axis=-1) -> Tensor:
    x = _float_operand(x)
    return apply("softmax", x, axis=_axis(axis, x.ndim, "softmax", x.shape))


def log_softmax(x, axis=-1) -> Tensor:
    x = _float_operand(x)
    return apply("log_softmax", x, axis=_axis(axis, x.ndim, "log_softmax", x.shape))


def cross_entropy(logits, labels) -> Tensor:
    """Mean softmax cross-entropy over the examples.  `labels` are integer class indices along the
    last axis of `logits`, or (float) class probabilities of the logits' shape."""
    logits, labels = _float_operand(logits), as_tensor(labels)
    if is_float(labels.dtype):
        if labels.ndim != logits.ndim or not all(unify_dims(a, b) is not None
                                                 for a, b in zip(labels.shape, logits.shape)):
            raise ShapeError(f"cross_entropy: float labels are class probabilities and must have "
                             f"the logits' shape {shape_str(logits.shape)}, got "
                             f"{shape_str(labels.shape)} (class indices must be int32 or int64)"
                             + user_site())
        labels = cast(labels, logits.dtype)
        per_row = -sum(labels * log_softmax(logits, -1), axis=-1)
    else:
        per_row = apply("softmax_cross_entropy", logits, labels)
    return mean(per_row)


def binary_cross_entropy(input=None, target=None, *, logits=None, targets=None, probs=None):
    """Mean binary cross-entropy.  Give the logits (`logits=z`, the stable form
    softplus(z) - z*t) or probabilities (`input`/`probs`, log clamped at -100 like torch)."""
    target = target if target is not None else targets
    if isinstance(logits, bool):  # binary_cross_entropy(z, t, logits=True)
        logits, input = (input, None) if logits else (None, input)
    if target is None:
        raise TypeError("binary_cross_entropy needs the targets")
    if not _is_python_scalar(target) and not is_float(as_tensor(target).dtype):
        # 0/1 labels as ints: the loss keeps the predictions' float32, as torch's
        target = cast(target, _float_operand(logits if logits is not None else
                                             probs if probs is not None else input).dtype)
    if logits is not None:
        z, t = promote(_float_operand(logits), target)
        broadcast_shapes("binary_cross_entropy", z.shape, t.shape)  # names the loss on mismatch
        return mean(softplus(z) - z * t)
    p = probs if probs is not None else input
    if p is None:
        raise TypeError("binary_cross_entropy needs logits= or probabilities")
    p, t = promote(_float_operand(p), target)
    broadcast_shapes("binary_cross_entropy", p.shape, t.shape)
    return mean(apply("binary_cross_entropy_probs", p, t))


def mse(prediction, target) -> Tensor:
    """Mean squared error over all elements."""
    prediction, target = promote(prediction, target)  # a Python number takes the dtype
    broadcast_shapes("mse", prediction.shape, target.shape)  # names the loss on a mismatch
    return mean(square(subtract(prediction, target)))
