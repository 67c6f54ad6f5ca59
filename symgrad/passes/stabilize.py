"""Stabilizing and grouping rewrites: the chain a user (or a textbook) writes becomes the one op
whose kernel and gradient are safe at extreme inputs.  Applied by `sg.grad` before it
differentiates, so the adjoint of a grouped op is that op's own rule (sigmoid: g*s*(1-s))."""
from __future__ import annotations

from .. import api as sg
from .rewrite import Rule


def _log_softmax_from_logsumexp(n, x):
    """x - logsumexp(x) along one axis, kept -> log_softmax(x): one row kernel."""
    lse = n.inputs[1]
    if len(lse.attr["axes"]) != 1 or not lse.attr["keepdims"]:
        return None
    return sg.log_softmax(x, axis=lse.attr["axes"][0])


def _without_max_shift(op):
    """softmax and log_softmax shift by the row max themselves: op(x - max(x)) -> op(x)."""
    def build(n, x):
        row_max = n.inputs[0].inputs[1]
        if row_max.attr["axes"] != (n.attr["axis"],) or not row_max.attr["keepdims"]:
            return None
        return op(x, axis=n.attr["axis"])
    return build


def _softmax_from_gates(n, x):
    """exp(x) / sum(exp(x)) along one axis -> softmax(x): shifted by the row max, so a logit
    of 1e4 gives 1 instead of inf/inf."""
    total = next(i for i in n.inputs if i.op in ("sum", "reciprocal"))
    total = total.inputs[0] if total.op == "reciprocal" else total
    axes = total.attr["axes"]
    if len(axes) != 1 or not (total.attr["keepdims"] or axes == (0,)):  # (0,): broadcasts back
        return None
    return sg.softmax(x, axis=axes[0])


STABILIZE = [
    # a / (1 + exp(-x)) -> a * sigmoid(x): x * sigmoid(x) (SiLU) written by hand stays finite
    Rule("times_sigmoid_from_gates", ("div", "a", ("add", 1, ("exp", ("neg", "x")))),
         lambda n, a, x: a * sg.sigmoid(x)),
    # exp(x) / sum(exp(x)) -> softmax(x), as Theano's softmax_simplifier did
    Rule("softmax_from_gates", ("div", ("exp", "x"), ("sum", ("exp", "x"))), _softmax_from_gates),
    Rule("softmax_from_reciprocal", ("mul", ("exp", "x"), ("reciprocal", ("sum", ("exp", "x")))),
         _softmax_from_gates),
    # 1 / (1 + exp(-x)), and exp(x) / (1 + exp(x))  ->  sigmoid(x)
    Rule("sigmoid_from_gates", ("div", 1, ("add", 1, ("exp", ("neg", "x")))),
         lambda n, x: sg.sigmoid(x)),
    Rule("sigmoid_from_reciprocal", ("reciprocal", ("add", 1, ("exp", ("neg", "x")))),
         lambda n, x: sg.sigmoid(x)),
    Rule("sigmoid_from_ratio", ("div", ("exp", "x"), ("add", 1, ("exp", "x"))),
         lambda n, x: sg.sigmoid(x)),
    # log(sigmoid(x)) = -softplus(-x), and log(1 - sigmoid(x)) = log(sigmoid(-x)) = -softplus(x).
    # 1 - sigmoid(x) is rewritten to sigmoid(-x) only under a log: elsewhere (the sigmoid's own
    # adjoint s*(1-s)) reusing s is cheaper than a second exp.
    Rule("log_sigmoid", ("log", ("sigmoid", "x")), lambda n, x: -sg.softplus(-x)),
    # the same inside binary_cross_entropy(sigmoid(x), t): finite where the sigmoid saturates
    Rule("bce_of_sigmoid", ("binary_cross_entropy_probs", ("sigmoid", "x"), "t"),
         lambda n, x, t: -(t * sg.maximum(-sg.softplus(-x), -100.0)
                           + (1 - t) * sg.maximum(-sg.softplus(x), -100.0))),
    Rule("log_one_minus_sigmoid", ("log", ("sub", 1, ("sigmoid", "x"))),
         lambda n, x: -sg.softplus(x)),
    # log(1 + exp(x)) = softplus(x)
    Rule("softplus_from_gates", ("log", ("add", 1, ("exp", "x"))), lambda n, x: sg.softplus(x)),
    Rule("softplus_from_log1p", ("log1p", ("exp", "x")), lambda n, x: sg.softplus(x)),
    # log(1 + x) -> log1p(x); exp(x) - 1 -> expm1(x)
    Rule("log1p", ("log", ("add", 1, "x")), lambda n, x: sg.log1p(x)),
    Rule("expm1", ("sub", ("exp", "x"), 1), lambda n, x: sg.expm1(x)),
    # log(softmax(x)) -> log_softmax(x)
    Rule("log_softmax", ("log", ("softmax", "x")),
         lambda n, x: sg.log_softmax(x, axis=n.inputs[0].attr["axis"])),
    # x - logsumexp(x) -> log_softmax(x); a shift by the row max is theirs already
    Rule("log_softmax_from_logsumexp", ("sub", "x", ("logsumexp", "x")),
         _log_softmax_from_logsumexp),
    Rule("log_softmax_unshifted", ("log_softmax", ("sub", "x", ("max", "x"))),
         _without_max_shift(sg.log_softmax)),
    Rule("softmax_unshifted", ("softmax", ("sub", "x", ("max", "x"))),
         _without_max_shift(sg.softmax)),
    # log(sum(exp(x))) -> logsumexp(x), shifted by the max
    Rule("logsumexp", ("log", ("sum", ("exp", "x"))),
         lambda n, x: sg.logsumexp(x, axis=n.inputs[0].attr["axes"],
                                   keepdims=n.inputs[0].attr["keepdims"])),
]
