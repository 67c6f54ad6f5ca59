"""The op registry the op tests (and any backend's tests) are driven by: plain data.

Each `Case` has
- `id`: a unique name;
- `fn(*tensors)`: builds the graph with public symgrad functions, one tensor per input;
- `inputs(rng, dtype)`: the sample numpy inputs (float inputs in `dtype`; integer/bool inputs in
  their own dtype), away from kinks and ties where the case is gradient-checked;
- `expected(*arrays)`: the value, computed independently with numpy in this file (never with
  symgrad's reference rules), on the same arrays, so its dtype is numpy's result dtype;
- `dtypes`: the dtypes `inputs` is called with for the value tests;
- `gradcheck`: whether to check the first derivative (float64, central differences, API.md
  tolerances) with respect to the inputs `wrt` (None: every float input; the others are baked
  into the graph as constants); `note` says why when a float case is not checked;
- `second_order`: whether to also check the derivative of a function containing `sg.grad`;
- `api`: the public names/operators the case exercises (the coverage test reads it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import numpy as np

import symgrad as sg

F64, F32 = "float64", "float32"
FLOATS = (F64, F32)


@dataclass(frozen=True)
class Case:
    id: str
    fn: Callable[..., Any]
    inputs: Callable[[np.random.Generator, Any], tuple]
    expected: Callable[..., Any]
    dtypes: tuple = FLOATS
    gradcheck: bool = True
    wrt: Optional[tuple] = None
    second_order: bool = False
    api: tuple = ()
    note: str = ""


# ------------------------------------------------------------------------------ input makers
def uniform(rng, dtype, shape, lo=-2.0, hi=2.0):
    return np.asarray(rng.uniform(lo, hi, shape)).astype(dtype)


def positive(rng, dtype, shape, lo=0.5, hi=2.0):
    return uniform(rng, dtype, shape, lo, hi)


def nonzero(rng, dtype, shape, lo=0.25, hi=2.0):
    """|x| in [lo, hi] with a random sign: away from the kink at 0 of abs/relu/sign."""
    mag = rng.uniform(lo, hi, shape)
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return np.asarray(mag * sign).astype(dtype)


def distinct(rng, dtype, shape, spread=2.0):
    """Values at least 2*spread/(n-1) apart, in random order: no ties for max/min/argmax."""
    n = int(np.prod(shape, dtype=np.int64))
    values = np.linspace(-spread, spread, max(n, 1))[:n]
    return rng.permutation(values).reshape(shape).astype(dtype)


def ints(rng, shape, lo, hi, dtype=np.int64):
    return np.asarray(rng.integers(lo, hi, shape)).astype(dtype)


def separated_pair(rng, dtype, shape_a, shape_b):
    """(a, b) on interleaved grids (a in 0.5*Z, b in 0.5*Z + 0.25): |a - b| >= 0.25 everywhere,
    whatever the broadcasting, so maximum/minimum never meet a tie."""
    a = ints(rng, shape_a, -4, 4) * 0.5
    b = ints(rng, shape_b, -4, 4) * 0.5 + 0.25
    return np.asarray(a).astype(dtype), np.asarray(b).astype(dtype)


# ------------------------------------------------------------------------------ independent math
def np_sigmoid(x):
    # 0.5 * (1 + tanh(x / 2)) is exact in form and never overflows
    return 0.5 * (1 + np.tanh(x / 2))


def np_softplus(x):
    return np.logaddexp(0, x)


def np_logsumexp(x, axis=None, keepdims=False):
    if axis is None:
        out = np.logaddexp.reduce(x.reshape(-1), axis=0)
        return np.reshape(out, (1,) * x.ndim) if keepdims else out
    axes = (axis,) if np.isscalar(axis) else tuple(axis)
    out = x
    for a in sorted((a % x.ndim for a in axes), reverse=True):
        out = np.logaddexp.reduce(out, axis=a, keepdims=True)
    return out if keepdims else np.squeeze(out, axis=tuple(a % x.ndim for a in axes))


def np_log_softmax(x, axis=-1):
    return x - np_logsumexp(x, axis=axis, keepdims=True)


def np_softmax(x, axis=-1):
    return np.exp(np_log_softmax(x, axis))


def np_cross_entropy(logits, labels):
    picked = np.take_along_axis(logits, labels[..., None].astype(np.int64), axis=-1)[..., 0]
    return np.mean(np_logsumexp(logits, axis=-1) - picked)


def np_matmul(a, b):
    """numpy.matmul's semantics through einsum (1-D operands promoted, batch dims broadcast)."""
    if a.ndim == 1 and b.ndim == 1:
        return np.einsum("i,i->", a, b)
    if a.ndim == 1:
        return np.einsum("j,...jk->...k", a, b)
    if b.ndim == 1:
        return np.einsum("...ij,j->...i", a, b)
    return np.einsum("...ij,...jk->...ik", a, b)


# ------------------------------------------------------------------------------ case builders
CASES: list[Case] = []


def add(*cases):
    CASES.extend(cases)


SHAPES = ((), (7,), (2, 3, 4))


