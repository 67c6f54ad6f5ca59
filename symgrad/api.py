"""The user-facing functions: numpy names, numpy broadcasting, numpy dtype promotion.

Where symgrad differs from numpy's promotion: a Python scalar takes the tensor's dtype (as in
numpy 2), except that a Python float meeting an integer or bool tensor gives float32 (symgrad's
default float) rather than float64; element-wise float functions of bool tensors give float32.
"""
from __future__ import annotations

import numbers
import operator
from collections import Counter

import numpy as np

from .graph import (DTYPES, SharedValue, ShapeError, Sym, Tensor, as_dtype,
                    convert_values, dims_equal, proper_bools, is_float, named_sym, resolve_dim,
                    shape_str, sym_product, unify_dims, user_site)
from .ops import apply
from .ops.shape import split_dims, sym_by_id

FLOAT32, FLOAT64, INT64, BOOL = DTYPES["float32"], DTYPES["float64"], DTYPES["int64"], DTYPES["bool"]


# ---------------------------------------------------------------------------- sources
def placeholder(name: str, shape, dtype="float32") -> Tensor:
    """An input given per call.  A dim is an int, None (its own symbolic dim) or a string (a
    symbolic dim shared by every placeholder that names it)."""
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"placeholder {name!r}: shape must be a tuple of dims, got {shape!r} "
                        f"(for one axis write ({shape!r},))" + user_site())
    dims = []
    for i, d in enumerate(shape):
        if d is None:
            dims.append(Sym(f"{name}.shape[{i}]"))
        elif isinstance(d, str):
            dims.append(named_sym(d))
        elif isinstance(d, numbers.Integral) and d >= 0:
            dims.append(int(d))
        else:
            raise ShapeError(f"placeholder {name!r}: dim {d!r} must be a non-negative int, None "
                             "or a name" + user_site())
    return Tensor("placeholder", (), (("name", name),), tuple(dims), as_dtype(dtype), name=name)


def constant(value, dtype=None) -> Tensor:
    array = np.array(value, dtype=None if dtype is None else as_dtype(dtype))
    if dtype is None:
        if array.dtype.kind == "f":  # float16 as float32; a big-endian or long double as float64
            array = convert_values(array, FLOAT64 if array.dtype.itemsize >= 8 else FLOAT32,
                                   "constant")
        elif array.dtype.kind in "iu":
            array = convert_values(array, _signed_holder(array.dtype), "constant")
    array = proper_bools(array)
    as_dtype(array.dtype)
    array.setflags(write=False)
    return Tensor("constant", (), (("value", ConstantValue(array)),), array.shape, array.dtype)


def _signed_holder(dtype: np.dtype) -> np.dtype:
    """The supported signed type that numpy's promotion gives an integer array next to an int32
    one: int8 to uint16 promote as int32 (uint8 + int32 is int32), the rest as int64 (a uint64
    value past int64's range is refused, where numpy would go to float64)."""
    return DTYPES["int32"] if dtype.itemsize < 4 or (dtype.itemsize == 4 and dtype.kind == "i") \
        else INT64


class ConstantValue:
    """Wraps a constant's array so the node's attrs stay hashable (CSE compares by content)."""

    def __init__(self, array: np.ndarray):
        self.array = array
        self._key = (array.dtype.str, array.shape, array.tobytes())

    def __hash__(self):
        return hash(self._key)

    def __eq__(self, other):
        return isinstance(other, ConstantValue) and self._key == other._key

    def __repr__(self):
        return repr(self.array.item()) if self.array.size == 1 else f"<{self.array.size} values>"

    def item(self):
        return self.array.item()

    @property
    def size(self):
        return self.array.size


