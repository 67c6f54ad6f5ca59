"""The kernel description shared by the C and CUDA renderers.

A step is a list of kernels over buffers.  A buffer is a typed array in an argument (input, output,
shared tensor), the source (array constants) or the workspace.  Kernels read buffers through
strided views, so transposes, slices, broadcasts and reshapes of contiguous data cost no copy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..dims import dim_name, dim_value
from .poly import Poly, product, row_major_strides

C_TYPES = {"float32": "float", "float64": "double", "int32": "int32_t", "int64": "int64_t",
           "bool": "bool"}


def ctype(dtype) -> str:
    return C_TYPES[np.dtype(dtype).name]


@dataclass(eq=False)
class Buffer:
    name: str
    dtype: np.dtype
    size: Poly                     # elements
    kind: str                      # "input", "output", "shared", "const", "const_arg", "work"
    arg: int = -1                  # index into the entry point's pointer array
    data: np.ndarray | None = None  # for "const" and "const_arg"
    slot: int = -1                 # workspace slot (liveness-shared memory)

    @property
    def ctype(self) -> str:
        return ctype(self.dtype)


@dataclass(eq=False)
class View:
    """Element (i_0, ..., i_r) lives at buffer[offset + sum(i_k * strides[k])]."""
    buffer: Buffer
    offset: Poly
    shape: tuple
    strides: tuple

    @staticmethod
    def whole(buffer: Buffer, shape) -> "View":
        return View(buffer, Poly.const(0), tuple(shape), row_major_strides(shape))

    def is_contiguous(self) -> bool:
        expected = row_major_strides(self.shape)
        return all(s == e for s, e, d in zip(self.strides, expected, self.shape)
                   if not (d.is_const and d.value == 1))

    def broadcast(self, shape) -> "View":
        """This view seen at a larger (numpy-broadcast) shape: stride 0 along broadcast axes."""
        lead = len(shape) - len(self.shape)
        strides = [Poly.const(0)] * lead
        for d_src, d_dst, s in zip(self.shape, shape[lead:], self.strides):
            stretched = d_src.is_const and d_src.value == 1 and not (d_dst.is_const and
                                                                      d_dst.value == 1)
            strides.append(Poly.const(0) if stretched else s)
        return View(self.buffer, self.offset, tuple(shape), tuple(strides))

    def flip(self, axis: int) -> "View":
        """The same elements with `axis` walked the other way."""
        stride = self.strides[axis]
        return View(self.buffer, self.offset + (self.shape[axis] + (-1)) * stride, self.shape,
                    tuple(s * (-1) if a == axis else s for a, s in enumerate(self.strides)))

    def permute(self, axes) -> "View":
        return View(self.buffer, self.offset, tuple(self.shape[a] for a in axes),
                    tuple(self.strides[a] for a in axes))

    @property
    def size(self) -> Poly:
        return product(self.shape)


@dataclass(eq=False)
class Literal:
    """A scalar known when the source is written (a constant), or a C expression of the dims."""
    text: str
    dtype: np.dtype


class RunError:
    """The message of a failure a kernel can report, with the failing call's sizes: `template`
    has a `{}` for each of `dims` (graph dims, ints or symbolic)."""

    def __init__(self, template: str, *dims):
        self.template, self.dims = template, dims

    def text(self, values: dict) -> str:
        """The message for a call whose symbolic dims are {root Sym: int}."""
        try:
            return self.template.format(*(dim_value(d, values) for d in self.dims))
        except KeyError:  # a dim the call did not bind: name it instead
            return self.template.format(*(dim_name(d) for d in self.dims))


@dataclass(eq=False)
class Kernel:
    name: str
    nodes: list                   # graph nodes computed here (for the header comment)
    reads: list = field(default_factory=list)    # buffers read
    writes: list = field(default_factory=list)   # buffers written
    error: "str | RunError" = ""  # message of the failure this kernel can report

    def comment(self, ids: dict) -> str:
        """The nodes this kernel computes, numbered as in the function's printed graph (never
        by global node ids: the same graph built twice must give the same source)."""
        from ..graph import shape_str
        parts = [f"%{ids[n.id]} {n.op}{' ' + n.name if n.name else ''} {shape_str(n.shape)}"
                 for n in self.nodes]
        return "; ".join(parts)


@dataclass(eq=False)
class Load:
    var: str
    view: View        # broadcast to the loop's full shape


@dataclass(eq=False)
class LoopKernel(Kernel):
    """Nested loops over `shape` computing `statements` (C lines, in order) from `loads`.
    With `reduce`, the trailing `reduced` loops accumulate into one value per kept index."""
    shape: tuple = ()             # kept loop dims (Poly)
    reduced: tuple = ()           # reduced loop dims (Poly)
    loads: list = field(default_factory=list)
    statements: list = field(default_factory=list)   # (ctype, var, expression)
    stores: list = field(default_factory=list)       # (View over the kept dims, var)
    reduce: dict | None = None    # acc_type, identity, combine, result, value, argmax


@dataclass(eq=False)
class GemmKernel(Kernel):
    """C[b] = A[b] @ B[b] through cblas, with transposes as flags (no copies)."""
    a: View = None
    b: View = None
    c: View = None
    batch: tuple = ()             # batch loop dims (Poly)
    trans_a: bool = False
    trans_b: bool = False
    lda: Poly = None
    ldb: Poly = None
    m: Poly = None
    n: Poly = None
    k: Poly = None


@dataclass(eq=False)
class SpecialKernel(Kernel):
    """An op with its own loop shape (row-wise softmax, gather, ...); rendered from the
    template macro of the same name, given `params` (C expressions and buffer views)."""
    template: str = ""
    params: dict = field(default_factory=dict)


# ---------------------------------------------------------------------- reduction order
def memory_order(axes, loads) -> tuple:
    """The reduced axes in the order that walks the first load that moves along them through
    memory forwards, smallest stride innermost: a sum of x.T then reads x row by row (2.6x
    faster than walking its columns).  Only the order of the additions changes."""
    for load in loads:
        strides = [load.view.strides[a] for a in axes]
        if any(not st.is_zero() for st in strides):
            if all(st.is_const for st in strides):
                return tuple(sorted(axes, key=lambda a: -abs(load.view.strides[a].value)))
            unit = [a for a in axes if load.view.strides[a] == Poly.const(1)]
            return tuple([a for a in axes if a not in unit] + unit)
    return tuple(axes)


def walk_forwards(axes, loads) -> None:
    """Each reduced axis that the first load moving along it walks backwards (a sum of
    x[:, ::-1]) is walked forwards instead, in every load.  Besides reading memory in order,
    this keeps negative strides out of reduction loops: gcc 12.2 -O3 vectorized the nest
    `for r0 < 4: for r1 < 5: acc += x[r0*5 - r1]` wrongly (196 for 190)."""
    for axis in axes:
        first = next((load for load in loads if not load.view.strides[axis].is_zero()), None)
        stride = first.view.strides[axis] if first is not None else None
        if stride is not None and all(coef < 0 for coef in stride.terms.values()):
            for load in loads:
                load.view = load.view.flip(axis)
