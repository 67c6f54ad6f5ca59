"""Canonicalization, algebraic simplification and constant folding."""
from __future__ import annotations

import numpy as np

from .. import api as sg
from ..graph import Sym, resolve_shape
from ..ops import OPS
from .rewrite import Rule, constant_value


def _keep(x):
    return lambda n, **v: v[x]


# ops whose every value is >= 0 or NaN (relu of NaN is NaN, as numpy's maximum gives)
NONNEGATIVE_OPS = {"exp", "sigmoid", "softplus", "square", "abs", "relu", "sqrt", "softmax"}


def nonnegative(node) -> bool:
    """Whether every element of `node` is >= 0 (or NaN), as far as its op or value shows."""
    if node.op in NONNEGATIVE_OPS:
        return True
    if node.op == "constant":
        array = node.attr["value"].array
        return not np.any(array < 0)
    return False


def _exp_log(n, x):
    """exp(log x) is x only where log x is defined: x < 0 must stay NaN."""
    return x if nonnegative(x) else None


SIMPLIFY = [
    # identities (x*0 is left alone: NaN*0 is NaN, and inf*0 too)
    Rule("mul_one", ("mul", "x", 1), _keep("x")),
    Rule("div_one", ("div", "x", 1), _keep("x")),
    Rule("add_zero", ("add", "x", 0), _keep("x")),
    Rule("sub_zero", ("sub", "x", 0), _keep("x")),
    Rule("pow_one", ("pow", "x", 1), _keep("x")),
    Rule("double_negation", ("neg", ("neg", "x")), _keep("x")),
    Rule("log_exp", ("log", ("exp", "x")), _keep("x")),
    Rule("exp_log", ("exp", ("log", "x")), _exp_log),
    # canonical forms the kernels like better
    Rule("div_to_reciprocal", ("div", 1, "x"), lambda n, x: sg.reciprocal(x)),
    Rule("pow_two", ("pow", "x", 2), lambda n, x: sg.square(x)),
    Rule("pow_half", ("pow", "x", 0.5), lambda n, x: sg.sqrt(x)),
    Rule("sub_neg", ("sub", "x", ("neg", "y")), lambda n, x, y: x + y),
    Rule("add_neg", ("add", "x", ("neg", "y")), lambda n, x, y: x - y),
    Rule("cast_noop", ("cast", "x"), lambda n, x: x if x.dtype == n.dtype else None),
]

FOLDABLE_LIMIT = 1 << 16  # elements: folding must not bloat the generated source


def fold_constants(node):
    """Evaluate a node whose inputs are all constants (static shapes only)."""
    if not node.inputs or OPS[node.op].kind == "source":
        return None
    if any(i.op != "constant" for i in node.inputs):
        return None
    if node.op in ("size_of",) or any(isinstance(d, Sym) for d in resolve_shape(node.shape)):
        return None
    if int(np.prod(node.shape, dtype=np.int64)) > FOLDABLE_LIMIT:
        return None
    arrays = [i.attr["value"].array for i in node.inputs]
    with np.errstate(all="ignore"):
        try:
            value = OPS[node.op].numpy(node.attr, *arrays)
        except Exception:  # noqa: BLE001  (a fold that fails leaves the node for run time)
            return None
    return sg.constant(np.asarray(value, dtype=node.dtype), node.dtype)


class FoldRule:
    name = "constant_fold"

    def __call__(self, node, protected=frozenset()):
        if any(i.id in protected for i in node.inputs):
            return None  # c + 1 folded away, a gradient with respect to c would find no c
        return fold_constants(node)


__all__ = ["SIMPLIFY", "FoldRule", "constant_value"]
