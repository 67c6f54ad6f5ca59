"""Ops that move data without arithmetic: reshape, transpose, broadcast, slicing, gather/scatter."""
from __future__ import annotations

from collections import Counter

import numpy as np

from .. import api as sg
from ..graph import (DTYPES, Sym, broadcast_shapes, concrete_dim, concrete_shape, dim_add,
                     dim_factors, dim_sub, dims_equal, resolve_dim, resolve_shape, shape_str,
                     unify_dims)
from . import Op, register


def split_dims(shape):
    """(product of the numbers, sorted ids of the plain symbolic dims) of the shape's size, with
    each product dim taken apart (5*n counts 5 and n)."""
    static, syms = 1, []
    for d in shape:
        coef, factors = dim_factors(d)
        static *= coef
        syms += [f.id for f in factors]
    return static, sorted(syms)


def sym_by_id(shape, sym_id) -> Sym:
    """The plain symbolic dim numbered sym_id among the shape's dims and their factors."""
    return next(f for d in shape for f in dim_factors(d)[1] if f.id == sym_id)


def _fix_lone_sym(shape_a, shape_b) -> bool:
    """Whether two shapes of different symbolic make-up can still hold as many elements: one
    symbolic dim on one side only, the other side's numbers a multiple of the rest of its
    side's (the gradient of `reshape(x, (n, 2, 3)) * c` with c of shape (4, 2, 3) reshapes a
    (4, 2, 3) adjoint back to x's (n, 6)).  That dim must then be the quotient: the node
    records the check (see Sym)."""
    static_a, syms_a = split_dims(shape_a)
    static_b, syms_b = split_dims(shape_b)
    count_a, count_b = Counter(syms_a), Counter(syms_b)
    only_a, only_b = list((count_a - count_b).elements()), list((count_b - count_a).elements())
    for lone, other, static_lone, static_other, shape in ((only_a, only_b, static_a, static_b,
                                                           shape_a),
                                                          (only_b, only_a, static_b, static_a,
                                                           shape_b)):
        if len(lone) == 1 and not other and static_lone and static_other % static_lone == 0:
            return unify_dims(sym_by_id(shape, lone[0]), static_other // static_lone) is not None
    return False


class ShapeOp(Op):
    kind = "shape"


@register
class Reshape(ShapeOp):
    name = "reshape"

    def infer(self, inputs, attrs):
        (x,) = inputs
        new = resolve_shape(attrs["shape"])
        if split_dims(x._shape) != split_dims(new) and not _fix_lone_sym(x._shape, new):
            raise self.error(f"cannot reshape {shape_str(x.shape)} to {shape_str(new)}")
        return new, x.dtype

    def numpy(self, attrs, x):
        return x.reshape(concrete_shape(attrs["shape"]))

    def grad(self, node, g):
        return [sg.reshape(g, node.inputs[0].shape)]


@register
class Transpose(ShapeOp):
    name = "transpose"

    def infer(self, inputs, attrs):
        (x,) = inputs
        perm = attrs["axes"]
        if sorted(perm) != list(range(x.ndim)):
            raise self.error(f"axes {perm} are not a permutation of the {x.ndim} axes of "
                             f"{shape_str(x.shape)}")
        return tuple(x._shape[a] for a in perm), x.dtype

    def numpy(self, attrs, x):
        return np.transpose(x, attrs["axes"])

    def grad(self, node, g):
        inverse = tuple(int(i) for i in np.argsort(node.attr["axes"]))
        return [sg.transpose(g, inverse)]


@register
class BroadcastTo(ShapeOp):
    name = "broadcast_to"

    def infer(self, inputs, attrs):
        (x,) = inputs
        target = resolve_shape(attrs["shape"])
        out = broadcast_shapes(self.name, x._shape, target)
        # a symbolic target dim that met a number came out as that number (its check is
        # recorded): it still matches
        if len(out) != len(target) or not all(dims_equal(a, b) or isinstance(b, Sym)
                                               for a, b in zip(out, target)):
            raise self.error(f"cannot broadcast {shape_str(x.shape)} to {shape_str(target)}")
        return target, x.dtype

    def numpy(self, attrs, x, *_):
        return np.broadcast_to(x, concrete_shape(attrs["shape"])).copy()

    def grad(self, node, g):
        return [g]  # autodiff sums the adjoint back over the broadcast axes


def numpy_index(index) -> tuple:
    """numpy slices for normalized (start, stop, step) triples, symbolic bounds given their
    values in this call.  A negative step that runs to the first element has stop -1 (as
    `slice.indices` gives it), which numpy would read as the last element, so it becomes None."""
    return tuple(slice(concrete_dim(a), None if b is None or (isinstance(b, int) and b < 0)
                       else concrete_dim(b), c) for a, b, c in index)


@register
class Slice(ShapeOp):
    """Basic slicing: attrs `index` holds (start, stop, step) per axis, already normalized.
    Along a symbolic axis the step is 1, the bounds may be symbolic (x[-3:] starts at n - 3),
    and a stop of None runs to the end; or the axis is reversed whole: (n - 1, None, -1)."""
    name = "slice"

    def infer(self, inputs, attrs):
        (x,) = inputs
        shape = []
        for dim, (start, stop, step) in zip(x._shape, attrs["index"]):
            if step == -1 and stop is None:
                shape.append(dim)
            elif stop is None or isinstance(start, Sym) or isinstance(stop, Sym):
                length = dim_sub(dim if stop is None else stop, start)
                if length is None:
                    raise self.error(f"slice {start}:{stop} of a dim of size {dim} has no "
                                     "length symgrad can express")
                shape.append(length)
            else:
                shape.append(len(range(start, stop, step)))
        return tuple(shape), x.dtype

    def numpy(self, attrs, x):
        return x[numpy_index(attrs["index"])]

    def grad(self, node, g):
        return [sg.apply("unslice", g, index=node.attr["index"], shape=node.inputs[0].shape)]


@register
class Unslice(ShapeOp):
    """The adjoint of slice: the gradient placed into zeros of the sliced tensor's shape."""
    name = "unslice"

    def infer(self, inputs, attrs):
        return resolve_shape(attrs["shape"]), inputs[0].dtype

    def numpy(self, attrs, g):
        out = np.zeros(concrete_shape(attrs["shape"]), g.dtype)
        out[numpy_index(attrs["index"])] = g
        return out

    def grad(self, node, g):
        return [sg.apply("slice", g, index=node.attr["index"])]


@register
class Concatenate(ShapeOp):
    name = "concatenate"

    def infer(self, inputs, attrs):
        axis = attrs["axis"]
        first = inputs[0]
        if any(t.dtype != first.dtype for t in inputs):
            raise self.error("operands must share one dtype, got "
                             + ", ".join(t.dtype.name for t in inputs))
        total = 0
        for t in inputs:
            if t.ndim != first.ndim:
                raise self.error("operands must have the same rank, got "
                                 + ", ".join(shape_str(i.shape) for i in inputs))
            for i, (a, b) in enumerate(zip(t._shape, first._shape)):
                if i != axis and unify_dims(a, b) is None:
                    raise self.error("shapes must agree except along axis "
                                     f"{axis}, got " + ", ".join(shape_str(i.shape)
                                                                  for i in inputs))
            total = dim_add(total, t._shape[axis])
            if total is None:
                raise self.error("cannot concatenate sizes "
                                 + " and ".join(str(resolve_dim(i.shape[axis])) for i in inputs)
                                 + f" along axis {axis}: their sum is not a dim symgrad can "
                                 "express (a product of symbolic dims plus a constant)")
        shape = list(first._shape)
        shape[axis] = total
        return tuple(shape), first.dtype

    def numpy(self, attrs, *arrays):
        return np.concatenate(arrays, axis=attrs["axis"])

    def grad(self, node, g):
        axis, start, grads = node.attr["axis"], 0, []
        for t in node.inputs:
            stop = dim_add(start, t._shape[axis])
            index = tuple((start, stop, 1) if i == axis else full_slice(d)
                          for i, d in enumerate(t.shape))
            grads.append(sg.apply("slice", g, index=index))
            start = stop
        return grads


def whole_axis(entry) -> bool:
    """Whether a (start, stop, step) entry of a symbolic axis takes all of it, in order
    (`full_slice`) or reversed (`x[::-1]`): no bounds to check per call."""
    start, stop, step = entry
    return stop is None and (step == -1 or start == 0)


def full_slice(dim):
    d = resolve_dim(dim)
    return (0, None, 1) if isinstance(d, Sym) else (0, d, 1)


@register
class Take(Op):
    """numpy.take along one axis with integer indices; out-of-range indices are an error."""
    name, kind = "take", "special"

    def infer(self, inputs, attrs):
        x, idx = inputs
        if idx.dtype not in (DTYPES["int32"], DTYPES["int64"]):
            raise self.error(f"indices must be int32 or int64, got {idx.dtype.name}")
        axis = attrs["axis"]
        return x._shape[:axis] + idx._shape + x._shape[axis + 1:], x.dtype

    def numpy(self, attrs, x, idx):
        size = x.shape[attrs["axis"]]
        if idx.size and (idx.min() < -size or idx.max() >= size):
            raise IndexError(f"take: index out of range for axis {attrs['axis']} of size {size}")
        return np.take(x, idx, axis=attrs["axis"])

    def grad(self, node, g):
        x, idx = node.inputs
        axis = node.attr["axis"]
        return [sg.apply("scatter_add", g, idx, axis=axis, shape=x.shape), None]


@register
class ScatterAdd(Op):
    """The adjoint of take: rows of `g` added into zeros at the taken indices."""
    name, kind = "scatter_add", "special"

    def infer(self, inputs, attrs):
        return resolve_shape(attrs["shape"]), inputs[0].dtype

    def numpy(self, attrs, g, idx):
        axis = attrs["axis"]
        out = np.zeros(concrete_shape(attrs["shape"]), g.dtype)
        moved = np.moveaxis(out, axis, 0)
        # the index's dims folded into one, spelled out: -1 is ambiguous when g is empty
        gm = g.reshape(g.shape[:axis] + (idx.size,) + g.shape[axis + idx.ndim:])
        np.add.at(moved, idx.reshape(-1), np.moveaxis(gm, axis, 0))
        return out

    def grad(self, node, g):
        return [sg.take(g, node.inputs[1], axis=node.attr["axis"]), None]


@register
class Arange(Op):
    """0, 1, ..., n - 1 for a symbolic n (a static n is a constant instead): positions along a
    sequence of any length, e.g. for a causal mask."""
    name, kind, differentiable = "arange", "special", False

    def infer(self, inputs, attrs):
        return (attrs["n"],), DTYPES[attrs["dtype"]]

    def numpy(self, attrs):
        return np.arange(concrete_dim(attrs["n"]), dtype=attrs["dtype"])


@register
class OneHot(Op):
    """labels (ints) -> (..., depth) of 0/1; labels outside [0, depth) give a row of zeros."""
    name, kind, differentiable = "one_hot", "special", False

    def infer(self, inputs, attrs):
        (labels,) = inputs
        if labels.dtype not in (DTYPES["int32"], DTYPES["int64"]):
            raise self.error(f"labels must be int32 or int64, got {labels.dtype.name}")
        return labels._shape + (attrs["depth"],), DTYPES[attrs["dtype"]]

    def numpy(self, attrs, labels):
        return (labels[..., None] == np.arange(attrs["depth"])).astype(attrs["dtype"])
