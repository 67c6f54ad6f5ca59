"""Symbolic dims: sizes given per call (the batch, a sequence length), how they combine, and
how ops that find two dims equal unify them.

A dim is an int or a `Sym`.  A Sym is one of:

- *plain*: a size named by a placeholder (`None` or a string such as "batch");
- a *product* `coef * f1 * f2 ...` (`x.reshape(-1, 8)` of an (n, 5, 8) x has 5*n rows);
- a *shift* `base + offset` of a plain dim or a product (`x[1:]` of n rows has n - 1).

The factors of a product are plain dims or shifts (`B*(T - 1)` tokens after dropping the last
step of each sequence).  Equal derived dims are one object (`sym_product`, `sym_shift`), so
`dims_equal` stays an identity test, and sizes reach generated code as polynomials over the
plain dims (`codegen.poly.Poly.of_dim`).  Sums of unrelated dims (`n + m`) are not dims.
"""
from __future__ import annotations

import contextvars
import itertools
import numbers


class ShapeError(ValueError):
    """A shape (or dtype) mismatch found while building the graph or binding a call's inputs."""


class Sym:
    """A dim whose value is given per call.  Dims found equal while building the graph (a batch
    dim of `x` meeting the batch dim of the labels) are unified, union-find style, so that the
    call binds one value for the whole class and checks the inputs agree.

    Symbolic dims never broadcast: a size-1 batch is still a batch.  A Sym that meets an int n
    in an op stays symbolic: the op's result has n there, and the op's node records the check
    "this dim is n" (`Tensor.dim_checks`).  A function whose graph holds that node fixes the dim
    to n while it compiles and checks it at call time; other graphs never see it.

    Products (`coef`, `factors`) and shifts (`base`, `offset`) are described in the module's
    docstring; what they can meet is `_unify_derived`'s rule."""

    _counter = itertools.count()

    def __init__(self, name: str | None = None, *, coef: int = 1, factors: tuple = (),
                 base: "Sym | None" = None, offset: int = 0):
        self.id = next(Sym._counter)
        self.coef, self.factors = coef, factors
        self.base, self.offset = base, offset
        self.name = name or f"n{self.id}"
        self._parent: Sym | None = None
        self._value: int | None = None

    @property
    def derived(self) -> bool:
        return bool(self.factors) or self.base is not None

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

    def __add__(self, other):
        if isinstance(other, bool) or not isinstance(other, (Sym, numbers.Integral)):
            return NotImplemented
        return _required(dim_add(self, other), self, "+", other)

    __radd__ = __add__

    def __sub__(self, other):
        if isinstance(other, bool) or not isinstance(other, (Sym, numbers.Integral)):
            return NotImplemented
        return _required(dim_sub(self, other), self, "-", other)

    def __rsub__(self, other):
        if isinstance(other, bool) or not isinstance(other, numbers.Integral):
            return NotImplemented
        return _required(dim_sub(other, self), other, "-", self)

    def __repr__(self):
        return dim_name(self)


def _required(dim, a, op, b):
    if dim is None:
        raise ShapeError(f"{a} {op} {b} is not a dim symgrad can represent (a product of "
                         "symbolic dims plus a constant, never negative)")
    return dim


def dim_name(d) -> str:
    """How a dim prints: 3, n, 5*n, B*T, n - 1, B*(T - 1)."""
    d = resolve_dim(d)
    if not isinstance(d, Sym):
        return str(d)
    if d.base is not None:
        sign = "-" if d.offset < 0 else "+"
        return f"{dim_name(d.base)} {sign} {abs(d.offset)}"
    if not d.factors:
        return d.name
    names = [f"({dim_name(f)})" if f.base is not None else dim_name(f) for f in d.factors]
    return "*".join(([str(d.coef)] if d.coef != 1 else []) + names)


_named_syms: dict[str, Sym] = {}
_products: dict[tuple, Sym] = {}
_shifts: dict[tuple, Sym] = {}


def named_sym(name: str) -> Sym:
    """Symbolic dims named by the same string are one dim, across placeholders."""
    if name not in _named_syms:
        _named_syms[name] = Sym(name)
    return _named_syms[name]


def dim_factors(d) -> tuple:
    """(int coefficient, [factors]) whose product is the dim d; a factor is a plain root Sym or
    a shift (which multiplies as one piece)."""
    d = resolve_dim(d)
    if not isinstance(d, Sym):
        return int(d), []
    if not d.factors:
        return 1, [d]
    return d.coef, list(d.factors)


def plain_dims(d) -> list:
    """The plain root Syms inside the dim d, with repeats (n*n gives [n, n])."""
    d = resolve_dim(d)
    if not isinstance(d, Sym):
        return []
    if d.base is not None:
        return plain_dims(d.base)
    if d.factors:
        return [p for f in d.factors for p in plain_dims(f)]
    return [d]


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


def sym_shift(d, offset: int):
    """d + offset as an int, d itself (offset 0), or the one shift Sym of d's base by the total
    offset."""
    d = resolve_dim(d)
    if not isinstance(d, Sym):
        return d + offset
    if d.base is not None:
        d, offset = d.base, d.offset + offset
    if offset == 0:
        return d
    key = (d.id, offset)
    if key not in _shifts:
        _shifts[key] = Sym(base=d, offset=offset)
    return _shifts[key]


