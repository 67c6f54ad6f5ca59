"""Looking inside a compiled Function: its optimized graph (`fn.graph`), the kernels with the
bytes each moves (`fn.report()`), per-launch timings (`fn.profile(...)`) and Graphviz DOT with a
cluster per kernel (`fn.to_dot()`)."""
from __future__ import annotations

import numbers
import time

from .graph import format_graph, pinned_dims, shape_str, topo_sort


class Graph:
    """A graph's outputs and its nodes in order; prints one line per node."""

    def __init__(self, outputs):
        self.outputs = list(outputs)
        self.nodes = topo_sort(self.outputs)
        self.ids = {node.id: i for i, node in enumerate(self.nodes)}

    def label(self, node) -> str:
        """`%k op`, with the number the printed graph and the generated source use."""
        return f"%{self.ids.get(node.id, node.id)} {node.op}"

    def __str__(self):
        return format_graph(self.outputs, self.ids)

    __repr__ = __str__


class Report(str):
    """Function.report()'s text: a str (search it, write it) that shows as the table itself at
    an interactive prompt, as a Profile does, instead of as a quoted one-line literal."""

    def __repr__(self):
        return str(self)


class Profile:
    """Per-launch timings of a step (Function.profile): `rows` are (launch name, seconds per
    call, the graph nodes it computes), in the order the step runs them; `wall` is the whole
    call's seconds (the launches plus the call's own overhead)."""

    def __init__(self, rows, wall, dims):
        self.rows, self.wall, self.dims = rows, wall, dims

    def __str__(self):
        launched = sum(t for _, t, _ in self.rows)
        bound = ", ".join(f"{s}={v}" for s, v in self.dims.items()) or "static shapes"
        count = f"{len(self.rows)} launch{'' if len(self.rows) == 1 else 'es'}"
        lines = [f"{count}, {launched * 1e3:.3f} ms per step in kernels, "
                 f"{self.wall * 1e3:.3f} ms per call ({bound})"]
        for name, t, nodes in sorted(self.rows, key=lambda r: -r[1]):
            share = t / launched if launched else 0.0
            lines.append(f"  {t * 1e3:9.3f} ms {share:6.1%}  {name:36s} {nodes}")
        return "\n".join(lines)

    __repr__ = __str__


def report(fn, sizes: tuple, dims: dict) -> Report:
    """The kernels, the graph nodes each computes, the bytes each moves and the workspace,
    for the symbolic dims given in order (`report(256)`) or by name (`batch=256`; dims not
    given count 1), as text to print."""
    in_order = sorted(fn.sym_slots, key=fn.sym_slots.get)
    if len(sizes) > len(in_order):
        raise TypeError(f"report: {len(sizes)} sizes given, but this function has "
                        f"{len(in_order)} symbolic dim{'' if len(in_order) == 1 else 's'} ("
                        f"{', '.join(s.name for s in in_order) or 'none'})")
    dims = {**{sym.name: size for sym, size in zip(in_order, sizes)}, **dims}
    values = [1] * fn._n_dims
    known = {name for sym in fn.sym_slots for name in (sym.name, str(sym))}
    unknown = sorted(set(dims) - known)
    if unknown:
        names = ", ".join(sorted(known)) or "none"
        raise TypeError(f"report: no symbolic dim named {', '.join(unknown)}; this "
                        f"function's are: {names}")
    for sym, slot in fn.sym_slots.items():
        value = dims.get(sym.name, dims.get(str(sym), 1))
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise ValueError(f"report: {sym.name} must be a size (an int >= 0), got {value!r}")
        values[slot] = int(value)
    bound = ", ".join(f"{s}={values[i]}" for s, i in fn.sym_slots.items()) or "static"
    launches = sum(getattr(k, "runs_in", None) is None for k in fn.kernels)
    fused = f" in {launches} launch{'' if launches == 1 else 'es'}" \
        if launches != len(fn.kernels) else ""
    count = f"{len(fn.kernels)} kernel{'' if len(fn.kernels) == 1 else 's'}"
    lines = [f"{count}{fused}, backend={fn.backend}, opt_level="
             f"{fn.opt_level} ({bound})"]
    total = 0
    for k in fn.kernels:
        moved = k.bytes_moved(values)
        total += moved
        nodes = ", ".join(fn.graph.label(n) for n in k.nodes)
        where = f"  (runs in {k.runs_in}'s {k.runs_how})" if getattr(k, "runs_in", None) \
            else ""
        lines.append(f"  {k.name:40s} {moved:>12,d} B  {nodes}{where}")
    ws = fn._program.workspace_bytes(values) if hasattr(fn._program,
                                                          "workspace_bytes") else 0
    lines.append(f"total moved {total:,d} B; workspace {ws:,d} B")
    return Report("\n".join(lines))

