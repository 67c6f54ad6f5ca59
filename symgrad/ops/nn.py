"""Row-wise ops of networks, each in its numerically stable form."""
from __future__ import annotations

import numpy as np

from .. import api as sg
from ..graph import DTYPES, is_float, shape_str, unify_dims
from . import Op, register
from .elementwise import Binary


def _stable_log_softmax(x, axis):
    if x.shape[axis] == 0:
        return x.copy()  # nothing to normalize (numpy's max would refuse the empty axis)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0)
    shifted = x - m
    with np.errstate(divide="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


class RowOp(Op):
    """Normalizes along one axis (attr `axis`); same shape and dtype out."""
    kind = "special"

    def infer(self, inputs, attrs):
        (x,) = inputs
        if not is_float(x.dtype):
            raise self.error(f"expects a float tensor, got {x.dtype.name}")
        if not 0 <= attrs["axis"] < x.ndim:
            raise self.error(f"axis {attrs['axis']} is out of range for {shape_str(x.shape)}")
        return x._shape, x.dtype


@register
class Softmax(RowOp):
    name = "softmax"

    def numpy(self, attrs, x):
        return np.exp(_stable_log_softmax(x, attrs["axis"])).astype(x.dtype)

    def grad(self, node, g):
        axis = node.attr["axis"]
        return [node * (g - sg.sum(g * node, axis=axis, keepdims=True))]


@register
class LogSoftmax(RowOp):
    name = "log_softmax"

    def numpy(self, attrs, x):
        return _stable_log_softmax(x, attrs["axis"]).astype(x.dtype)

    def grad(self, node, g):
        axis = node.attr["axis"]
        return [g - sg.exp(node) * sg.sum(g, axis=axis, keepdims=True)]


@register
class SoftmaxCrossEntropy(Op):
    """Per-row loss -log softmax(logits)[label] along the last axis, computed as
    logsumexp(row) - row[label]; its adjoint is (softmax - onehot) * g.  A label outside
    [0, classes) is an error."""
    name, kind = "softmax_cross_entropy", "special"

    def infer(self, inputs, attrs):
        logits, labels = inputs
        if not is_float(logits.dtype):
            raise self.error(f"logits must be float, got {logits.dtype.name}")
        if labels.dtype not in (DTYPES["int32"], DTYPES["int64"]):
            raise self.error(f"labels must be int32 or int64 class indices, got "
                             f"{labels.dtype.name}")
        rows = logits._shape[:-1]
        if labels.ndim != len(rows) or not all(unify_dims(a, b) is not None for a, b in
                                                zip(labels._shape, rows)):
            raise self.error(f"labels of shape {shape_str(labels.shape)} do not match logits of "
                             f"shape {shape_str(logits.shape)} (expected "
                             f"{shape_str(logits.shape[:-1])})")
        return rows, logits.dtype

    def numpy(self, attrs, logits, labels):
        classes = logits.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise IndexError(f"softmax_cross_entropy: label out of range [0, {classes})")
        logp = _stable_log_softmax(logits, -1)
        picked = np.take_along_axis(logp, labels[..., None].astype(np.int64), axis=-1)[..., 0]
        return (-picked).astype(logits.dtype)

    def grad(self, node, g):
        logits, labels = node.inputs
        return [sg.apply("softmax_cross_entropy_grad", logits, labels, g), None]


@register
class SoftmaxCrossEntropyGrad(Op):
    """(softmax(logits) - onehot(labels)) * g[..., None]: the adjoint of softmax_cross_entropy,
    one pass over the logits."""
    name, kind = "softmax_cross_entropy_grad", "special"

    def infer(self, inputs, attrs):
        logits = inputs[0]
        return logits._shape, logits.dtype

    def numpy(self, attrs, logits, labels, g):
        classes = logits.shape[-1]
        if labels.size and (labels.min() < 0 or labels.max() >= classes):
            raise IndexError(f"softmax_cross_entropy: label out of range [0, {classes})")
        probs = np.exp(_stable_log_softmax(logits, -1))
        onehot = labels[..., None] == np.arange(classes)
        return ((probs - onehot) * g[..., None]).astype(logits.dtype)

    def grad(self, node, h):
        logits, labels, g = node.inputs
        probs = sg.softmax(logits, axis=-1)
        onehot = sg.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
        upstream = h * sg.expand_dims(g, -1)
        d_logits = probs * (upstream - sg.sum(upstream * probs, axis=-1, keepdims=True))
        return [d_logits, None, sg.sum(h * (probs - onehot), axis=-1)]


@register
class BinaryCrossEntropyProbs(Binary):
    """-(t log p + (1 - t) log(1 - p)) per element, each log clamped at -100, as torch's
    binary_cross_entropy on probabilities.  Its adjoint is torch's, (p - t) / max(p (1 - p),
    1e-12): the chain rule through the clamped logs gave 0/0 where p is exactly 0 or 1, and one
    saturated sigmoid put NaN into every weight."""
    name, float_only = "binary_cross_entropy_probs", True
    c = "(-({1} * sg_max(log({0}), -100.0f) + (1 - {1}) * sg_max(log(1 - {0}), -100.0f)))"

    @staticmethod
    def reference(p, t):
        with np.errstate(divide="ignore", invalid="ignore"):
            return -(t * np.maximum(np.log(p), -100) + (1 - t) * np.maximum(np.log(1 - p), -100))

    def grad(self, node, g):
        p, t = node.inputs
        log_p, log_q = sg.maximum(sg.log(p), -100.0), sg.maximum(sg.log(1 - p), -100.0)
        return [g * (p - t) / sg.maximum(p * (1 - p), 1e-12), g * (log_q - log_p)]
