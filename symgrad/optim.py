"""Optimizers as graph updates: each returns [(shared, new_value), ...] for `sg.function`, with
its state (velocities, moments, step count) in shared tensors updated inside the compiled step.

The rules are torch.optim's (SGD with momentum/nesterov, RMSprop, Adam, AdamW).  Every optimizer
takes:

- `lr`: a float, or a scalar tensor (typically `lr = sg.shared(np.float32(0.1), name="lr")`):
  `lr.set_value(0.01)` then changes the rate of an already compiled step, no rebuild.
  `weight_decay` may be a scalar tensor too.
- `weight_decay`: L2 penalty added to the gradient (`g + weight_decay * p`), as torch does; `adamw`
  decays the parameters directly instead (decoupled).
- `clip_norm`: if given, the gradients are first scaled together by `clip_by_global_norm` (before
  the weight-decay term is added, as with torch's `clip_grad_norm_` before `optimizer.step()`).

State tensors are named after their parameter: `W1.velocity`, `W1.sq_avg`, `W1.m`, `W1.v` (an
unnamed parameter is `param<i>`, its index in `params`) and Adam's step count `adam.step`.
`state(updates, params)` lists them, e.g. to save a checkpoint with `sg.save_params`.
- `name`: a prefix for the state's names, for two optimizers in one checkpoint (a head trained
  with Adam at one rate and a body at another): `name="head"` gives `head.W1.m`, `head.step`.

Freezing a parameter (transfer learning) is leaving it out of `params`: nothing updates it.
"""
from __future__ import annotations

import numbers

import numpy as np

from . import api as sg
from .graph import Tensor, is_float, shape_str, shapes_equal

__all__ = ["sgd", "rmsprop", "adam", "adamw", "clip_by_global_norm", "global_norm", "state"]


# ---------------------------------------------------------------------------- helpers
# the last part of each state tensor's name (save_params's duplicate-name hint reads them)
STATE_SLOTS = ("velocity", "sq_avg", "m", "v", "step")


def _param_label(p, i):
    return p.name or f"param{i}"


def _state_name(prefix, slot):
    return slot if prefix is None else f"{prefix}.{slot}"


def _state_like(param, index, slot, prefix=None):
    name = _state_name(prefix, f"{_param_label(param, index)}.{slot}")
    return sg.shared(np.zeros(param.shape, param.dtype), name=name)


def _check(params, grads, who="optimizer"):
    """Errors start "optimizer: " and end with the optimizer's name."""
    params, grads = list(params), list(grads)
    end = f" (in {who})" if who != "optimizer" else ""
    if len(params) != len(grads):
        raise ValueError(f"optimizer: {len(params)} params but {len(grads)} grads{end}")
    for i, (p, g) in enumerate(zip(params, grads)):
        if getattr(p, "op", None) != "shared":
            raise TypeError(f"optimizer: params must be shared tensors (params[{i}] is a "
                            f"{getattr(p, 'op', type(p).__name__)}){end}")
        if not is_float(p.dtype):
            raise TypeError(f"optimizer: params[{i}] {_param_label(p, i)!r} is {p.dtype.name}; "
                            f"only float parameters can be trained{end}")
        if not isinstance(g, Tensor):
            raise TypeError(f"optimizer: grads[{i}] must be a symgrad tensor, got "
                            f"{type(g).__name__}{end}")
        if not shapes_equal(g.shape, p.shape):
            raise ValueError(f"optimizer: grads[{i}] has shape {shape_str(g.shape)} but "
                             f"params[{i}] {_param_label(p, i)!r} has shape "
                             f"{shape_str(p.shape)}{end}")
    if len({p.id for p in params}) != len(params):
        raise ValueError(f"optimizer: a parameter appears twice in params{end}")
    return params, grads