def shared(value, name=None, dtype=None) -> Tensor:
    """A tensor whose value persists across calls and that compiled functions update in place."""
    what = f"shared {name}" if name else "shared"
    if dtype is None:
        found = convert_values(value, None, what).dtype  # what numpy makes of it
        # Python floats default to float32, like placeholders
        python_floats = found == FLOAT64 and not isinstance(value, (np.ndarray, np.generic))
        dtype = FLOAT32 if python_floats else found
    # the same conversion rules as set_value: no float truncated to int, no int wrapped
    array = np.array(convert_values(value, as_dtype(dtype), what), order="C")
    # np.array(order="C") is already a C-contiguous copy; np.ascontiguousarray would turn a 0-d
    # value into shape (1,)
    storage = SharedValue(array)
    return Tensor("shared", (), (("storage", storage),), array.shape, array.dtype, name=name)


def get_value(self: Tensor) -> np.ndarray:
    """A copy of a shared tensor's current value."""
    return _storage(self).array.copy()


def set_value(self: Tensor, value):
    """Overwrite a shared tensor's value in place (its shape and dtype are fixed by the graph)."""
    storage = _storage(self)  # its shape and dtype (reading them fetches no device value)
    what = f"set_value of {self.name or 'shared'}"
    value = convert_values(value, storage.dtype, what)
    if value.shape != storage.shape:
        raise ShapeError(f"{what}: expected shape {storage.shape}, got {value.shape}")
    storage.overwrite(value)


def _storage(t: Tensor) -> SharedValue:
    if t.op != "shared":
        raise TypeError(f"only shared tensors have a value; this one is a {t.op}")
    return t.attr["storage"]


# ---------------------------------------------------------------------------- promotion
def _scalar_dtype(value, tensor_dtype):
    if isinstance(value, (bool, np.bool_)):
        return tensor_dtype
    if isinstance(value, numbers.Integral):
        return INT64 if tensor_dtype == BOOL else tensor_dtype
    if isinstance(value, numbers.Real):
        return tensor_dtype if is_float(tensor_dtype) else FLOAT32
    raise TypeError(f"cannot use {type(value).__name__} as a tensor operand")


def _is_python_scalar(v):
    return isinstance(v, (numbers.Number, np.bool_)) and not isinstance(v, (np.ndarray, np.generic))


def promote(*operands):
    """Tensors of one dtype from a mix of tensors, numpy arrays and Python scalars."""
    typed = [o if isinstance(o, Tensor) else constant(o) for o in operands
             if not _is_python_scalar(o)]
    if not typed:
        typed = [constant(operands[0])]
    dtype = as_dtype(np.result_type(*[t.dtype for t in typed]))
    for o in operands:
        if _is_python_scalar(o):
            scalar = _scalar_dtype(o, dtype)
            # a Python float meeting an integer/bool tensor gives float32, not numpy's float64
            dtype = scalar if is_float(scalar) and not is_float(dtype) else \
                as_dtype(np.result_type(dtype, scalar))
    out = []
    for o in operands:
        t = constant(o, dtype) if _is_python_scalar(o) else (
            o if isinstance(o, Tensor) else constant(o))
        out.append(cast(t, dtype))
    return out


def as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else constant(x)


def cast(x, dtype) -> Tensor:
    x, dtype = as_tensor(x), as_dtype(dtype)
    return x if x.dtype == dtype else apply("cast", x, dtype=dtype.name)


def _float_operand(x) -> Tensor:
    x = as_tensor(x)
    if is_float(x.dtype):
        return x
    return cast(x, FLOAT32 if x.dtype == BOOL else FLOAT64)


# ---------------------------------------------------------------------------- element-wise
def _unary(op_name, float_only=True):
    def fn(x):
        return apply(op_name, _float_operand(x) if float_only else as_tensor(x))
    fn.__name__ = op_name
    fn.__doc__ = f"Element-wise {op_name}."
    return fn


exp, log, log1p, expm1, sqrt = (_unary(n) for n in ("exp", "log", "log1p", "expm1", "sqrt"))
tanh, sin, cos, sigmoid, relu, softplus = (_unary(n) for n in
                                           ("tanh", "sin", "cos", "sigmoid", "relu", "softplus"))
