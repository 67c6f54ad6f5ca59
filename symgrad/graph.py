"""The graph: immutable nodes, dtypes, symbolic dims and the user-facing Tensor type.

A Tensor is one node of a static graph: an op name, its inputs, hashable attributes, a shape and a
dtype.  Nothing about a node changes after it is built, so passes build new nodes rather than edit
old ones.  Shapes mix ints and `Sym` (a dim given per call, e.g. the batch).
"""
from __future__ import annotations

import contextvars
import itertools
import numbers
import os
import traceback

import numpy as np

DTYPES = {name: np.dtype(name) for name in ("float32", "float64", "int32", "int64", "bool")}
FLOAT_DTYPES = (DTYPES["float32"], DTYPES["float64"])


class ShapeError(ValueError):
    """A shape (or dtype) mismatch found while building the graph or binding a call's inputs."""


def as_dtype(dtype) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"unknown dtype {dtype!r}; symgrad supports {', '.join(DTYPES)}") from None
    if dt.name not in DTYPES:
        raise TypeError(f"dtype {dt.name} is not supported; symgrad supports {', '.join(DTYPES)}")
    return DTYPES[dt.name]


def is_float(dtype) -> bool:
    return np.dtype(dtype) in FLOAT_DTYPES


# --------------------------------------------------------------------------------------------
# Symbolic dims
# --------------------------------------------------------------------------------------------
class Sym:
    """A dim whose value is given per call.  Dims found equal while building the graph (a batch
    dim of `x` meeting the batch dim of the labels) are unified, union-find style, so that the
    call binds one value for the whole class and checks the inputs agree.

    Symbolic dims never broadcast: a size-1 batch is still a batch.  A Sym that meets an int n
    in an op stays symbolic: the op's result has n there, and the op's node records the check
    "this dim is n" (`Tensor.dim_checks`).  A function whose graph holds that node fixes the dim
    to n while it compiles and checks it at call time; other graphs never see it.

    A *product* Sym is `coef * f1 * f2 ...` of plain ones (`x.reshape(-1, 8)` of an
    (n, 5, 8) x has 5*n rows; `b.shape[0] * b.shape[1]`), one object per product (see
    `sym_product`).  What it can meet is `_unify_product`'s rule."""

    _counter = itertools.count()

    def __init__(self, name: str | None = None, *, coef: int = 1, factors: tuple = ()):
        self.id = next(Sym._counter)
        self.coef, self.factors = coef, factors
        self.name = name or f"n{self.id}"
        self._parent: Sym | None = None
        self._value: int | None = None

    def find(self) -> "Sym":
        root = self
        while root._parent is not None:
            root = root._parent
        return root

    def __mul__(self, other):
        if isinstance(other, bool) or not isinstance(other, (Sym, numbers.Integral)):
            return NotImplemented
        return sym_product(self, other)

    __rmul__ = __mul__

    def __repr__(self):
        d = resolve_dim(self)
        if not isinstance(d, Sym):
            return str(d)
        return d.name if not d.factors else product_name(d.coef, d.factors)


def product_name(coef: int, factors) -> str:
    """How a product dim prints: 5*n, B*T."""
    return "*".join(([str(coef)] if coef != 1 else []) + [f.find().name for f in factors])


_named_syms: dict[str, Sym] = {}
_products: dict[tuple, Sym] = {}


def named_sym(name: str) -> Sym:
    """Symbolic dims named by the same string are one dim, across placeholders."""
    if name not in _named_syms:
        _named_syms[name] = Sym(name)
    return _named_syms[name]


def dim_factors(d) -> tuple:
    """(int coefficient, [plain root Syms]) whose product is the dim d."""
    d = resolve_dim(d)
    if not isinstance(d, Sym):
        return int(d), []
    if not d.factors:
        return 1, [d]
    return d.coef, list(d.factors)


def sym_product(*dims):
    """The product of dims (ints and Syms) as an int, a plain Sym, or the one product Sym of
    those factors (so that equal products are the same object, as equal dims must be)."""
    coef, factors = 1, []
    for d in dims:
        c, fs = dim_factors(d)
        coef *= c
        factors += fs
    if coef == 0 or not factors:
        return coef
    if coef == 1 and len(factors) == 1:
        return factors[0]
    factors.sort(key=lambda f: f.id)
    key = (coef, tuple(f.id for f in factors))
    if key not in _products:
        _products[key] = Sym(coef=coef, factors=tuple(factors))
    return _products[key]


def resolve_dim(d):
    """An int, or the representative Sym of d's class (for a product: the product of its
    factors' representatives)."""
    if isinstance(d, Sym):
        root = d.find()
        if root.factors:
            return sym_product(root.coef, *root.factors)
        return root._value if root._value is not None else root
    return d


def dim_value(d, values: dict) -> int:
    """The dim's value given {root Sym: int} (plain dims, and products bound as a whole)."""
    d = resolve_dim(d)
    if d in values:
        return values[d]
    coef, factors = dim_factors(d)
    for f in factors:
        coef *= values[f]
    return coef


def resolve_shape(shape) -> tuple:
    return tuple(resolve_dim(d) for d in shape)


class _DimJournal:
    """What one op's shape rule did to the symbolic dims: the merges (undone if the rule
    raises) and the checks "Sym == int" it asked for (kept on the node it builds)."""

    def __init__(self):
        self.merged: list[Sym] = []
        self.checks: dict[Sym, int] = {}


_journal: contextvars.ContextVar = contextvars.ContextVar("symgrad_dim_journal", default=None)