def shape_id(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def unary_cases(name, sg_fn, np_fn, make, *, shapes=SHAPES, second_order=True, api=None,
                dtypes=FLOATS):
    for shape in shapes:
        add(Case(f"{name}-{shape_id(shape)}", lambda x, f=sg_fn: f(x),
                 lambda rng, dt, s=shape: (make(rng, dt, s),),
                 np_fn, second_order=second_order, api=api or (name,), dtypes=dtypes))


# ---- element-wise unary -------------------------------------------------------------------
unary_cases("exp", sg.exp, np.exp, uniform)
unary_cases("log", sg.log, np.log, lambda r, d, s: positive(r, d, s, 0.3, 3.0))
unary_cases("log1p", sg.log1p, np.log1p, lambda r, d, s: uniform(r, d, s, -0.5, 2.0))
unary_cases("expm1", sg.expm1, np.expm1, uniform)
unary_cases("sqrt", sg.sqrt, np.sqrt, lambda r, d, s: positive(r, d, s, 0.3, 3.0))
unary_cases("abs", sg.abs, np.abs, nonzero)
unary_cases("sign", sg.sign, np.sign, nonzero)
unary_cases("tanh", sg.tanh, np.tanh, uniform)
unary_cases("sin", sg.sin, np.sin, lambda r, d, s: uniform(r, d, s, -3.0, 3.0))
unary_cases("cos", sg.cos, np.cos, lambda r, d, s: uniform(r, d, s, -3.0, 3.0))
unary_cases("square", sg.square, np.square, uniform)
unary_cases("reciprocal", sg.reciprocal, np.reciprocal, nonzero)
unary_cases("sigmoid", sg.sigmoid, np_sigmoid, lambda r, d, s: uniform(r, d, s, -4.0, 4.0))
unary_cases("relu", sg.relu, lambda x: np.where(x > 0, x, np.zeros_like(x)), nonzero)
unary_cases("softplus", sg.softplus, np_softplus, lambda r, d, s: uniform(r, d, s, -4.0, 4.0))
unary_cases("neg", lambda x: -x, np.negative, uniform, api=("unary-",))

# edge values (value tests only where the derivative is undefined or infinite there)
EDGE = np.array([0.0, -0.0, 1.0, -1.0, 1e-10, -1e-10, 30.0, -30.0])
add(
    Case("exp-edge", sg.exp, lambda r, d: (EDGE.astype(d),), np.exp, gradcheck=False,
         api=("exp",), note="exp(30) ~ 1e13 dominates the scalarized f: the differences of "
         "the small elements drown in its rounding (the other exp cases gradcheck)"),
    Case("log1p-tiny", sg.log1p, lambda r, d: (np.array([0.0, 1e-12, -1e-12, 1e-7, 3.0], d),),
         np.log1p, api=("log1p",), note="precision near 0 (log(1 + x) would lose it)"),
    Case("expm1-tiny", sg.expm1, lambda r, d: (np.array([0.0, 1e-12, -1e-12, 1e-7, -3.0], d),),
         np.expm1, api=("expm1",)),
    Case("log-one", sg.log, lambda r, d: (np.array([1.0, 2.0, 0.5], d),), np.log, api=("log",)),
    Case("sqrt-zero", sg.sqrt, lambda r, d: (np.array([0.0, 4.0, 2.25], d),), np.sqrt,
         gradcheck=False, api=("sqrt",), note="the derivative of sqrt is infinite at 0"),
    Case("abs-zero", sg.abs, lambda r, d: (EDGE.astype(d),), np.abs, gradcheck=False,
         api=("abs",), note="kink at 0"),
    Case("sign-zero", sg.sign, lambda r, d: (EDGE.astype(d),), np.sign, gradcheck=False,
         api=("sign",), note="jump at 0"),
    Case("relu-zero", sg.relu, lambda r, d: (EDGE.astype(d),),
         lambda x: np.where(x > 0, x, np.zeros_like(x)), gradcheck=False, api=("relu",),
         note="kink at 0"),
    Case("tanh-large", sg.tanh, lambda r, d: (np.array([-50.0, -20.0, 20.0, 50.0, 0.0], d),),
         np.tanh, api=("tanh",)),
    Case("abs-int", sg.abs, lambda r, d: (np.array([-3, 0, 2, -7], d),), np.abs,
         dtypes=("int64", "int32"), gradcheck=False, api=("abs",)),
    Case("sign-int", sg.sign, lambda r, d: (np.array([-3, 0, 2, -7], d),), np.sign,
         dtypes=("int64", "int32"), gradcheck=False, api=("sign",)),
    Case("square-int", sg.square, lambda r, d: (np.array([-3, 0, 2, -7], d),), np.square,
         dtypes=("int64", "int32"), gradcheck=False, api=("square",)),
    Case("neg-int", lambda x: -x, lambda r, d: (np.array([-3, 0, 2, -7], d),), np.negative,
         dtypes=("int64", "int32"), gradcheck=False, api=("unary-",)),
)

# large logits: finite, and equal to a stable formula.  The gradient is not finite-differenced
# here: f = sum(w * op(x)) is ~1e4, so ulp(f)/eps ~ 2e-6 exceeds atol; test_ops checks these
# gradients against their closed forms instead, and the "-offset" cases gradcheck large logits.
LARGE = np.array([[1e4, -1e4, 0.0, 5e3], [-1e3, -1e3 + 1, -1e3 + 2, -1e3 - 3],
                  [3e3, 3e3, -2e3, 1.0]])
LARGE_NOTE = "f ~ 1e4: finite-difference noise (ulp(f)/eps) exceeds atol; see the closed-form test"
add(
    Case("sigmoid-large", sg.sigmoid, lambda r, d: (LARGE.astype(d),), np_sigmoid,
         gradcheck=False, api=("sigmoid",), note=LARGE_NOTE),
    Case("softplus-large", sg.softplus, lambda r, d: (LARGE.astype(d),), np_softplus,
         gradcheck=False, api=("softplus",), note=LARGE_NOTE),
    Case("softmax-large", sg.softmax, lambda r, d: (LARGE.astype(d),), np_softmax,
         gradcheck=False, api=("softmax",), note=LARGE_NOTE),
    Case("log_softmax-large", sg.log_softmax, lambda r, d: (LARGE.astype(d),), np_log_softmax,
         gradcheck=False, api=("log_softmax",), note=LARGE_NOTE),
    Case("logsumexp-large", lambda x: sg.logsumexp(x, axis=1), lambda r, d: (LARGE.astype(d),),
         lambda x: np_logsumexp(x, axis=1), gradcheck=False, api=("logsumexp",),
         note=LARGE_NOTE),
    Case("logsumexp-large-all", sg.logsumexp, lambda r, d: (LARGE.astype(d),), np_logsumexp,
         gradcheck=False, api=("logsumexp",), note=LARGE_NOTE),
    Case("cross_entropy-large", sg.cross_entropy,
         lambda r, d: (LARGE.astype(d), np.array([1, 0, 3])), np_cross_entropy,
         gradcheck=False, api=("cross_entropy",), note=LARGE_NOTE),
    Case("bce_logits-large", lambda z, t: sg.binary_cross_entropy(logits=z, targets=t),
         lambda r, d: (LARGE.astype(d), (r.random(LARGE.shape) < 0.5).astype(d)),
         lambda z, t: np.mean(np_softplus(z) - z * t), gradcheck=False,
         api=("binary_cross_entropy",), note=LARGE_NOTE),
)
# large but close logits (1e3 + N(0, 1)): the shift-invariant ops have O(1) values there, so
# finite differences are accurate and the gradient is checked at large magnitude too
add(
    Case("softmax-offset", sg.softmax, lambda r, d: (uniform(r, d, (3, 4), 999.0, 1001.0),),
         np_softmax, second_order=True, api=("softmax",)),
    Case("log_softmax-offset", sg.log_softmax,
         lambda r, d: (uniform(r, d, (3, 4), -1001.0, -999.0),), np_log_softmax,
         second_order=True, api=("log_softmax",)),
    Case("cross_entropy-offset", sg.cross_entropy,
         lambda r, d: (uniform(r, d, (3, 4), 999.0, 1001.0), ints(r, (3,), 0, 4)),
         np_cross_entropy, second_order=True, api=("cross_entropy",)),
)

# ---- element-wise binary, broadcasting ------------------------------------------------------
PAIRS = [((2, 3), (2, 3)), ((2, 3), (3,)), ((3, 1), (1, 4)), ((), (2, 3)), ((2, 1, 3), (4, 1))]


def binary_cases(name, sg_fn, np_fn, make_a, make_b, *, second_order=True, api=None,
                 pairs=PAIRS):
    for sa, sb in pairs:
        add(Case(f"{name}-{shape_id(sa)}-{shape_id(sb)}", sg_fn,
                 lambda rng, dt, sa=sa, sb=sb: (make_a(rng, dt, sa), make_b(rng, dt, sb)),
                 np_fn, second_order=second_order, api=api or (name,)))


binary_cases("add", lambda a, b: a + b, np.add, uniform, uniform, api=("+",))
binary_cases("sub", lambda a, b: a - b, np.subtract, uniform, uniform, api=("-",))
binary_cases("mul", lambda a, b: a * b, np.multiply, uniform, uniform, api=("*",))
binary_cases("div", lambda a, b: a / b, np.divide, uniform, nonzero, api=("/",))
binary_cases("pow", lambda a, b: a ** b, np.power, positive, uniform, api=("**",))
for _sa, _sb in PAIRS:
    for _name, _sg, _np in (("maximum", sg.maximum, np.maximum),
                            ("minimum", sg.minimum, np.minimum)):
        add(Case(f"{_name}-{shape_id(_sa)}-{shape_id(_sb)}", _sg,
                 lambda rng, dt, sa=_sa, sb=_sb: separated_pair(rng, dt, sa, sb),
                 _np, second_order=True, api=(_name,)))

# with Python scalars (they take the tensor's dtype) and reflected operators
add(
    Case("add-scalar", lambda x: x + 2.5, lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: x + 2.5, second_order=True, api=("+",)),
    Case("radd-scalar", lambda x: 2.5 + x, lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: 2.5 + x, api=("+",)),
    Case("rsub-scalar", lambda x: 3 - x, lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: 3 - x, api=("-",)),
    Case("mul-scalar", lambda x: x * -1.5, lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: x * -1.5, api=("*",)),
    Case("rtruediv-scalar", lambda x: 2 / x, lambda r, d: (nonzero(r, d, (2, 3)),),
         lambda x: 2 / x, second_order=True, api=("/",)),
    Case("div-scalar", lambda x: x / 4, lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: x / 4, api=("/",)),
    Case("pow-int3", lambda x: x ** 3, lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: x ** 3, second_order=True, api=("**",)),
    Case("pow-2", lambda x: x ** 2, lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: x ** 2, second_order=True, api=("**",)),
    Case("pow-half", lambda x: x ** 0.5, lambda r, d: (positive(r, d, (2, 3)),),
         lambda x: x ** 0.5, second_order=True, api=("**",)),
    Case("pow-neg1", lambda x: x ** -1, lambda r, d: (nonzero(r, d, (2, 3)),),
         lambda x: x ** -1.0, second_order=True, api=("**",)),
    Case("rpow-scalar", lambda x: 2 ** x, lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: 2 ** x, second_order=True, api=("**",)),
    Case("pow-int-int", lambda a, b: a ** b, lambda r, d: (np.array([1, 2, 3, 4], d),
                                                          np.array([0, 1, 2, 3], d)),
         lambda a, b: (a.astype(np.float64) ** b), dtypes=("int64",), gradcheck=False,
         api=("**",)),
    # numpy's floor division and remainder (a = b*q + r, r with b's sign); floor_divide has no
    # gradient, remainder's is (1, -floor(a/b)) between its jumps
    Case("floor_divide", lambda a, b: a // b, lambda r, d: (uniform(r, d, (2, 3), -5.0, 5.0),
                                                            nonzero(r, d, (3,))),
         np.floor_divide, gradcheck=False, api=("floor_divide", "//"),
         note="piecewise constant: no gradient (as in torch)"),
    Case("remainder", lambda a, b: a % b, lambda r, d: (uniform(r, d, (2, 3), -5.0, 5.0),
                                                        nonzero(r, d, (3,))),
         np.remainder, api=("remainder", "mod", "%")),
    Case("floor_divide-int", lambda a, b: a // b,
         lambda r, d: (np.array([[7, -7, 7, -7, 0, 5], [9, -9, 1, -1, 3, -3]], d),
                       np.array([2, 2, -2, -2, 3, 0], d)),  # a zero divisor gives 0, as numpy
         lambda a, b: np.floor_divide(a, np.where(b == 0, 1, b)) * (b != 0),
         dtypes=("int64", "int32"), gradcheck=False, api=("//",)),
    Case("remainder-int", lambda a, b: a % b,
         lambda r, d: (np.array([[7, -7, 7, -7, 0, 5], [9, -9, 1, -1, 3, -3]], d),
                       np.array([2, 2, -2, -2, 3, 0], d)),
         lambda a, b: np.remainder(a, np.where(b == 0, 1, b)) * (b != 0),
         dtypes=("int64", "int32"), gradcheck=False, api=("%",)),
    Case("rfloordiv-scalar", lambda b: 7 // b, lambda r, d: (nonzero(r, d, (2, 3)),),
         lambda b: np.floor_divide(7, b), gradcheck=False, api=("//",),
         note="piecewise constant: no gradient"),
    Case("add-int", lambda a, b: a + b, lambda r, d: (ints(r, (2, 3), -5, 5, d),
                                                      ints(r, (3,), -5, 5, d)),
         np.add, dtypes=("int64", "int32"), gradcheck=False, api=("+",)),
    Case("mul-int", lambda a, b: a * b, lambda r, d: (ints(r, (2, 3), -5, 5, d),
                                                      ints(r, (3,), -5, 5, d)),
         np.multiply, dtypes=("int64", "int32"), gradcheck=False, api=("*",)),
    Case("maximum-int", sg.maximum, lambda r, d: (ints(r, (2, 3), -5, 5, d),
                                                  ints(r, (3,), -5, 5, d)),
         np.maximum, dtypes=("int64", "int32"), gradcheck=False, api=("maximum",)),
    Case("add-mixed-precision", lambda a, b: a + b,
         lambda r, d: (uniform(r, np.float32, (2, 3)), uniform(r, np.float64, (3,))),
         np.add, dtypes=(F64,), api=("+",), note="float32 + float64 promotes to float64"),
)

