"""The rewrite engine: patterns over the graph that read like the math, applied to a fixed point.

A pattern is a nested tuple `(op, *operand_patterns)`; a string names a variable (the same name
must match the same node twice), a number matches a constant of that value (any dtype, scalar or
filled array), and `ANY_OP` patterns are not needed: rules are plain functions over the matched
variables.  `add` and `mul` patterns also match with their operands swapped.

Graphs are immutable: `rewrite` builds new nodes bottom-up and returns the new roots.
"""
from __future__ import annotations

import numpy as np

from ..graph import Tensor, shapes_equal, topo_sort
from ..ops import apply

COMMUTATIVE = {"add", "mul", "maximum", "minimum", "equal", "not_equal"}


def constant_value(node: Tensor):
    """The scalar a constant (or a broadcast of one) holds, or None."""
    while node.op in ("broadcast_to", "reshape") and node.inputs:
        node = node.inputs[0]
    if node.op != "constant":
        return None
    array = node.attr["value"].array
    if array.size == 0:
        return None
    first = array.reshape(-1)[0]
    return first.item() if np.all(array == first) else None


def match(pattern, node: Tensor, bound: dict) -> bool:
    if isinstance(pattern, str):
        if pattern in bound:
            return bound[pattern] is node
        bound[pattern] = node
        return True
    if isinstance(pattern, (int, float)):
        value = constant_value(node)
        return value is not None and value == pattern
    op, *args = pattern
    if node.op != op or len(args) != len(node.inputs):
        return False
    orders = [node.inputs]
    if op in COMMUTATIVE:
        orders.append(node.inputs[::-1])
    for inputs in orders:
        trial = dict(bound)
        trial[MATCHED] = bound.get(MATCHED, ()) + (node,)
        if all(match(p, i, trial) for p, i in zip(args, inputs)):
            bound.update(trial)
            return True
    return False


MATCHED = "__matched__"  # the nodes a pattern's operators matched, root first


class Rule:
    """`pattern` -> `build(node, **variables)` (returns a node, or None to decline)."""

    def __init__(self, name, pattern, build):
        self.name, self.pattern, self.build = name, pattern, build

    def __call__(self, node, protected=frozenset()):
        bound = {}
        if not match(self.pattern, node, bound):
            return None
        interior = bound.pop(MATCHED, ())[1:]
        if any(n.id in protected for n in interior):
            return None  # a gradient target must not vanish into a grouped op
        out = self.build(node, **bound)
        if out is None or out is node:
            return None
        if not shapes_equal(out.shape, node.shape):
            from .. import api as sg
            out = sg.broadcast_to(out, node.shape)
        if out.dtype != node.dtype:
            from .. import api as sg
            out = sg.cast(out, node.dtype)
        return keep_site(out, node)

    def __repr__(self):
        return f"<rule {self.name}>"


def rebuild(node: Tensor, inputs) -> Tensor:
    if all(a is b for a, b in zip(inputs, node.inputs)):
        return node
    return keep_site(apply(node.op, *inputs, name=node.name, **node.attr), node)


def keep_site(new: Tensor, old: Tensor) -> Tensor:
    """A node a pass builds in place of the user's keeps the user's source line (errors name
    it), not the line of the `sg.function` call that ran the pass."""
    if new.id > old.id:
        object.__setattr__(new, "site", old.site)
    return new


def rewrite(roots, rules, protect=(), max_steps=16, log=None):
    """New roots with `rules` applied bottom-up until none fires.  `protect` lists nodes that
    must survive as they are (the targets of a gradient).  `log` collects (rule, before, after)."""
    protected = {p.id for p in protect}
    memo: dict[int, Tensor] = {}

    def settle(node: Tensor) -> Tensor:
        for _ in range(max_steps):
            for rule in rules:
                new = rule(node, protected)
                if new is not None:
                    if log is not None:
                        log.append((rule.name, node, new))
                    node = settle_inputs(new)
                    break
            else:
                return node
        return node

    def settle_inputs(node: Tensor) -> Tensor:
        """A rule's result may contain new nodes whose own inputs can simplify further."""
        for sub in topo_sort([node]):
            if sub.id in memo:
                continue
            new_inputs = [memo.get(i.id, i) for i in sub.inputs]
            memo[sub.id] = rebuild(sub, new_inputs)
        return memo[node.id]

    for node in topo_sort(list(roots)):
        if node.id in protected:  # the very node, even where its inputs were rewritten: the
            memo[node.id] = node  # gradient is taken with respect to it, by identity
            continue
        new = rebuild(node, [memo[i.id] for i in node.inputs])
        if new.inputs:
            new = settle(new)
        memo[node.id] = new
        memo.setdefault(new.id, new)
    return [memo[r.id] for r in roots]