def profile(fn, arrays, repeats, warmup) -> Profile:
    """Time each kernel launch of the step on these inputs (C backend): a profiling build of
    the same kernels reads the clock after each launch; the step runs `warmup` + `repeats`
    times and the shared tensors it updates are restored afterwards, so profiling does not
    train.  Returns a Profile (print it for the table)."""
    if fn.backend != "c":
        raise NotImplementedError(f"profile: the {fn.backend} backend has no per-kernel "
                                  "timing; profile the C backend (backend='c')")
    if int(repeats) < 1 or int(warmup) < 0:
        raise ValueError(f"profile: repeats must be at least 1 and warmup at least 0, got "
                         f"repeats={repeats}, warmup={warmup}")
    repeats, warmup = int(repeats), int(warmup)
    if fn._profiler is None:
        from .backends import get_backend
        with pinned_dims(fn._pins):
            fn._profiler = get_backend("c").compile(fn, profile=True)
    checked, dims = fn.bind(arrays)
    # the lock over the save, the runs and the restore: a training step in another thread
    # between them would be undone by the restore
    with fn._running:
        saved = [(t.attr["storage"], t.attr["storage"].array.copy()) for t, _ in fn.updates]
        try:
            for i in range(warmup + repeats):
                if i == warmup:
                    fn._profiler.take_profile()
                    start = time.perf_counter()
                fn._profiler.run(checked, dims)
            wall = time.perf_counter() - start
            seconds = fn._profiler.take_profile()
        finally:
            for storage, value in saved:
                storage.overwrite(value)
    info = {k.name: k for k in fn._profiler.kernels}
    riders = {}
    for k in fn._profiler.kernels:
        if k.runs_in is not None:
            riders.setdefault(k.runs_in, []).append(k)
    rows = []
    for name, total in seconds:
        kernels = [info[name]] + riders.get(name, [])
        nodes = ", ".join(fn._profiler.graph.label(n) for k in kernels for n in k.nodes)
        rows.append((name, total / repeats, nodes))
    return Profile(rows, wall / repeats, dict(zip(fn.sym_slots, dims)))

def to_dot(fn) -> str:
    """Graphviz DOT of the optimized graph, each kernel drawn as a cluster of its nodes."""
    def quoted(*lines):  # a DOT string: names (and so dims) may hold quotes or backslashes
        text = "\\n".join(line.replace("\\", "\\\\").replace('"', '\\"') for line in lines)
        return f'"{text}"'

    lines = ["digraph symgrad {", "  rankdir=TB; node [shape=box, fontsize=10];"]
    placed = set()
    for i, k in enumerate(fn.kernels):
        lines.append(f'  subgraph cluster_{i} {{ label={quoted(k.name)}; style=rounded; '
                     'color=steelblue;')
        for n in k.nodes:
            placed.add(n.id)
            label = quoted(fn.graph.label(n), f"{shape_str(n.shape)} {n.dtype.name}")
            lines.append(f"    n{n.id} [label={label}];")
        lines.append("  }")
    for n in fn.graph.nodes:
        if n.id not in placed:
            label = quoted(f"{fn.graph.label(n)} {n.name or n.op}", shape_str(n.shape))
            lines.append(f"  n{n.id} [label={label}, style=dashed];")
        for i in n.inputs:
            lines.append(f"  n{i.id} -> n{n.id};")
    lines.append("}")
    return "\n".join(lines)