reciprocal = _unary("reciprocal")
negative, sign, square, absolute = (_unary(n, float_only=False)
                                    for n in ("neg", "sign", "square", "abs"))
abs = absolute  # noqa: A001  (numpy's name)


def logical_not(x):
    return apply("logical_not", cast(x, BOOL))


def _fits(value: int, dtype) -> bool:
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


_PYTHON_COMPARES = {"less": operator.lt, "less_equal": operator.le, "greater": operator.gt,
                    "greater_equal": operator.ge, "equal": operator.eq, "not_equal": operator.ne}


def _python_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, (bool, np.generic))


def _compare_beyond_int64(op_name, a, b):
    """An integer tensor against a Python int past int64's range: every element lies on one
    side of it, so the answer is the same everywhere (numpy 2 gives it exactly)."""
    for t, o, t_first in ((a, b, True), (b, a, False)):
        if isinstance(t, Tensor) and t.dtype.kind in "iu" and _python_int(o) and \
                not _fits(o, INT64):
            side = _PYTHON_COMPARES[op_name](0, o) if t_first else \
                _PYTHON_COMPARES[op_name](o, 0)
            return broadcast_to(constant(side), t.shape)  # no need to read t
    return None


def _binary(op_name, float_only=False, compares=False):
    def fn(a, b):
        if compares:  # numpy 2 compares an integer tensor with any Python int exactly
            decided = _compare_beyond_int64(op_name, a, b)
            if decided is not None:
                return decided
            a, b = (cast(t, INT64) if isinstance(t, Tensor) and t.dtype.kind in "iu" and
                    _python_int(o) and not _fits(o, t.dtype) else t
                    for t, o in ((a, b), (b, a)))
        try:
            a, b = promote(a, b)
        except OverflowError as exc:  # numpy's own words name no op
            big = next((o for o in (a, b) if _python_int(o)), None)
            hint = "" if big is None else "; cast the tensor first (.astype('int64'))" \
                if _fits(big, INT64) else \
                "; it is beyond int64 too: compute in float64 (.astype('float64'), float(value))"
            raise OverflowError(f"{op_name}: {exc}{hint}" + user_site()) from None
        if float_only and not is_float(a.dtype):
            a, b = _float_operand(a), _float_operand(b)
        return apply(op_name, a, b)
    fn.__name__ = op_name
    fn.__doc__ = f"Element-wise {op_name} with numpy broadcasting."
    return fn


add, subtract, multiply, maximum, minimum = (_binary(n) for n in
                                             ("add", "sub", "mul", "maximum", "minimum"))
