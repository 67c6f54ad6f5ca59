"""Optimizers as graph updates: each returns [(shared, new_value), ...] for `sg.function`, with
its state (velocities, moments, step count) in shared tensors updated inside the compiled step.
`lr` may be a float or a shared scalar, so a schedule changes it without recompiling."""
from __future__ import annotations

import numpy as np

from . import api as sg


def _state_like(param, name):
    return sg.shared(np.zeros(param.shape, param.dtype), name=f"{param.name or 'param'}.{name}")


def _check(params, grads):
    params, grads = list(params), list(grads)
    if len(params) != len(grads):
        raise ValueError(f"optimizer: {len(params)} params but {len(grads)} grads")
    for p in params:
        if getattr(p, "op", None) != "shared":
            raise TypeError("optimizer: params must be shared tensors")
    return params, grads


def _decayed(param, grad, weight_decay):
    return grad + weight_decay * param if weight_decay else grad


def sgd(params, grads, lr=0.01, momentum=0.0, nesterov=False, weight_decay=0.0):
    """p -= lr * step, with step = g, or with momentum (torch's form): v = momentum*v + g,
    step = v (or g + momentum*v with nesterov).  weight_decay adds an L2 term to g."""
    params, grads = _check(params, grads)
    updates = []
    for p, g in zip(params, grads):
        g = _decayed(p, g, weight_decay)
        if momentum:
            v = _state_like(p, "velocity")
            v_new = momentum * v + g
            updates.append((v, v_new))
            g = g + momentum * v_new if nesterov else v_new
        updates.append((p, p - lr * g))
    return updates


def rmsprop(params, grads, lr=0.001, rho=0.9, eps=1e-8, weight_decay=0.0):
    """s = rho*s + (1-rho)*g^2; p -= lr * g / (sqrt(s) + eps)."""
    params, grads = _check(params, grads)
    updates = []
    for p, g in zip(params, grads):
        g = _decayed(p, g, weight_decay)
        s = _state_like(p, "sq_avg")
        s_new = rho * s + (1 - rho) * sg.square(g)
        updates += [(s, s_new), (p, p - lr * g / (sg.sqrt(s_new) + eps))]
    return updates


def adam(params, grads, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
         decoupled=False):
    """Adam with bias correction; `decoupled=True` (or `adamw`) applies weight decay to the
    parameters directly instead of through the gradient."""
    params, grads = _check(params, grads)
    dtype = params[0].dtype if params else np.float32
    t = sg.shared(np.zeros((), dtype), name="adam.step")
    t_new = t + 1
    correction1 = 1 - sg.power(sg.constant(beta1, dtype), t_new)
    correction2 = 1 - sg.power(sg.constant(beta2, dtype), t_new)
    updates = [(t, t_new)]
    for p, g in zip(params, grads):
        if not decoupled:
            g = _decayed(p, g, weight_decay)
        m, v = _state_like(p, "m"), _state_like(p, "v")
        m_new = beta1 * m + (1 - beta1) * g
        v_new = beta2 * v + (1 - beta2) * sg.square(g)
        step = lr * (m_new / correction1) / (sg.sqrt(v_new / correction2) + eps)
        if decoupled and weight_decay:
            step = step + lr * weight_decay * p
        updates += [(m, m_new), (v, v_new), (p, p - step)]
    return updates


def adamw(params, grads, lr=0.001, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01):
    return adam(params, grads, lr, beta1, beta2, eps, weight_decay, decoupled=True)
