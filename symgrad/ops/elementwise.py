"""Element-wise ops: numpy broadcasting over same-dtype operands (the API layer inserts the casts).

Each op's C expression uses the type-generic helpers of csrc/symgrad_scalar.h, so one string serves
float32 and float64 (and CUDA).  Gradient rules return the adjoint at the *output* shape; autodiff
sums it back to each input's shape (the broadcasting adjoint lives in one place).
"""
from __future__ import annotations

import numpy as np

from .. import api as sg
from ..graph import DTYPES, broadcast_shapes, is_float, user_site
from . import Op, describe, register


class Elementwise(Op):
    kind = "elementwise"
    arity = 1
    c = ""                  # scalar C expression over {0}, {1}, ...
    result_dtype = None     # None: the operands' dtype
    float_only = False
    bool_hint = ""          # set where numpy refuses bool operands: what to use instead

    def infer(self, inputs, attrs):
        if len(inputs) != self.arity:
            raise self.error(f"takes {self.arity} operands, got {len(inputs)}")
        operands = inputs[1:] if self.name == "where" else inputs
        dtypes = {t.dtype for t in operands}
        if len(dtypes) != 1:
            raise self.error(f"operands must share one dtype, got {describe(inputs)}")
        dtype = operands[0].dtype
        if self.bool_hint and dtype == DTYPES["bool"]:
            raise TypeError(f"{self.name}: not supported for bool tensors (numpy refuses it "
                            f"too); {self.bool_hint}" + user_site())
        if self.float_only and not is_float(dtype):
            raise self.error(f"expects float32 or float64, got {dtype.name}")
        shape = broadcast_shapes(self.name, *(t._shape for t in inputs))
        return shape, DTYPES[self.result_dtype] if self.result_dtype else dtype

    def numpy(self, attrs, *arrays):
        return self.reference(*arrays)

    @staticmethod
    def reference(*arrays):
        raise NotImplementedError


# ---------------------------------------------------------------- unary: y = f(x)
class Unary(Elementwise):
    float_only = True


@register
class Neg(Unary):
    name, c, float_only = "neg", "(-{0})", False
    reference = staticmethod(np.negative)
    bool_hint = "use sg.logical_not instead"

    def grad(self, node, g):
        return [-g]


@register
class Exp(Unary):
    name, c = "exp", "exp({0})"
    reference = staticmethod(np.exp)

    def grad(self, node, g):
        return [g * node]


@register
class Log(Unary):
    name, c = "log", "log({0})"
    reference = staticmethod(np.log)

    def grad(self, node, g):
        return [g / node.inputs[0]]


@register
class Log1p(Unary):
    name, c = "log1p", "log1p({0})"
    reference = staticmethod(np.log1p)

    def grad(self, node, g):
        return [g / (1 + node.inputs[0])]


@register
class Expm1(Unary):
    name, c = "expm1", "expm1({0})"
    reference = staticmethod(np.expm1)

    def grad(self, node, g):
        return [g * (node + 1)]


@register
class Sqrt(Unary):
    name, c = "sqrt", "sqrt({0})"
    reference = staticmethod(np.sqrt)

    def grad(self, node, g):
        return [g / (2 * node)]


@register
class Abs(Unary):
    name, c, float_only = "abs", "sg_abs({0})", False
    reference = staticmethod(np.abs)

    def grad(self, node, g):
        return [g * sg.sign(node.inputs[0])]


@register
class Sign(Unary):
    name, c, float_only = "sign", "sg_sign({0})", False
    reference = staticmethod(np.sign)
    bool_hint = "cast first (x.astype('int32'))"

    def grad(self, node, g):
        return [None]  # zero almost everywhere


@register
class Tanh(Unary):
    name, c = "tanh", "tanh({0})"
    reference = staticmethod(np.tanh)

    def grad(self, node, g):
        return [g * (1 - node * node)]


@register
class Sin(Unary):
    name, c = "sin", "sin({0})"
    reference = staticmethod(np.sin)

    def grad(self, node, g):
        return [g * sg.cos(node.inputs[0])]


@register
class Cos(Unary):
    name, c = "cos", "cos({0})"
    reference = staticmethod(np.cos)

    def grad(self, node, g):
        return [-(g * sg.sin(node.inputs[0]))]


@register
class Square(Unary):
    name, c, float_only = "square", "({0} * {0})", False
    reference = staticmethod(np.square)

    def grad(self, node, g):
        return [g * (2 * node.inputs[0])]


@register
class Reciprocal(Unary):
    name, c = "reciprocal", "(1 / {0})"
    reference = staticmethod(np.reciprocal)

    def grad(self, node, g):
        return [-(g * (node * node))]


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


@register
class Sigmoid(Unary):
    """The grouped sigmoid: its local gradient reuses the forward output, s*(1-s)."""
    name, c = "sigmoid", "sg_sigmoid({0})"
    reference = staticmethod(_sigmoid)

    def grad(self, node, g):
        return [g * (node * (1 - node))]


@register
class Relu(Unary):
    name, c = "relu", "sg_relu({0})"

    @staticmethod
    def reference(x):
        return np.maximum(x, x.dtype.type(0))

    def grad(self, node, g):
        # relu(x) > 0 exactly where x > 0: reading the output leaves x with one consumer, so
        # a pre-activation (x @ W + b) fuses into the relu's loop
        return [sg.where(node > 0, g, 0)]


def _softplus(x):
    return (np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)