divide = _binary("div", float_only=True)
less, less_equal, greater, greater_equal, equal, not_equal = (
    _binary(n, compares=True)
    for n in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal"))


def _integer_or_float(op_name):
    def fn(a, b):
        a, b = promote(a, b)
        if a.dtype == BOOL:  # numpy divides bools as integers
            a, b = cast(a, "int64"), cast(b, "int64")
        return apply(op_name, a, b)
    fn.__name__ = op_name
    fn.__doc__ = f"numpy's {op_name}, element-wise with broadcasting (ints stay ints)."
    return fn


floor_divide, remainder = _integer_or_float("floor_divide"), _integer_or_float("remainder")
mod = remainder


def logical_and(a, b):
    return apply("logical_and", cast(a, BOOL), cast(b, BOOL))


def logical_or(a, b):
    return apply("logical_or", cast(a, BOOL), cast(b, BOOL))


def power(a, b):
    if _is_python_scalar(b) and b == 2 and (isinstance(b, numbers.Integral) or
                                            is_float(as_tensor(a).dtype)):
        return square(a)
    if isinstance(a, Tensor) and is_float(a.dtype) and _is_python_scalar(b) and \
            not isinstance(b, bool) and b in (3, 4):
        # x*x*x, as torch does: pow(x, 3.0f) runs 13x slower here (glibc's powf takes its slow
        # path for a negative base, one element at a time); the gradient 3x^2 follows
        return _integer_power(a, int(b))
    if isinstance(a, Tensor) and a.dtype.kind in "iu" and isinstance(b, numbers.Integral) \
            and not isinstance(b, bool):
        if isinstance(b, np.integer):  # a typed scalar: int32 ** np.int64(20) is int64
            a = cast(a, as_dtype(np.result_type(a.dtype, b.dtype)))
        return _integer_power(a, int(b))
    a, b = promote(a, b)
    return apply("pow", _float_operand(a), _float_operand(b))


def _integer_power(a: Tensor, exponent: int) -> Tensor:
    """An integer tensor to a Python int power stays an integer (as in numpy): square and
    multiply, wrapping on overflow as numpy's integer power does."""
    if exponent < 0:
        raise ValueError(f"pow: integers to negative integer powers are not allowed "
                         f"({a.dtype.name} ** {exponent}), as in numpy; use a float base")
    result, base = None, a
    while exponent:
        if exponent & 1:
            result = base if result is None else result * base
        exponent >>= 1
        if exponent:
            base = base * base
    return ones_like(a) if result is None else result


def where(cond, a, b):
    a, b = promote(a, b)
    return apply("where", cast(cond, BOOL), a, b)


def clip(x, a_min=None, a_max=None):
    if a_min is not None:
        x = maximum(x, a_min)
    if a_max is not None:
        x = minimum(x, a_max)
    return x


# ---------------------------------------------------------------------------- reductions
def _axis(axis, ndim: int, op: str, shape) -> int:
    """One axis of `ndim` (negative counts from the end), checked as numpy does."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{op + ': ' if op else ''}axis must be an int, got {axis!r}"
                        + user_site())
    if not -ndim <= int(axis) < ndim:
        raise ShapeError(f"{op + ': ' if op else ''}axis {axis} is out of range for a tensor of "
                         f"shape {shape_str(shape)}" + user_site())
    return int(axis) % ndim


def _axes(x: Tensor, axis, op: str = "") -> tuple:
    if axis is None:
        return tuple(range(x.ndim))
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = [_axis(a, x.ndim, op, x.shape) for a in axes]
    if len(set(out)) != len(out):
        raise ShapeError(f"{op + ': ' if op else ''}repeated axis in {axis!r}" + user_site())
    return tuple(sorted(out))


def _reduction(op_name):
    def fn(x, axis=None, keepdims=False):
        x = as_tensor(x)
        if op_name in ("mean", "logsumexp"):
            x = _float_operand(x)
        return apply(op_name, x, axes=_axes(x, axis, op_name), keepdims=bool(keepdims))
    fn.__name__ = op_name
    fn.__doc__ = f"{op_name} over `axis` (int, tuple or None for all), numpy semantics."
    return fn


sum, mean, max, min, logsumexp = (_reduction(n) for n in  # noqa: A001
                                  ("sum", "mean", "max", "min", "logsumexp"))
amax, amin = max, min


def argmax(x, axis=None, keepdims=False):
    x = as_tensor(x)
    if axis is None:  # the index into the flattened array; keepdims keeps every axis as 1
        flat = apply("argmax", reshape(x, (-1,)), axis=0, keepdims=False)
        return reshape(flat, (1,) * x.ndim) if keepdims else flat
    return apply("argmax", x, axis=_axis(axis, x.ndim, "argmax", x.shape), keepdims=bool(keepdims))


def size_of(x, axes, dtype="float32") -> Tensor:
    """Number of elements of x over axes, as a scalar (symbolic dims resolve at call time)."""
    dims = [resolve_dim(x.shape[a]) for a in axes]
    if all(isinstance(d, int) for d in dims):
        return constant(np.prod(dims, dtype=np.int64), dtype)
    return apply("size_of", dims=tuple(dims), dtype=as_dtype(dtype).name)


# ---------------------------------------------------------------------------- shapes
def _shape_arg(op: str, shape, minus_one: bool = False) -> tuple:
    """A shape argument as ints and symbolic dims, refused where numpy refuses it: a float dim
    (2.5 once became 2 silently) or a negative one (it sized buffers no kernel wrote)."""
    if isinstance(shape, (numbers.Integral, Sym)):
        shape = (shape,)
    if isinstance(shape, np.ndarray) and shape.ndim == 1:
        shape = shape.tolist()
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{op}: shape must be an int or a tuple of ints, got {shape!r}"
                        + user_site())
    dims = []
    for d in shape:
        if isinstance(d, Sym):
            dims.append(resolve_dim(d))
        elif isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Integral):
            raise TypeError(f"{op}: dims must be ints, got {d!r} in {tuple(shape)}" + user_site())
        elif d < 0 and not (minus_one and d == -1):
            raise ShapeError(f"{op}: dim {d} in {tuple(shape)} is negative"
                             + (" (only -1, once, is allowed)" if minus_one else "") + user_site())
        else:
            dims.append(int(d))
    return tuple(dims)


def _resolve_reshape(x: Tensor, shape) -> tuple:
    shape = _shape_arg("reshape", shape, minus_one=True)
    if shape.count(-1) > 1:
        raise ShapeError(f"reshape: only one dim may be -1, got {shape}" + user_site())
    if -1 not in shape:
        return shape
    in_static, in_syms = split_dims(x.shape)
    out_static, out_syms = split_dims(tuple(d for d in shape if d != -1))
    missing, extra = Counter(in_syms) - Counter(out_syms), Counter(out_syms) - Counter(in_syms)
    if out_static == 0 or in_static % out_static or extra:
        raise ShapeError(f"reshape: cannot infer -1 when reshaping {shape_str(x.shape)} to "
                         f"{shape}" + user_site())
    # what is left over, symbolic dims included: (n, 5, 8) to (-1, 8) gives 5*n rows
    fill = sym_product(in_static // out_static,
                       *(sym_by_id(x.shape, i) for i in missing.elements()))
    return tuple(fill if d == -1 else d for d in shape)


def reshape(x, shape) -> Tensor:
    x = as_tensor(x)
    shape = _resolve_reshape(x, shape)
    if len(shape) == x.ndim and all(a is b or a == b for a, b in zip(shape, x.shape)):
        return x
    return apply("reshape", x, shape=shape)


def transpose(x, axes=None) -> Tensor:
    x = as_tensor(x)
    if axes is None:
        axes = tuple(reversed(range(x.ndim)))
    else:
        given = tuple(axes)
        axes = tuple(_axis(a, x.ndim, "transpose", x.shape) for a in given)
        if sorted(axes) != list(range(x.ndim)):
            raise ShapeError(f"transpose: axes {given} are not a permutation of the "
                             f"{x.ndim} axes of shape {shape_str(x.shape)}" + user_site())
    if axes == tuple(range(x.ndim)):
        return x
    return apply("transpose", x, axes=axes)


def broadcast_to(x, shape) -> Tensor:
    x = as_tensor(x)
    shape = _shape_arg("broadcast_to", shape)
    if len(shape) == x.ndim and all(a is b or a == b for a, b in zip(shape, x.shape)):
        return x
    return apply("broadcast_to", x, shape=shape)


def expand_dims(x, axis: int) -> Tensor:
    x = as_tensor(x)
    axis = _axis(axis, x.ndim + 1, "expand_dims", x.shape)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def squeeze(x, axis=None) -> Tensor:
    x = as_tensor(x)
    axes = [i for i, d in enumerate(x.shape) if d == 1] if axis is None else _axes(x, axis, "squeeze")
    for a in axes:
        if x.shape[a] != 1:
            raise ShapeError(f"squeeze: axis {a} of {shape_str(x.shape)} is not 1" + user_site())
    return reshape(x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def _operands(tensors, op: str) -> list:
    tensors = list(tensors)
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor" + user_site())
    return promote(*tensors)


def concatenate(tensors, axis=0) -> Tensor:
    tensors = _operands(tensors, "concatenate")
    if axis is None:  # numpy's: the operands flattened, end to end
        tensors, axis = [reshape(t, (-1,)) for t in tensors], 0
    if len(tensors) == 1:
        return tensors[0]
    first = tensors[0]
    return apply("concatenate", *tensors, axis=_axis(axis, first.ndim, "concatenate", first.shape))


def stack(tensors, axis=0) -> Tensor:
    tensors = _operands(tensors, "stack")
    for t in tensors[1:]:
        if t.ndim != tensors[0].ndim or not all(unify_dims(a, b) is not None
                                                for a, b in zip(t.shape, tensors[0].shape)):
            raise ShapeError("stack: operands must have one shape, got "
                             + ", ".join(shape_str(u.shape) for u in tensors) + user_site())
    axis = _axis(axis, tensors[0].ndim + 1, "stack", tensors[0].shape)
    return concatenate([expand_dims(t, axis) for t in tensors], axis=axis)


def take(x, indices, axis=None) -> Tensor:
    x = as_tensor(x)
    indices = as_tensor(indices)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return apply("take", x, indices, axis=_axis(axis, x.ndim, "take", x.shape))


def arange(start, stop=None, step=None, *, dtype=None) -> Tensor:
    """numpy's `arange([start,] stop[, step])`.  `arange(n)` also takes a symbolic dim, so
    `arange(x.shape[1])` follows a sequence length given per call (int64 unless `dtype` says
    otherwise); with numbers it is a constant, of numpy's dtype for them."""
    if stop is None:
        start, stop = 0, start
    if isinstance(stop, Sym) and isinstance(resolve_dim(stop), Sym):
        if start != 0 or step not in (None, 1):
            raise ValueError(f"arange: a symbolic stop ({stop}) takes start 0 and step 1, got "
                             f"start {start} and step {step}")
        return apply("arange", n=resolve_dim(stop), dtype=as_dtype(dtype or "int64").name)
    stop = resolve_dim(stop)
    for name, v in (("start", start), ("stop", stop), ("step", step)):
        if v is not None and (isinstance(v, (bool, Sym)) or not isinstance(v, numbers.Real)):
            raise TypeError(f"arange: {name} must be a number (or stop a dim), got {v!r}")
    values = np.arange(start, stop, 1 if step is None else step,
                       dtype=None if dtype is None else as_dtype(dtype))
    return constant(values if dtype is not None or values.dtype.kind != "f"
                    else values.astype(np.float64))


def one_hot(labels, depth: int, dtype="float32") -> Tensor:
    if isinstance(depth, (bool, np.bool_)) or not isinstance(depth, numbers.Integral):
        raise TypeError(f"one_hot: depth must be an int, got {depth!r}" + user_site())
    if depth < 0:
        raise ShapeError(f"one_hot: depth {depth} is negative" + user_site())
    return apply("one_hot", as_tensor(labels), depth=depth, dtype=as_dtype(dtype).name)


# ---------------------------------------------------------------------------- linear algebra
def matmul(a, b) -> Tensor:
    a, b = promote(a, b)
    a, b = _float_operand(a), _float_operand(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul: operands must not be scalars (use *)" + user_site())
    inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
    if not dims_equal(a.shape[-1], inner_b) and isinstance(resolve_dim(a.shape[-1]), int) \
            and isinstance(resolve_dim(inner_b), int):
        # report the user's shapes (1-D operands are reshaped to matrices below)
        raise ShapeError(f"matmul: inner dims differ: {shape_str(a.shape)} @ "
                         f"{shape_str(b.shape)} ({a.shape[-1]} vs {inner_b})" + user_site())
    squeeze_a, squeeze_b = a.ndim == 1, b.ndim == 1
    if squeeze_a:
        a = reshape(a, (1,) + a.shape)
    if squeeze_b:
        b = reshape(b, b.shape + (1,))
    out = apply("matmul", a, b)
    if squeeze_a or squeeze_b:
        shape = out.shape[:-2] + (() if squeeze_a else out.shape[-2:-1]) + \
                (() if squeeze_b else out.shape[-1:])
        out = reshape(out, shape)
    return out


def dot(a, b) -> Tensor:
    """numpy.dot for 1-D and 2-D operands (a matrix product)."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim > 2 or b.ndim > 2:
        raise ShapeError("dot: use matmul for operands of rank above 2" + user_site())
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    return matmul(a, b)


def zeros_like(x) -> Tensor:
    x = as_tensor(x)
    return broadcast_to(constant(0, x.dtype), x.shape)


def ones_like(x) -> Tensor:
    x = as_tensor(x)
    return broadcast_to(constant(1, x.dtype), x.shape)


# ---------------------------------------------------------------------------- Tensor methods
from .indexing import getitem  # noqa: E402  (indexing builds on the functions above)
from .losses import (binary_cross_entropy, cross_entropy, log_softmax,  # noqa: E402,F401
                     mse, softmax)  # the losses too (re-exported: `sg.softmax` is api's name)

def _reflected(fn):
    return lambda self, other: fn(other, self)


_METHODS = {
    "__add__": add, "__radd__": _reflected(add), "__sub__": subtract,
    "__rsub__": _reflected(subtract), "__mul__": multiply, "__rmul__": _reflected(multiply),
    "__truediv__": divide, "__rtruediv__": _reflected(divide), "__pow__": power,
    "__floordiv__": floor_divide, "__rfloordiv__": _reflected(floor_divide),
    "__mod__": remainder, "__rmod__": _reflected(remainder),
    "__rpow__": _reflected(power), "__matmul__": matmul, "__rmatmul__": _reflected(matmul),
    "__neg__": negative, "__pos__": lambda self: self, "__abs__": absolute,
    "__invert__": logical_not, "__and__": logical_and, "__or__": logical_or,
    "__lt__": less, "__le__": less_equal, "__gt__": greater, "__ge__": greater_equal,
    "__getitem__": getitem, "sum": sum, "mean": mean, "max": max, "min": min, "argmax": argmax,
    "astype": cast, "get_value": get_value, "set_value": set_value,
    "reshape": lambda self, *shape: reshape(self, shape[0] if len(shape) == 1 else shape),
    "transpose": lambda self, *axes: transpose(self, (axes[0] if len(axes) == 1 and
                                                      not isinstance(axes[0], int) else axes)
                                               or None),
    "T": property(lambda self: transpose(self)),
}
for _name, _fn in _METHODS.items():
    setattr(Tensor, _name, _fn)


__all__ = [
    "placeholder", "constant", "shared", "get_value", "set_value", "as_tensor", "cast", "apply",
    "exp", "log", "log1p", "expm1", "sqrt", "tanh", "sin", "cos", "sigmoid", "relu", "softplus",
    "reciprocal", "negative", "sign", "square", "absolute", "abs", "logical_not", "logical_and",
    "logical_or", "add", "subtract", "multiply", "divide", "floor_divide", "remainder", "mod",
    "maximum", "minimum", "power", "less",
    "less_equal", "greater", "greater_equal", "equal", "not_equal", "where", "clip", "sum",
    "mean", "max", "min", "amax", "amin", "argmax", "logsumexp", "size_of", "reshape",
    "transpose", "broadcast_to", "expand_dims", "squeeze", "concatenate", "stack", "take",
    "one_hot", "arange", "matmul", "dot", "softmax", "log_softmax", "cross_entropy",
    "binary_cross_entropy", "mse", "zeros_like", "ones_like",
]
