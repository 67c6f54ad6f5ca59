"""Graph passes, each a small function over the roots of a graph, run by `optimize` in order:
CSE, canonicalize and simplify, fold constants, stabilize/group, CSE again (dead code goes by
itself: only what the roots reach is kept)."""
from __future__ import annotations

from ..graph import Tensor, topo_sort
from .cse import cse
from .rewrite import Rule, match, rewrite
from .simplify import SIMPLIFY, FoldRule
from .stabilize import STABILIZE

ALL_RULES = [FoldRule(), *SIMPLIFY, *STABILIZE]


def optimize(roots, level=2, log=None):
    """The graph that should run for `roots`: level 0 returns them untouched."""
    if level <= 0:
        return list(roots)
    # CSE first as well: a pattern that names one value twice (x - logsumexp(x)) matches only
    # when the user's two equal subexpressions are one node
    roots = rewrite(cse(roots), ALL_RULES, log=log)
    return cse(roots)


def stabilize(roots, protect=(), log=None):
    """Only the grouping rewrites (sg.grad runs this before it differentiates)."""
    # CSE first, as in optimize: exp(x - max(x)) / sum(exp(x - max(x))) written with two equal
    # shifts is a softmax only once they are one node
    return rewrite(cse(roots, protect), [FoldRule(), *SIMPLIFY, *STABILIZE], protect=protect,
                   log=log)


__all__ = ["optimize", "stabilize", "rewrite", "cse", "match", "Rule", "Tensor", "topo_sort"]
