"""The op registry.  Each op is defined once, in one class, with everything about it:

- `infer(inputs, attrs)`  -> (shape, dtype), raising ShapeError with the op's name on bad input;
- `numpy(attrs, *arrays)` -> the reference value every backend is tested against;
- `grad(node, g)`         -> one adjoint (a symgrad Tensor, or None for no gradient) per input,
                             written with symgrad ops so a gradient is itself a graph;
- for the C/CUDA renderers: `c` (a scalar expression over `{0}`, `{1}`, ... for element-wise ops)
  or the parameters its kernel family needs (reductions: identity and combine step).

Ops are grouped by family in the modules of this package; importing the package registers them all.
"""
from __future__ import annotations

from ..graph import ShapeError, Tensor, dims_transaction, shape_str, user_site

OPS: dict[str, "Op"] = {}


class Op:
    name: str = ""
    # "source" (placeholder/shared/constant), "elementwise", "reduce", "matmul", "shape", "special"
    kind: str = "special"
    differentiable = True

    def infer(self, inputs, attrs):
        raise NotImplementedError

    def numpy(self, attrs, *arrays):
        raise NotImplementedError

    def grad(self, node, g):
        raise NotImplementedError(f"{self.name} has no gradient rule")

    def error(self, message) -> ShapeError:
        return ShapeError(f"{self.name}: {message}{user_site()}")


def register(cls):
    op = cls()
    if op.name in OPS:
        raise RuntimeError(f"op {op.name} registered twice")
    OPS[op.name] = op
    return cls


def apply(op_name: str, *inputs, name=None, **attrs) -> Tensor:
    """Build (and shape-check) one node."""
    op = OPS[op_name]
    for inp in inputs:
        if not isinstance(inp, Tensor):
            raise TypeError(f"{op_name}: expected symgrad tensors, got {type(inp).__name__}")
    with dims_transaction() as rule:
        out_shape, dtype = op.infer(inputs, attrs)
    return Tensor(op_name, inputs, tuple(sorted(attrs.items())), out_shape, dtype, name=name,
                  dim_checks=rule.checks)


def describe(inputs) -> str:
    return ", ".join(f"{shape_str(t.shape)} {t.dtype.name}" for t in inputs)


from . import elementwise, reduce, shape, linalg, nn, random, source, window  # noqa: E402,F401  (registers the ops)