# where and clip
add(
    Case("where-same", sg.where,
         lambda r, d: (r.random((2, 3)) < 0.5, uniform(r, d, (2, 3)), uniform(r, d, (2, 3))),
         np.where, second_order=True, api=("where",)),
    Case("where-broadcast", sg.where,
         lambda r, d: (np.array([True, False, True]), uniform(r, d, (2, 3)), uniform(r, d, ())),
         np.where, second_order=True, api=("where",)),
    Case("where-cond-tensor", lambda x, y: sg.where(x > 0, x, y * 2),
         lambda r, d: (nonzero(r, d, (2, 3)), uniform(r, d, (2, 3))),
         lambda x, y: np.where(x > 0, x, y * 2), second_order=True, api=("where", ">")),
    Case("where-scalar-branch", lambda c, x: sg.where(c, x, 0.0),
         lambda r, d: (r.random((4,)) < 0.5, uniform(r, d, (4,))),
         lambda c, x: np.where(c, x, np.zeros_like(x)), api=("where",)),
    Case("clip-both", lambda x: sg.clip(x, -0.5, 0.7),
         lambda r, d: (np.array([-2.0, -0.9, -0.3, 0.0, 0.4, 0.65, 0.9, 3.0], d),),
         lambda x: np.clip(x, -0.5, 0.7), second_order=True, api=("clip",)),
    Case("clip-min-only", lambda x: sg.clip(x, a_min=0.1),
         lambda r, d: (np.array([[-1.0, 0.05, 0.2], [0.5, -0.3, 2.0]], d),),
         lambda x: np.maximum(x, 0.1), api=("clip",)),
    Case("clip-max-only", lambda x: sg.clip(x, None, 0.1),
         lambda r, d: (np.array([[-1.0, 0.05, 0.2], [0.5, -0.3, 2.0]], d),),
         lambda x: np.minimum(x, 0.1), api=("clip",)),
)

