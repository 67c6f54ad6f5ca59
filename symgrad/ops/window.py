"""Window maxima, the core of max pooling, without materializing the windows.

`window_max(x, index, axis)`: index is an int (K, L) array of positions along `axis`; output
position l is the max of the K taps x[..., index[k, l], ...].  max_pool2d passes x as
(N, C, H*W) and one column of taps per output pixel.  Written as take + max, the windows (K times
the output) would be written and read back, and the gradient would add a mask, a tie count and a
scatter_add; here each direction is one kernel that reads x in place.

`window_max_grad(g, x, y, index, axis)`: the adjoint.  As for `max`, g[l] is split evenly between
the taps of window l that equal its max y[l] (g * hit / ties per tap), and the taps' shares are
summed into a zero array of x's shape, window by window, tap by tap (the order every backend
uses, so the float sums agree).
"""
from __future__ import annotations

import numpy as np

from .. import api as sg
from ..graph import DTYPES, is_float, shape_str
from . import Op, register

INDEX_DTYPES = (DTYPES["int32"], DTYPES["int64"])


def _check_index(op, x, index, axis):
    if not is_float(x.dtype):
        raise op.error(f"expects a float tensor, got {x.dtype.name}")
    if index.dtype not in INDEX_DTYPES or index.ndim != 2:
        raise op.error(f"index must be a 2-D (taps, windows) int32 or int64 array, got "
                       f"{shape_str(index.shape)} {index.dtype.name}")
    if not 0 <= axis < x.ndim:
        raise op.error(f"axis {axis} is out of range for {shape_str(x.shape)}")
    if index.shape[0] == 0:
        raise op.error(f"every window needs at least one tap, got index {shape_str(index.shape)}")


def _normalized(op_name, index, size):
    """index with numpy's negative positions resolved; out-of-range ones are an error."""
    if index.size and (index.min() < -size or index.max() >= size):
        raise IndexError(f"{op_name}: an index is out of range for an axis of size {size}")
    return np.where(index < 0, index + size, index).astype(np.int64)




@register
class WindowMax(Op):
    name = "window_max"

    def infer(self, inputs, attrs):
        x, index = inputs
        axis = attrs["axis"]
        _check_index(self, x, index, axis)
        return x._shape[:axis] + index._shape[1:] + x._shape[axis + 1:], x.dtype

    def numpy(self, attrs, x, index):
        axis = attrs["axis"]
        index = _normalized(self.name, index, x.shape[axis])
        return np.take(x, index, axis=axis).max(axis=axis)

    def grad(self, node, g):
        x, index = node.inputs
        return [sg.apply("window_max_grad", g, x, node, index, axis=node.attr["axis"]), None]


@register
class WindowMaxGrad(Op):
    name = "window_max_grad"

    def infer(self, inputs, attrs):
        g, x, y, index = inputs
        axis = attrs["axis"]
        _check_index(self, x, index, axis)
        if g.dtype != x.dtype or y.dtype != x.dtype:
            raise self.error(f"g, x and y must share a dtype, got {g.dtype.name}, "
                             f"{x.dtype.name}, {y.dtype.name}")
        return x._shape, x.dtype

    def numpy(self, attrs, g, x, y, index):
        axis = attrs["axis"]
        index = _normalized(self.name, index, x.shape[axis])
        # the taps as (..., K, L, ...): which equal their window's max, and how many do
        hits = (np.take(x, index, axis=axis) == np.expand_dims(y, axis)).astype(x.dtype)
        ties = hits.sum(axis=axis, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = np.expand_dims(g, axis) * hits / ties               # (..., K, L, ...)
        out = np.zeros_like(x)
        # window by window, tap by tap: shares ordered (L, K) along the leading axis
        moved = np.moveaxis(out, axis, 0)
        ordered = np.moveaxis(shares, (axis, axis + 1), (1, 0))
        ordered = ordered.reshape((ordered.shape[0] * ordered.shape[1],) + ordered.shape[2:])
        np.add.at(moved, index.T.reshape(-1), ordered)
        return out

    def grad(self, node, dx):
        # linear in g: each window gathers dx over its max taps, with the same shares
        g, x, y, index = node.inputs
        axis = node.attr["axis"]
        taps_dx = sg.take(dx, index, axis=axis)                          # (..., K, L, ...)
        taps_x = sg.take(x, index, axis=axis)
        y_taps = sg.reshape(y, y.shape[:axis] + (1,) + y.shape[axis:])
        hits = sg.cast(sg.equal(taps_x, y_taps), x.dtype)
        ties = sg.sum(hits, axis=axis, keepdims=True)
        return [sg.sum(taps_dx * hits / ties, axis=axis), None, None, None]
