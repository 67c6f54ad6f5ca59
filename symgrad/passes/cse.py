"""Common subexpression elimination: one node per (op, inputs, attributes)."""
from __future__ import annotations

from ..graph import topo_sort
from .rewrite import rebuild


def cse(roots, protect=()):
    """`protect`: nodes kept as they are and never merged with an equal one (the targets of a
    gradient: its value is the same, but the gradient flows through one node only)."""
    canonical: dict[tuple, object] = {}
    memo = {}
    protected = {p.id for p in protect}
    for node in topo_sort(list(roots)):
        if node.id in protected:
            memo[node.id] = node
            continue
        new = rebuild(node, [memo[i.id] for i in node.inputs])
        if node.op in ("placeholder", "shared"):
            memo[node.id] = new
            continue
        key = (new.op, tuple(i.id for i in new.inputs), new.attrs, new.dtype.str,
               len(new.shape))
        try:
            memo[node.id] = canonical.setdefault(key, new)
        except TypeError:  # an unhashable attribute: keep the node as it is
            memo[node.id] = new
    return [memo[r.id] for r in roots]
