"""Optimizers: a few compiled steps against a numpy implementation of the same (torch) rules."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import symgrad as sg

TARGET = [np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]), np.array([0.3, -0.7])]
SCALE = [np.array([[1.0, 2.0, 0.5], [3.0, 1.0, 0.25]]), np.array([2.0, 0.5])]
INIT = [np.array([[1.0, 1.0, -1.0], [0.0, 2.0, 1.0]]), np.array([-0.2, 0.4])]


def problem(dtype="float64"):
    """Two shared params and a quadratic loss whose gradient is (p - target) * scale."""
    params = [sg.shared(v.astype(dtype), name=f"p{i}") for i, v in enumerate(INIT)]
    loss = sum(0.5 * sg.sum(sg.constant(s.astype(dtype)) * sg.square(p - t.astype(dtype)))
               for p, t, s in zip(params, TARGET, SCALE))
    return params, loss


def numpy_grad(p, i):
    return (p - TARGET[i]) * SCALE[i]


# ---------------------------------------------------------------- numpy references (torch rules)
def ref_sgd(steps, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    ps = [v.copy() for v in INIT]
    bufs = [np.zeros_like(v) for v in INIT]
    history = []
    for _ in range(steps):
        for i, p in enumerate(ps):
            d_p = numpy_grad(p, i)
            if weight_decay:
                d_p = d_p + weight_decay * p
            if momentum:
                bufs[i] = momentum * bufs[i] + d_p  # torch: buf = g on step 1, same as 0*m + g
                d_p = d_p + momentum * bufs[i] if nesterov else bufs[i]
            ps[i] = p - lr * d_p
        history.append(([p.copy() for p in ps], [b.copy() for b in bufs]))
    return history


def ref_rmsprop(steps, lr, alpha, eps, weight_decay=0.0):
    ps = [v.copy() for v in INIT]
    sq = [np.zeros_like(v) for v in INIT]
    history = []
    for _ in range(steps):
        for i, p in enumerate(ps):
            g = numpy_grad(p, i)
            if weight_decay:
                g = g + weight_decay * p
            sq[i] = alpha * sq[i] + (1 - alpha) * g * g
            ps[i] = p - lr * g / (np.sqrt(sq[i]) + eps)
        history.append(([p.copy() for p in ps], [s.copy() for s in sq]))
    return history


def ref_adam(steps, lr, beta1, beta2, eps, weight_decay=0.0, decoupled=False):
    ps = [v.copy() for v in INIT]
    m = [np.zeros_like(v) for v in INIT]
    v = [np.zeros_like(x) for x in INIT]
    history = []
    for step in range(1, steps + 1):
        for i, p in enumerate(ps):
            g = numpy_grad(p, i)
            if weight_decay and not decoupled:
                g = g + weight_decay * p
            if weight_decay and decoupled:  # torch.optim.AdamW
                p = p * (1 - lr * weight_decay)
            m[i] = beta1 * m[i] + (1 - beta1) * g
            v[i] = beta2 * v[i] + (1 - beta2) * g * g
            bias1, bias2 = 1 - beta1 ** step, 1 - beta2 ** step
            denom = np.sqrt(v[i]) / np.sqrt(bias2) + eps
            ps[i] = p - (lr / bias1) * m[i] / denom
        history.append(([p.copy() for p in ps], [x.copy() for x in m], [x.copy() for x in v]))
    return history


def state_of(updates, suffix):
    return [t for t, _ in updates if t.name and t.name.endswith(suffix)]


def run_steps(params, loss, updates, steps, backend):
    step = sg.function([], loss, updates=updates, backend=backend)
    return [step() for _ in range(steps)]


TOL = dict(rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("momentum,nesterov,weight_decay", [
    (0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.0), (0.5, True, 0.1), (0.0, False, 0.1)])
def test_sgd(momentum, nesterov, weight_decay, backend):
    params, loss = problem()
    grads = sg.grad(loss, params)
    updates = sg.optim.sgd(params, grads, lr=0.1, momentum=momentum, nesterov=nesterov,
                           weight_decay=weight_decay)
    step = sg.function([], loss, updates=updates, backend=backend)
    velocities = state_of(updates, ".velocity")
    assert len(velocities) == (2 if momentum else 0)
    for ps_ref, bufs_ref in ref_sgd(4, 0.1, momentum, nesterov, weight_decay):
        step()
        for p, r in zip(params, ps_ref):
            np.testing.assert_allclose(p.get_value(), r, **TOL)
        for vel, r in zip(velocities, bufs_ref):
            np.testing.assert_allclose(vel.get_value(), r, **TOL)


def test_sgd_returns_the_loss_before_the_step(backend):
    params, loss = problem()
    step = sg.function([], loss, updates=sg.optim.sgd(params, sg.grad(loss, params), lr=0.1),
                       backend=backend)
    expected = sum(0.5 * np.sum(s * (p - t) ** 2) for p, t, s in zip(INIT, TARGET, SCALE))
    np.testing.assert_allclose(step(), expected, rtol=1e-14)


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_rmsprop(weight_decay, backend):
    params, loss = problem()
    updates = sg.optim.rmsprop(params, sg.grad(loss, params), lr=0.01, rho=0.9, eps=1e-8,
                               weight_decay=weight_decay)
    step = sg.function([], loss, updates=updates, backend=backend)
    sq = state_of(updates, ".sq_avg")
    assert len(sq) == 2
    for ps_ref, sq_ref in ref_rmsprop(5, 0.01, 0.9, 1e-8, weight_decay):
        step()
        for p, r in zip(params, ps_ref):
            np.testing.assert_allclose(p.get_value(), r, **TOL)
        for s, r in zip(sq, sq_ref):
            np.testing.assert_allclose(s.get_value(), r, **TOL)


@pytest.mark.parametrize("weight_decay,decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_adam(weight_decay, decoupled, backend):
    params, loss = problem()
    grads = sg.grad(loss, params)
    if decoupled:
        updates = sg.optim.adamw(params, grads, lr=0.05, weight_decay=weight_decay)
    else:
        updates = sg.optim.adam(params, grads, lr=0.05, beta1=0.9, beta2=0.999, eps=1e-8,
                                weight_decay=weight_decay)
    step = sg.function([], loss, updates=updates, backend=backend)
    ms, vs = state_of(updates, ".m"), state_of(updates, ".v")
    (count,) = state_of(updates, "adam.step")
    for k, (ps_ref, m_ref, v_ref) in enumerate(
            ref_adam(5, 0.05, 0.9, 0.999, 1e-8, weight_decay, decoupled), start=1):
        step()
        assert count.get_value().shape == () and float(count.get_value()) == k
        for p, r in zip(params, ps_ref):
            np.testing.assert_allclose(p.get_value(), r, **TOL)
        for m, r in zip(ms, m_ref):
            np.testing.assert_allclose(m.get_value(), r, **TOL)
        for v, r in zip(vs, v_ref):
            np.testing.assert_allclose(v.get_value(), r, **TOL)


def test_adam_float32(backend):
    params, loss = problem("float32")
    updates = sg.optim.adam(params, sg.grad(loss, params), lr=0.05)
    step = sg.function([], loss, updates=updates, backend=backend)
    for ps_ref, _, _ in ref_adam(3, 0.05, 0.9, 0.999, 1e-8):
        step()
        for p, r in zip(params, ps_ref):
            assert p.get_value().dtype == np.float32
            np.testing.assert_allclose(p.get_value(), r, rtol=1e-5, atol=1e-6)


def test_shared_learning_rate_changes_without_recompiling(backend):
    params, loss = problem()
    lr = sg.shared(np.array(0.1), name="lr")
    step = sg.function([], loss, updates=sg.optim.sgd(params, sg.grad(loss, params), lr=lr),
                       backend=backend)
    step()
    lr.set_value(0.0)
    before = [p.get_value() for p in params]
    step()
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.get_value(), b)
    lr.set_value(0.2)
    step()
    expected = before[0] - 0.2 * numpy_grad(before[0], 0)
    np.testing.assert_allclose(params[0].get_value(), expected, **TOL)


def test_optimizer_argument_errors():
    params, loss = problem()
    grads = sg.grad(loss, params)
    with pytest.raises(ValueError, match="optimizer: 2 params but 1 grads"):
        sg.optim.sgd(params, grads[:1])
    with pytest.raises(TypeError, match="optimizer: params must be shared tensors"):
        sg.optim.adam([sg.placeholder("x", (2,), "float64")], [grads[1]])


def test_initializers():
    a = sg.init.glorot_uniform((64, 32), seed=0)
    assert a.shape == (64, 32) and a.dtype == np.float32
    np.testing.assert_array_equal(a, sg.init.glorot_uniform((64, 32), seed=0))
    assert not np.array_equal(a, sg.init.glorot_uniform((64, 32), seed=1))
    limit = np.sqrt(6 / 96)
    assert np.all(np.abs(a) <= limit) and np.abs(a).max() > 0.9 * limit
    n = sg.init.he_normal((400, 300), seed=0)
    assert abs(n.std() - np.sqrt(2 / 400)) < 0.02 * np.sqrt(2 / 400)
    g = sg.init.glorot_normal((400, 300), seed=0)
    assert abs(g.std() - np.sqrt(2 / 700)) < 0.02 * np.sqrt(2 / 700)
    z = sg.init.zeros((3, 2))
    assert z.shape == (3, 2) and z.dtype == np.float32 and not z.any()


def test_initializers_without_a_seed_differ_per_call_but_not_per_run():
    """Two layers of one shape built without seeds get different weights (a default seed of 0
    gave them the same); a new process that builds in the same order gets the same ones."""
    script = ("import symgrad as sg; a = sg.init.glorot_uniform((4, 3)); "
              "b = sg.init.glorot_uniform((4, 3)); c = sg.init.glorot_uniform((4, 3), seed=0); "
              "assert not (a == b).all() and not (a == c).all() and not (b == c).all(); "
              "print(a.tobytes().hex())")
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           check=True).stdout for _ in range(2)]
    assert runs[0] == runs[1] and runs[0].strip()


def test_initializers_refuse_integer_dtypes_and_draw_empty_shapes():
    for init in (sg.init.glorot_uniform, sg.init.glorot_normal, sg.init.he_normal,
                 sg.init.he_uniform):
        with pytest.raises(TypeError, match=f"init.{init.__name__}: dtype must be a float"):
            init((3, 4), dtype="int32")
        for shape in [(0, 5), (5, 0), (0, 0), (0, 3, 3, 3)]:
            empty = init(shape, dtype="float64")
            assert empty.shape == shape and empty.dtype == np.float64
