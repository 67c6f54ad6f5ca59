"""Scheduling rules of the ops with their own loop shape.  Each rule turns a node into one
SpecialKernel whose C lives in the template macro of the same name (templates/c/special.c.j2).
Row-wise ops see their operand as (outer, n, inner) around the normalized axis."""
from __future__ import annotations

import numpy as np

from .kernels import Literal, RunError, SpecialKernel, View
from .poly import Poly, product
from .spelling import literal_text


def pointer(view: View) -> str:
    off = view.offset
    return view.buffer.name if off.is_zero() else f"({view.buffer.name} + {off.c()})"


def around(shape, axis):
    return product(shape[:axis]), shape[axis], product(shape[axis + 1:])


def emit(s, node, template, inputs, target, error="", **params) -> View:
    kernel = SpecialKernel(s.kernel_name(template, node), [node], template=template,
                           error=error)
    kernel.reads = [v.buffer for v in inputs]
    kernel.writes = [target.buffer]
    kernel.params = dict(params, out=pointer(target), out_t=target.buffer.ctype,
                         ins=[pointer(v) for v in inputs],
                         in_t=[v.buffer.ctype for v in inputs])
    s.kernels.append(kernel)
    s.values[node.id] = target
    return target


def row_op(s, node):
    x = s.contiguous(node.inputs[0])
    outer, n, inner = around(s.shape_of(node), node.attr["axis"])
    return emit(s, node, node.op, [x], s.target_for(node), outer=outer.c(), n=n.c(),
                inner=inner.c(), log=node.op == "log_softmax")


def logsumexp(s, node):
    x_node = node.inputs[0]
    axes = node.attr["axes"]
    view = s.as_view(x_node)
    kept = [a for a in range(x_node.ndim) if a not in axes]
    view = view.permute(kept + list(axes))
    if not view.is_contiguous():
        view = s._copy(x_node, view)
    full = s.shape_of(x_node)
    outer = product(full[a] for a in kept)
    n = product(full[a] for a in axes)
    return emit(s, node, "logsumexp", [view], s.target_for(node), outer=outer.c(), n=n.c(),
                inner="1")


def label_error(s, node) -> RunError:
    """What a softmax cross-entropy kernel reports for a label outside the classes."""
    return RunError(f"softmax_cross_entropy %{s.ids[node.id]}: a label is outside [0, {{}})",
                    node.inputs[0].shape[-1])


def cross_entropy(s, node):
    fused = _gradient_alongside(s, node)
    if fused is not None:
        return fused
    logits, labels = (s.contiguous(i) for i in node.inputs)
    rows = product(s.shape_of(node))
    classes = s.shape_of(node.inputs[0])[-1]
    return emit(s, node, "softmax_cross_entropy", [logits, labels], s.target_for(node),
                rows=rows.c(), classes=classes.c(),
                error=label_error(s, node))


LITERAL_OPS = ("constant", "size_of", "reshape", "broadcast_to")


def _gradient_alongside(s, node):
    """Loss and adjoint in one pass over the logits, when the graph wants both and the adjoint's
    upstream gradient is a scalar known before the loss (the mean's 1/rows): one read of the
    logits, one exp per element."""
    from ..graph import topo_sort
    from ..ops import OPS
    logits_node, labels_node = node.inputs
    for user in s.consumers[logits_node.id]:
        if user.op != "softmax_cross_entropy_grad" or user.inputs[1] is not labels_node \
                or user.id in s.values:
            continue
        pending = [n for n in topo_sort([user.inputs[2]]) if n.id not in s.values]
        if any(n is node or not (n.op in LITERAL_OPS or OPS[n.op].kind == "elementwise")
               for n in pending):
            continue
        for n in pending:
            s.values[n.id] = s._schedule(n)
        g_value = s.values[user.inputs[2].id]
        if not isinstance(g_value, Literal):
            continue
        logits, labels = s.contiguous(logits_node), s.contiguous(labels_node)
        loss, grad = s.target_for(node), s.target_for(user)
        classes = s.shape_of(logits_node)[-1]
        kernel = SpecialKernel(s.kernel_name("softmax_cross_entropy_fused", node), [node, user],
                               template="softmax_cross_entropy_fused",
                               error=label_error(s, node))
        kernel.reads = [logits.buffer, labels.buffer]
        kernel.writes = [loss.buffer, grad.buffer]
        kernel.params = dict(ins=[pointer(logits), pointer(labels)],
                             in_t=[logits.buffer.ctype, labels.buffer.ctype],
                             out=pointer(loss), out_t=loss.buffer.ctype, grad=pointer(grad),
                             rows=product(s.shape_of(node)).c(), classes=classes.c(),
                             g_row=g_value.text)
        s.kernels.append(kernel)
        s.values[user.id] = grad
        s.values[node.id] = loss
        return loss
    return None


