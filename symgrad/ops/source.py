"""Leaves of the graph: placeholders (given per call), constants, shared tensors (state)."""
from __future__ import annotations

from . import Op, register


class Source(Op):
    kind = "source"

    def infer(self, inputs, attrs):
        raise AssertionError("sources are built by the API, not by apply")


@register
class Placeholder(Source):
    name = "placeholder"


@register
class Constant(Source):
    name = "constant"


@register
class Shared(Source):
    name = "shared"