def _split(d):
    """(coef, sorted factor ids, factors, offset) of a resolved dim: the product part and the
    constant part (an int has no product part: coef 0)."""
    if not isinstance(d, Sym):
        return 0, (), [], d
    offset = 0
    if d.base is not None:
        d, offset = d.base, d.offset
    coef, factors = dim_factors(d)
    return coef, tuple(sorted(f.id for f in factors)), factors, offset


def _combine(a, b, sign):
    """a + sign*b when the result is a product of the same factors plus a constant, with a
    coefficient >= 0; None otherwise (n + m, 3 - n)."""
    ca, ka, fa, oa = _split(resolve_dim(a))
    cb, kb, fb, ob = _split(resolve_dim(b))
    if ca and cb and ka != kb:
        return None
    coef = ca + sign * cb
    if coef < 0:
        return None
    factors = fa or fb
    out = sym_shift(sym_product(coef, *factors) if factors else 0, oa + sign * ob)
    return None if isinstance(out, int) and out < 0 else out


def dim_add(a, b):
    """a + b (concatenating along a symbolic axis), or None when it is not a dim."""
    return _combine(a, b, 1)


def dim_sub(a, b):
    """a - b (a slice's length), or None when it is not a dim."""
    return _combine(a, b, -1)


def resolve_dim(d):
    """An int, or the representative Sym of d's class (for a product or a shift: the one built
    from its parts' representatives)."""
    if isinstance(d, Sym):
        root = d.find()
        if root.factors:
            return sym_product(root.coef, *root.factors)
        if root.base is not None:
            return sym_shift(root.base, root.offset)
        return root._value if root._value is not None else root
    return d


def dim_value(d, values: dict) -> int:
    """The dim's value given {root Sym: int} (plain dims, and derived ones bound as a whole);
    KeyError names a plain dim without a value."""
    d = resolve_dim(d)
    if not isinstance(d, Sym):
        return d
    if d in values:
        return values[d]
    if d.base is not None:
        return dim_value(d.base, values) + d.offset
    if not d.factors:
        raise KeyError(d)
    v = d.coef
    for f in d.factors:
        v *= dim_value(f, values)
    return v


def resolve_shape(shape) -> tuple:
    return tuple(resolve_dim(d) for d in shape)


# --------------------------------------------------------------------------------------------
# Unification
# --------------------------------------------------------------------------------------------
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
            _undo(self.journal)
        return False

    @property
    def checks(self) -> tuple:
        return tuple(self.journal.checks.items())


def undo_merges():
    """Undo the current shape rule's merges now (its error message then shows each operand's
    own dims; they would be undone when the error leaves the rule anyway)."""
    journal = _journal.get()
    if journal is not None:
        _undo(journal)


def _undo(journal: _DimJournal):
    for sym in reversed(journal.merged):
        sym._parent = None
    journal.merged.clear()


def unify_dims(a, b):
    """Require a == b (one of them symbolic); return the merged dim or None if impossible.  A
    Sym meeting an int returns the int and records the check in the current shape rule's
    journal: the Sym itself stays symbolic (see Sym)."""
    a, b = resolve_dim(a), resolve_dim(b)
    if a is b or (isinstance(a, int) and isinstance(b, int) and a == b):
        return a
    if isinstance(a, int) and isinstance(b, int):
        return None
    if (isinstance(a, Sym) and a.derived) or (isinstance(b, Sym) and b.derived):
        return _unify_derived(a, b)
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


def _unify_derived(a, b):
    """A product or a shift meets:
    - an int k: a shift n + c when its base can be k - c (>= 0); a product when it has one
      factor and its coef divides k (that factor is then k / coef);
    - a plain Sym not inside it, which then stands for it (labels of shape (m,) meeting logits
      reshaped to (5*n, classes));
    - another product: see `_unify_products`;
    - another shift: n + c against m + d makes n stand for m + (d - c) (n - 1 against m - 1
      unifies n and m).
    A product against a shift, or anything else, cannot be matched when the graph is built."""
    derived, other = (a, b) if isinstance(a, Sym) and a.derived else (b, a)
    if isinstance(other, int):
        if derived.base is not None:
            base = other - derived.offset
            return other if base >= 0 and unify_dims(derived.base, base) is not None else None
        if len(derived.factors) == 1 and other % derived.coef == 0 and \
                unify_dims(derived.factors[0], other // derived.coef) is not None:
            return other
        return None
    if not other.derived:
        if other in plain_dims(derived):
            return None
        journal = _journal.get()
        if journal is not None:
            if other in journal.checks:
                return None
            journal.merged.append(other)
        other._parent = derived
        return derived
    if a.factors and b.factors:
        return _unify_products(a, b)
    if a.base is not None and b.base is not None:
        if unify_dims(a.base, sym_shift(b.base, b.offset - a.offset)) is None:
            return None
        return resolve_dim(a)
    return None


def _unify_products(a, b):
    """Two products with the same coefficient whose factors differ in one dim each (4*a and
    4*b; B*T and B*S) are equal when those two dims are: they are unified.  Other pairs (5*n
    against B*T) cannot be matched when the graph is built."""
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


def shape_str(shape) -> str:
    dims = ", ".join(str(resolve_dim(d)) for d in shape)
    return f"({dims}{',' if len(shape) == 1 else ''})"


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


def concrete_dim(d) -> int:
    """The dim's value in the current call."""
    try:
        return dim_value(d, _bound_dims.get())
    except KeyError:
        raise ShapeError(f"symbolic dim {dim_name(d)} has no value in this call") from None


def concrete_shape(shape) -> tuple:
    """The shape with each symbolic dim replaced by its value in the current call."""
    return tuple(concrete_dim(d) for d in shape)
