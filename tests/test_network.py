"""A two-layer network: symgrad's gradients against backprop derived by hand in numpy."""
from __future__ import annotations

import numpy as np
import pytest

import symgrad as sg

N, D, H, O = 7, 5, 6, 3


def data(seed=0):
    rng = np.random.default_rng(seed)
    params = dict(W1=rng.standard_normal((D, H)) * 0.7, b1=rng.standard_normal(H) * 0.3,
                  W2=rng.standard_normal((H, O)) * 0.7, b2=rng.standard_normal(O) * 0.3)
    return rng.standard_normal((N, D)), rng.standard_normal((N, O)), params


def hand_backprop(x, t, p, loss_kind):
    z = x @ p["W1"] + p["b1"]
    h = np.maximum(z, 0)
    y = h @ p["W2"] + p["b2"]
    r = y - t
    if loss_kind == "half_sse":
        loss, dy = 0.5 * np.sum(r ** 2), r
    else:  # mse: mean over all N*O elements
        loss, dy = np.mean(r ** 2), 2 * r / r.size
    grads = dict(W2=h.T @ dy, b2=dy.sum(axis=0))
    dh = dy @ p["W2"].T
    dz = dh * (z > 0)
    grads.update(W1=x.T @ dz, b1=dz.sum(axis=0))
    return loss, grads, dz @ p["W1"].T


def build(loss_kind, params):
    x = sg.placeholder("x", (None, D), "float64")
    t = sg.placeholder("t", (None, O), "float64")
    shared = {k: sg.shared(v, name=k) for k, v in params.items()}
    h = sg.relu(x @ shared["W1"] + shared["b1"])
    y = h @ shared["W2"] + shared["b2"]
    loss = 0.5 * sg.sum((y - t) ** 2) if loss_kind == "half_sse" else sg.mse(y, t)
    return x, t, shared, loss


@pytest.mark.parametrize("loss_kind", ["half_sse", "mse"])
def test_two_layer_gradients_match_hand_backprop(loss_kind, backend):
    xa, ta, params = data()
    z = xa @ params["W1"] + params["b1"]
    assert np.min(np.abs(z)) > 1e-3, "the sample must stay away from the relu kink"
    x, t, shared, loss = build(loss_kind, params)
    names = ["W1", "b1", "W2", "b2"]
    grads = sg.grad(loss, [shared[k] for k in names] + [x])
    fn = sg.function([x, t], [loss] + grads, backend=backend)
    out = fn(xa, ta)
    loss_ref, grads_ref, dx_ref = hand_backprop(xa, ta, params, loss_kind)
    np.testing.assert_allclose(out[0], loss_ref, rtol=1e-10, atol=1e-10)
    for name, got in zip(names, out[1:5]):
        assert got.shape == params[name].shape
        np.testing.assert_allclose(got, grads_ref[name], rtol=1e-10, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(out[5], dx_ref, rtol=1e-10, atol=1e-10)


def test_two_layer_training_steps_match_hand_sgd(backend):
    """Compiled forward + backward + SGD updates, several steps, against the numpy loop."""
    xa, ta, params = data(1)
    x, t, shared, loss = build("half_sse", params)
    names = ["W1", "b1", "W2", "b2"]
    grads = sg.grad(loss, [shared[k] for k in names])
    lr = 0.01
    step = sg.function([x, t], loss, updates=sg.optim.sgd([shared[k] for k in names], grads,
                                                          lr=lr), backend=backend)
    ref = {k: v.copy() for k, v in params.items()}
    rng = np.random.default_rng(2)
    for batch in (N, 3, 1, N):
        xb, tb = rng.standard_normal((batch, D)), rng.standard_normal((batch, O))
        got_loss = step(xb, tb)
        loss_ref, g, _ = hand_backprop(xb, tb, ref, "half_sse")
        np.testing.assert_allclose(got_loss, loss_ref, rtol=1e-10)
        for k in names:
            ref[k] -= lr * g[k]
            np.testing.assert_allclose(shared[k].get_value(), ref[k], rtol=1e-10, atol=1e-12)


def test_float32_network_tracks_float64(backend):
    xa, ta, params = data(3)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    x = sg.placeholder("x", (None, D), "float32")
    t = sg.placeholder("t", (None, O), "float32")
    shared = {k: sg.shared(v, name=k) for k, v in p32.items()}
    y = sg.relu(x @ shared["W1"] + shared["b1"]) @ shared["W2"] + shared["b2"]
    loss = sg.mse(y, t)
    grads = sg.grad(loss, [shared["W1"], shared["W2"]])
    out = sg.function([x, t], [loss] + grads, backend=backend)(xa.astype(np.float32),
                                                                 ta.astype(np.float32))
    assert all(o.dtype == np.float32 for o in out)
    loss_ref, g, _ = hand_backprop(xa.astype(np.float32).astype(np.float64),
                                   ta.astype(np.float32).astype(np.float64),
                                   {k: v.astype(np.float64) for k, v in p32.items()}, "mse")
    np.testing.assert_allclose(out[0], loss_ref, rtol=1e-5)
    np.testing.assert_allclose(out[1], g["W1"], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out[2], g["W2"], rtol=1e-4, atol=1e-6)
