"""The C/OpenMP backend: schedule the graph into kernels, render one C file, build it once (disk
cache), and run a whole step with one foreign call per Function call."""
from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import weakref

import numpy as np

from ..codegen import c as c_render
from ..codegen.kernels import GemmKernel, RunError
from ..codegen.schedule import Schedule
from ..errors import KernelError  # noqa: F401  (its home was here; raised by _raise)
from ..function import check_finite_requested
from ..inspection import Graph
from ..graph import SharedValue

RECYCLE_BYTES = 1 << 20  # outputs below this are cheap to allocate: always fresh

CDEF = """
int64_t sg_workspace_size(const int64_t *dims);
int sg_run(void **args, const int64_t *dims, char *workspace);
"""


PROFILE_CDEF = "void sg_profile_take(double *seconds);"


def _references_to_item(holders: list, i: int) -> int:
    return sys.getrefcount(holders[i])


# What the count reads for an item that nothing but its list holds, measured by the same code:
# Pythons differ in the references they count (3.14 borrows some on the stack), so no constant
# is right everywhere, and a count one too low would hand out an array the caller still holds.
_ALONE = _references_to_item([np.empty(0)], 0)


def _only_the_list_holds(holders: list, i: int) -> bool:
    """No reference, and no weak reference (a cache of results), but the list's."""
    return _references_to_item(holders, i) == _ALONE and not weakref.getweakrefcount(holders[i])


