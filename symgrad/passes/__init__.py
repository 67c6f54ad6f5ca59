"""Graph passes, each a small function over the roots of a graph, run by `optimize` in order:
canonicalize and simplify, fold constants, stabilize/group, CSE (dead code goes by itself: only
what the roots reach is kept)."""
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
    roots = rewrite(roots, ALL_RULES, log=log)
    return cse(roots)


def stabilize(roots, protect=(), log=None):
    """Only the grouping rewrites (sg.grad runs this before it differentiates)."""
    return rewrite(roots, [FoldRule(), *SIMPLIFY, *STABILIZE], protect=protect, log=log)


__all__ = ["optimize", "stabilize", "rewrite", "cse", "match", "Rule", "Tensor", "topo_sort"]