class dims_transaction:
    """Run a shape rule: its Sym merges are undone if it raises; `checks` are what it required
    of the symbolic dims ((Sym, int) pairs) when it succeeds."""

    def __enter__(self):
        self.journal = _DimJournal()
        self._token = _journal.set(self.journal)
        return self

    def __exit__(self, kind, value, tb):
        _journal.reset(self._token)
        if kind is not None:
            for sym in reversed(self.journal.merged):
                sym._parent = None
        return False

    @property
    def checks(self) -> tuple:
        return tuple(self.journal.checks.items())


def unify_dims(a, b):
    """Require a == b (one of them symbolic); return the merged dim or None if impossible.  A
    Sym meeting an int returns the int and records the check in the current shape rule's
    journal: the Sym itself stays symbolic (see Sym)."""
    a, b = resolve_dim(a), resolve_dim(b)
    if a is b or (isinstance(a, int) and isinstance(b, int) and a == b):
        return a
    if isinstance(a, int) and isinstance(b, int):
        return None
    if (isinstance(a, Sym) and a.factors) or (isinstance(b, Sym) and b.factors):
        return _unify_product(a, b)
    journal = _journal.get()
    if isinstance(a, Sym) and isinstance(b, Sym):
        # keep the older (usually user-named) symbol as representative
        keep, drop = (a, b) if a.id <= b.id else (b, a)
        if journal is not None:
            if drop in journal.checks and keep in journal.checks and \
                    journal.checks[drop] != journal.checks[keep]:
                return None
            journal.merged.append(drop)
            if drop in journal.checks:
                journal.checks.setdefault(keep, journal.checks.pop(drop))
        drop._parent = keep
        return keep
    sym, val = (a, b) if isinstance(a, Sym) else (b, a)
    if journal is not None:
        if journal.checks.setdefault(sym, val) != val:
            return None
    return val


def _unify_product(a, b):
    """A product Sym equals itself; an int k when it has one factor and coef divides k (that
    factor is then k / coef); a plain Sym that is not one of its factors (which then stands for
    the product: labels of shape (m,) meeting logits reshaped to (5*n, classes))."""
    product, other = (a, b) if isinstance(a, Sym) and a.factors else (b, a)
    if isinstance(other, int):
        if len(product.factors) == 1 and other % product.coef == 0 and \
                unify_dims(product.factors[0], other // product.coef) is not None:
            return other
        return None
    if other.factors:
        return _unify_products(a, b)
    if other in product.factors:
        return None
    journal = _journal.get()
    if journal is not None:
        if other in journal.checks:
            return None
        journal.merged.append(other)
    other._parent = product
    return product


def _unify_products(a, b):
    """Two products with the same coefficient whose factors differ in one plain dim each
    (4*a and 4*b; B*T and B*S) are equal when those two dims are: they are unified.  Other
    pairs (5*n against B*T) cannot be matched when the graph is built."""
    only_a = [f for f in a.factors if f not in b.factors]
    only_b = [f for f in b.factors if f not in a.factors]
    if a.coef != b.coef or len(a.factors) != len(b.factors) or len(only_a) != 1 or \
            len(only_b) != 1:
        return None
    if unify_dims(only_a[0], only_b[0]) is None:
        return None
    return resolve_dim(a)


class pinned_dims:
    """Give symbolic dims fixed values ({root Sym: int}) for the duration of a block: a
    function compiles (and its numpy reference runs) with the dims its graph's checks fix."""

    def __init__(self, values: dict):
        self.values = values

    def __enter__(self):
        for sym, value in self.values.items():
            sym._value = value
        return self

    def __exit__(self, *exc):
        for sym in self.values:
            sym._value = None
        return False


def dims_equal(a, b) -> bool:
    a, b = resolve_dim(a), resolve_dim(b)
    return a is b or (isinstance(a, int) and isinstance(b, int) and a == b)


def shapes_equal(s1, s2) -> bool:
    return len(s1) == len(s2) and all(dims_equal(a, b) for a, b in zip(s1, s2))


def static_size(shape):
    """Product of the dims, or None if any is symbolic."""
    n = 1
    for d in resolve_shape(shape):
        if not isinstance(d, int):
            return None
        n *= d
    return n


def shape_str(shape) -> str:
    dims = ", ".join(str(resolve_dim(d)) for d in shape)
    return f"({dims}{',' if len(shape) == 1 else ''})"


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


def user_frame() -> str:
    """`file:line` of the innermost stack frame outside the symgrad package."""
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            return f"{os.path.basename(frame.filename)}:{frame.lineno}"
    return "?"


def user_site() -> str:
    for frame in reversed(traceback.extract_stack()):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR):
            code = (frame.line or "").strip()
            return f"\n  built at {frame.filename}:{frame.lineno}: {code}"
    return ""


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


# --------------------------------------------------------------------------------------------
# Binding symbolic dims at call time
# --------------------------------------------------------------------------------------------
_bound_dims: contextvars.ContextVar = contextvars.ContextVar("symgrad_bound_dims", default={})


def bind_dims(values: dict):
    """Make `values` (root Sym -> int) the dims that `concrete_shape` resolves with; returns a
    token for `unbind_dims`."""
    return _bound_dims.set(values)


def unbind_dims(token):
    _bound_dims.reset(token)


def concrete_shape(shape) -> tuple:
    """The shape with each symbolic dim replaced by its value in the current call."""
    values = _bound_dims.get()
    out = []
    for d in resolve_shape(shape):
        if isinstance(d, Sym):
            try:
                d = dim_value(d, values)
            except KeyError:
                raise ShapeError(f"symbolic dim {d} has no value in this call") from None
        out.append(d)
    return tuple(out)