class _ForkGuard:
    """libgomp's thread pool does not survive fork(): a child forked after a step ran here (as
    multiprocessing does by default on Linux before Python 3.14) would wait forever for the
    parent's threads at its first parallel loop.  So the forking thread runs its steps on one
    thread in the child (threads the child starts build pools of their own).  libgomp's
    omp_set_num_threads is looked up at the first step, in the parent, so the child only
    calls it."""

    def __init__(self):
        self.set_threads = None
        self.armed = False
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=self._in_child)

    def arm(self):
        self.armed = True
        try:  # the libgomp the steps loaded (RTLD_NOLOAD: no other one)
            gomp = ctypes.CDLL("libgomp.so.1", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
            self.set_threads = gomp.omp_set_num_threads
        except (OSError, AttributeError):
            self.set_threads = None

    def _in_child(self):
        if self.armed and self.set_threads is not None:
            self.set_threads(1)


_fork_guard = _ForkGuard()


class KernelInfo:
    def __init__(self, kernel, ids):
        self.name = kernel.name
        self.ids = ids
        self.nodes = list(kernel.nodes)
        self.kind = type(kernel).__name__.replace("Kernel", "").lower()
        self.runs_in = None  # the kernel whose launch computes this one too (a GEMM epilogue)
        self.runs_how = "store"  # ... in its store (an epilogue) or its "row loop" (a row group)
        seen = {}
        for buf in kernel.reads + kernel.writes:
            seen[id(buf)] = buf
        self._buffers = list(seen.values())

    def bytes_moved(self, dims) -> int:
        """Bytes of the buffers this kernel reads and writes (each counted once)."""
        return sum(b.size.evaluate(dims) * b.dtype.itemsize for b in self._buffers)

    def node_list(self) -> str:
        """The nodes it computes as numbered in the printed graph: "%3 add, %4 relu"."""
        return ", ".join(f"%{self.ids[n.id]} {n.op}" for n in self.nodes)

    def __repr__(self):
        return f"<kernel {self.name}: {self.node_list()}>"


class CompiledProgram:
    """What the compiled backends share: the schedule, the workspace plan, the printed graph,
    the kernels' descriptions, the cache key of the source, and failure reports."""
    language = "c"
    passed_const_size: int | None = 1 << 14  # elements; larger constants are passed in

    @property
    def fn(self):
        return self._fn()

    def __init__(self, fn, check_finite=False, profile=False):
        self._fn = weakref.ref(fn)  # the Function owns its program: no cycle, so `del f` frees it
        self.check_finite = check_finite_requested(check_finite)
        self.profile = profile
        schedule = Schedule(fn, fn.opt_level, check_finite=self.check_finite,
                            passed_const_size=self.passed_const_size)
        self.schedule = schedule
        self.slots = c_render.plan_workspace(schedule.kernels, schedule.buffers)
        self.graph = Graph(schedule.roots)
        self.kernels = [KernelInfo(k, schedule.ids) for k in schedule.kernels]
        for loop, gemm in c_render.epilogues(schedule).items():
            self.kernels[loop].runs_in = self.kernels[gemm].name
        self._errors = [k.error or f"kernel {k.name} failed" for k in schedule.kernels]
        self._storages = [node.attr["storage"] for node in schedule.shared_nodes]
        self._updated = [t.attr["storage"] for t, _ in fn.updates]
        self._out_dtypes = [node.dtype for node in fn.outputs]
        self._layout_cache: dict[tuple, tuple] = {}
        self._source = None

    def render(self) -> str:
        return c_render.render(self.schedule, self.slots, len(self.fn.sym_slots),
                               check_finite=self.check_finite, profile=self.profile)

    @property
    def source(self) -> str:
        """The generated source (rendered on demand: a warm start loads the library without
        it)."""
        if self._source is None:
            self._source = self.render()
        return self._source

    def _graph_key(self) -> str:
        """Everything the generated source depends on: the optimized graph as printed (ops,
        attributes, shapes, dtypes, names, numbering), constant values, the call's layout, the
        options, and the code generator and compiler themselves."""
        from .. import build
        fn, ids = self.fn, self.graph.ids
        h = hashlib.sha256()
        parts = [str(self.graph),
                 repr([(x.name, str(x.shape), x.dtype.name, ids.get(x.id)) for x in fn.inputs]),
                 repr([ids[o.id] for o in fn.outputs]),
                 repr([(t.name, str(t.shape), t.dtype.name, ids[v.id], ids.get(t.id))
                       for t, v in fn.updates]),
                 repr(sorted(fn.sym_slots.values())), str(fn.opt_level), str(self.check_finite),
                 str(self.profile),
                 self.language, build.codegen_fingerprint(), build.compiler_identity(),
                 repr(build.C_FLAGS)]
        for part in parts:
            h.update(part.encode() + b"\0")
        for node in self.graph.nodes:
            if node.op == "constant":
                h.update(node.attr["value"].array.tobytes())
        return h.hexdigest()

    def _layout(self, dims):
        """Output shapes and workspace bytes for these dims (cached: batch sizes repeat)."""
        key = tuple(dims)
        layout = self._layout_cache.get(key)
        if layout is None:
            _, total = c_render.workspace_layout(self.slots, dims)
            layout = (self.fn.output_shapes(dims), total)
            if len(self._layout_cache) < 64:
                self._layout_cache[key] = layout
        return layout

    def workspace_bytes(self, dims) -> int:
        return c_render.workspace_layout(self.slots, dims)[1]

    def _raise(self, status, dims):
        n = len(self._errors)
        if status > n:
            k = self.kernels[status - n - 1]
            raise FloatingPointError(f"check_finite: kernel {k.name} ({k.node_list()}) produced "
                                     "NaN or Inf")
        message = self._errors[status - 1]
        if isinstance(message, RunError):
            message = message.text(self.fn.dims_dict(dims))
        raise KernelError(message)


class CProgram(CompiledProgram):
    language = "c"

    def __init__(self, fn, check_finite=False, profile=False):
        from .. import build
        super().__init__(fn, check_finite, profile)
        for leader, group in c_render.row_groups_of(self.schedule).items():
            for form in group[1:]:
                info = self.kernels[self.schedule.kernels.index(form.kernel)]
                info.runs_in, info.runs_how = self.kernels[leader].name, "row loop"
        schedule = self.schedule
        # with the trampoline, the step is called by address: no cdef to parse (ctypes opens it)
        cdef = None if _trampoline else CDEF + (PROFILE_CDEF if profile else "")
        graph_key = self._graph_key()
        self.library = build.remembered_library(graph_key, cdef)
        if self.library is None:
            uses_blas = any(isinstance(k, GemmKernel) for k in schedule.kernels)
            self.library = build.load_library(self.source, cdef, language=self.language,
                                              link_blas=uses_blas)
            build.remember_library(graph_key, self.library)
        self._n_inputs = len(fn.inputs)
        # the entry point's void *args[]: inputs and outputs are written per call; shared
        # storage never moves (set_value copies in place), so its pointers are set once here
        self._args = np.zeros(max(1, schedule.n_args), np.uintp)
        self._keep = []
        for buf, storage in zip([b for b in schedule.args if b.kind == "shared"],
                                self._storages):
            array = storage.array
            self._keep.append(array)
            self._args[buf.arg] = array.ctypes.data
        for buf in schedule.args:
            if buf.kind == "const_arg":  # read-only, and kept alive with the program
                self._keep.append(buf.data)
                self._args[buf.arg] = buf.data.ctypes.data
        self._args_address = self._args.ctypes.data
        if _trampoline:
            self._run_address = ctypes.cast(self.library.lib.sg_run, ctypes.c_void_p).value
        else:
            self.ffi, self.lib = self.library.ffi, self.library.lib
        self._workspace = np.empty(0, np.uint8)
        self._ws_address = 0
        self._last_outputs = None

    # ------------------------------------------------------------------ per call

    def run(self, arrays, dims, outs=None):
        shapes, total = self._layout(dims)
        if total > self._workspace.size:
            self._workspace = np.empty(total, np.uint8)
            self._ws_address = self._workspace.ctypes.data
        if SharedValue.device_only:  # a CUDA step left newer values on its device
            for storage in self._storages:
                storage.sync_to_host()
        if outs is None:
            outs = self._fresh_outputs(shapes)
        if not _fork_guard.armed:
            _fork_guard.arm()
        if _trampoline is not None:
            status = _trampoline.call(self._run_address, arrays, outs, self._args_address,
                                      dims, self._ws_address)
        else:
            status = self._run_cffi(arrays, dims, outs)
        # even a failed step may have updated some shared tensors in place before it stopped
        for storage in self._updated:
            storage.host_written()
        if status:
            self._raise(status, dims)
        return outs

    def _fresh_outputs(self, shapes):
        """New output arrays, except that a large one the caller has already let go of (no
        reference left but ours) is handed out again: a fresh allocation of that size costs a
        page fault per 4 KiB on first touch, often more than the kernel that fills it."""
        previous, outs = self._last_outputs, []
        for i, (shape, dtype) in enumerate(zip(shapes, self._out_dtypes)):
            if previous and previous[i] is not None and previous[i].shape == shape and \
                    _only_the_list_holds(previous, i):
                outs.append(previous[i])
            else:
                outs.append(np.empty(shape, dtype))
        self._last_outputs = [o if o.nbytes >= RECYCLE_BYTES else None for o in outs]
        return outs

    def take_profile(self) -> list:
        """[(launch name, seconds)] summed over the calls since the last take (a profiling
        build only), in the order the step runs them."""
        names = [k.name for k in self.kernels if k.runs_in is None]  # sg_run's launch order
        seconds = np.zeros(max(1, len(names)), np.float64)
        if _trampoline:
            self.library.lib.sg_profile_take(ctypes.c_void_p(seconds.ctypes.data))
        else:
            self.lib.sg_profile_take(self.ffi.cast("double *", seconds.ctypes.data))
        return list(zip(names, seconds.tolist()))

    def _run_cffi(self, arrays, dims, outs):
        """The same call through cffi (when the trampoline cannot be built)."""
        ffi = self.ffi
        for i, a in enumerate(list(arrays) + list(outs)):
            self._args[i] = a.ctypes.data
        c_dims = ffi.new("int64_t[]", max(1, len(dims)))
        for k, d in enumerate(dims):
            c_dims[k] = d
        return self.lib.sg_run(ffi.cast("void **", self._args_address), c_dims,
                               ffi.cast("char *", self._ws_address))


def _load_trampoline():
    """The CPython call trampoline (csrc/symgrad_call.c), or None where it cannot be built (no
    Python headers): calls then go through cffi, a few microseconds slower."""
    from .. import build
    from ..resources import resource_dir
    try:
        with open(os.path.join(resource_dir("csrc"), "symgrad_call.c")) as f:
            return build.load_extension("_symgrad_call", f.read())
    except (OSError, build.CompileError, ImportError):
        return None


_trampoline = _load_trampoline()


def compile(fn, check_finite=False, profile=False):  # noqa: A001  (the backend interface's name)
    return CProgram(fn, check_finite=check_finite, profile=profile)
