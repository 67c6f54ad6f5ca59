"""Tensor indexing: `x[...]` with ints, slices, `...` and `None` (a strided view, through the
`slice` op and a reshape), or an integer tensor along axis 0 (`take`).  Along a symbolic dim the
bounds become shifted dims (`x[1:]` of n rows has n - 1)."""
from __future__ import annotations

import numbers
import operator

import numpy as np

from .api import reshape, take
from .dims import Sym, dim_add, dim_sub, resolve_dim, shape_str, sym_shift
from .graph import Tensor
from .ops import apply
from .ops.shape import full_slice


def _symbolic_bounds(dim, key, axis) -> tuple:
    """(start, stop) of an integer or a step-1 slice along an axis of symbolic size `dim`, as
    dims (x[1:] is (1, None): to the end; x[-3:] is (dim - 3, None); x[:-1] is (0, dim - 1)).
    Each call checks 0 <= start <= stop <= dim (Function._check_slices)."""
    def bound(v):
        v = operator.index(v)
        return v if v >= 0 else sym_shift(dim, v)

    if isinstance(key, numbers.Integral):
        start = bound(key)
        return start, dim_add(start, 1)
    if key.step is not None and operator.index(key.step) != 1:
        raise IndexError(f"only step-1 slices and the full reversal [::-1] are supported along "
                         f"symbolic dim {dim} (axis {axis}), got {key.start}:{key.stop}:{key.step}")
    start = 0 if key.start is None else bound(key.start)
    stop = None if key.stop is None else bound(key.stop)
    if isinstance(start, int) and isinstance(stop, int) and stop <= start:
        return 0, 0  # empty, as numpy gives it, whatever the axis's size
    if dim_sub(dim if stop is None else stop, start) is None:
        raise IndexError(f"slice {key.start}:{key.stop} along symbolic dim {dim} (axis {axis}) "
                         "has a length symgrad cannot express (its bounds must count from the "
                         "same end, or the stop from the end and the start from the front)")
    return start, stop


_MASK_INDEX = ("boolean indexing (a mask) is not supported: the result's shape would depend on "
               "the values; use sg.where(mask, x, 0) or integer indices")


def getitem(x: Tensor, key) -> Tensor:
    """Basic slicing (ints, slices, ..., None) and indexing by an integer tensor along axis 0."""
    if isinstance(key, Tensor) or isinstance(key, (list, np.ndarray)):
        if (key.dtype if isinstance(key, (Tensor, np.ndarray)) else np.asarray(key).dtype) == bool:
            raise IndexError(_MASK_INDEX)
        return take(x, key, axis=0)
    key = key if isinstance(key, tuple) else (key,)
    if any(isinstance(k, (bool, np.bool_)) for k in key):  # numpy's x[True] adds an axis
        raise IndexError(_MASK_INDEX)
    if key.count(Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis")
    used = len([k for k in key if k is not None and k is not Ellipsis])
    if used > x.ndim:
        raise IndexError(f"too many indices for a tensor of shape {shape_str(x.shape)}")
    if Ellipsis in key:
        i = key.index(Ellipsis)
        key = key[:i] + (slice(None),) * (x.ndim - used) + key[i + 1:]
    else:
        key = key + (slice(None),) * (x.ndim - used)
    index, out_shape, axis = [], [], 0
    for k in key:
        if k is None:
            out_shape.append(1)
            continue
        dim = resolve_dim(x.shape[axis])
        if isinstance(dim, Sym) and k == slice(None, None, -1):  # reversed: always in bounds
            index.append((sym_shift(dim, -1), None, -1))
            out_shape.append(dim)
        elif isinstance(dim, Sym) and (isinstance(k, numbers.Integral) or
                                       (isinstance(k, slice) and k != slice(None))):
            start, stop = _symbolic_bounds(dim, k, axis)
            index.append((start, stop, 1))
            if not isinstance(k, numbers.Integral):
                out_shape.append(dim_sub(dim if stop is None else stop, start))
        elif isinstance(k, numbers.Integral):
            if not -dim <= k < dim:
                raise IndexError(f"index {k} is out of bounds for axis {axis} with size {dim}")
            k = int(k) % dim
            index.append((k, k + 1, 1))
        elif isinstance(k, slice):
            if isinstance(dim, int):
                start, stop, step = k.indices(dim)
                index.append((start, stop, step))
                out_shape.append(len(range(start, stop, step)))
            else:
                index.append(full_slice(dim))
                out_shape.append(dim)
        else:
            raise IndexError(f"unsupported index {k!r}")
        axis += 1
    index = tuple(index)
    if all(i == full_slice(d) for i, d in zip(index, x.shape)):
        sliced = x
    else:
        sliced = apply("slice", x, index=index)
    return reshape(sliced, tuple(out_shape))