def _hyper(value, name, low=0.0, high=None, who="optimizer"):
    """A hyperparameter as a float (range-checked) or a scalar tensor (used as is)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise ValueError(f"{who}: {name} must be a scalar tensor, got shape "
                             f"{shape_str(value.shape)}")
        if not is_float(value.dtype):
            raise TypeError(f"{who}: {name} must be a float tensor, got {value.dtype.name}")
        return value
    if isinstance(value, (np.ndarray, np.generic)) and np.ndim(value) == 0:
        value = value.item()
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{who}: {name} must be a number or a scalar tensor, got "
                        f"{type(value).__name__}")
    value = float(value)
    if not np.isfinite(value) or value < low or (high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"{who}: {name} must be {bound}, got {value}")
    return value


def _as(value, dtype):
    """A float stays a Python float (it takes the tensor's dtype); a tensor is cast to `dtype`."""
    return sg.cast(value, dtype) if isinstance(value, Tensor) else value


def _is_zero(value):
    return not isinstance(value, Tensor) and value == 0.0


def _decayed(param, grad, weight_decay):
    return grad if _is_zero(weight_decay) else grad + _as(weight_decay, param.dtype) * param


def _prepare(params, grads, lr, weight_decay, clip_norm, who, name):
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"{who}: name must be a non-empty string (a prefix for the state's "
                        f"names), got {name!r}")
    params, grads = _check(params, grads, who)
    lr = _hyper(lr, "lr", who=who)
    weight_decay = _hyper(weight_decay, "weight_decay", who=who)
    if clip_norm is not None:
        grads = clip_by_global_norm(grads, clip_norm)
    return params, grads, lr, weight_decay


# ---------------------------------------------------------------------------- clipping
def global_norm(grads) -> Tensor:
    """sqrt(sum over every tensor of sum(g**2)): the 2-norm of all the gradients as one vector
    (computed in the gradients' promoted float dtype)."""
    grads = list(grads)
    if not grads:
        raise ValueError("global_norm: no gradients")
    dtype = np.result_type(*[g.dtype for g in grads])
    if not is_float(dtype):
        dtype = np.dtype("float32")
    total = None
    for g in grads:
        sq = sg.sum(sg.square(sg.cast(g, dtype)))
        total = sq if total is None else total + sq
    return sg.sqrt(total)


def clip_by_global_norm(grads, max_norm, return_norm=False):
    """The gradients scaled together so their global 2-norm is at most `max_norm` (torch's
    `clip_grad_norm_` rule): scale = min(1, max_norm / (global_norm + 1e-6)).

    Returns a list of tensors of the grads' shapes and dtypes, to pass to an optimizer:
    `sg.optim.sgd(params, sg.optim.clip_by_global_norm(grads, 1.0), lr=0.1)`.  `max_norm` may be
    a float or a scalar tensor.  With `return_norm=True` returns `(clipped, norm)`, the norm
    before clipping (to log it as a function output)."""
    grads = list(grads)
    for i, g in enumerate(grads):
        if not isinstance(g, Tensor):
            raise TypeError(f"clip_by_global_norm: grads[{i}] must be a symgrad tensor, got "
                            f"{type(g).__name__}")
    max_norm = _hyper(max_norm, "max_norm", who="clip_by_global_norm")
    if not isinstance(max_norm, Tensor) and max_norm <= 0:
        raise ValueError(f"clip_by_global_norm: max_norm must be > 0, got {max_norm}")
    if not grads:
        return ([], None) if return_norm else []
    norm = global_norm(grads)
    scale = sg.minimum(1.0, _as(max_norm, norm.dtype) / (norm + 1e-6))
    clipped = [g * sg.cast(scale, g.dtype) for g in grads]
    return (clipped, norm) if return_norm else clipped


# ---------------------------------------------------------------------------- optimizers
def sgd(params, grads, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0, clip_norm=None,
        name=None):
    """p -= lr * step, with step = g, or with momentum (torch's form, no dampening):
    v = momentum*v + g, step = v (or g + momentum*v with nesterov).
    State: `<param>.velocity` when momentum > 0."""
    params, grads, lr, weight_decay = _prepare(params, grads, lr, weight_decay, clip_norm, "sgd",
                                               name)
    momentum = _hyper(momentum, "momentum", who="sgd")
    if isinstance(momentum, Tensor):
        raise TypeError("sgd: momentum must be a number (it decides whether there is state)")
    if nesterov and momentum == 0:
        raise ValueError("sgd: nesterov needs momentum > 0")
    updates = []
    for i, (p, g) in enumerate(zip(params, grads)):
        g = _decayed(p, g, weight_decay)
        if momentum:
            v = _state_like(p, i, "velocity", name)
            v_new = momentum * v + g
            updates.append((v, v_new))
            g = g + momentum * v_new if nesterov else v_new
        updates.append((p, p - _as(lr, p.dtype) * g))
    return updates