@register
class Softplus(Unary):
    """log(1 + exp(x)) in the form that neither overflows nor loses small values."""
    name, c = "softplus", "sg_softplus({0})"
    reference = staticmethod(_softplus)

    def grad(self, node, g):
        return [g * sg.sigmoid(node.inputs[0])]


@register
class Cast(Unary):
    name, float_only = "cast", False
    c = "(({T}){0})"  # {T} is the C type of the result

    def infer(self, inputs, attrs):
        (x,) = inputs
        return x._shape, DTYPES[attrs["dtype"]]

    def numpy(self, attrs, x):
        return x.astype(attrs["dtype"])

    def grad(self, node, g):
        x = node.inputs[0]
        return [sg.cast(g, x.dtype) if is_float(x.dtype) else None]


@register
class LogicalNot(Unary):
    name, c, float_only, result_dtype = "logical_not", "(!{0})", False, "bool"
    reference = staticmethod(np.logical_not)
    differentiable = False


# ---------------------------------------------------------------- binary: y = f(a, b)
class Binary(Elementwise):
    arity = 2


@register
class Add(Binary):
    name, c = "add", "({0} + {1})"
    reference = staticmethod(np.add)

    def grad(self, node, g):
        return [g, g]


@register
class Sub(Binary):
    name, c = "sub", "({0} - {1})"
    reference = staticmethod(np.subtract)
    bool_hint = "use a != b for exclusive or, or cast first (a.astype('int32') - b)"

    def grad(self, node, g):
        return [g, -g]


@register
class Mul(Binary):
    name, c = "mul", "({0} * {1})"
    reference = staticmethod(np.multiply)

    def grad(self, node, g):
        a, b = node.inputs
        return [g * b, g * a]


@register
class Div(Binary):
    name, c, float_only = "div", "({0} / {1})", True
    reference = staticmethod(np.divide)

    def grad(self, node, g):
        a, b = node.inputs
        return [g / b, -(g * node / b)]


class IntegerOrFloat(Binary):
    """floor_divide and remainder: numpy's, on ints and floats (bools are cast to int64 by the
    API layer, as numpy computes them in integers too)."""

    def infer(self, inputs, attrs):
        if inputs[0].dtype == DTYPES["bool"]:
            raise self.error("expects int or float operands, got bool")
        return super().infer(inputs, attrs)


@register
class FloorDivide(IntegerOrFloat):
    name, c, differentiable = "floor_divide", "sg_floordiv({0}, {1})", False

    @staticmethod
    def reference(a, b):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.floor_divide(a, b)


@register
class Remainder(IntegerOrFloat):
    name, c = "remainder", "sg_mod({0}, {1})"

    @staticmethod
    def reference(a, b):
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return np.remainder(a, b)

    def grad(self, node, g):
        # a - b * floor(a / b): slope 1 in a, -floor(a / b) in b (between the jumps)
        a, b = node.inputs
        return [g, -g * sg.floor_divide(a, b)]


@register
class Pow(Binary):
    name, c, float_only = "pow", "pow({0}, {1})", True
    reference = staticmethod(np.power)

    def grad(self, node, g):
        a, b = node.inputs
        da = g * b * a ** (b - 1)
        constant_nonzero = b.op == "constant" and not np.any(b.attr["value"].array == 0)
        if not constant_nonzero:  # a^0 is 1 everywhere: its slope at a = 0 is 0, not 0 * inf
            da = sg.where(b == 0, 0, da)
        # d/db a^b = a^b log a; defined as 0 where a <= 0 (b is then usually a constant anyway)
        safe_log = sg.log(sg.where(a > 0, a, 1))
        return [da, g * node * safe_log]


@register
class Maximum(Binary):
    name, c = "maximum", "sg_max({0}, {1})"
    reference = staticmethod(np.maximum)

    def grad(self, node, g):
        a, b = node.inputs
        first = a >= b  # ties send the whole gradient to the first operand
        return [sg.where(first, g, 0), sg.where(first, 0, g)]


@register
class Minimum(Binary):
    name, c = "minimum", "sg_min({0}, {1})"
    reference = staticmethod(np.minimum)

    def grad(self, node, g):
        a, b = node.inputs
        first = a <= b
        return [sg.where(first, g, 0), sg.where(first, 0, g)]


class Comparison(Binary):
    result_dtype = "bool"
    differentiable = False


def _comparison(op_name, symbol, ufunc):
    cls = type(op_name.title(), (Comparison,), {
        "name": op_name, "c": f"({{0}} {symbol} {{1}})", "reference": staticmethod(ufunc)})
    return register(cls)


for _name, _symbol, _ufunc in [("less", "<", np.less), ("less_equal", "<=", np.less_equal),
                               ("greater", ">", np.greater),
                               ("greater_equal", ">=", np.greater_equal),
                               ("equal", "==", np.equal), ("not_equal", "!=", np.not_equal),
                               ("logical_and", "&&", np.logical_and),
                               ("logical_or", "||", np.logical_or)]:
    _comparison(_name, _symbol, _ufunc)


# ---------------------------------------------------------------- where(cond, a, b)
@register
class Where(Elementwise):
    name, arity, c = "where", 3, "({0} ? {1} : {2})"
    reference = staticmethod(np.where)

    def infer(self, inputs, attrs):
        if len(inputs) == 3 and inputs[0].dtype != DTYPES["bool"]:
            raise self.error(f"condition must be bool, got {inputs[0].dtype.name}")
        return super().infer(inputs, attrs)

    def grad(self, node, g):
        cond = node.inputs[0]
        return [None, sg.where(cond, g, 0), sg.where(cond, 0, g)]
