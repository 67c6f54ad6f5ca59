"""`sg.function`: compile a graph once, call it on batch after batch.

The Function validates and binds the call's arrays (dtype, rank, static dims, symbolic dims
consistent across inputs), hands them to a backend program, and returns outputs in the structure
they were asked for.  Updates of shared tensors are computed from the old values and applied after
every output (simultaneous semantics).
"""
from __future__ import annotations

import inspect
import os
import threading
import weakref

import numpy as np

from . import api as sg
from . import inspection
from .inspection import Graph, Profile, Report  # noqa: F401  (Function's types)
from .ops.shape import whole_axis
from .graph import (DTYPES, ShapeError, Sym, Tensor, convert_values, dim_name, pinned_dims,
                    plain_dims, proper_bools, resolve_dim, resolve_shape, shape_str,
                    shapes_equal, topo_sort)

BOOL = DTYPES["bool"]

# A child forked while another thread of the parent was inside a step would inherit that
# Function's lock held, by a thread that does not exist in the child: its first call would wait
# forever.  Every live Function gets a fresh lock in the child.
_LIVE_FUNCTIONS: "weakref.WeakSet[Function]" = weakref.WeakSet()


def _fresh_locks_in_child():
    for fn in list(_LIVE_FUNCTIONS):
        fn._running = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh_locks_in_child)


def check_finite_requested(flag: bool) -> bool:
    """`check_finite=True`, or SYMGRAD_CHECK_FINITE set to anything but 0 in the environment."""
    return bool(flag) or os.environ.get("SYMGRAD_CHECK_FINITE", "") not in ("", "0")


class InputError(TypeError, ValueError):
    """A call's argument has the wrong dtype or kind (a TypeError and a ValueError, so either
    `except` clause catches it)."""


class SymSlot(int):
    """An output dim that is the call's value of symbolic dim number `self`."""


def slot_value(d, dims) -> int:
    """The call's value of a dim from `Function._slot_dim`: a number, a SymSlot or a SlotExpr."""
    return d if type(d) is int else dims[d] if type(d) is SymSlot else d.value(dims)


class SlotExpr:
    """A derived dim in terms of the call's dims: `coef` times the values of `parts` (each a
    SymSlot or a SlotExpr), plus `offset`.  5*n, B*T, n - 1 and B*(T - 1) are all of this form."""

    def __init__(self, coef: int, parts: tuple, offset: int = 0):
        self.coef, self.parts, self.offset = coef, parts, offset

    def value(self, dims) -> int:
        v = self.coef
        for p in self.parts:
            v *= slot_value(p, dims)
        return v + self.offset


class InputSpec:
    """What one argument of the call must look like, precomputed for a fast check."""

    def __init__(self, node: Tensor, slot_of: dict, pin_sites: dict, slot_dim):
        self.name = node.name
        self.dtype = node.dtype
        self.ndim = node.ndim
        self.shape = resolve_shape(node.shape)
        self.static = [(axis, d) for axis, d in enumerate(self.shape) if isinstance(d, int)]
        # axis -> why a symbolic dim of this input is a fixed number in this function
        self.pinned = {}
        for axis, d in enumerate(node._shape):
            root = d.find() if isinstance(d, Sym) else None
            if root is None:
                continue
            # a plain dim that stands for a derived one (5*z, z - 1) is fixed through z
            for sym in plain_dims(root) if root.derived else [root]:
                if sym in pin_sites:
                    other = pin_sites[sym]
                    value = next(v for s, v in other.dim_checks if s.find() is sym)
                    self.pinned[axis] = ((f"; it is {dim_name(root)}, and " if root.derived
                                          else "; ")
                                         + f"{other.op}, built at {other.site}, fixes "
                                         f"{sym.name} to {value}")
                    break
        self.symbolic = [(axis, slot_of[d]) for axis, d in enumerate(self.shape) if d in slot_of]
        # dims this input shares with a product (or shift) of other inputs' dims (labels (m,)
        # that met logits reshaped to (5*n, classes)): checked once every plain dim is bound
        self.products = [(axis, slot_dim(d)) for axis, d in enumerate(self.shape)
                         if isinstance(d, Sym) and d not in slot_of]


