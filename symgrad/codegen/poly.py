"""Sizes, strides and offsets as polynomials over the call's symbolic dims.

A Poly is a sum of `coef * d_a * d_b ...` terms, where `d_k` is the int64 argument holding the
k-th symbolic dim.  Strides of a row-major buffer are products of its dims, so everything the
loop generator needs (strides, sizes, offsets, the equality tests that let it merge loops) stays
exact without knowing the batch size.
"""
from __future__ import annotations

from ..graph import Sym, resolve_dim


class Poly:
    __slots__ = ("terms",)

    def __init__(self, terms=None):
        self.terms = {k: v for k, v in (terms or {}).items() if v}

    @staticmethod
    def const(c: int) -> "Poly":
        return Poly({(): int(c)})

    @staticmethod
    def var(slot: int) -> "Poly":
        return Poly({(slot,): 1})

    @staticmethod
    def of_dim(dim, slots: dict) -> "Poly":
        """The dim (an int, a symbolic dim, a product or a shift) over the slots {Sym: k} of
        the call's symbolic dims; KeyError names a dim no slot holds."""
        dim = resolve_dim(dim)
        if not isinstance(dim, Sym):
            return Poly.const(dim)
        if dim in slots:  # a dim bound as a whole, derived or not
            return Poly.var(slots[dim])
        if dim.base is not None:
            return Poly.of_dim(dim.base, slots) + dim.offset
        if not dim.factors:
            raise KeyError(dim)
        p = Poly.const(dim.coef)
        for f in dim.factors:
            p = p * Poly.of_dim(f, slots)
        return p

    def __add__(self, other):
        other = as_poly(other)
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms.get(k, 0) + v
        return Poly(terms)

    __radd__ = __add__

    def __mul__(self, other):
        other = as_poly(other)
        terms = {}
        for k1, v1 in self.terms.items():
            for k2, v2 in other.terms.items():
                k = tuple(sorted(k1 + k2))
                terms[k] = terms.get(k, 0) + v1 * v2
        return Poly(terms)

    __rmul__ = __mul__

    def __eq__(self, other):
        return isinstance(other, (Poly, int)) and self.terms == as_poly(other).terms

    def __hash__(self):
        return hash(tuple(sorted(self.terms.items())))

    @property
    def is_const(self) -> bool:
        return all(not k for k in self.terms)

    @property
    def value(self) -> int:
        assert self.is_const
        return self.terms.get((), 0)

    def is_zero(self) -> bool:
        return not self.terms

    def c(self) -> str:
        """The C expression (int64 arithmetic)."""
        if not self.terms:
            return "0"
        parts = []
        for key in sorted(self.terms, key=lambda k: (len(k), k)):
            coef = self.terms[key]
            factors = [f"d{s}" for s in key]
            if coef != 1 or not factors:
                factors.insert(0, str(coef) if coef >= 0 else f"({coef})")
            parts.append("*".join(factors))
        text = " + ".join(parts)
        # parenthesized unless atomic, so it can be dropped into any C expression
        return text if text.isidentifier() or text.lstrip("-").isdigit() else f"({text})"

    def evaluate(self, dims) -> int:
        total = 0
        for key, coef in self.terms.items():
            for s in key:
                coef *= dims[s]
            total += coef
        return total

    def __repr__(self):
        return self.c()


def as_poly(x) -> Poly:
    return x if isinstance(x, Poly) else Poly.const(x)


def product(polys) -> Poly:
    out = Poly.const(1)
    for p in polys:
        out = out * p
    return out


def row_major_strides(shape) -> tuple:
    strides, acc = [], Poly.const(1)
    for d in reversed(shape):
        strides.append(acc)
        acc = acc * d
    return tuple(reversed(strides))
