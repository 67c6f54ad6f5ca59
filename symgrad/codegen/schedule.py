"""From graph to kernels: decide what is computed where, and which memory holds it.

Walking the nodes in order, each value becomes one of:
- a View of a buffer (sources, materialized results, and free reshapes/transposes/slices/broadcasts);
- an Inline expression, computed inside its single consumer's loop (element-wise fusion, and
  element-wise prologues of reductions);
- a Literal (scalar constants, the size of a symbolic axis).
Everything else is materialized by a kernel into a buffer: an output argument when the node is an
output, else a workspace buffer whose memory is shared with others by liveness (`plan_workspace`).
"""
from __future__ import annotations

import re
import weakref
from dataclasses import dataclass

import numpy as np

from ..graph import DTYPES, Tensor, resolve_shape, topo_sort
from ..ops import OPS
from .kernels import (Buffer, GemmKernel, Kernel, Literal, Load, LoopKernel, SpecialKernel,
                      View, ctype, memory_order, walk_forwards)
from .poly import Poly, product, row_major_strides
from .spelling import RESERVED_NAMES, extreme_literal, literal_text


class CodegenError(NotImplementedError):
    pass


@dataclass(eq=False)
class Inline:
    node: Tensor


class Schedule:
    """Kernels, buffers and argument layout of one compiled step."""

    @property
    def fn(self):
        return self._fn()

    def __init__(self, fn, opt_level: int = 2, check_finite: bool = False,
                 passed_const_size: int | None = None):
        self._fn = weakref.ref(fn)  # the Function owns its schedule: no cycle
        # constants of at least this many elements are passed in by pointer (kind
        # "const_arg") instead of written into the source: a 1000x1000 one was 20 MB of C
        # and 12 s of compiling
        self.passed_const_size = passed_const_size
        self.fuse = opt_level >= 1
        # a step that can stop at any kernel (check_finite) must not have written a parameter
        # before it stops: updates are then staged and copied at the end
        self.check_finite = check_finite
        self.slots = {d: i for d, i in fn.sym_slots.items()}
        self.kernels: list[Kernel] = []
        self.buffers: list[Buffer] = []
        self.values: dict[int, object] = {}
        self.args: list[Buffer] = []
        self._names: set[str] = set()
        self.roots = fn.outputs + [v for _, v in fn.updates]
        # the update targets too: a shared tensor the step writes but never reads is still named
        self.nodes = topo_sort(self.roots + [t for t, _ in fn.updates])
        self.ids = {n.id: i for i, n in enumerate(self.nodes)}  # stable numbering for the source
        self.consumers: dict[int, list] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                self.consumers[i.id].append(n)
        self.root_ids = {r.id for r in self.roots}
        self._claimed_outputs: set[int] = set()
        self.group = self._plan_fusion()
        self._declare_arguments()
        for node in self.nodes:
            if node.id not in self.values:
                self.values[node.id] = self._schedule(node)
        self._write_roots()

    # ------------------------------------------------------------------ naming and buffers
    def poly(self, dim) -> Poly:
        try:
            return Poly.of_dim(dim, self.slots)
        except KeyError:
            raise CodegenError(f"symbolic dim {dim} is not bound by any input") from None

    def shape_of(self, node) -> tuple:
        return tuple(self.poly(d) for d in resolve_shape(node.shape))

    def unique(self, base: str) -> str:
        base = "".join(c if c.isalnum() else "_" for c in base).strip("_") or "t"
        if base[0].isdigit():
            base = "t" + base
        if base in RESERVED_NAMES or re.fullmatch(r"[a-z]\d+|[A-Z][A-Z0-9_]*", base) or \
                base.startswith(("sg_", "omp_")):
            base += "_"  # never shadow a C keyword, a helper or a kernel's local variable
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def buffer(self, node, kind, arg=-1, data=None, label=None) -> Buffer:
        label = label or node.name or f"{node.op}{self.ids[node.id]}"
        buf = Buffer(self.unique(label), node.dtype, product(self.shape_of(node)), kind, arg,
                     data)
        self.buffers.append(buf)
        if arg >= 0:
            self.args.append(buf)
        return buf

    def _declare_arguments(self):
        arg = 0
        for x in self.fn.inputs:
            self.values[x.id] = View.whole(self.buffer(x, "input", arg), self.shape_of(x))
            arg += 1
        self.output_buffers = []
        for i, out in enumerate(self.fn.outputs):
            self.output_buffers.append(self.buffer(out, "output", arg, label=f"out{i}"))
            arg += 1
        self.shared_nodes = []
        for node in self.nodes + [t for t, _ in self.fn.updates]:
            if node.op == "shared" and node.id not in self.values:
                self.shared_nodes.append(node)
                buf = self.buffer(node, "shared", arg)
                self.values[node.id] = View.whole(buf, self.shape_of(node))
                arg += 1
        self.n_args = arg

    # ------------------------------------------------------------------ the walk
    def _schedule(self, node):
        op = OPS[node.op]
        if node.op == "constant":
            array = node.attr["value"].array
            if array.size == 1:
                return Literal(literal_text(array.reshape(-1)[0], node.dtype), node.dtype)
            passed = self.passed_const_size is not None and array.size >= self.passed_const_size
            buf = self.buffer(node, "const_arg" if passed else "const",
                              self.n_args if passed else -1, data=np.ascontiguousarray(array),
                              label=f"const{self.ids[node.id]}")
            self.n_args += passed
            return View.whole(buf, self.shape_of(node))
        if node.op == "placeholder":
            raise CodegenError(f"placeholder {node.name!r} is not among the inputs")
        if op.kind == "elementwise":
            args = [self.values[i.id] for i in node.inputs]
            if node.id not in self.root_ids and all(isinstance(a, Literal) for a in args):
                # a scalar of constants and dims (1/batch): computed where it is used
                return Literal(op.c.format(*(a.text for a in args), T=ctype(node.dtype)),
                               node.dtype)
            if self._inlinable(node):
                return Inline(node)
            return self._materialize_loop(node)
        if op.kind == "shape" and node.op in VIEW_RULES:
            return self._view_op(node)
        if node.op == "size_of":
            count = product(self.poly(d) for d in node.attr["dims"])
            return Literal(f"(({ctype(node.dtype)}){count.c()})", node.dtype)
        if op.kind == "reduce":
            return self._reduction(node)
        if op.kind == "matmul":
            return self._gemm(node)
        from . import special
        rule = special.RULES.get(node.op)
        if rule is None:
            raise CodegenError(f"the C backend cannot compile op {node.op!r} "
                               f"(node %{self.ids[node.id]})")
        return rule(self, node)

    def _plan_fusion(self) -> dict:
        """Which kernel computes each element-wise node: walking from the roots, a node joins
        its consumers' kernel when they all are in one element-wise kernel of its shape (or it
        feeds one reduction), so shared subexpressions are computed once, in registers."""
        group: dict[int, int] = {}
        for node in reversed(self.nodes):
            op = OPS[node.op]
            group[node.id] = node.id
            if op.kind != "elementwise" or not self.fuse:
                continue
            users = self.consumers[node.id]
            targets = set()
            for user in users:
                kind = OPS[user.op].kind
                if kind == "elementwise" and resolve_shape(user.shape) == \
                        resolve_shape(node.shape):
                    targets.add(group[user.id])
                elif kind == "reduce" and user.op != "logsumexp" and len(users) == 1 and \
                        node.id not in self.root_ids:
                    targets.add(user.id)
                else:
                    targets.add(None)
            if len(targets) == 1 and None not in targets:
                group[node.id] = targets.pop()
        return group

    def _inlinable(self, node) -> bool:
        return self.group.get(node.id, node.id) != node.id

    # ------------------------------------------------------------------ materializing
    def target_for(self, node) -> View:
        """Where a computed node goes: its output argument, or a new workspace buffer."""
        for i, out in enumerate(self.fn.outputs):
            if out is node and i not in self._claimed_outputs:
                self._claimed_outputs.add(i)
                return View.whole(self.output_buffers[i], self.shape_of(node))
        return View.whole(self.buffer(node, "work"), self.shape_of(node))

    def as_view(self, node) -> View:
        """The node's value in a buffer (materializing an inline value or literal)."""
        value = self.values[node.id]
        if isinstance(value, View):
            return value
        view = self._materialize_loop(node, value)
        self.values[node.id] = view
        return view

    def contiguous(self, node) -> View:
        view = self.as_view(node)
        if view.is_contiguous():
            return view
        return self._copy(node, view)

    def _copy(self, node, view: View, target: View | None = None) -> View:
        target = target or View.whole(self.buffer(node, "work", label=f"{node.name or node.op}"
                                                  f"{self.ids[node.id]}_copy"), view.shape)
        kernel = LoopKernel(self.kernel_name("copy", node), [node], shape=target.shape)
        kernel.loads.append(Load("v0", view.broadcast(target.shape)))
        kernel.reads.append(view.buffer)
        kernel.stores.append((target, "v0"))
        kernel.writes.append(target.buffer)
        self.kernels.append(kernel)
        return target

    def kernel_name(self, kind, node) -> str:
        label = node.name or node.op
        return self.unique(f"k{len(self.kernels)}_{kind}" if label == kind
                           else f"k{len(self.kernels)}_{kind}_{label}")

    # ------------------------------------------------------------------ element-wise loops
    def expression(self, node, kernel: LoopKernel, loop_shape, cache: dict):
        """C variable holding `node` inside `kernel`'s loop, through its inline inputs (first
        input first, depth first).  An explicit stack, not recursion: a fused chain of
        thousands of ops (an unrolled recurrence) is one loop too."""
        pending = [(node, False)]
        while pending:
            n, inputs_done = pending.pop()
            if n.id in cache:
                continue
            if inputs_done:  # an inline (or being-materialized) element-wise node
                args = [cache[i.id] for i in n.inputs]
                text = OPS[n.op].c.format(*args, T=ctype(n.dtype))
                var = f"v{len(cache)}"
                kernel.statements.append((ctype(n.dtype), var, text))
                if all(k is not n for k in kernel.nodes):
                    kernel.nodes.append(n)
                cache[n.id] = var
                continue
            value = self.values.get(n.id)
            if isinstance(value, Literal):
                cache[n.id] = value.text
            elif isinstance(value, View):
                var = f"v{len(cache)}"
                kernel.loads.append(Load(var, value.broadcast(loop_shape)))
                kernel.reads.append(value.buffer)
                cache[n.id] = var
            else:
                pending.append((n, True))
                pending.extend((i, False) for i in reversed(n.inputs))
        return cache[node.id]

    def _materialize_loop(self, node, value=None) -> View:
        target = self.target_for(node)
        self._compute_into(node, value, target)
        self.values[node.id] = target
        return target

    def _compute_into(self, node, value, target: View):
        """One loop kernel writing `node` (inline expression or literal) into `target`."""
        kernel = LoopKernel(self.kernel_name("loop", node), [], shape=target.shape)
        if isinstance(value, Literal):
            var = value.text
            kernel.nodes.append(node)
        else:
            self.values.pop(node.id, None)  # computed here, not loaded
            cache = {}
            var = self.expression(node, kernel, target.shape, cache)
            self._store_fused_roots(kernel, node, cache)
        kernel.stores.append((target, var))
        kernel.writes.append(target.buffer)
        self.kernels.append(kernel)

    def _store_fused_roots(self, kernel, root, cache):
        """Outputs and new values computed inside another node's loop are stored from it too
        (multi-output fusion: s and g*s*(1-s) in one pass)."""
        for node in kernel.nodes:
            if node is root or node.id not in self.root_ids:
                continue
            if isinstance(self.values.get(node.id), View):
                continue
            target = self.target_for(node)
            kernel.stores.append((target, cache[node.id]))
            kernel.writes.append(target.buffer)
            self.values[node.id] = target

    # ------------------------------------------------------------------ views
    def _view_op(self, node):
        x = node.inputs[0]
        value = self.values[x.id]
        if isinstance(value, Literal) and node.op in ("reshape", "broadcast_to"):
            return value  # a broadcast scalar stays a scalar
        view = self.as_view(x)
        if node.op == "reshape" and not view.is_contiguous():
            unit_free = _reshape_unit_dims(view, self.shape_of(node))
            if unit_free is not None:
                return unit_free
            view = self._copy(x, view)
        return VIEW_RULES[node.op](self, node, view)

    # ------------------------------------------------------------------ reductions
    def _reduction(self, node):
        if node.op == "logsumexp":
            from . import special
            return special.RULES["logsumexp"](self, node)
        x = node.inputs[0]
        axes = node.attr["axes"] if node.op != "argmax" else (node.attr["axis"],)
        full = self.shape_of(x)
        kept_axes = [a for a in range(x.ndim) if a not in axes]
        target = self.target_for(node)
        kernel = LoopKernel(self.kernel_name("reduce", node), [node],
                            shape=tuple(full[a] for a in kept_axes),
                            reduced=tuple(full[a] for a in axes))
        var = self.expression(x, kernel, full, {})
        if node.op != "argmax":  # order-blind: walk the input forwards, in memory order
            axes = memory_order(axes, kernel.loads)
            walk_forwards(axes, kernel.loads)
            kernel.reduced = tuple(full[a] for a in axes)
        order = kept_axes + list(axes)
        for load in kernel.loads:
            load.view = load.view.permute(order)
        kernel.reduce = self._reduce_rule(node, x, var, product(kernel.reduced))
        kept_target = View(target.buffer, target.offset, kernel.shape,
                           tuple(s for a, s in zip(range(len(target.shape)), target.strides)
                                 if not (node.attr.get("keepdims") and a in axes))
                           if node.attr.get("keepdims") else target.strides)
        kernel.stores.append((kept_target, kernel.reduce["result"]))
        kernel.writes.append(target.buffer)
        self.kernels.append(kernel)
        self.values[node.id] = target
        return target

    @staticmethod
    def _reduce_rule(node, x, var, count: Poly) -> dict:
        op = OPS[node.op]
        out_t = ctype(node.dtype)
        if node.op == "argmax":
            # bool has no simd max reduction: it keeps the one-pass scan
            lowest = "" if x.dtype == DTYPES["bool"] else extreme_literal(x.dtype, lowest=True)
            return {"argmax": True, "acc_type": ctype(x.dtype), "value": var,
                    "identity": "0", "result": "best_index", "lowest": lowest}
        acc_type = "double" if x.dtype == DTYPES["float32"] and node.op in ("sum", "mean") \
            else ctype(node.dtype) if node.op == "sum" else ctype(x.dtype)
        if op.c_identity == "SG_LOWEST":
            identity = extreme_literal(x.dtype, lowest=True)
        elif op.c_identity == "SG_HIGHEST":
            identity = extreme_literal(x.dtype, lowest=False)
        else:
            identity = op.c_identity
        result = f"({out_t})acc"
        if node.op == "mean":
            result = f"({out_t})(acc / (double){count.c()})"
        value = f"({acc_type}){var}"
        combine = op.c_combine.format(acc="acc", v=value)
        rule = {"argmax": False, "acc_type": acc_type, "identity": identity, "combine": combine,
                "merge": op.c_combine.format(acc="acc", v="parts[t]"),
                "join": op.c_combine.format(acc="acc", v="other"), "result": result,
                "simd": "", "simd_step": f"acc = {combine}", "nan_flag": False, "nan_step": ""}
        if node.op in ("sum", "mean"):
            rule["simd"] = "+"
        elif node.op in ("max", "min") and x.dtype != DTYPES["bool"]:
            # sg_max's NaN test keeps a loop from vectorizing (3x slower than numpy): the simd
            # loop takes a plain max and notes any NaN in an int flag (a float flag hit a gcc
            # 12 miscompile); a NaN seen makes the result NaN afterwards, as numpy's
            rule["simd"] = node.op
            rule["simd_step"] = f"acc = {value} {'>' if node.op == 'max' else '<'} acc ? {value} : acc"
            if x.dtype.kind == "f":
                rule["nan_flag"], rule["nan_step"] = True, f"saw_nan |= {value} != {value}"
        return rule

    # ------------------------------------------------------------------ matrix products
    def _gemm(self, node):
        a_node, b_node = node.inputs
        a, b = self.as_view(a_node), self.as_view(b_node)
        out_shape = self.shape_of(node)
        batch = out_shape[:-2]
        a_mat, trans_a, lda = self._blas_operand(a_node, a)
        b_mat, trans_b, ldb = self._blas_operand(b_node, b)
        total = self._batch_total(node)
        if total is not None and trans_a:
            folded = self._gemm_summed_over_batch(node, total, a_mat, lda, b_mat, trans_b, ldb)
            if folded is not None:
                return folded
        c = self.target_for(node)
        kernel = GemmKernel(self.kernel_name("gemm", node), [node], reads=[a_mat.buffer,
                                                                          b_mat.buffer],
                            writes=[c.buffer], batch=batch, trans_a=trans_a, trans_b=trans_b,
                            lda=lda, ldb=ldb, m=out_shape[-2], n=out_shape[-1],
                            k=self.shape_of(a_node)[-1])
        kernel.a = self._batch_view(a_mat, out_shape)
        kernel.b = self._batch_view(b_mat, out_shape)
        kernel.c = c
        kernel.error = (f"matmul %{self.ids[node.id]}: a dim exceeds the 32-bit range of "
                        "the BLAS")
        self.kernels.append(kernel)
        self.values[node.id] = c
        return c

    def _batch_total(self, node):
        """The sum over the batch dim that is a batched product's only use (as in the gradient
        of a weight shared by every row of a batch), or None."""
        users = self.consumers[node.id]
        if not self.fuse or len(users) != 1 or node.id in self.root_ids or node.ndim != 3:
            return None
        user = users[0]
        return user if user.op == "sum" and tuple(user.attr["axes"]) == (0,) else None

    def _gemm_summed_over_batch(self, node, total, a_mat, lda, b_mat, trans_b, ldb):
        """sum_b A_b^T B_b as ONE product of K = batch * k, when both operands are stacked
        along k: A_b^T stored as (k, m) blocks, B_b as (k, n) blocks, one after another.  Both
        product and sum then run in one GEMM, with no (batch, m, n) intermediate.  None (and
        nothing scheduled) where the operands do not stack."""
        batch, m, n = self.shape_of(node)
        k = self.shape_of(node.inputs[0])[-1]
        a = self._batch_view(a_mat, (batch, m, k))
        if a.strides[0] != k * lda or self._batch_view(b_mat, (batch, k, n)).strides[0].is_zero():
            return None
        if trans_b:  # k runs along B's rows only in a copy: far cheaper than a batch of GEMMs
            b_mat, ldb = self._copy(node.inputs[1], b_mat), n
        b = self._batch_view(b_mat, (batch, k, n))
        if b.strides[0] != k * ldb:
            return None
        c = self.target_for(total)
        kernel = GemmKernel(self.kernel_name("gemm", node), [node, total],
                            reads=[a_mat.buffer, b_mat.buffer], writes=[c.buffer], batch=(),
                            trans_a=True, trans_b=False, lda=lda, ldb=ldb, m=m, n=n,
                            k=batch * k)
        kernel.a = View(a.buffer, a.offset, (m, batch * k), (Poly.const(1), lda))
        kernel.b = View(b.buffer, b.offset, (batch * k, n), (ldb, Poly.const(1)))
        kernel.c = View(c.buffer, c.offset, (m, n), (n, Poly.const(1)))
        kernel.error = (f"matmul %{self.ids[node.id]}: a dim exceeds the 32-bit range of "
                        "the BLAS")
        self.kernels.append(kernel)
        self.values[node.id] = self.values[total.id] = c
        return c

    def _blas_operand(self, node, view: View):
        rows, cols = view.shape[-2:]
        s_r, s_c = view.strides[-2:]
        one = Poly.const(1)
        if s_c == one and (s_r == cols or rows == one):
            return view, False, cols if rows == one else s_r
        if s_r == one and (s_c == rows or cols == one):
            return view, True, rows if cols == one else s_c
        copy = self._copy(node, view)
        return copy, False, cols

    @staticmethod
    def _batch_view(view: View, out_shape) -> View:
        """Batch dims of an operand broadcast to the output's batch dims (matrix dims kept)."""
        batch = out_shape[:-2]
        lead = len(batch) - (len(view.shape) - 2)
        strides = [Poly.const(0)] * lead
        for d_src, d_dst, s in zip(view.shape[:-2], batch[lead:], view.strides[:-2]):
            strides.append(Poly.const(0) if d_src == Poly.const(1) and d_dst != d_src else s)
        return View(view.buffer, view.offset, tuple(batch) + view.shape[-2:],
                    tuple(strides) + view.strides[-2:])

    # ------------------------------------------------------------------ outputs and updates
    def _write_roots(self):
        for i, out in enumerate(self.fn.outputs):
            target = View.whole(self.output_buffers[i], self.shape_of(out))
            value = self.values[out.id]
            if isinstance(value, View) and value.buffer is self.output_buffers[i]:
                continue
            self._store_value(out, value, target)
        # updates: new values land in fresh buffers first, then are copied over the shared
        # storage at the very end, so every update reads old values
        update_copies = []
        for target_node, value_node in self.fn.updates:
            value = self.values[value_node.id]
            if not isinstance(value, View) or not value.is_contiguous() or \
                    value.buffer.kind in ("shared", "input", "const", "const_arg"):
                staged = View.whole(self.buffer(value_node, "work",
                                                label=f"{target_node.name or 'shared'}_new"),
                                    self.shape_of(value_node))
                self._store_value(value_node, value, staged)
                value = staged
            dest = self.values[target_node.id]
            update_copies.append((dest, value, target_node))
        # a value that feeds two updates stays where it is, copied into both
        uses = {}
        for _, value, _ in update_copies:
            uses[id(value.buffer)] = uses.get(id(value.buffer), 0) + 1
        for dest, value, target_node in update_copies:
            if not (self.fuse and uses[id(value.buffer)] == 1 and
                    self._update_in_place(dest, value)):
                self._copy(target_node, value, dest)

    def _update_in_place(self, dest: View, value: View) -> bool:
        """Let the kernel that computes a shared tensor's new value write it straight into the
        tensor's storage (no staging buffer, no copy).  Safe when no later kernel reads the old
        value and that kernel reads the old value only at the element it writes."""
        buf = value.buffer
        if self.check_finite or buf.kind != "work" or not value.is_contiguous() \
                or not dest.is_contiguous():
            return False
        writers = [k for k, kernel in enumerate(self.kernels) if buf in kernel.writes]
        if len(writers) != 1 or not isinstance(self.kernels[writers[0]], LoopKernel):
            return False
        k = writers[0]
        kernel = self.kernels[k]
        # a later kernel that stops the step on bad data (an index, a label) must find every
        # parameter as it was (the GEMMs' 32-bit dims check depends on sizes only)
        if any(later.error and not isinstance(later, GemmKernel)
               for later in self.kernels[k + 1:]):
            return False
        stores = [view for view, _ in kernel.stores if view.buffer is buf]
        if len(stores) != 1 or any(view.buffer is dest.buffer for view, _ in kernel.stores):
            return False
        if any(dest.buffer in later.reads for later in self.kernels[k + 1:]):
            return False
        store_view = stores[0]
        for load in kernel.loads:
            if load.view.buffer is dest.buffer and not (
                    load.view.offset == store_view.offset and
                    list(load.view.strides) == list(store_view.strides)):
                return False
        if any(isinstance(later, SpecialKernel) and buf in later.reads
               for later in self.kernels[k + 1:]):
            return False  # their parameters hold rendered pointers: leave them as they are
        for later in self.kernels[k:]:
            later.reads = [dest.buffer if b is buf else b for b in later.reads]
            later.writes = [dest.buffer if b is buf else b for b in later.writes]
            for load in getattr(later, "loads", []):
                if load.view.buffer is buf:
                    load.view = View(dest.buffer, load.view.offset, load.view.shape,
                                     load.view.strides)
            if isinstance(later, LoopKernel):
                later.stores = [(View(dest.buffer, v.offset, v.shape, v.strides)
                                 if v.buffer is buf else v, var) for v, var in later.stores]
            for attr in ("a", "b", "c"):
                view = getattr(later, attr, None)
                if isinstance(view, View) and view.buffer is buf:
                    setattr(later, attr, View(dest.buffer, view.offset, view.shape,
                                              view.strides))
        self.buffers.remove(buf)
        return True

    def _store_value(self, node, value, target: View):
        if isinstance(value, View):
            self._copy(node, value, target)
        else:
            self._compute_into(node, value, target)
            if isinstance(value, Inline):
                self.values[node.id] = value


