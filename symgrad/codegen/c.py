"""Render a Schedule as one C translation unit (templates/c/*.j2).

Python makes the decisions here (loop order, which loops merge, which loop runs in parallel,
workspace offsets); the templates only hold the shape of the code.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from .kernels import Buffer, GemmKernel, LoopKernel
from ..resources import resource_dir
from .poly import Poly, product

# Below this many elements a loop runs on one thread: waking the team costs more than it saves.
PARALLEL_MIN_WORK = 32768
ALIGN = 64


@functools.lru_cache(maxsize=None)
def environment():
    import jinja2  # here: a warm start that loads a remembered library never renders
    # Compiling the templates costs more than a warm start may take: keep their bytecode in the
    # cache directory (Jinja checks the templates' mtimes, so edits still show).
    from ..build import cache_dir
    bytecode = None
    try:
        folder = cache_dir() / "jinja"
        folder.mkdir(mode=0o700, exist_ok=True)
        bytecode = jinja2.FileSystemBytecodeCache(str(folder))
    except OSError:
        pass
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(resource_dir("templates")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             lstrip_blocks=True, keep_trailing_newline=True,
                             bytecode_cache=bytecode)
    env.globals["const_values"] = const_values
    return env


# ---------------------------------------------------------------------- loop nests
def collapse(dims, stride_lists):
    """Drop unit dims and merge neighbours that every access walks as one (row-major) run."""
    keep = [k for k, d in enumerate(dims) if not (d.is_const and d.value == 1)]
    dims = [dims[k] for k in keep]
    strides = [[s[k] for k in keep] for s in stride_lists]
    k = len(dims) - 2
    while k >= 0:
        if all(s[k] == s[k + 1] * dims[k + 1] for s in strides):
            dims[k] = dims[k] * dims[k + 1]
            del dims[k + 1]
            for s in strides:
                s[k] = s[k + 1]
                del s[k + 1]
        k -= 1
    return dims, strides


def index_expr(offset: Poly, strides, names) -> str:
    parts = [] if offset.is_zero() else [offset.c()]
    for s, i in zip(strides, names):
        if s.is_zero():
            continue
        parts.append(i if s == Poly.const(1) else f"{i}*{s.c()}")
    return " + ".join(parts) or "0"


@dataclass
class Loop:
    var: str
    extent: str


@dataclass
class LoopPlan:
    """What the loop template needs, all as C text."""
    outer: list = field(default_factory=list)      # kept loops (parallel over the first ones)
    inner: list = field(default_factory=list)      # reduced loops
    parallel: str = ""                             # the `if` of the parallel pragma, or ""
    collapse: int = 1
    loads: list = field(default_factory=list)      # (ctype, var, buffer, index)
    stores: list = field(default_factory=list)     # (ctype, buffer, index, var)
    work: str = "1"
    columns: bool = False                          # reduce down columns, a tile of them at once


def pointer_shifts(kernel: LoopKernel) -> dict:
    """{buffer name: offset} for each buffer argument that the kernel reads or writes at one
    nonzero offset only (a part of a concatenation, a slice): the caller passes the pointer
    already moved, so kernels that differ only there are one function (define_once)."""
    offsets = {}
    for view in [load.view for load in kernel.loads] + [view for view, _ in kernel.stores]:
        if view.buffer.kind != "const":
            offsets.setdefault(view.buffer.name, set()).add(view.offset)
    return {name: next(iter(found)) for name, found in offsets.items()
            if len(found) == 1 and not next(iter(found)).is_zero()}


def plan_loop(kernel: LoopKernel, shifts=None) -> LoopPlan:
    """`shifts`: pointer_shifts(kernel) where the caller passes those buffers moved."""
    shifts = shifts or {}

    def offset(view):
        return Poly.const(0) if view.buffer.name in shifts else view.offset

    n_kept = len(kernel.shape)
    accesses = [l.view.strides for l in kernel.loads]
    store_strides = [v.strides for v, _ in kernel.stores]
    kept_dims, kept_strides = collapse(
        list(kernel.shape),
        [list(s[:n_kept]) for s in accesses] + [list(s) for s in store_strides])
    red_dims, red_strides = collapse(list(kernel.reduced), [list(s[n_kept:]) for s in accesses])
    plan = LoopPlan()
    plan.outer = [Loop(f"i{k}", d.c()) for k, d in enumerate(kept_dims)]
    plan.inner = [Loop(f"r{k}", d.c()) for k, d in enumerate(red_dims)]
    kept_names = [lp.var for lp in plan.outer]
    red_names = [lp.var for lp in plan.inner]
    for j, load in enumerate(kernel.loads):
        idx = index_expr(offset(load.view), kept_strides[j] + red_strides[j],
                         kept_names + red_names)
        plan.loads.append((load.view.buffer.ctype, load.var, load.view.buffer.name, idx))
    for j, (view, var) in enumerate(kernel.stores):
        strides = kept_strides[len(kernel.loads) + j]
        plan.stores.append((view.buffer.ctype, view.buffer.name,
                            index_expr(offset(view), strides, kept_names), var))
    work = product(kernel.shape) * product(kernel.reduced)
    plan.work = work.c()
    if not (work.is_const and work.value < PARALLEL_MIN_WORK):
        plan.parallel = f"{plan.work} >= {PARALLEL_MIN_WORK}"
    plan.collapse = max(1, len(plan.outer) - (0 if kernel.reduce else 1))
    # A reduction down the columns of a row-major array (a bias gradient: sum over the batch):
    # walking each column alone strides through memory; accumulating a tile of neighbouring
    # columns row by row reads memory in order and vectorizes across the tile.
    if kernel.reduce and not kernel.reduce["argmax"] and len(kept_dims) == 1 and red_dims:
        kept_unit = all(s[0].is_zero() or s[0] == Poly.const(1) for s in kept_strides)
        red_contiguous = all(s[-1].is_zero() or s[-1] == Poly.const(1)
                             for s in red_strides[:len(kernel.loads)])
        plan.columns = kept_unit and not red_contiguous
    return plan


# ---------------------------------------------------------------------- workspace
def plan_workspace(kernels, buffers):
    """Share workspace memory between buffers whose lifetimes do not overlap.  Returns the
    slots, each a list of buffers (its size is the largest of them at call time)."""
    first, last = {}, {}
    for k, kernel in enumerate(kernels):
        for buf in kernel.writes + kernel.reads:
            if buf.kind == "work":
                first.setdefault(id(buf), k)
                last[id(buf)] = k
    work = sorted((b for b in buffers if b.kind == "work" and id(b) in first),
                  key=lambda b: first[id(b)])
    slots, slot_end = [], []
    for buf in work:
        for s, end in enumerate(slot_end):
            if end < first[id(buf)] and slots[s][0].dtype.itemsize == buf.dtype.itemsize:
                slots[s].append(buf)
                slot_end[s] = last[id(buf)]
                buf.slot = s
                break
        else:
            buf.slot = len(slots)
            slots.append([buf])
            slot_end.append(last[id(buf)])
    return slots


def same_memory(a: Buffer, b: Buffer) -> bool:
    """Whether two buffers may be the same memory: one buffer, or one workspace slot."""
    return a is b or (a.kind == b.kind == "work" and a.slot == b.slot)


def slot_sizes_c(slot) -> list:
    """The byte sizes of a slot's buffers as C expressions, each once (the slot is as large as
    the largest; a running max in statements, since nested SG_MAX macros grow exponentially
    when expanded)."""
    sizes = []
    for b in slot:
        text = (b.size * b.dtype.itemsize).c()
        if text not in sizes:
            sizes.append(text)
    return sizes


def workspace_layout(slots, dims) -> tuple:
    """(offsets, total bytes) for concrete dims, with the same arithmetic as the C code."""
    offsets, total = [], 0
    for slot in slots:
        offsets.append(total)
        size = max(b.size.evaluate(dims) * b.dtype.itemsize for b in slot)
        total += (size + ALIGN - 1) // ALIGN * ALIGN
    return offsets, total


# ---------------------------------------------------------------------- kernels
def kernel_buffers(kernel) -> list:
    seen, out = set(), []
    for buf in kernel.writes + kernel.reads:
        if id(buf) not in seen:
            seen.add(id(buf))
            out.append(buf)
    written = {id(b) for b in kernel.writes}
    return [(b, id(b) in written) for b in out]


def gemm_plan(k: GemmKernel) -> dict:
    batch_dims, batch_strides = collapse(list(k.batch), [list(k.a.strides[:-2]),
                                                         list(k.b.strides[:-2]),
                                                         list(k.c.strides[:-2])])
    m = k.m
    if len(batch_dims) == 1 and batch_strides[1][0].is_zero() and not k.trans_a and \
            batch_strides[0][0] == k.m * k.lda and batch_strides[2][0] == k.m * k.n:
        # (batch, m, k) @ (k, n) with the batch rows stacked in memory: one GEMM of
        # batch*m rows instead of a loop of small ones
        m, batch_dims, batch_strides = batch_dims[0] * k.m, [], [[], [], []]
    names = [f"b{i}" for i in range(len(batch_dims))]
    work = f"(double)({m.c()}) * ({k.n.c()}) * ({k.k.c()})"
    batch = " * ".join(f"(int64_t)({d.c()})" for d in batch_dims) or "1"
    return {
        "parallel": f"sg_gemm_by_batch({batch}, {work})",
        "loops": [Loop(n, d.c()) for n, d in zip(names, batch_dims)],
        "a": f"{k.a.buffer.name} + {index_expr(k.a.offset, batch_strides[0], names)}",
        "b": f"{k.b.buffer.name} + {index_expr(k.b.offset, batch_strides[1], names)}",
        "c": f"{k.c.buffer.name} + {index_expr(k.c.offset, batch_strides[2], names)}",
        "ta": int(k.trans_a), "tb": int(k.trans_b), "lda": k.lda.c(), "ldb": k.ldb.c(),
        "ldc": k.n.c(), "m": m.c(), "n": k.n.c(), "k": k.k.c(),
        "fn": "sg_gemm_f32" if k.c.buffer.dtype.itemsize == 4 else "sg_gemm_f64",
    }


# ---------------------------------------------------------------------- GEMM epilogues
def epilogue_plan(loop: LoopKernel) -> LoopPlan | None:
    """The loop's loads and stores indexed by the product's row and column (`sg_row`,
    `sg_col`), or None where an access does not walk the leading dims as one run of rows."""
    views = [load.view for load in loop.loads] + [view for view, _ in loop.stores]
    if len(loop.shape) < 2:
        return None
    rows, row_strides = collapse(list(loop.shape[:-1]), [list(v.strides[:-1]) for v in views])
    if len(rows) > 1:
        return None

    def index(view, j):
        row_stride = row_strides[j][0] if rows else Poly.const(0)
        return index_expr(view.offset, [row_stride, view.strides[-1]], ["sg_row", "sg_col"])

    plan = LoopPlan()
    plan.loads = [(load.view.buffer.ctype, load.var, load.view.buffer.name, index(load.view, j))
                  for j, load in enumerate(loop.loads)]
    plan.stores = [(view.buffer.ctype, view.buffer.name, index(view, len(loop.loads) + j), var)
                   for j, (view, var) in enumerate(loop.stores)]
    return plan


def fusable_epilogue(gemm: GemmKernel, loop) -> bool:
    """Whether the element-wise loop right after a GEMM can run on each block of the product
    as soon as it is computed: it maps over exactly the product's elements, reads the product
    only at the element being stored, and writes nothing the GEMM reads (other blocks are still
    reading A and B)."""
    if gemm_plan(gemm)["loops"] or not isinstance(loop, LoopKernel) or loop.reduce:
        return False
    c = gemm.c
    if not (c.offset.is_zero() and c.is_contiguous() and tuple(loop.shape) == tuple(c.shape)
            and epilogue_plan(loop) is not None):
        return False
    if any(load.view.buffer is c.buffer and (load.view.offset != c.offset or
                                             tuple(load.view.strides) != tuple(c.strides))
           for load in loop.loads):
        return False
    operands = (gemm.a.buffer, gemm.b.buffer)
    # neither the same buffer nor one sharing their workspace memory (liveness lets a slot pass
    # on right after the GEMM, which is where the loop was)
    return not any(same_memory(out, op) for out in loop.writes for op in operands)


def epilogues(schedule) -> dict:
    """{index of a loop kernel: index of the GEMM that runs it} (needs the workspace slots
    planned)."""
    kernels = schedule.kernels
    return {i + 1: i for i, k in enumerate(kernels[:-1])
            if isinstance(k, GemmKernel) and fusable_epilogue(k, kernels[i + 1])}


def row_groups_of(schedule) -> dict:
    """{index of a row group's first kernel: the group's RowForms} (codegen/rows.py); GEMM
    epilogues and their GEMMs take part in none."""
    from .rows import row_groups
    fused = epilogues(schedule)
    return {schedule.kernels.index(group[0].kernel): group
            for group in row_groups(schedule.kernels, set(fused) | set(fused.values()))}


def merged_buffers(*kernels) -> list:
    """kernel_buffers of kernels run as one: each buffer once, written if any writes it."""
    written, order = {}, []
    for buf, w in [pair for kernel in kernels for pair in kernel_buffers(kernel)]:
        if id(buf) not in written:
            order.append(buf)
        written[id(buf)] = written.get(id(buf), False) or w
    return [(b, written[id(b)]) for b in order]


# ---------------------------------------------------------------------- the source
def render(schedule, slots, n_dims: int, check_finite=False, profile=False) -> str:
    """The step's C source; with `profile`, sg_run also sums the seconds of each launch and
    sg_profile_take(double *) hands them over (in launch order: the kernels that run in no
    other kernel's launch)."""
    kernels = []
    fused = epilogues(schedule)
    groups = row_groups_of(schedule)
    in_group = {id(f.kernel) for g in groups.values() for f in g[1:]}
    for index, kernel in enumerate(schedule.kernels):
        if index in fused or id(kernel) in in_group:
            continue
        entry = {"k": kernel, "name": kernel.name, "comment": kernel.comment(schedule.ids),
                 "buffers": kernel_buffers(kernel), "code": index + 1,
                 "fails": bool(kernel.error)}
        loop_writes = set()
        if index in groups:
            from .rows import group_entry
            entry = group_entry(groups[index], schedule.ids, index)
            # each member's outputs are charged to the member that computes them
            code_of = {id(b): schedule.kernels.index(f.kernel) + 1
                       for f in groups[index] for b in f.kernel.writes}
            entry["checks"] = [(b, b.size.c(), code_of[id(b)]) for b, written in
                               entry["buffers"] if written and b.dtype.kind == "f"] \
                if check_finite else []
            kernels.append(entry)
            continue
        if index + 1 in fused:
            loop = schedule.kernels[index + 1]
            entry.update(kind="gemm_epilogue", plan=gemm_plan(kernel), loop=loop,
                         loop_plan=epilogue_plan(loop), fails=True,
                         loop_comment=loop.comment(schedule.ids),
                         buffers=merged_buffers(kernel, loop))
            entry["comment"] += "; then " + entry["loop_comment"]
            loop_writes = {id(b) for b in loop.writes}
        elif isinstance(kernel, LoopKernel):
            entry["kind"] = "loop"
            entry["shifts"] = {name: shift.c() for name, shift in pointer_shifts(kernel).items()}
            entry["plan"] = plan_loop(kernel, entry["shifts"])
        elif isinstance(kernel, GemmKernel):
            entry["kind"] = "gemm"
            entry["plan"] = gemm_plan(kernel)
            entry["fails"] = True
        else:
            entry["kind"] = "special"
            entry["template"] = kernel.template
        # a fused epilogue's outputs are charged to the loop kernel that computes them
        entry["checks"] = [(b, b.size.c(), index + 2 if id(b) in loop_writes else index + 1)
                           for b, written in entry["buffers"]
                           if written and b.dtype.kind == "f"] if check_finite else []
        kernels.append(entry)
    dims = [f"d{i}" for i in range(n_dims)]
    define_once(kernels, environment().get_template("c/kernel.c.j2").module.definition, dims)
    template = environment().get_template("c/step.c.j2")
    return template.render(
        kernels=kernels, n_kernels=len(schedule.kernels), dims=dims,
        args=schedule.args, consts=[b for b in schedule.buffers if b.kind == "const"],
        slots=[(i, slot, slot_sizes_c(slot)) for i, slot in enumerate(slots)],
        align=ALIGN, check_finite=check_finite, profile=profile, uses_blas=any(
            isinstance(k, GemmKernel) for k in schedule.kernels))


_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def define_once(entries, definition, dims, passed=lambda buf: True):
    """Sets each kernel entry's `definition` (its code), or its `same_as`: the name of an
    earlier kernel whose code is this one's up to the kernel's own name and the names of the
    buffers `passed` to it (a stack of identical layers, an unrolled recurrence).  The compiler's
    time follows the functions it compiles, so N identical blocks compile about as fast as one."""
    seen = {}
    for e in entries:
        text = str(definition(e, dims))
        buffers = [b.name for b, _ in e["buffers"] if passed(b)]
        position = {name: f"@{i}" for i, name in enumerate(buffers)}
        # the kernel's name also starts the names derived from it (launch_k3_..., k3_..._epilogue)
        key = re.sub(r"(?<![A-Za-z0-9])" + re.escape(e["name"]), "@k", _COMMENT.sub("", text))
        if buffers:
            pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in buffers) + r")\b")
            key = pattern.sub(lambda m: position[m.group(1)], key)
        e["same_as"] = seen.setdefault(key, e["name"])
        if e["same_as"] == e["name"]:
            e["same_as"], e["definition"] = None, text


def const_values(buf: Buffer) -> str:
    from .spelling import literal_text
    return ", ".join(literal_text(v, buf.dtype) for v in buf.data.reshape(-1))
