"""Matrix products.  `matmul` is the primitive; 1-D operands are promoted to matrices by the API."""
from __future__ import annotations

import numpy as np

from .. import api as sg
from ..graph import broadcast_shapes, is_float, shape_str, unify_dims
from . import Op, describe, register


def swap_last(x):
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return sg.transpose(x, axes)


@register
class Matmul(Op):
    """(..., m, k) @ (..., k, n) -> (..., m, n), batch dims broadcast as in numpy."""
    name, kind = "matmul", "matmul"

    def infer(self, inputs, attrs):
        a, b = inputs
        if a.ndim < 2 or b.ndim < 2:
            raise self.error(f"operands must be at least 2-D, got {describe(inputs)}")
        if a.dtype != b.dtype or not is_float(a.dtype):
            raise self.error(f"operands must share a float dtype, got {describe(inputs)}")
        if unify_dims(a._shape[-1], b._shape[-2]) is None:
            raise self.error(f"inner dims differ: {shape_str(a.shape)} @ {shape_str(b.shape)} "
                             f"({a.shape[-1]} vs {b.shape[-2]})")
        batch = broadcast_shapes(self.name, a._shape[:-2], b._shape[:-2])
        return batch + (a._shape[-2], b._shape[-1]), a.dtype

    def numpy(self, attrs, a, b):
        return np.matmul(a, b)

    def grad(self, node, g):
        a, b = node.inputs
        # dA = dC Bᵀ, dB = Aᵀ dC; autodiff sums over broadcast batch dims
        return [sg.matmul(g, swap_last(b)), sg.matmul(swap_last(a), g)]