# comparisons: bool results (ties on purpose: equality must be exact)
_CMP = [("<", lambda a, b: a < b, np.less), ("<=", lambda a, b: a <= b, np.less_equal),
        (">", lambda a, b: a > b, np.greater), (">=", lambda a, b: a >= b, np.greater_equal),
        ("==", lambda a, b: a == b, np.equal), ("!=", lambda a, b: a != b, np.not_equal)]
for _sym, _sg, _np in _CMP:
    add(Case(f"cmp{_sym}-float", _sg,
             lambda r, d: (np.array([[0.0, 1.5, -2.0], [3.0, 3.0, -1.0]], d),
                           np.array([1.5, 1.5, -2.0], d)),
             _np, gradcheck=False, api=(_sym,)),
        Case(f"cmp{_sym}-int-scalar", lambda a, f=_sg: f(a, 2),
             lambda r, d: (np.array([0, 1, 2, 3, 2], d),), lambda a, f=_np: f(a, 2),
             dtypes=("int64", "int32"), gradcheck=False, api=(_sym,)))

# ---- matmul and dot -------------------------------------------------------------------------
MATMUL_SHAPES = [((3, 4), (4, 5)), ((2, 3, 4), (2, 4, 2)), ((2, 1, 3, 2), (3, 2, 2)),
                 ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,)), ((4,), (2, 4, 3)),
                 ((2, 3, 4), (4,)), ((1, 2, 3), (3, 2))]
for _sa, _sb in MATMUL_SHAPES:
    add(Case(f"matmul-{shape_id(_sa)}-{shape_id(_sb)}", sg.matmul,
             lambda r, d, sa=_sa, sb=_sb: (uniform(r, d, sa), uniform(r, d, sb)),
             np_matmul, second_order=True, api=("matmul",)))
add(
    Case("matmul-operator", lambda a, b: a @ b,
         lambda r, d: (uniform(r, d, (2, 3)), uniform(r, d, (3, 4))), np_matmul,
         second_order=True, api=("@",)),
    Case("matmul-rmatmul-array", lambda b: np.arange(6.0).reshape(2, 3) @ b,
         lambda r, d: (uniform(r, d, (3, 2)),),
         lambda b: np_matmul(np.arange(6.0).reshape(2, 3), b.astype(np.float64)), api=("@",),
         note="a numpy array on the left becomes a float64 constant"),
    Case("matmul-xT", lambda a: a @ a.T, lambda r, d: (uniform(r, d, (3, 4)),),
         lambda a: np_matmul(a, a.swapaxes(0, 1)), second_order=True, api=("@", ".T")),
    Case("dot-2d", sg.dot, lambda r, d: (uniform(r, d, (3, 4)), uniform(r, d, (4, 2))),
         np_matmul, second_order=True, api=("dot",)),
    Case("dot-1d", sg.dot, lambda r, d: (uniform(r, d, (5,)), uniform(r, d, (5,))),
         lambda a, b: np.sum(a * b), second_order=True, api=("dot",)),
    Case("dot-2d-1d", sg.dot, lambda r, d: (uniform(r, d, (3, 4)), uniform(r, d, (4,))),
         np_matmul, second_order=True, api=("dot",)),
    Case("dot-scalar", sg.dot, lambda r, d: (uniform(r, d, ()), uniform(r, d, (2, 3))),
         np.multiply, api=("dot",)),
)