def _structure(outputs):
    if isinstance(outputs, Tensor):
        return [outputs], lambda values: values[0]
    if isinstance(outputs, (list, tuple)):
        outs = list(outputs)
        for i, o in enumerate(outs):
            if not isinstance(o, Tensor):
                raise TypeError(f"function: outputs[{i}] must be a symgrad tensor, "
                                f"got {type(o).__name__}")
        kind = type(outputs)
        return outs, (lambda values: kind(values)) if kind in (list, tuple) else list
    raise TypeError(f"function: outputs must be a tensor or a list of tensors, "
                    f"got {type(outputs).__name__}")


def _normalize_updates(updates):
    if updates is None:
        return []
    pairs = list(updates.items()) if isinstance(updates, dict) else list(updates)
    out, seen = [], set()
    for i, pair in enumerate(pairs):
        try:
            target, value = pair
        except (TypeError, ValueError):
            raise TypeError(f"updates[{i}] must be a (shared, new_value) pair") from None
        if not isinstance(target, Tensor) or target.op != "shared":
            raise TypeError(f"updates[{i}]: the target must be a shared tensor, "
                            f"got {getattr(target, 'op', type(target).__name__)}")
        if target.id in seen:
            raise ValueError(f"updates[{i}]: shared tensor {target.name or target.id} is "
                             "updated twice")
        seen.add(target.id)
        value = sg.as_tensor(value)
        if not shapes_equal(value.shape, target.shape):
            mismatch = ShapeError(f"updates[{i}]: new value of shape {shape_str(value.shape)} "
                                  f"does not match {target.name or 'shared'} "
                                  f"{shape_str(target.shape)}")
            if value.ndim > target.ndim:
                raise mismatch
            try:
                value = sg.broadcast_to(value, target.shape)
            except ShapeError:
                raise mismatch from None
        if value.dtype != target.dtype:
            if not np.can_cast(value.dtype, target.dtype, "same_kind"):
                raise TypeError(f"updates[{i}]: cannot update {target.dtype.name} shared "
                                f"{target.name or ''} with {value.dtype.name}")
            if target.dtype.kind in "iu" and value.dtype.itemsize > target.dtype.itemsize:
                # rounding a float64 into float32 is expected; wrapping 2**40 to 0 is not
                raise TypeError(f"updates[{i}]: {value.dtype.name} values into {target.dtype.name}"
                                f" shared {target.name or ''} would wrap where they do not fit; "
                                f"cast them with .astype('{target.dtype.name}') if that is meant")
            value = sg.cast(value, target.dtype)
        out.append((target, value))
    return out


