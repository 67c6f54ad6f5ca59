"""Render a Schedule as one CUDA translation unit (templates/cuda/*.j2).

The kernel description, the loop planning (collapsed dims, index expressions, the GEMM's
operands and batch loops) and the workspace layout are the C renderer's; this module only adds
the GPU decisions: how each kernel's index space maps onto blocks and threads.
- element-wise loops: one thread per element, grid-stride;
- reductions: a block per output (threads stride over the reduced elements, then a warp-shuffle
  and shared-memory tree), except where each output's reduction is short or must keep numpy's
  order (argmax's first maximum, column sums whose threads read neighbouring columns): a thread
  per output;
- row ops (softmax, losses): a block per row;
- GEMM: the header's tiled kernel.
"""
from __future__ import annotations

from .c import (ALIGN, define_once, environment, epilogues, gemm_plan, kernel_buffers,
                plan_loop, pointer_shifts, slot_sizes_c)
from .kernels import GemmKernel, LoopKernel
from .poly import product

# A reduction this short is one thread's loop: a block of threads would mostly idle.
SHORT_REDUCTION = 32


def _launch_geometry(kernel: LoopKernel, plan) -> str:
    """Which CUDA mapping the loop kernel gets (see the module docstring)."""
    if not kernel.reduce:
        return "map"
    reduced = product(kernel.reduced)
    short = reduced.is_const and reduced.value <= SHORT_REDUCTION
    if kernel.reduce["argmax"] or plan.columns or short:
        return "thread_per_output"
    return "block_per_output"


def _extents(loops) -> str:
    """The product of loop extents, in 64 bits (constant factors alone would multiply as int)."""
    return " * ".join(["(int64_t)1"] + [f"({lp.extent})" for lp in loops])


def _epilogue_entry(entry, loop, later) -> dict:
    """The GEMM entry turned into a GEMM whose store runs `loop` (codegen of the functor in
    templates/cuda/loops.cu.j2): the product arrives as `sg_value`, and is stored as well only
    where something else still reads it."""
    c = entry["k"].c
    keep_c = c.buffer.kind != "work" or any(c.buffer in k.reads for k in later)
    plan = plan_loop(loop)
    loads = [(t, var, "sg_value" if buf == c.buffer.name else f"{buf}[{idx}]")
             for t, var, buf, idx in plan.loads]
    members = [(b, w) for b, w in kernel_buffers(loop) if b is not c.buffer]
    if keep_c:
        members.append((c.buffer, True))
    gemm_inputs = [(b, w) for b, w in entry["buffers"] if b is not c.buffer]
    seen = {id(b) for b, _ in members}
    return dict(entry, kind="gemm_epilogue", loop=loop, loop_plan=plan, loads=loads,
                members=members, keep_c=keep_c, c_type=c.buffer.ctype,
                buffers=members + [(b, w) for b, w in gemm_inputs if id(b) not in seen])


def _finite_checks(entry, index) -> list:
    """(buffer, elements, kernel number) for each float buffer the entry writes; a fused
    epilogue's outputs are charged to the loop kernel that computes them."""
    loop_writes = {id(b) for b in entry["loop"].writes} if entry["kind"] == "gemm_epilogue" \
        else set()
    return [(b, b.size.c(), index + 2 if id(b) in loop_writes else index + 1)
            for b, written in entry["buffers"] if written and b.dtype.kind == "f"]


def render(schedule, slots, n_dims: int, check_finite=False) -> str:
    kernels = []
    fused = epilogues(schedule)
    for index, kernel in enumerate(schedule.kernels):
        if index in fused:
            continue
        entry = {"k": kernel, "name": kernel.name, "comment": kernel.comment(schedule.ids),
                 "buffers": kernel_buffers(kernel), "code": index + 1,
                 "fails": bool(kernel.error)}
        following = schedule.kernels[index + 1:]
        if index + 1 in fused:
            entry.update(plan=gemm_plan(kernel), fails=False)
            entry = _epilogue_entry(entry, following[0], following[1:])
            entry["comment"] += "; " + following[0].comment(schedule.ids)
        elif isinstance(kernel, LoopKernel):
            entry["shifts"] = {name: shift.c() for name, shift in pointer_shifts(kernel).items()}
            plan = plan_loop(kernel, entry["shifts"])
            entry.update(kind=_launch_geometry(kernel, plan), plan=plan,
                         outputs=_extents(plan.outer), reduced=_extents(plan.inner))
        elif isinstance(kernel, GemmKernel):
            entry.update(kind="gemm", plan=gemm_plan(kernel), fails=False)
        else:
            entry.update(kind="special", template=kernel.template)
        entry["checks"] = _finite_checks(entry, index) if check_finite else []
        kernels.append(entry)
    used = {b.name for e in kernels for b, _ in e["buffers"]}
    dims = [f"d{i}" for i in range(n_dims)]
    # a constant table reaches a CUDA kernel as an argument too (its device symbol's address)
    define_once(kernels, environment().get_template("cuda/kernel.cu.j2").module.definition, dims,
                passed=lambda buf: True)
    template = environment().get_template("cuda/step.cu.j2")
    return template.render(
        used=used, n_kernels=len(schedule.kernels), kernels=kernels, dims=dims,
        args=schedule.args, consts=[b for b in schedule.buffers if b.kind == "const"],
        slots=[(i, slot, slot_sizes_c(slot)) for i, slot in enumerate(slots)],
        align=ALIGN, check_finite=check_finite)


def source_for(fn) -> str:
    """The CUDA source of a Function compiled with any backend, without building it (the nvcc
    checks render the test suite's graphs this way)."""
    from ..backends.cuda_backend import CudaProgram
    from .c import plan_workspace
    from .schedule import Schedule
    schedule = Schedule(fn, fn.opt_level, passed_const_size=CudaProgram.passed_const_size)
    slots = plan_workspace(schedule.kernels, schedule.buffers)
    return render(schedule, slots, len(fn.sym_slots))