# ---------------------------------------------------------------------- view rules
def _is_one(d: Poly) -> bool:
    return d.is_const and d.value == 1


def _reshape_unit_dims(view: View, shape) -> View | None:
    """A reshape that only inserts or drops unit dims keeps any view's strides."""
    kept = [(d, s) for d, s in zip(view.shape, view.strides) if not _is_one(d)]
    if [d for d, _ in kept] != [d for d in shape if not _is_one(d)]:
        return None
    strides, it = [], iter(kept)
    for d in shape:
        strides.append(Poly.const(0) if _is_one(d) else next(it)[1])
    return View(view.buffer, view.offset, tuple(shape), tuple(strides))


def _reshape(s: Schedule, node, view: View) -> View:
    shape = s.shape_of(node)
    return View(view.buffer, view.offset, shape, row_major_strides(shape))


def _transpose(s: Schedule, node, view: View) -> View:
    return view.permute(node.attr["axes"])


def _broadcast_to(s: Schedule, node, view: View) -> View:
    return view.broadcast(s.shape_of(node))


def _slice(s: Schedule, node, view: View) -> View:
    offset, strides = view.offset, []
    for (start, stop, step), stride in zip(node.attr["index"], view.strides):
        offset = offset + stride * s.poly(start)
        strides.append(stride * step)
    return View(view.buffer, offset, s.shape_of(node), tuple(strides))


VIEW_RULES = {"reshape": _reshape, "transpose": _transpose, "broadcast_to": _broadcast_to,
              "slice": _slice}