class Function:
    def __init__(self, inputs, outputs, updates=None, backend="c", opt_level=2, **options):
        self.inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
        for i, x in enumerate(self.inputs):
            if not isinstance(x, Tensor) or x.op != "placeholder":
                raise TypeError(f"function: inputs[{i}] must be a placeholder, got "
                                f"{getattr(x, 'op', type(x).__name__)}")
        if len({x.id for x in self.inputs}) != len(self.inputs):
            raise ValueError("function: a placeholder appears twice among the inputs")
        if isinstance(opt_level, bool) or opt_level not in (0, 1, 2):
            raise ValueError(f"function: opt_level must be 0, 1 or 2, got {opt_level!r}")
        _check_options(backend, options)
        self.outputs, self._pack = _structure(outputs)
        self.updates = _normalize_updates(updates)
        self._add_default_updates()
        self.user_outputs = list(self.outputs)
        self._pins, pin_sites = _dim_pins(self.outputs + [v for _, v in self.updates])
        with pinned_dims(self._pins):
            self._compile(backend, opt_level, pin_sites, options)

    def _compile(self, backend, opt_level, pin_sites, options):
        from .backends import get_backend

        roots = self.outputs + [v for _, v in self.updates]
        if opt_level >= 1:
            from .passes import optimize
            self.rewrites = []
            roots = optimize(roots, opt_level, log=self.rewrites)
            self.outputs = roots[:len(self.outputs)]
            self.updates = [(t, v) for (t, _), v in zip(self.updates, roots[len(self.outputs):])]
        given = {x.id for x in self.inputs}
        for node in topo_sort(roots):
            if node.op == "placeholder" and node.id not in given:
                raise ValueError(f"function: the outputs depend on placeholder {node.name!r}, "
                                 "which is not among the inputs")
        # one slot per distinct symbolic dim of the inputs
        self.sym_slots: dict[Sym, int] = {}
        for x in self.inputs:
            for d in resolve_shape(x.shape):
                if isinstance(d, Sym) and not d.derived and d not in self.sym_slots:
                    self.sym_slots[d] = len(self.sym_slots)
        self._derived = self._bind_derived()
        self._check_bound(roots)
        self._slice_bounds = self._slices_of_symbolic_dims(roots)
        self._shifted_dims = self._shifted_down_dims(roots)
        self._specs = [InputSpec(x, self.sym_slots, pin_sites, self._slot_dim)
                       for x in self.inputs]
        self._product_inputs = [(i, spec) for i, spec in enumerate(self._specs) if spec.products]
        self._n_dims = len(self.sym_slots)
        self._out_specs = [(node.dtype, tuple(self._slot_dim(d) for d in resolve_shape(node.shape)))
                           for node in self.outputs]
        self._static_out_shapes = None
        self._out_shape_cache: dict[tuple, list] = {}
        if all(type(d) is int for _, spec in self._out_specs for d in spec):
            self._static_out_shapes = [spec for _, spec in self._out_specs]
        self.backend = backend
        self.opt_level = opt_level
        self._program = get_backend(backend).compile(self, **options)
        # One call at a time per Function: a call owns the program's workspace, argument table
        # and recycled outputs while the step runs with the GIL released, so two threads
        # calling at once would read each other's intermediates.
        self._running = threading.Lock()
        _LIVE_FUNCTIONS.add(self)
        self._profiler = None  # the profiling build, made by the first profile()

    def __reduce__(self):
        raise TypeError("a symgrad Function cannot be pickled (it holds a loaded native "
                        "library); build it again in the worker process: the same graph loads "
                        "from the compile cache without compiling")

    def _bind_derived(self) -> list:
        """Slots for the symbolic dims that inputs have only inside products or shifts.  A
        derived dim with one such plain dim, once, gives it: labels of shape (4*n,) alone give
        n = len / 4, and (n - 1,) gives n = len + 1 (the call checks the division and the
        sign); with more (B*T, n*n), the derived dim is bound as a whole.  Returns the
        derivations [(input index, axis, the plain dim's slot, the derived dim)] in binding
        order: the derived dim is linear in that slot."""
        derived = []
        for i, x in enumerate(self.inputs):
            for axis, d in enumerate(resolve_shape(x.shape)):
                if not isinstance(d, Sym) or not d.derived or d in self.sym_slots:
                    continue
                unbound = [f for f in plain_dims(d) if f not in self.sym_slots]
                if not unbound:
                    continue
                if len(unbound) > 1:
                    self.sym_slots[d] = len(self.sym_slots)
                    continue
                self.sym_slots[unbound[0]] = slot = len(self.sym_slots)
                derived.append((i, axis, slot, self._slot_dim(d)))
        return derived

    def _slices_of_symbolic_dims(self, roots) -> list:
        """Slices whose bounds or axis are symbolic (x[1:], x[:-1], x[-3:] of n rows): their
        start <= stop <= size is checked per call, since a graph's shapes are exact (numpy
        would clamp x[-3:] of 2 rows to 2 rows; here that call is refused)."""
        bounds = []
        for node in topo_sort(roots):
            if node.op not in ("slice", "unslice"):
                continue
            full = node.attr["shape"] if node.op == "unslice" else node.inputs[0].shape
            for axis, ((start, stop, step), size) in enumerate(zip(node.attr["index"], full)):
                if whole_axis((start, stop, step)):
                    continue
                parts = (start, size if stop is None else stop, size)
                if any(isinstance(resolve_dim(p), Sym) for p in parts):
                    bounds.append((node, axis, tuple(self._slot_dim(p) for p in parts)))
        return bounds

    def _check_bound(self, roots):
        """Every symbolic dim of the graph must follow from the inputs' (else the step could
        not size its buffers): refused here, the same way for every backend."""
        for node in topo_sort(roots):
            for d in resolve_shape(node.shape):
                if isinstance(d, Sym) and d not in self.sym_slots:
                    try:
                        self._slot_dim(d)
                    except ValueError:
                        raise ValueError(f"function: dim {d} of {node.op} (built at "
                                         f"{node.site}) is not bound by any input") from None

    def _add_default_updates(self):
        """State that advances by itself (a random draw's counter) gets its update unless the
        caller gave one."""
        updated = {t.id for t, _ in self.updates}
        for node in topo_sort(self.outputs + [v for _, v in self.updates]):
            rule = getattr(node.attr.get("storage"), "default_update", None) \
                if node.op == "shared" else None
            if rule is not None and node.id not in updated:
                self.updates.append((node, rule(node)))
                updated.add(node.id)

    @property
    def state(self) -> list:
        """Every shared tensor a call writes: the parameters and optimizer state in `updates`,
        and the counters of random draws, which advance by themselves.  Saving these
        (`sg.save_params(path, fn.state)`) and loading them later resumes training exactly,
        dropout masks included."""
        return [target for target, _ in self.updates]

    # ------------------------------------------------------------------ inspection
    @property
    def graph(self) -> Graph:
        return self._program.graph

    @property
    def source(self) -> str:
        return self._program.source

    @property
    def kernels(self):
        return self._program.kernels

    def report(self, *sizes, **dims) -> "Report":
        """The kernels, the graph nodes each computes, the bytes each moves and the workspace,
        for the symbolic dims given in order (`report(256)`, the batch of a `None` dim) or by
        name (`batch=256`); dims not given count 1.  Text to print."""
        return inspection.report(self, sizes, dims)

    def profile(self, *arrays, repeats=20, warmup=3) -> "Profile":
        """Time each kernel launch of the step on these inputs (C backend): a profiling build of
        the same kernels reads the clock after each launch; the step runs `warmup` + `repeats`
        times and the shared tensors it updates are restored afterwards, so profiling does not
        train.  Returns a Profile (print it for the table)."""
        return inspection.profile(self, arrays, repeats, warmup)

    def to_dot(self) -> str:
        """Graphviz DOT of the optimized graph, each kernel drawn as a cluster of its nodes."""
        return inspection.to_dot(self)

    # ------------------------------------------------------------------ calling
    def bind(self, arrays):
        """The call's arrays, validated (and made C-contiguous), and the symbolic dims' values.
        This is the per-call hot path: plain loops over precomputed specs."""
        specs = self._specs
        if len(arrays) != len(specs):
            names = ", ".join(s.name for s in specs)
            raise TypeError(f"function takes {len(specs)} arguments ({names}), "
                            f"got {len(arrays)}")
        dims = [-1] * self._n_dims
        checked = []
        for spec, a in zip(specs, arrays):
            if type(a) is not np.ndarray:
                a = self._convert(spec, a)
            if a.dtype is not spec.dtype and a.dtype != spec.dtype:
                if a.dtype.newbyteorder("=") != spec.dtype:
                    raise InputError(f"input {spec.name!r}: expected dtype {spec.dtype.name}, "
                                     f"got {a.dtype.name} (convert with "
                                     f".astype(np.{spec.dtype.name}))")
                a = a.astype(spec.dtype)  # the same numbers in the other byte order: a copy
            shape = a.shape
            if len(shape) != spec.ndim:
                raise ShapeError(f"input {spec.name!r}: expected rank {spec.ndim} "
                                 f"{shape_str(spec.shape)}, got shape {shape}")
            for axis, d in spec.static:
                if shape[axis] != d:
                    raise ShapeError(f"input {spec.name!r}: expected shape {shape_str(spec.shape)}, "
                                     f"got {shape} (axis {axis}: {shape[axis]} != {d}"
                                     f"{spec.pinned.get(axis, '')})")
            for axis, slot in spec.symbolic:
                if dims[slot] < 0:
                    dims[slot] = shape[axis]
                elif dims[slot] != shape[axis]:
                    self._raise_dim_mismatch(spec, axis, shape[axis], slot, dims[slot])
            if not a.flags.c_contiguous:
                a = np.ascontiguousarray(a)  # a copy: the caller's array is never touched
            if spec.dtype is BOOL:
                a = proper_bools(a)
            checked.append(a)
        for i, axis, slot, expr in self._derived:
            size = checked[i].shape[axis]
            dims[slot] = 0
            constant = expr.value(dims)
            dims[slot] = 1
            step = expr.value(dims) - constant
            if (size - constant) % step if step else size != constant:
                spec = self._specs[i]
                if not step:  # another dim of the product is 0 in this call
                    form = f"{constant} with the other inputs' sizes"
                elif not constant:
                    form = f"a multiple of {step}"
                else:  # the smallest k that makes the size >= 0
                    form = (f"{step}*k {'-' if constant < 0 else '+'} {abs(constant)} for some "
                            f"k >= {max(0, -(constant // step))}")
                raise ShapeError(f"input {spec.name!r}: axis {axis} has size {size}, but it is "
                                 f"{spec.shape[axis]}: {form}")
            dims[slot] = (size - constant) // step if step else 0
            if dims[slot] < 0:
                spec = self._specs[i]
                raise ShapeError(f"input {spec.name!r}: axis {axis} has size {size}, but it is "
                                 f"{spec.shape[axis]}, at least {constant}")
        for i, spec in self._product_inputs:
            for axis, product in spec.products:
                if checked[i].shape[axis] != product.value(dims):
                    raise ShapeError(f"input {spec.name!r}: axis {axis} has size "
                                     f"{checked[i].shape[axis]}, but it is {spec.shape[axis]} = "
                                     f"{product.value(dims)} from the other inputs")
        if self._slice_bounds:
            self._check_slices(dims)
        if self._shifted_dims:
            self._check_shifted_dims(dims)
        return checked, dims

    def _raise_dim_mismatch(self, spec, axis, size, slot, bound):
        """The symbolic dim of `slot` was bound to `bound` by an earlier axis (of this input or
        an earlier one) and `spec`'s `axis` has `size`: say which axis bound it."""
        sym = list(self.sym_slots)[slot]
        where = "an earlier input"
        for other in self._specs:
            first = next((a for a, s in other.symbolic if s == slot), None)
            if first is not None:
                where = (f"its axis {first}" if other is spec else
                         f"input {other.name!r} (axis {first})")
                break
        raise ShapeError(f"input {spec.name!r}: axis {axis} has size {size}, but symbolic dim "
                         f"{sym} is {bound} from {where}")

    def _shifted_down_dims(self, roots) -> list:
        """Dims that a call can make negative (`n - 3` of `sg.arange(x.shape[0] - 3)`, a
        `broadcast_to` or a draw of that size), each with a node that has it: checked per call,
        since a negative size would size buffers and loops wrong."""
        found = {}
        for node in topo_sort(roots):
            for d in resolve_shape(node.shape):
                if isinstance(d, Sym) and d.base is not None and d.offset < 0 and d not in found:
                    found[d] = node
        return [(d, node, self._slot_dim(d)) for d, node in found.items()]

    def _check_shifted_dims(self, dims):
        for d, node, slot in self._shifted_dims:
            value = slot_value(slot, dims)
            if value < 0:
                raise ShapeError(f"{node.op} (built at {node.site}) has a dim {dim_name(d)} that "
                                 f"is {value} in this call: a size cannot be negative")

    def _check_slices(self, dims):
        for node, axis, parts in self._slice_bounds:
            start, stop, size = (slot_value(p, dims) for p in parts)
            if not 0 <= start <= stop <= size:
                index = node.attr["index"][axis]
                text = f"{index[0]}:{'' if index[1] is None else index[1]}"
                raise ShapeError(f"{node.op} [{text}] along axis {axis} (built at {node.site}) "
                                 f"needs 0 <= {start} <= {stop} <= {size} in this call: the "
                                 f"axis is too short (numpy would clamp the slice; symgrad's "
                                 f"shapes are exact)")

    @staticmethod
    def _convert(spec, value):
        """A call's argument that is not a plain ndarray, as one: a numpy scalar or an ndarray
        subclass keeps its dtype (checked as an array's is); lists and Python numbers become
        the input's dtype where no value changes."""
        if isinstance(value, np.generic):
            return np.asarray(value)
        if isinstance(value, Tensor):
            raise InputError(f"input {spec.name!r}: pass numpy arrays to a compiled function, "
                             "not symbolic tensors")
        if isinstance(value, np.ndarray) and not isinstance(value, np.ma.MaskedArray):
            return value.view(np.ndarray)  # a memmap or matrix: its data
        try:
            return convert_values(value, spec.dtype, f"input {spec.name!r}")
        except (TypeError, OverflowError) as exc:
            raise InputError(str(exc)) from None

    def dims_dict(self, dims) -> dict:
        """{Sym: value} for this call: the inputs' symbolic dims and those the graph fixes."""
        return {**self._pins, **dict(zip(self.sym_slots, dims))}

    def __call__(self, *arrays, out=None):
        checked, dims = self.bind(arrays)
        outs = None
        if out is not None:
            outs = self._check_out(out, dims)
            checked = _apart_from(checked, outs)
        with self._running:
            values = self._program.run(checked, dims, outs)
        if out is not None:  # the caller's own arrays (a memmap stays a memmap), as numpy does
            values = [out] if isinstance(out, np.ndarray) else list(out)
        return self._pack(values)

    def _check_out(self, out, dims):
        """The out= arrays, validated, as plain ndarrays (a subclass such as np.memmap is
        viewed as one: the step writes into its memory)."""
        outs = [out] if isinstance(out, np.ndarray) else list(out)
        outs = [o.view(np.ndarray) if isinstance(o, np.ndarray) and type(o) is not np.ndarray
                else o for o in outs]
        if len(outs) != len(self.outputs):
            raise TypeError(f"out= takes {len(self.outputs)} arrays, got {len(outs)}")
        shapes = self._static_out_shapes
        if shapes is None:  # batch sizes repeat: the shapes per dims are kept (a few)
            shapes = self._out_shape_cache.get(tuple(dims))
            if shapes is None:
                shapes = self.output_shapes(dims)
                if len(self._out_shape_cache) < 64:
                    self._out_shape_cache[tuple(dims)] = shapes
        for i, o in enumerate(outs):
            dtype, shape = self._out_specs[i][0], shapes[i]
            if type(o) is np.ndarray and o.shape == shape and (o.dtype is dtype or
                                                               o.dtype == dtype) \
                    and o.flags.c_contiguous and o.flags.writeable:
                continue
            if type(o) is not np.ndarray:
                problem = f"got {type(o).__name__}"
            else:
                problem = "; ".join(p for p in (
                    f"its shape is {o.shape}" if o.shape != shape else "",
                    f"its dtype is {o.dtype}" if o.dtype != dtype else "",
                    "it is not C-contiguous" if not o.flags.c_contiguous else "",
                    "it is read-only" if not o.flags.writeable else "") if p)
            raise InputError(f"out[{i}]: expected a writable C-contiguous {shape} "
                             f"{dtype.name} array, but {problem}")
        for i, o in enumerate(outs):
            for j in range(i):
                if o.size and outs[j].size and np.may_share_memory(o, outs[j]):
                    raise InputError(f"out[{j}] and out[{i}] share memory: each output needs "
                                     "its own array")
        return outs

    def _slot_dim(self, d):
        """A dim in terms of the call's dims: a number, a SymSlot, or a SlotExpr."""
        d = resolve_dim(d)
        if not isinstance(d, Sym):
            return int(d)
        if d in self.sym_slots:
            return SymSlot(self.sym_slots[d])
        if d.base is not None:
            return SlotExpr(1, (self._slot_dim(d.base),), d.offset)
        if not d.factors:
            raise ValueError(f"function: dim {d} is not bound by any input (no input has "
                             f"{d} as a dim)")
        return SlotExpr(d.coef, tuple(self._slot_dim(f) for f in d.factors))

    def output_shapes(self, dims) -> list:
        return [tuple(slot_value(d, dims) for d in spec)
                for _, spec in self._out_specs]

    def __repr__(self):
        names = ", ".join(x.name for x in self.inputs)
        return f"<symgrad.Function ({names}) -> {len(self.outputs)} outputs, backend={self.backend}>"


