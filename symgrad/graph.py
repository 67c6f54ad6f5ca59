"""The graph: immutable nodes, dtypes, symbolic dims and the user-facing Tensor type.

A Tensor is one node of a static graph: an op name, its inputs, hashable attributes, a shape and a
dtype.  Nothing about a node changes after it is built, so passes build new nodes rather than edit
old ones.  Shapes mix ints and `Sym` (a dim given per call, e.g. the batch).
"""
from __future__ import annotations

import functools
import itertools
import linecache
import os
import sys

import numpy as np

from .dims import (ShapeError, Sym, bind_dims, concrete_dim, concrete_shape, dim_add,  # noqa: F401
                   dim_factors, dim_name, dim_sub, dim_value, dims_equal, dims_transaction,
                   named_sym, pinned_dims, plain_dims, resolve_dim, resolve_shape, shape_str,
                   shapes_equal, sym_product, sym_shift, unbind_dims, undo_merges, unify_dims)

DTYPES = {name: np.dtype(name) for name in ("float32", "float64", "int32", "int64", "bool")}
FLOAT_DTYPES = (DTYPES["float32"], DTYPES["float64"])


def as_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}; symgrad supports {', '.join(DTYPES)}") from None
    if dt.name not in DTYPES:
        raise TypeError(f"dtype {dt.name} is not supported; symgrad supports {', '.join(DTYPES)}")
    return DTYPES[dt.name]


