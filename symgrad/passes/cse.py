"""Common subexpression elimination: one node per (op, inputs, attributes)."""
from __future__ import annotations

from ..graph import topo_sort
from .rewrite import rebuild


def cse(roots):
    canonical: dict[tuple, object] = {}
    memo = {}
    for node in topo_sort(list(roots)):
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