def cross_entropy_grad(s, node):
    logits, labels = (s.contiguous(i) for i in node.inputs[:2])
    rows = product(s.shape_of(node)[:-1])
    classes = s.shape_of(node)[-1]
    g_value = s.values[node.inputs[2].id]
    if isinstance(g_value, Literal):  # the mean's 1/rows: a scalar, no buffer to fill
        inputs, g_row = [logits, labels], g_value.text
    else:
        g = s.contiguous(node.inputs[2])
        inputs, g_row = [logits, labels, g], f"{pointer(g)}[o]"
    return emit(s, node, "softmax_cross_entropy_grad", inputs, s.target_for(node),
                rows=rows.c(), classes=classes.c(), g_row=g_row,
                error=label_error(s, node))


def random_uniform(s, node):
    counter = s.as_view(node.inputs[0])
    # values per Philox block: four of 24 bits (float32), or two of 53 bits (float64)
    per = 2 if node.dtype.itemsize == 8 else 4
    return emit(s, node, "random_uniform", [counter], s.target_for(node),
                n=product(s.shape_of(node)).c(), seed=str(node.attr["seed"] & (2 ** 64 - 1)),
                per=per)


def take(s, node):
    x, idx = (s.contiguous(i) for i in node.inputs)
    axis = node.attr["axis"]
    outer, n, inner = around(s.shape_of(node.inputs[0]), axis)
    m = product(s.shape_of(node.inputs[1]))
    return emit(s, node, "take", [x, idx], s.target_for(node), outer=outer.c(), n=n.c(),
                inner=inner.c(), m=m.c(),
                error=RunError(f"take %{s.ids[node.id]}: an index is out of range for axis "
                               f"{axis} of size {{}}", node.inputs[0].shape[axis]))


def scatter_add(s, node):
    g, idx = (s.contiguous(i) for i in node.inputs)
    axis = node.attr["axis"]
    outer, n, inner = around(s.shape_of(node), axis)
    m = product(s.shape_of(node.inputs[1]))
    return emit(s, node, "scatter_add", [g, idx], s.target_for(node), outer=outer.c(), n=n.c(),
                inner=inner.c(), m=m.c(),
                error=f"scatter_add %{s.ids[node.id]}: an index is out of range for axis {axis}")


def window_max(s, node):
    x, index = node.inputs
    return _windows(s, node, x, index)


def window_max_grad(s, node):
    _, x, _, index = node.inputs
    return _windows(s, node, x, index)


def _windows(s, node, x, index):
    """window_max and its adjoint: x seen as (outer, n, inner) around the axis, and the index as
    (taps, windows)."""
    axis = node.attr["axis"]
    outer, n, inner = around(s.shape_of(x), axis)
    taps, windows = s.shape_of(index)
    views = [s.contiguous(i) for i in node.inputs]
    return emit(s, node, node.op, views, s.target_for(node), outer=outer.c(), n=n.c(),
                inner=inner.c(), taps=taps.c(), windows=windows.c(),
                disjoint=disjoint_taps(index),
                error=RunError(f"{node.op} %{s.ids[node.id]}: an index is out of range for "
                               f"axis {axis} of size {{}}", x.shape[axis]))


def disjoint_taps(index) -> bool:
    """Whether a constant window index names each position at most once (pooling whose stride
    is its size): the adjoint can then store each tap's share instead of adding it, and run
    all windows as one vector loop.  Negative positions (resolved only at run time) count as
    not disjoint."""
    if index.op != "constant":
        return False
    rows = index.attr["value"].array.reshape(-1)
    return bool(rows.size == 0 or (rows.min() >= 0 and np.unique(rows).size == rows.size))


def one_hot(s, node):
    labels = s.contiguous(node.inputs[0])
    m = product(s.shape_of(node.inputs[0]))
    return emit(s, node, "one_hot", [labels], s.target_for(node), m=m.c(),
                depth=str(node.attr["depth"]))


def arange(s, node):
    return emit(s, node, "arange", [], s.target_for(node), n=s.poly(node.attr["n"]).c())


def concatenate(s, node):
    axis = node.attr["axis"]
    target = s.target_for(node)
    start = Poly.const(0)
    for part in node.inputs:
        size = s.shape_of(part)[axis]
        offset = target.offset + target.strides[axis] * start
        region = View(target.buffer, offset, s.shape_of(part), target.strides)
        s._store_value(part, s.values[part.id], region)
        start += size
    s.kernels[-1].nodes.append(node)
    s.values[node.id] = target
    return target


def unslice(s, node):
    target = s.target_for(node)
    s._store_value(node, Literal(literal_text(0, node.dtype), node.dtype), target)
    region = target
    offset, strides = region.offset, []
    for (start, stop, step), stride in zip(node.attr["index"], region.strides):
        offset = offset + stride * s.poly(start)
        strides.append(stride * step)
    inner = View(target.buffer, offset, s.shape_of(node.inputs[0]), tuple(strides))
    s._store_value(node.inputs[0], s.values[node.inputs[0].id], inner)
    s.values[node.id] = target
    return target


RULES = {"softmax": row_op, "log_softmax": row_op, "logsumexp": logsumexp,
         "softmax_cross_entropy": cross_entropy,
         "softmax_cross_entropy_grad": cross_entropy_grad, "take": take,
         "random_uniform": random_uniform, "scatter_add": scatter_add,
         "one_hot": one_hot, "arange": arange, "concatenate": concatenate, "unslice": unslice,
         "window_max": window_max, "window_max_grad": window_max_grad}

