"""Reverse-mode differentiation as a graph pass, and the finite-difference gradient check."""
from __future__ import annotations

import numpy as np

from . import api as sg
from .graph import (ShapeError, Sym, Tensor, dims_equal, is_float, resolve_shape, shape_str,
                    topo_sort, user_site)
from .ops import OPS


def sum_to(g: Tensor, shape) -> Tensor:
    """The broadcasting adjoint: sum `g` over the axes along which `shape` was broadcast."""
    if g.ndim == len(shape) and all(dims_equal(a, b) for a, b in zip(g.shape, shape)):
        return g
    lead = g.ndim - len(shape)
    axes = list(range(lead))
    for i, d in enumerate(shape):
        if isinstance(d, int) and d == 1 and not dims_equal(g.shape[lead + i], 1):
            axes.append(lead + i)
    if axes:
        g = sg.sum(g, axis=tuple(axes), keepdims=True)
    # a symbolic dim of `shape` that met a number in the forward op has that number in g: the
    # forward node checks they are equal, so g keeps the number
    kept = g.shape[lead:]
    return sg.reshape(g, tuple(k if isinstance(d, Sym) and isinstance(k, int) and k != 1 else d
                               for d, k in zip(resolve_shape(shape), kept)))


def grad(cost, wrt):
    """Gradients of the scalar `cost` with respect to each tensor of `wrt`, as new graph nodes.

    A list in gives a list out; a single tensor in gives a single tensor out.  Adjoints add up
    where a value fans out; integer and boolean paths carry none; a `wrt` that `cost` does not
    depend on gets zeros."""
    # an array or a number is one (wrong) wrt, reported as such, not iterated
    single = isinstance(wrt, (Tensor, np.ndarray)) or not hasattr(wrt, "__iter__")
    targets = [wrt] if single else list(wrt)
    if not isinstance(cost, Tensor):
        raise TypeError(f"grad: cost must be a symgrad tensor, got {type(cost).__name__}")
    if cost.ndim != 0:
        raise ShapeError(f"grad: cost must be a scalar, got shape {shape_str(cost.shape)}; "
                         "reduce it first (e.g. sg.sum or sg.mean)" + user_site())
    if not is_float(cost.dtype):
        raise TypeError(f"grad: cost must be float32 or float64, got {cost.dtype.name}")
    for i, w in enumerate(targets):
        if not isinstance(w, Tensor):
            raise TypeError(f"grad: wrt[{i}] must be a symgrad tensor of the graph, got "
                            f"{type(w).__name__}")
        if not is_float(w.dtype):
            raise TypeError(f"grad: cannot differentiate with respect to wrt[{i}] "
                            f"({w.name or w.op}), of dtype {w.dtype.name}: only float tensors "
                            "have gradients")

    # group and stabilize first, so a sigmoid written as gates gets the sigmoid's own adjoint
    from .passes import stabilize
    cost = stabilize([cost], protect=targets)[0]
    order = topo_sort([cost])
    wanted = {w.id for w in targets}
    on_path = set()  # nodes that depend on some wrt: only they need adjoints
    for node in order:
        if node.id in wanted or any(i.id in on_path for i in node.inputs):
            on_path.add(node.id)

    adjoints = {cost.id: sg.constant(1.0, cost.dtype)}
    for node in reversed(order):
        g = adjoints.get(node.id)
        op = OPS[node.op]
        if g is None or op.kind == "source" or not op.differentiable:
            continue
        for inp, gi in zip(node.inputs, op.grad(node, g)):
            if gi is None or inp.id not in on_path or not is_float(inp.dtype):
                continue
            gi = sg.cast(sum_to(gi, inp.shape), inp.dtype)
            adjoints[inp.id] = adjoints[inp.id] + gi if inp.id in adjoints else gi

    grads = [adjoints.get(w.id) if w.id in adjoints else sg.zeros_like(w) for w in targets]
    return grads[0] if single else grads


class GradcheckError(AssertionError):
    pass


def gradcheck(f, inputs, eps=1e-6, rtol=1e-5, atol=1e-7, backend="numpy"):
    """Compare the symbolic gradient of the scalar `f(*tensors)` with central finite differences
    in float64.  Float inputs are differentiated; integer inputs (labels) are held fixed.
    Raises GradcheckError naming the worst element; returns True otherwise."""
    from .function import function

    arrays = [np.asarray(a) for a in inputs]
    arrays = [a.astype(np.float64) if a.dtype.kind == "f" else a for a in arrays]
    holders = [sg.placeholder(f"in{i}", a.shape, a.dtype) for i, a in enumerate(arrays)]
    cost = f(*holders)
    diff = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
    if not diff:  # integer test points would otherwise pass with nothing checked
        kinds = ", ".join(a.dtype.name for a in arrays) or "none"
        raise ValueError(f"gradcheck: no float input to differentiate (inputs: {kinds}); integer "
                         "inputs are held fixed as labels, so pass float arrays, e.g. "
                         "np.array([1.0, 2.0])")
    grads = grad(cost, [holders[i] for i in diff]) if diff else []
    fn_cost = function(holders, cost, backend=backend)
    fn_grad = function(holders, grads, backend=backend)
    symbolic = fn_grad(*arrays)
    worst = None  # (excess over the tolerance, input, index, symbolic, numeric) over all inputs
    for slot, i in enumerate(diff):
        x = arrays[i].copy()
        numeric = np.zeros_like(x)
        flat, num = x.reshape(-1), numeric.reshape(-1)
        for k in range(flat.size):
            orig = flat[k]
            flat[k] = orig + eps
            plus = fn_cost(*arrays[:i], x, *arrays[i + 1:])
            flat[k] = orig - eps
            minus = fn_cost(*arrays[:i], x, *arrays[i + 1:])
            flat[k] = orig
            num[k] = (plus - minus) / (2 * eps)
        sym = np.asarray(symbolic[slot], dtype=np.float64)
        err = np.abs(sym - numeric) - (atol + rtol * np.abs(numeric))
        err = np.where(np.isnan(err), np.inf, err)
        if err.size and np.max(err) > 0 and (worst is None or np.max(err) > worst[0]):
            at = np.unravel_index(np.argmax(err), err.shape)
            worst = (np.max(err), i, at, float(sym[at]), float(numeric[at]))
    if worst is not None:
        _, i, at, sym_at, num_at = worst
        raise GradcheckError(
            f"gradcheck failed for input {i} (shape {arrays[i].shape}) at index "
            f"{tuple(map(int, at))}, the worst element of all inputs: symbolic {sym_at!r}, "
            f"numeric {num_at!r} (|diff| {abs(sym_at - num_at):.3g}, allowed "
            f"{atol + rtol * abs(num_at):.3g})" + _single_precision_hint(cost))
    return True


def _single_precision_hint(cost) -> str:
    """Why a correct gradient may fail the check: a step of eps = 1e-6 is below float32's
    resolution, so differences through float32 values are noise."""
    narrow = [n for n in topo_sort([cost]) if n.dtype == np.float32]
    if not narrow:
        return ""
    return (f"; note that f computes in float32 ({narrow[0].op} node"
            f"{' ' + narrow[0].name if narrow[0].name else ''}, and {len(narrow) - 1} more): "
            "central differences need float64 throughout (cast float32 constants or "
            "parameters with .astype('float64'))")