# ---- reductions ----------------------------------------------------------------------------
R3 = (2, 3, 4)
AXES = [None, 0, 1, -1, (0, 2), (1, 2), (0, 1, 2)]
for _axis in AXES:
    for _keep in (False, True):
        _sfx = f"{'all' if _axis is None else _axis}{'-keep' if _keep else ''}".replace(" ", "")
        add(Case(f"sum-{_sfx}", lambda x, a=_axis, k=_keep: sg.sum(x, axis=a, keepdims=k),
                 lambda r, d: (uniform(r, d, R3),),
                 lambda x, a=_axis, k=_keep: np.sum(x, axis=a, keepdims=k), api=("sum",)),
            Case(f"mean-{_sfx}", lambda x, a=_axis, k=_keep: sg.mean(x, axis=a, keepdims=k),
                 lambda r, d: (uniform(r, d, R3),),
                 lambda x, a=_axis, k=_keep: np.mean(x, axis=a, keepdims=k), api=("mean",)),
            Case(f"max-{_sfx}", lambda x, a=_axis, k=_keep: sg.max(x, axis=a, keepdims=k),
                 lambda r, d: (distinct(r, d, R3),),
                 lambda x, a=_axis, k=_keep: np.max(x, axis=a, keepdims=k), api=("max",)),
            Case(f"min-{_sfx}", lambda x, a=_axis, k=_keep: sg.min(x, axis=a, keepdims=k),
                 lambda r, d: (distinct(r, d, R3),),
                 lambda x, a=_axis, k=_keep: np.min(x, axis=a, keepdims=k), api=("min",)),
            Case(f"logsumexp-{_sfx}",
                 lambda x, a=_axis, k=_keep: sg.logsumexp(x, axis=a, keepdims=k),
                 lambda r, d: (uniform(r, d, R3, -3.0, 3.0),),
                 lambda x, a=_axis, k=_keep: np_logsumexp(x, axis=a, keepdims=k),
                 second_order=_axis in (None, 1), api=("logsumexp",)))
for _axis in (None, 0, 1, -1):
    for _keep in (False, True):
        if _axis is None and _keep:
            continue
        _sfx = f"{'all' if _axis is None else _axis}{'-keep' if _keep else ''}"
        add(Case(f"argmax-{_sfx}", lambda x, a=_axis, k=_keep: sg.argmax(x, axis=a, keepdims=k),
                 lambda r, d: (distinct(r, d, R3),),
                 lambda x, a=_axis, k=_keep: np.argmax(x, axis=a, keepdims=k),
                 gradcheck=False, api=("argmax",)))
add(
    Case("argmax-int", lambda x: sg.argmax(x, axis=1),
         lambda r, d: (np.array([[1, 5, 5], [7, 0, 7]], d),), lambda x: np.argmax(x, axis=1),
         dtypes=("int64", "int32"), gradcheck=False, api=("argmax",),
         note="ties: the first maximum"),
    Case("sum-int", lambda x: sg.sum(x, axis=0), lambda r, d: (ints(r, (3, 4), -9, 9, d),),
         lambda x: np.sum(x, axis=0), dtypes=("int64",), gradcheck=False, api=("sum",)),
    Case("sum-bool", lambda x: sg.sum(x > 0.0), lambda r, d: (nonzero(r, d, (3, 4)),),
         lambda x: np.sum(x > 0), gradcheck=False, api=("sum", ">"),
         note="an int64 count: no gradient"),
    Case("mean-int", lambda x: sg.mean(x), lambda r, d: (ints(r, (3, 4), -9, 9, d),),
         lambda x: np.mean(x), dtypes=("int64",), gradcheck=False, api=("mean",)),
    Case("max-ties", lambda x: sg.max(x, axis=1),
         lambda r, d: (np.array([[1.0, 3.0, 3.0], [-1.0, -1.0, -1.0]], d),),
         lambda x: np.max(x, axis=1), gradcheck=False, api=("max",),
         note="ties: the gradient is split (kink)"),
    Case("max-method", lambda x: x.max(0, keepdims=True), lambda r, d: (distinct(r, d, (3, 4)),),
         lambda x: x.max(0, keepdims=True), api=(".max",)),
    Case("min-method", lambda x: x.min(axis=(0, 1)), lambda r, d: (distinct(r, d, R3),),
         lambda x: x.min(axis=(0, 1)), api=(".min",)),
    Case("sum-method", lambda x: x.sum(1), lambda r, d: (uniform(r, d, R3),),
         lambda x: x.sum(1), api=(".sum",)),
    Case("mean-method", lambda x: x.mean(), lambda r, d: (uniform(r, d, R3),),
         lambda x: x.mean(), api=(".mean",)),
    Case("mean-method-axis", lambda x: x.mean(axis=-1, keepdims=True),
         lambda r, d: (uniform(r, d, R3),), lambda x: x.mean(axis=-1, keepdims=True),
         api=(".mean",)),
    Case("sum-scalar-input", lambda x: sg.sum(x), lambda r, d: (uniform(r, d, ()),),
         np.sum, api=("sum",)),
)

