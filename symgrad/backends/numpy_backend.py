"""The reference backend: evaluates the graph node by node with each op's numpy rule.
Every compiled backend is tested against it."""
from __future__ import annotations

import weakref

import numpy as np

from ..function import check_finite_requested
from ..inspection import Graph
from ..graph import bind_dims, unbind_dims
from ..ops import OPS


class NumpyProgram:
    source = "# the numpy backend evaluates the graph directly; there is no generated source"

    @property
    def fn(self):
        return self._fn()

    def __init__(self, fn, check_finite=False):
        self._fn = weakref.ref(fn)  # the Function owns its program: no cycle, so `del f` frees it
        self.check_finite = check_finite_requested(check_finite)
        self.roots = fn.outputs + [v for _, v in fn.updates]
        self.graph = Graph(self.roots)
        self.kernels = []
        self.input_slot = {x.id: i for i, x in enumerate(fn.inputs)}

    def evaluate(self, arrays, dims):
        values = {}
        token = bind_dims(self.fn.dims_dict(dims))
        try:
            with np.errstate(all="ignore"):
                for node in self.graph.nodes:
                    values[node.id] = value = self._value(node, values, arrays)
                    if self.check_finite and value.dtype.kind == "f" and node.inputs and \
                            not np.all(np.isfinite(value)):
                        raise FloatingPointError(f"check_finite: {self.graph.label(node)} "
                                                 "produced NaN or Inf")
        finally:
            unbind_dims(token)
        return values

    def _value(self, node, values, arrays):
        if node.op == "placeholder":
            return arrays[self.input_slot[node.id]]
        if node.op == "shared":
            return node.attr["storage"].array
        if node.op == "constant":
            return node.attr["value"].array
        result = OPS[node.op].numpy(node.attr, *(values[i.id] for i in node.inputs))
        return np.asarray(result, dtype=node.dtype)

    def run(self, arrays, dims, outs=None):
        values = self.evaluate(arrays, dims)
        results = []
        for i, node in enumerate(self.fn.outputs):
            v = values[node.id]
            if outs is not None:
                np.copyto(outs[i], v)
                results.append(outs[i])
            else:
                results.append(np.array(v, dtype=node.dtype, copy=True))  # the caller owns it
        new_values = [np.array(values[v.id], copy=True) for _, v in self.fn.updates]
        for (target, _), value in zip(self.fn.updates, new_values):
            target.attr["storage"].overwrite(value)
        return results


def compile(fn, check_finite=False, **options):  # noqa: A001  (the backend interface's name)
    if options:
        raise TypeError(f"numpy backend: unknown options {sorted(options)}")
    return NumpyProgram(fn, check_finite=check_finite)