def _dim_pins(roots) -> tuple:
    """The symbolic dims this graph fixes to a number ({root Sym: int}, from each node's
    dim_checks), and for each the node that asked ({root Sym: node}); a dim asked to be two
    numbers is an error."""
    pins, sites = {}, {}
    for node in topo_sort(roots):
        for sym, value in node.dim_checks:
            root = resolve_dim(sym)
            if not isinstance(root, Sym):
                continue
            if pins.setdefault(root, value) != value:
                first = sites[root]
                raise ShapeError(f"function: symbolic dim {root.name} must be {pins[root]} for "
                                 f"{first.op} (built at {first.site}) and {value} for {node.op} "
                                 f"(built at {node.site})")
            sites.setdefault(root, node)
    return pins, sites


def _apart_from(arrays, outs) -> list:
    """The inputs, each copied first where it shares memory with an out= array: the step writes
    outputs while it still reads inputs (in another order: x[::-1] + 1 into x), so, as with
    numpy's ufuncs, an input overwritten by an output is read from a copy."""
    apart = []
    for a in arrays:
        if a.size:
            for o in outs:
                if o.size and np.may_share_memory(a, o):
                    a = a.copy()
                    break
        apart.append(a)
    return apart


def _check_options(backend: str, options: dict):
    """Refuse an option the backend does not take, naming the ones it does (its compile()
    would name only itself)."""
    from .backends import get_backend
    parameters = inspect.signature(get_backend(backend).compile).parameters
    known = [n for n, p in parameters.items()
             if n != "fn" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):  # numpy: takes any, ignores
        known += ["profile", "debug"]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise TypeError(f"function: backend {backend!r} has no option {', '.join(unknown)}; "
                        f"its options: {', '.join(known) or 'none'}")


def function(inputs, outputs, updates=None, backend="c", opt_level=2, **options) -> Function:
    """Compile `outputs` (a tensor or a list) of `inputs` (placeholders), with optional
    `updates` [(shared, new_value), ...], for `backend` "c" (default), "cuda" or "numpy"."""
    return Function(inputs, outputs, updates, backend=backend, opt_level=opt_level, **options)


__all__ = ["Function", "function", "Graph", "InputError"]