# ---- shapes --------------------------------------------------------------------------------
add(
    Case("reshape-2d", lambda x: sg.reshape(x, (6, 4)), lambda r, d: (uniform(r, d, R3),),
         lambda x: x.reshape(6, 4), api=("reshape",)),
    Case("reshape-flat", lambda x: sg.reshape(x, (-1,)), lambda r, d: (uniform(r, d, R3),),
         lambda x: x.reshape(-1), api=("reshape",)),
    Case("reshape-infer", lambda x: sg.reshape(x, (4, -1)), lambda r, d: (uniform(r, d, R3),),
         lambda x: x.reshape(4, -1), api=("reshape",)),
    Case("reshape-to-scalar", lambda x: sg.reshape(x, ()), lambda r, d: (uniform(r, d, (1, 1)),),
         lambda x: x.reshape(()), api=("reshape",)),
    Case("reshape-method-varargs", lambda x: x.reshape(3, 8), lambda r, d: (uniform(r, d, R3),),
         lambda x: x.reshape(3, 8), api=(".reshape",)),
    Case("reshape-method-tuple", lambda x: x.reshape((2, 12)), lambda r, d: (uniform(r, d, R3),),
         lambda x: x.reshape((2, 12)), api=(".reshape",)),
    Case("transpose-default", sg.transpose, lambda r, d: (uniform(r, d, R3),),
         np.transpose, api=("transpose",)),
    Case("transpose-axes", lambda x: sg.transpose(x, (1, 0, 2)),
         lambda r, d: (uniform(r, d, R3),), lambda x: np.transpose(x, (1, 0, 2)),
         api=("transpose",)),
    Case("transpose-negative-axes", lambda x: sg.transpose(x, (-1, 0, -2)),
         lambda r, d: (uniform(r, d, R3),), lambda x: np.transpose(x, (2, 0, 1)),
         api=("transpose",)),
    Case("transpose-method", lambda x: x.transpose(2, 0, 1), lambda r, d: (uniform(r, d, R3),),
         lambda x: x.transpose(2, 0, 1), api=(".transpose",)),
    Case("transpose-method-tuple", lambda x: x.transpose((1, 2, 0)),
         lambda r, d: (uniform(r, d, R3),), lambda x: x.transpose((1, 2, 0)),
         api=(".transpose",)),
    Case("transpose-method-none", lambda x: x.transpose(), lambda r, d: (uniform(r, d, R3),),
         lambda x: x.transpose(), api=(".transpose",)),
    Case("T-2d", lambda x: x.T, lambda r, d: (uniform(r, d, (3, 5)),), lambda x: x.T,
         api=(".T",)),
    Case("T-3d", lambda x: x.T * 1.0, lambda r, d: (uniform(r, d, R3),), lambda x: x.T,
         api=(".T",)),
    Case("broadcast_to-row", lambda x: sg.broadcast_to(x, (4, 3)),
         lambda r, d: (uniform(r, d, (3,)),), lambda x: np.broadcast_to(x, (4, 3)),
         api=("broadcast_to",)),
    Case("broadcast_to-middle", lambda x: sg.broadcast_to(x, (2, 3, 4, 5)),
         lambda r, d: (uniform(r, d, (3, 1, 5)),), lambda x: np.broadcast_to(x, (2, 3, 4, 5)),
         api=("broadcast_to",)),
    Case("broadcast_to-scalar", lambda x: sg.broadcast_to(x, (2, 3)),
         lambda r, d: (uniform(r, d, ()),), lambda x: np.broadcast_to(x, (2, 3)),
         api=("broadcast_to",)),
    Case("concatenate-0", lambda a, b: sg.concatenate([a, b]),
         lambda r, d: (uniform(r, d, (2, 3)), uniform(r, d, (4, 3))),
         lambda a, b: np.concatenate([a, b]), api=("concatenate",)),
    Case("concatenate-1-three", lambda a, b, c: sg.concatenate([a, b, c], axis=1),
         lambda r, d: (uniform(r, d, (2, 1)), uniform(r, d, (2, 3)), uniform(r, d, (2, 2))),
         lambda a, b, c: np.concatenate([a, b, c], axis=1), api=("concatenate",)),
    Case("concatenate-neg-axis", lambda a, b: sg.concatenate([a, b], axis=-1),
         lambda r, d: (uniform(r, d, (2, 2, 1)), uniform(r, d, (2, 2, 3))),
         lambda a, b: np.concatenate([a, b], axis=-1), api=("concatenate",)),
    Case("concatenate-reuse", lambda a: sg.concatenate([a, a * 2, a]),
         lambda r, d: (uniform(r, d, (2, 3)),),
         lambda a: np.concatenate([a, a * 2, a]), api=("concatenate",),
         note="one input three times: the gradient accumulates"),
    Case("stack-0", lambda a, b: sg.stack([a, b]),
         lambda r, d: (uniform(r, d, (2, 3)), uniform(r, d, (2, 3))),
         lambda a, b: np.stack([a, b]), api=("stack",)),
    Case("stack-last", lambda a, b, c: sg.stack([a, b, c], axis=-1),
         lambda r, d: (uniform(r, d, (2, 3)), uniform(r, d, (2, 3)), uniform(r, d, (2, 3))),
         lambda a, b, c: np.stack([a, b, c], axis=-1), api=("stack",)),
    Case("stack-1d", lambda a, b: sg.stack([a, b], axis=1),
         lambda r, d: (uniform(r, d, (4,)), uniform(r, d, (4,))),
         lambda a, b: np.stack([a, b], axis=1), api=("stack",)),
    Case("one_hot", lambda t: sg.one_hot(t, 5), lambda r, d: (np.array([0, 4, 2, 2, 1], d),),
         lambda t: (t[:, None] == np.arange(5)).astype(np.float32), dtypes=("int64", "int32"),
         gradcheck=False, api=("one_hot",)),
    Case("one_hot-2d-f64", lambda t: sg.one_hot(t, 3, dtype="float64"),
         lambda r, d: (np.array([[0, 2], [1, 1]], d),),
         lambda t: (t[..., None] == np.arange(3)).astype(np.float64), dtypes=("int64",),
         gradcheck=False, api=("one_hot",)),
    Case("one_hot-out-of-range", lambda t: sg.one_hot(t, 3),
         lambda r, d: (np.array([0, 3, -1, 2], d),),
         lambda t: (t[:, None] == np.arange(3)).astype(np.float32), dtypes=("int64",),
         gradcheck=False, api=("one_hot",), note="documented: out-of-range labels give zeros"),
    Case("take-flat", lambda x, i: sg.take(x, i), lambda r, d: (uniform(r, d, (3, 4)),
                                                                np.array([0, 11, 5, 5])),
         lambda x, i: np.take(x, i), api=("take",)),
    Case("take-axis0-repeat", lambda x, i: sg.take(x, i, axis=0),
         lambda r, d: (uniform(r, d, (4, 3)), np.array([2, 0, 2, 2, 3])),
         lambda x, i: np.take(x, i, axis=0), second_order=True, api=("take",),
         note="repeated indices: the gradient accumulates"),
    Case("take-axis1-2d-index", lambda x, i: sg.take(x, i, axis=1),
         lambda r, d: (uniform(r, d, (2, 5, 2)), np.array([[4, 0], [1, 4], [3, 3]])),
         lambda x, i: np.take(x, i, axis=1), api=("take",)),
    Case("take-negative-index", lambda x, i: sg.take(x, i, axis=0),
         lambda r, d: (uniform(r, d, (4, 2)), np.array([-1, 0, -4])),
         lambda x, i: np.take(x, i, axis=0), api=("take",)),
    Case("take-int32-index", lambda x, i: sg.take(x, i, axis=-1),
         lambda r, d: (uniform(r, d, (3, 4)), np.array([3, 1], np.int32)),
         lambda x, i: np.take(x, i, axis=-1), api=("take",)),
    # window_max: the max pooling core; windows overlap, a tap repeats, an index is negative
    Case("window_max-overlapping", lambda x, i: sg.apply("window_max", x, i, axis=2),
         lambda r, d: (distinct(r, d, (2, 3, 10)),
                       np.array([[0, 2, 4, 6, 8], [1, 3, 5, 7, 9], [1, 2, 2, 8, -1]])),
         lambda x, i: np.take(x, i % 10, axis=2).max(axis=2), second_order=True),
    Case("window_max-inner-axis", lambda x, i: sg.apply("window_max", x, i, axis=1),
         lambda r, d: (distinct(r, d, (2, 6, 3)), np.array([[0, 5, 2, 3], [1, 4, 3, 3]], np.int32)),
         lambda x, i: np.take(x, i, axis=1).max(axis=1), second_order=True),
)