def convert_values(value, dtype: np.dtype, what: str) -> np.ndarray:
    """`value` (an array, or what numpy makes one of) as `dtype` (None: numpy's choice), refusing
    what numpy's casts do silently wrong: a masked array (its mask would be dropped), objects,
    floats to integers, integers that do not fit, finite floats that overflow to inf.
    TypeError or OverflowError, naming `what`."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{what}: a masked array (its mask would be lost); pass "
                        ".filled(fill_value) or the plain data")
    target = f"a {dtype.name} array" if dtype is not None else "an array"
    try:
        array = np.asarray(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise TypeError(f"{what}: cannot make {target} of {type(value).__name__}: "
                        f"{exc}") from None
    if array.dtype.kind == "O" and array.size and all(
            isinstance(v, int) and not isinstance(v, bool) for v in array.reshape(-1)):
        if all(-2**63 <= v < 2**63 for v in array.reshape(-1)):
            wanted = (dtype or DTYPES["int64"]).name
            raise TypeError(f"{what}: an object array (of Python ints); pass a numeric array, "
                            f"e.g. np.asarray(values, dtype={wanted!r})")
        raise OverflowError(f"{what}: Python ints beyond int64 (numpy keeps them as objects) "
                            f"are not converted to {dtype.name if dtype is not None else 'int64'} "
                            "implicitly; convert them yourself (float(v) for a float)")
    if array.dtype.kind not in "biuf":  # strings, None, ints beyond 64 bits
        raise TypeError(f"{what}: cannot convert {type(value).__name__} to {target} "
                        f"(numpy makes {array.dtype.name} of it)")
    if dtype is None or array.dtype == dtype:
        return proper_bools(array)
    if not array.size:  # nothing to convert wrongly: [] makes float64 for an int input too
        return np.empty(array.shape, dtype)
    if not np.can_cast(array.dtype, dtype, "same_kind"):
        raise TypeError(f"{what}: expected {dtype.name}, got {array.dtype.name} values, which "
                        f"numpy would cast without a word; convert them explicitly")
    with np.errstate(over="ignore", invalid="ignore"):
        result = array.astype(dtype)
    if array.size and dtype.kind in "iu" and array.dtype.kind in "iu":
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            raise OverflowError(f"{what}: values from {low} to {high} do not fit {dtype.name} "
                                f"[{info.min}, {info.max}]")
    if array.size and dtype.kind == "f" and array.dtype.kind == "f" and \
            np.any(np.isfinite(array) & ~np.isfinite(result)):
        raise OverflowError(f"{what}: finite values overflow {dtype.name} (its largest is "
                            f"{np.finfo(dtype).max:.4g})")
    return result


def proper_bools(array: np.ndarray) -> np.ndarray:
    """A bool array holds one byte per element, and numpy reads any nonzero byte as True; a
    view of other bytes (`np.uint8(...).view(bool)`) can hold 2 or 255, which C's bool
    arithmetic would use as they are.  Such an array comes back as 0/1 bytes."""
    if array.dtype == DTYPES["bool"] and array.size and array.view(np.uint8).max() > 1:
        return array.view(np.uint8) != 0
    return array


def is_float(dtype) -> bool:
    return np.dtype(dtype) in FLOAT_DTYPES


def broadcast_shapes(op: str, *shapes) -> tuple:
    """numpy broadcasting; a Sym meets 1 (broadcasts), another Sym or an int (unified)."""
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(resolve_shape(s)) for s in shapes]
    out = []
    for axis in range(ndim):
        dim = 1
        for s in padded:
            d = s[axis]
            if isinstance(d, int) and d == 1:
                continue
            if isinstance(dim, int) and dim == 1:
                dim = d
                continue
            merged = unify_dims(dim, d)
            if merged is None:
                undo_merges()  # x (n, 4) + y (m, 5) names m, not the n it met on axis 0
                raise ShapeError(
                    f"{op}: shapes {' and '.join(shape_str(x) for x in shapes)} do not broadcast "
                    f"(axis {axis - ndim}: {dim} vs {d})" + user_site())
            dim = merged
        out.append(dim)
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Where in the user's code a node was built (for error messages and the printed graph)
# --------------------------------------------------------------------------------------------
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


@functools.lru_cache(maxsize=1024)
def _in_package(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_PACKAGE_DIR)


def _user_code():
    """(file name, line number) of the innermost frame outside the symgrad package.  Walks the
    frames themselves: every node records this, and traceback.extract_stack (which formats
    the whole stack and reads source lines) cost a third of building a long graph."""
    frame = sys._getframe(1)
    while frame is not None and _in_package(frame.f_code.co_filename):
        frame = frame.f_back
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else None


def user_frame() -> str:
    """`file:line` of the innermost stack frame outside the symgrad package."""
    where = _user_code()
    return f"{os.path.basename(where[0])}:{where[1]}" if where else "?"


def user_site() -> str:
    where = _user_code()
    if where is None:
        return ""
    code = linecache.getline(*where).strip()
    return f"\n  built at {where[0]}:{where[1]}: {code}"


# --------------------------------------------------------------------------------------------
# Nodes
# --------------------------------------------------------------------------------------------
_node_ids = itertools.count()


class Tensor:
    """One immutable node of the graph.  Users meet it as the result of every symgrad op."""

    __slots__ = ("op", "inputs", "attrs", "_shape", "dtype", "name", "id", "site", "dim_checks",
                 "__weakref__")
    __array_priority__ = 1000  # make numpy defer to our reflected operators

    def __init__(self, op: str, inputs: tuple, attrs: tuple, shape: tuple, dtype, name=None,
                 dim_checks=()):
        object.__setattr__(self, "op", op)
        object.__setattr__(self, "inputs", tuple(inputs))
        object.__setattr__(self, "attrs", tuple(attrs))
        object.__setattr__(self, "_shape", tuple(shape))
        object.__setattr__(self, "dtype", as_dtype(dtype))
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "id", next(_node_ids))
        object.__setattr__(self, "site", user_frame())
        # (Sym, int): this node's shape rule needed that symbolic dim to be that int
        object.__setattr__(self, "dim_checks", tuple(dim_checks))

    def __setattr__(self, key, value):
        raise AttributeError("symgrad tensors are immutable graph nodes")

    @property
    def shape(self) -> tuple:
        return resolve_shape(self._shape)

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def attr(self) -> dict:
        return dict(self.attrs)

    def __repr__(self):
        label = f" {self.name!r}" if self.name else ""
        return f"<Tensor %{self.id}{label} = {self.op} {shape_str(self.shape)} {self.dtype.name}>"

    def __hash__(self):
        return self.id

    def __eq__(self, other):  # elementwise, as in numpy; identity is `is`
        from .api import equal
        return equal(self, other)

    def __ne__(self, other):
        from .api import not_equal
        return not_equal(self, other)

    def __bool__(self):
        raise TypeError("the truth value of a symbolic tensor is unknown until it runs; "
                        "use sg.where for data-dependent choices")

    def __len__(self):
        d = self.shape[0] if self.ndim else None
        if not isinstance(d, int):
            raise TypeError(f"len() of a tensor with shape {shape_str(self.shape)} is not static")
        return d

    def __iter__(self):
        raise TypeError("symbolic tensors are not iterable; index them explicitly")


class SharedValue:
    """The storage of a shared tensor: one numpy array, updated in place by compiled functions.

    A CUDA step keeps a device copy (`mirror`) and updates it there; `fresh` says which copy
    holds the newest value ("host", "device" or "both").  Reading `array` brings a newer device
    value back first; code that writes the host array calls `host_written()`."""

    device_only = 0  # how many storages have their newest value only on a device

    def __init__(self, array: np.ndarray):
        self._array = array
        self.mirror = None
        self.fresh = "host"

    @property
    def array(self) -> np.ndarray:
        if self.fresh == "device":
            self.mirror.download(self._array)
            self.set_fresh("both")
        return self._array

    @property
    def shape(self) -> tuple:
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
        return self._array.dtype

    def sync_to_host(self):
        self.array  # noqa: B018  (the property fetches a newer device value)

    def set_fresh(self, where: str):
        SharedValue.device_only += (where == "device") - (self.fresh == "device")
        self.fresh = where

    def __del__(self):
        if self.fresh == "device":  # the count must not outlive the storage it counts
            SharedValue.device_only -= 1

    def host_written(self):
        if self.mirror is not None:
            self.set_fresh("host")

    def overwrite(self, value):
        """Replace the whole value (no need to fetch a newer device copy first)."""
        np.copyto(self._array, value, casting="same_kind")
        self.set_fresh("host")


def topo_sort(outputs) -> list:
    """Every node the outputs depend on, inputs before users (iterative: graphs can be deep)."""
    order, seen = [], set()
    for root in outputs:
        stack = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if node.id in seen:
                continue
            seen.add(node.id)
            stack.append((node, True))
            for inp in reversed(node.inputs):
                if inp.id not in seen:
                    stack.append((inp, False))
    return order


def format_attrs(node) -> str:
    parts = []
    for key, value in node.attrs:
        if key in ("value", "storage"):
            continue
        parts.append(f"{key}={value!r}")
    if node.op == "constant":
        v = node.attr["value"]
        parts.append(f"value={v.item()!r}" if v.size == 1 else f"value=<{v.size} values>")
    return ", ".join(parts)


def format_graph(outputs, ids=None) -> str:
    """One line per node: `%id = op(inputs; attrs) : shape dtype   # name`.  `ids` maps node ids
    to the numbers to print (a compiled function numbers its nodes 0, 1, ... in order)."""
    outputs = list(outputs)
    lines = []
    num = (lambda n: ids[n.id]) if ids else (lambda n: n.id)
    for node in topo_sort(outputs):
        args = ", ".join(f"%{num(i)}" for i in node.inputs)
        attrs = format_attrs(node)
        inner = "; ".join(p for p in (args, attrs) if p)
        label = f"  # {node.name}" if node.name else ""
        lines.append(f"%{num(node)} = {node.op}({inner}) : {shape_str(node.shape)} "
                     f"{node.dtype.name}{label}")
    outs = ", ".join(f"%{num(o)}" for o in outputs)
    lines.append(f"return {outs}")
    return "\n".join(lines)


def print_graph(*tensors):
    print(format_graph(tensors))