def rmsprop(params, grads, lr=0.001, rho=0.9, eps=1e-8, weight_decay=0.0, clip_norm=None,
            name=None):
    """s = rho*s + (1-rho)*g^2; p -= lr * g / (sqrt(s) + eps)  (torch's RMSprop rule; `rho` is
    torch's `alpha`; lr and rho are Keras's defaults, eps torch's).  State: `<param>.sq_avg`."""
    params, grads, lr, weight_decay = _prepare(params, grads, lr, weight_decay, clip_norm,
                                               "rmsprop", name)
    rho = _hyper(rho, "rho", high=1.0, who="rmsprop")
    eps = _hyper(eps, "eps", who="rmsprop")
    updates = []
    for i, (p, g) in enumerate(zip(params, grads)):
        g = _decayed(p, g, weight_decay)
        s = _state_like(p, i, "sq_avg", name)
        s_new = rho * s + (1 - rho) * sg.square(g)
        updates += [(s, s_new), (p, p - _as(lr, p.dtype) * g / (sg.sqrt(s_new) + eps))]
    return updates


def adam(params, grads, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
         decoupled=False, clip_norm=None, name=None):
    """Adam with bias correction (torch's rule):
    m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2; t += 1;
    p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
    `weight_decay` is an L2 term added to g; with `decoupled=True` (or `adamw`) the parameters
    are decayed directly instead: p -= lr * weight_decay * p.
    State: `<param>.m`, `<param>.v`, and the step count `adam.step` (a scalar); with `name`,
    `<name>.<param>.m` and `<name>.step`."""
    who = "adamw" if decoupled else "adam"
    params, grads, lr, weight_decay = _prepare(params, grads, lr, weight_decay, clip_norm, who,
                                               name)
    beta1 = _hyper(beta1, "beta1", high=1.0, who=who)
    beta2 = _hyper(beta2, "beta2", high=1.0, who=who)
    eps = _hyper(eps, "eps", who=who)
    # the step count and the corrections 1 - beta^t in float64, as torch's Python doubles: from
    # float32's 0.9999 (0.99989998) a correction was 1.7e-4 off, and a float64 parameter listed
    # after a float32 one inherited that
    t = sg.shared(np.zeros((), np.float64), name=_state_name(name or "adam", "step"))
    t_new = t + 1
    correction1, correction2 = (
        1 - sg.power(sg.cast(b, "float64") if isinstance(b, Tensor) else sg.constant(b, np.float64),
                     t_new)
        for b in (beta1, beta2))
    updates = [(t, t_new)] if params else []
    for i, (p, g) in enumerate(zip(params, grads)):
        if not decoupled:
            g = _decayed(p, g, weight_decay)
        m, v = _state_like(p, i, "m", name), _state_like(p, i, "v", name)
        m_new = beta1 * m + (1 - beta1) * g
        v_new = beta2 * v + (1 - beta2) * sg.square(g)
        c1, c2 = sg.cast(correction1, p.dtype), sg.cast(correction2, p.dtype)
        lr_p = _as(lr, p.dtype)
        step = lr_p * (m_new / c1) / (sg.sqrt(v_new / c2) + eps)
        if decoupled and not _is_zero(weight_decay):
            step = step + lr_p * _as(weight_decay, p.dtype) * p
        updates += [(m, m_new), (v, v_new), (p, p - step)]
    return updates


def adamw(params, grads, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
          clip_norm=None, name=None):
    """Adam with decoupled weight decay (torch's AdamW): p -= lr * weight_decay * p, then the
    Adam step.  Same state as `adam`."""
    return adam(params, grads, lr, beta1, beta2, eps, weight_decay, decoupled=True,
                clip_norm=clip_norm, name=name)


def state(updates, params=()):
    """The shared tensors an update list writes that are not among `params`: the optimizer's
    state (velocities, moments, step count), e.g. to checkpoint with `sg.save_params`."""
    skip = {p.id for p in params}
    return [target for target, _ in updates if target.id not in skip]
