"""Reductions over a set of axes (attrs: `axes`, a sorted tuple of ints, and `keepdims`)."""
from __future__ import annotations

import numpy as np

from .. import api as sg
from ..graph import DTYPES, concrete_shape, is_float, resolve_dim, shape_str
from . import Op, register


def reduced_shape(shape, axes, keepdims):
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def expand_to_input(node, g):
    """The adjoint of a reduction, broadcast back over the reduced axes of its input."""
    x = node.inputs[0]
    attrs = node.attr
    if not attrs["keepdims"]:
        g = sg.reshape(g, reduced_shape(x.shape, attrs["axes"], True))
    return sg.broadcast_to(g, x.shape)


class Reduction(Op):
    kind = "reduce"
    c_identity = ""    # accumulator's start value
    c_combine = ""     # new accumulator from {acc} and {v}

    def infer(self, inputs, attrs):
        (x,) = inputs
        for axis in attrs["axes"]:
            if not 0 <= axis < x.ndim:
                raise self.error(f"axis {axis} is out of range for rank {x.ndim}")
        return reduced_shape(x._shape, attrs["axes"], attrs["keepdims"]), self.result_dtype(x)

    def result_dtype(self, x):
        return x.dtype

    def numpy(self, attrs, x):
        return self.reference(x, axis=attrs["axes"], keepdims=attrs["keepdims"])


@register
class Sum(Reduction):
    name = "sum"
    c_identity, c_combine = "0", "({acc} + {v})"

    def result_dtype(self, x):
        # numpy sums bools and int32 into int64 (the platform's integer)
        return DTYPES["int64"] if x.dtype in (DTYPES["bool"], DTYPES["int32"]) else x.dtype

    @staticmethod
    def reference(x, axis, keepdims):
        return np.sum(x, axis=axis, keepdims=keepdims,
                      dtype=np.int64 if x.dtype in (np.bool_, np.int32) else None)

    def grad(self, node, g):
        return [expand_to_input(node, g)]


@register
class Mean(Reduction):
    name = "mean"
    c_identity, c_combine = "0", "({acc} + {v})"
    reference = staticmethod(np.mean)

    def infer(self, inputs, attrs):
        if not is_float(inputs[0].dtype):
            raise self.error(f"expects a float tensor, got {inputs[0].dtype.name} "
                             "(cast it with .astype first)")
        return super().infer(inputs, attrs)

    def grad(self, node, g):
        x = node.inputs[0]
        count = sg.size_of(x, node.attr["axes"], x.dtype)
        return [expand_to_input(node, g) / count]


def refuse_empty_axes(op, x, axes):
    """max, min and argmax of nothing have no value: numpy raises, and so does the graph (a
    static zero-size axis; a symbolic one that is 0 at call time gives the identity, -inf)."""
    for axis in axes:
        d = resolve_dim(x._shape[axis])
        if isinstance(d, int) and d == 0:
            raise op.error(f"axis {axis} of {shape_str(x.shape)} is empty: {op.name} of no "
                           "elements has no value")


class Extremum(Reduction):
    def infer(self, inputs, attrs):
        result = super().infer(inputs, attrs)
        refuse_empty_axes(self, inputs[0], attrs["axes"])
        return result

    def grad(self, node, g):
        # the gradient goes to the extremal elements, split evenly between ties
        x = node.inputs[0]
        attrs = node.attr
        y = expand_to_input(node, node)
        hits = sg.cast(sg.equal(x, y), x.dtype)
        ties = sg.sum(hits, axis=attrs["axes"], keepdims=True)
        return [expand_to_input(node, g) * hits / ties]


def _extreme_of_nothing(dtype, lowest: bool):
    """What max (lowest) or min of no elements gives in the C kernels: their identity."""
    if dtype == np.bool_:
        return not lowest
    if dtype.kind == "f":
        return -np.inf if lowest else np.inf
    info = np.iinfo(dtype)
    return info.min if lowest else info.max


def _extremum_reference(fn, lowest: bool):
    """numpy's max/min, except over an axis that is empty at call time (a symbolic dim that is
    0; a static one is refused when the graph is built): the identity, as the kernels give."""
    def reference(x, axis, keepdims):
        if any(x.shape[a] == 0 for a in axis):
            return fn(x, axis=axis, keepdims=keepdims,
                      initial=_extreme_of_nothing(x.dtype, lowest))
        return fn(x, axis=axis, keepdims=keepdims)
    return staticmethod(reference)


@register
class Max(Extremum):
    name = "max"
    c_identity, c_combine = "SG_LOWEST", "sg_max({acc}, {v})"
    reference = _extremum_reference(np.max, lowest=True)


@register
class Min(Extremum):
    name = "min"
    c_identity, c_combine = "SG_HIGHEST", "sg_min({acc}, {v})"
    reference = _extremum_reference(np.min, lowest=False)


@register
class Argmax(Op):
    """Index of the first maximum along one axis (NaN counts as the maximum, as in numpy)."""
    name, kind, differentiable = "argmax", "reduce", False

    def infer(self, inputs, attrs):
        (x,) = inputs
        axis = attrs["axis"]
        if not 0 <= axis < x.ndim:
            raise self.error(f"axis {axis} is out of range for rank {x.ndim}")
        refuse_empty_axes(self, x, (axis,))
        return reduced_shape(x._shape, (axis,), attrs["keepdims"]), DTYPES["int64"]

    def numpy(self, attrs, x):
        if x.shape[attrs["axis"]] == 0:  # empty at call time: index 0, as the kernels give
            return np.zeros(np.max(x, axis=attrs["axis"], keepdims=attrs["keepdims"],
                                   initial=0).shape, np.int64)
        return np.argmax(x, axis=attrs["axis"], keepdims=attrs["keepdims"]).astype(np.int64)


@register
class Logsumexp(Reduction):
    """log(sum(exp(x))) shifted by the max, so large inputs neither overflow nor lose precision."""
    name = "logsumexp"

    def infer(self, inputs, attrs):
        if not is_float(inputs[0].dtype):
            raise self.error(f"expects a float tensor, got {inputs[0].dtype.name}")
        return super().infer(inputs, attrs)

    def numpy(self, attrs, x):
        axes, keepdims = attrs["axes"], attrs["keepdims"]
        if x.size == 0:
            return np.log(np.sum(np.exp(x), axis=axes, keepdims=keepdims))
        m = np.max(x, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)
        with np.errstate(divide="ignore"):
            out = np.log(np.sum(np.exp(x - m), axis=axes, keepdims=True)) + m
        return out if keepdims else np.squeeze(out, axis=axes)

    def grad(self, node, g):
        x = node.inputs[0]
        if len(node.attr["axes"]) == 1:
            # softmax(x), shifted by the row max: exp(x - lse) carries lse's rounding (about
            # |lse| * 2**-24 in float32) into every element, 2% at |x| = 1e6
            return [expand_to_input(node, g) * sg.softmax(x, axis=node.attr["axes"][0])]
        return [expand_to_input(node, g) * sg.exp(x - expand_to_input(node, node))]


@register
class SizeOf(Op):
    """The product of `dims` (ints and symbolic dims), as a scalar of `dtype`: symbolic dims
    resolve at call time, so `mean` over the batch needs no rebuild per batch size.  It has no
    inputs: the count of a batch does not wait for the values in it."""
    name, kind, differentiable = "size_of", "special", False

    def infer(self, inputs, attrs):
        return (), DTYPES[attrs["dtype"]]

    def numpy(self, attrs):
        return np.asarray(np.prod(concrete_shape(attrs["dims"]), dtype=np.int64),
                          dtype=attrs["dtype"])