# getitem: basic slicing and integer indexing
_KEYS = [
    ("int", lambda x: x[1], lambda x: x[1]),
    ("neg-int", lambda x: x[-1], lambda x: x[-1]),
    ("two-ints", lambda x: x[1, 2], lambda x: x[1, 2]),
    ("slice", lambda x: x[1:3], lambda x: x[1:3]),
    ("step", lambda x: x[:, ::2], lambda x: x[:, ::2]),
    ("neg-step", lambda x: x[::-1], lambda x: x[::-1]),
    ("neg-step-middle", lambda x: x[:, 3:0:-2], lambda x: x[:, 3:0:-2]),
    ("neg-bounds", lambda x: x[:, 1:-1], lambda x: x[:, 1:-1]),
    ("ellipsis", lambda x: x[..., 1], lambda x: x[..., 1]),
    ("ellipsis-middle", lambda x: x[0, ..., 1:], lambda x: x[0, ..., 1:]),
    ("newaxis", lambda x: x[None, 1:, :2], lambda x: x[None, 1:, :2]),
    ("newaxis-ellipsis", lambda x: x[..., None], lambda x: x[..., None]),
    ("mixed", lambda x: x[2, 1:4:2], lambda x: x[2, 1:4:2]),
    ("empty", lambda x: x[2:2], lambda x: x[2:2]),
]
for _kid, _sg, _np in _KEYS:
    add(Case(f"getitem-{_kid}", _sg, lambda r, d: (uniform(r, d, (4, 5)),), _np,
             api=("getitem-int",) if "int" in _kid else ("getitem-slice",)))
add(
    Case("getitem-3d", lambda x: x[1, :, ::-2], lambda r, d: (uniform(r, d, R3),),
         lambda x: x[1, :, ::-2], api=("getitem-slice", "getitem-int")),
    Case("getitem-tensor-index", lambda x, i: x[i],
         lambda r, d: (uniform(r, d, (4, 3)), np.array([3, 1, 1])), lambda x, i: x[i],
         api=("getitem-tensor",)),
    Case("getitem-array-index", lambda x: x[np.array([2, 0])],
         lambda r, d: (uniform(r, d, (4, 3)),), lambda x: x[np.array([2, 0])],
         api=("getitem-tensor",)),
)

# astype
add(
    Case("astype-f32", lambda x: x.astype("float32"), lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: x.astype(np.float32), gradcheck=False, api=(".astype",),
         note="float32 rounds away the 1e-6 perturbation (test_function checks this cast's gradient)"),
    Case("astype-f64", lambda x: x.astype(np.float64), lambda r, d: (uniform(r, d, (2, 3)),),
         lambda x: x.astype(np.float64), api=(".astype",)),
    Case("astype-int-truncates", lambda x: x.astype("int64") * 1.0,
         lambda r, d: ((ints(r, (2, 3), -3, 3, np.float64)
                        + np.sign(uniform(r, np.float64, (2, 3))) * 0.5).astype(d),),
         lambda x: x.astype(np.int64).astype(np.float32),
         api=(".astype",), note="the integer path carries no gradient: gradcheck expects 0"),
    Case("astype-int-to-float", lambda x: x.astype("float64"),
         lambda r, d: (ints(r, (2, 3), -9, 9, d),), lambda x: x.astype(np.float64),
         dtypes=("int64", "int32"), gradcheck=False, api=(".astype",)),
    Case("astype-bool-to-float", lambda x: (x > 0.0).astype("float32"),
         lambda r, d: (nonzero(r, d, (2, 3)),), lambda x: (x > 0).astype(np.float32),
         api=(".astype", ">"), note="bool path: gradcheck expects 0"),
)

# ---- networks ------------------------------------------------------------------------------
add(
    Case("softmax-last", sg.softmax, lambda r, d: (uniform(r, d, (3, 4), -3.0, 3.0),),
         np_softmax, second_order=True, api=("softmax",)),
    Case("softmax-axis0", lambda x: sg.softmax(x, axis=0),
         lambda r, d: (uniform(r, d, (3, 4), -3.0, 3.0),), lambda x: np_softmax(x, 0),
         second_order=True, api=("softmax",)),
    Case("softmax-3d", lambda x: sg.softmax(x, axis=1),
         lambda r, d: (uniform(r, d, R3, -3.0, 3.0),), lambda x: np_softmax(x, 1),
         api=("softmax",)),
    Case("softmax-1d", sg.softmax, lambda r, d: (uniform(r, d, (5,), -3.0, 3.0),), np_softmax,
         api=("softmax",)),
    Case("log_softmax-last", sg.log_softmax, lambda r, d: (uniform(r, d, (3, 4), -3.0, 3.0),),
         np_log_softmax, second_order=True, api=("log_softmax",)),
    Case("log_softmax-axis0", lambda x: sg.log_softmax(x, axis=0),
         lambda r, d: (uniform(r, d, (3, 4), -3.0, 3.0),), lambda x: np_log_softmax(x, 0),
         second_order=True, api=("log_softmax",)),
    Case("cross_entropy", sg.cross_entropy,
         lambda r, d: (uniform(r, d, (5, 4), -3.0, 3.0), ints(r, (5,), 0, 4)),
         np_cross_entropy, second_order=True, api=("cross_entropy",)),
    Case("cross_entropy-int32-labels", sg.cross_entropy,
         lambda r, d: (uniform(r, d, (3, 6), -3.0, 3.0), ints(r, (3,), 0, 6, np.int32)),
         np_cross_entropy, api=("cross_entropy",)),
    Case("cross_entropy-3d", sg.cross_entropy,
         lambda r, d: (uniform(r, d, (2, 3, 4), -3.0, 3.0), ints(r, (2, 3), 0, 4)),
         np_cross_entropy, second_order=True, api=("cross_entropy",)),
    Case("cross_entropy-one-row", sg.cross_entropy,
         lambda r, d: (uniform(r, d, (1, 3), -3.0, 3.0), np.array([2])),
         np_cross_entropy, api=("cross_entropy",)),
    Case("cross_entropy-probs", sg.cross_entropy,
         lambda r, d: (uniform(r, d, (3, 4), -3.0, 3.0),
                       np_softmax(uniform(r, np.float64, (3, 4))).astype(d)),
         lambda z, p: np.mean(-np.sum(p * np_log_softmax(z), axis=-1)), second_order=True,
         api=("cross_entropy",)),
    Case("bce_logits", lambda z, t: sg.binary_cross_entropy(logits=z, targets=t),
         lambda r, d: (uniform(r, d, (3, 4), -4.0, 4.0), r.random((3, 4)).astype(d)),
         lambda z, t: np.mean(np_softplus(z) - z * t), second_order=True,
         api=("binary_cross_entropy",)),
    Case("bce_logits-target-kw", lambda z, t: sg.binary_cross_entropy(target=t, logits=z),
         lambda r, d: (uniform(r, d, (5,), -4.0, 4.0), (r.random(5) < 0.5).astype(d)),
         lambda z, t: np.mean(np.where(t > 0, np.logaddexp(0, -z), np.logaddexp(0, z))),
         second_order=True, api=("binary_cross_entropy",)),
    Case("bce_probs", lambda p, t: sg.binary_cross_entropy(p, t),
         lambda r, d: (uniform(r, d, (2, 3), 0.05, 0.95), r.random((2, 3)).astype(d)),
         lambda p, t: -np.mean(t * np.log(p) + (1 - t) * np.log1p(-p)),
         api=("binary_cross_entropy",)),
    Case("mse", sg.mse, lambda r, d: (uniform(r, d, (4, 3)), uniform(r, d, (4, 3))),
         lambda a, b: np.mean((a - b) ** 2), second_order=True, api=("mse",)),
    Case("mse-broadcast", sg.mse, lambda r, d: (uniform(r, d, (4, 3)), uniform(r, d, (3,))),
         lambda a, b: np.mean((a - b) ** 2), second_order=True, api=("mse",)),
)

# ---- compositions: several ops in one graph, gradients through all of them --------------------
add(
    Case("compose-mlp", lambda x, w, b: sg.sum(sg.tanh(x @ w + b) ** 2, axis=1),
         lambda r, d: (uniform(r, d, (3, 4)), uniform(r, d, (4, 2)), uniform(r, d, (2,))),
         lambda x, w, b: np.sum(np.tanh(np_matmul(x, w) + b) ** 2, axis=1), second_order=True,
         api=("@", "+", "**", "tanh", "sum")),
    Case("compose-fanout", lambda x: x * sg.exp(x) - sg.sin(x) / (1 + x * x),
         lambda r, d: (uniform(r, d, (6,)),),
         lambda x: x * np.exp(x) - np.sin(x) / (1 + x * x), second_order=True,
         api=("*", "-", "/", "exp", "sin")),
    Case("compose-normalize", lambda x: (x - x.mean(axis=1, keepdims=True))
         / sg.sqrt(sg.mean(sg.square(x - x.mean(axis=1, keepdims=True)), axis=1, keepdims=True)
                   + 1e-5),
         lambda r, d: (uniform(r, d, (3, 5)),),
         lambda x: (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-5),
         second_order=True, api=("mean", "sqrt", "square")),
)


# ------------------------------------------------------------------------------ public names
# Every public function and operator of API.md (conv2d, pools, layer_norm, dropout excepted).
REQUIRED_API = tuple("""
exp log log1p expm1 sqrt abs sign tanh sin cos square reciprocal maximum minimum where clip matmul
dot sum mean max min argmax logsumexp reshape transpose broadcast_to concatenate stack one_hot take
sigmoid relu softplus softmax log_softmax cross_entropy binary_cross_entropy mse
+ - * / ** @ unary- < <= > >= == != getitem-slice getitem-int getitem-tensor
.T .reshape .transpose .sum .mean .max .min .astype
""".split())


def case_ids():
    return [c.id for c in CASES]


def get(case_id: str) -> Case:
    for c in CASES:
        if c.id == case_id:
            return c
    raise KeyError(case_id)
