"""The training toolkit: optimizers (clipping, weight decay, learning rate as a shared tensor)
against numpy references of torch's rules over several steps, on every backend; initializer
statistics; saving and loading parameters; freezing; the optimizers example."""
from __future__ import annotations

import os

import numpy as np
import pytest

import symgrad as sg
from symgrad import build

TARGET = [np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]), np.array([0.3, -0.7])]
SCALE = [np.array([[1.0, 2.0, 0.5], [3.0, 1.0, 0.25]]), np.array([2.0, 0.5])]
INIT = [np.array([[1.0, 1.0, -1.0], [0.0, 2.0, 1.0]]), np.array([-0.2, 0.4])]
TOL = dict(rtol=1e-11, atol=1e-13)


def problem(dtype="float64", names=("w", "b")):
    """Two shared params and a quadratic loss whose gradient is (p - target) * scale
    (global gradient norm about 6.6 at INIT, so clip_norm=1 clips and clip_norm=5 stops
    clipping after a few steps)."""
    params = [sg.shared(v.astype(dtype), name=n) for v, n in zip(INIT, names)]
    loss = sum(0.5 * sg.sum(sg.constant(s.astype(dtype)) * sg.square(p - t.astype(dtype)))
               for p, t, s in zip(params, TARGET, SCALE))
    return params, loss


def numpy_grads(ps):
    return [(p - t) * s for p, t, s in zip(ps, TARGET, SCALE)]


def numpy_clip(gs, max_norm):
    norm = np.sqrt(sum(np.sum(g * g) for g in gs))
    scale = min(1.0, max_norm / (norm + 1e-6))
    return [g * scale for g in gs]


class Reference:
    """torch.optim's rules in numpy, one `step(lr)` at a time; `state[slot][i]` mirrors the
    shared state tensors.  Gradients of all params are taken before any update (as a compiled
    step does), then clipped together, then weight decay is added."""

    def __init__(self, kind, momentum=0.0, nesterov=False, weight_decay=0.0, clip_norm=None,
                 rho=0.9, eps=1e-8, beta1=0.9, beta2=0.999):
        self.kind, self.momentum, self.nesterov = kind, momentum, nesterov
        self.wd, self.clip, self.rho, self.eps = weight_decay, clip_norm, rho, eps
        self.beta1, self.beta2 = beta1, beta2
        self.ps = [v.copy() for v in INIT]
        self.state = {slot: [np.zeros_like(v) for v in INIT]
                      for slot in ("velocity", "sq_avg", "m", "v")}
        self.t = 0

    def step(self, lr):
        gs = numpy_grads(self.ps)
        if self.clip is not None:
            gs = numpy_clip(gs, self.clip)
        self.t += 1
        for i, (p, g) in enumerate(zip(self.ps, gs)):
            if self.wd and self.kind != "adamw":
                g = g + self.wd * p
            if self.kind == "sgd":
                if self.momentum:
                    buf = self.state["velocity"][i] = self.momentum * self.state["velocity"][i] + g
                    g = g + self.momentum * buf if self.nesterov else buf
                p = p - lr * g
            elif self.kind == "rmsprop":
                s = self.state["sq_avg"][i] = self.rho * self.state["sq_avg"][i] + \
                    (1 - self.rho) * g * g
                p = p - lr * g / (np.sqrt(s) + self.eps)
            else:  # adam / adamw (torch.optim.Adam / AdamW)
                if self.kind == "adamw" and self.wd:
                    p = p * (1 - lr * self.wd)
                m = self.state["m"][i] = self.beta1 * self.state["m"][i] + (1 - self.beta1) * g
                v = self.state["v"][i] = self.beta2 * self.state["v"][i] + \
                    (1 - self.beta2) * g * g
                bias1, bias2 = 1 - self.beta1 ** self.t, 1 - self.beta2 ** self.t
                p = p - (lr / bias1) * m / (np.sqrt(v) / np.sqrt(bias2) + self.eps)
            self.ps[i] = p


def make_updates(kind, params, grads, lr, **options):
    options = {k: v for k, v in options.items() if k not in ("rho", "beta1", "beta2", "eps")
               or kind != "sgd"}
    if kind == "sgd":
        return sg.optim.sgd(params, grads, lr=lr, **options)
    if kind == "rmsprop":
        return sg.optim.rmsprop(params, grads, lr=lr, **options)
    if kind == "adam":
        return sg.optim.adam(params, grads, lr=lr, **options)
    return sg.optim.adamw(params, grads, lr=lr, **options)


def by_name(updates):
    return {t.name: t for t, _ in updates}


def check_against(ref, params, updates, kind):
    for p, r in zip(params, ref.ps):
        np.testing.assert_allclose(p.get_value(), r, **TOL, err_msg=f"param {p.name}")
    state = by_name(updates)
    slots = {"sgd": ["velocity"] if ref.momentum else [], "rmsprop": ["sq_avg"],
             "adam": ["m", "v"], "adamw": ["m", "v"]}[kind]
    for slot in slots:
        for i, p in enumerate(params):
            np.testing.assert_allclose(state[f"{p.name}.{slot}"].get_value(),
                                       ref.state[slot][i], **TOL, err_msg=f"{p.name}.{slot}")
    if kind in ("adam", "adamw"):
        assert float(state["adam.step"].get_value()) == ref.t


CASES = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.1, momentum=0.5, weight_decay=0.1)),
    ("sgd", dict(lr=0.1, weight_decay=0.2, clip_norm=1.0)),
    ("sgd", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05, clip_norm=5.0)),
    ("rmsprop", dict(lr=0.01, rho=0.9, eps=1e-8)),
    ("rmsprop", dict(lr=0.02, rho=0.8, eps=1e-6, weight_decay=0.1)),
    ("rmsprop", dict(lr=0.01, rho=0.9, weight_decay=0.05, clip_norm=1.0)),
    ("adam", dict(lr=0.05)),
    ("adam", dict(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-6, weight_decay=0.1)),
    ("adam", dict(lr=0.05, weight_decay=0.1, clip_norm=1.0)),
    ("adamw", dict(lr=0.05, weight_decay=0.1)),
    ("adamw", dict(lr=0.05, weight_decay=0.2, clip_norm=5.0)),
]


def case_id(case):
    kind, opts = case
    return kind + "-" + "-".join(f"{k}={v}" for k, v in opts.items())


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_update_rule_matches_numpy_reference(case, backend):
    kind, opts = case
    opts = dict(opts)
    lr = opts.pop("lr")
    params, loss = problem()
    updates = make_updates(kind, params, sg.grad(loss, params), lr, **opts)
    step = sg.function([], loss, updates=updates, backend=backend)
    ref = Reference(kind, **{k: v for k, v in opts.items()})
    for _ in range(6):
        before = numpy_grads(ref.ps)
        value = step()
        np.testing.assert_allclose(value, sum(0.5 * np.sum(g * g / s) for g, s in
                                              zip(before, SCALE)), rtol=1e-11)
        ref.step(lr)
        check_against(ref, params, updates, kind)


def test_adam_bias_correction_first_step(backend):
    """At t=1, m_hat = g and v_hat = g^2, so every coordinate moves by lr * g/(|g| + eps):
    without the correction the step would be (1-b1)/sqrt(1-b2) ~ 3.2 times as big."""
    params, loss = problem()
    step = sg.function([], loss, updates=sg.optim.adam(params, sg.grad(loss, params), lr=0.01),
                       backend=backend)
    step()
    for p, p0, g in zip(params, INIT, numpy_grads(INIT)):
        np.testing.assert_allclose(p.get_value(), p0 - 0.01 * g / (np.abs(g) + 1e-8), **TOL)


def test_nesterov_differs_from_plain_momentum(backend):
    results = []
    for nesterov in (False, True):
        params, loss = problem()
        step = sg.function([], loss, updates=sg.optim.sgd(
            params, sg.grad(loss, params), lr=0.05, momentum=0.9, nesterov=nesterov),
            backend=backend)
        step(), step()
        results.append(params[0].get_value())
    assert not np.allclose(results[0], results[1])


# ---------------------------------------------------------------- clipping
@pytest.mark.parametrize("max_norm", [1.0, 5.0, 100.0])
def test_clip_by_global_norm_values(max_norm, backend):
    a = sg.placeholder("a", (2, 3), "float64")
    b = sg.placeholder("b", (4,), "float64")
    clipped, norm = sg.optim.clip_by_global_norm([a, b], max_norm, return_norm=True)
    fn = sg.function([a, b], clipped + [norm], backend=backend)
    rng = np.random.default_rng(0)
    av, bv = rng.normal(size=(2, 3)) * 2, rng.normal(size=4) * 2
    ca, cb, n = fn(av, bv)
    ref_norm = np.sqrt(np.sum(av ** 2) + np.sum(bv ** 2))
    np.testing.assert_allclose(n, ref_norm, rtol=1e-12)
    ra, rb = numpy_clip([av, bv], max_norm)
    np.testing.assert_allclose(ca, ra, rtol=1e-12)
    np.testing.assert_allclose(cb, rb, rtol=1e-12)
    new_norm = np.sqrt(np.sum(ca ** 2) + np.sum(cb ** 2))
    assert new_norm <= max_norm * (1 + 1e-9)
    if ref_norm < max_norm:
        np.testing.assert_array_equal(ca, av)  # scale exactly 1: untouched


def test_clip_by_global_norm_composes_with_an_optimizer(backend):
    """`sgd(params, clip_by_global_norm(grads, 1.0))` is the same step as `clip_norm=1.0`."""
    values = []
    for explicit in (True, False):
        params, loss = problem()
        grads = sg.grad(loss, params)
        if explicit:
            updates = sg.optim.sgd(params, sg.optim.clip_by_global_norm(grads, 1.0), lr=0.1,
                                   momentum=0.9)
        else:
            updates = sg.optim.sgd(params, grads, lr=0.1, momentum=0.9, clip_norm=1.0)
        step = sg.function([], loss, updates=updates, backend=backend)
        for _ in range(3):
            step()
        values.append([p.get_value() for p in params])
    ref = Reference("sgd", momentum=0.9, clip_norm=1.0)
    for _ in range(3):
        ref.step(0.1)
    for got in values:
        for g, r in zip(got, ref.ps):
            np.testing.assert_allclose(g, r, **TOL)


def test_clip_keeps_float32_dtype(backend):
    params, loss = problem("float32")
    clipped = sg.optim.clip_by_global_norm(sg.grad(loss, params), 1.0)
    assert [c.dtype for c in clipped] == [np.float32, np.float32]
    out = sg.function([], clipped, backend=backend)()
    ref = numpy_clip(numpy_grads(INIT), 1.0)
    for o, r in zip(out, ref):
        assert o.dtype == np.float32
        np.testing.assert_allclose(o, r, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- learning rate as a shared tensor
@pytest.mark.parametrize("kind", ["sgd", "rmsprop", "adam", "adamw"])
def test_shared_lr_changes_without_rebuild(kind, backend):
    params, loss = problem()
    lr = sg.shared(np.float64(0.05), name="lr")
    opts = {"sgd": dict(momentum=0.9), "adamw": dict(weight_decay=0.01)}.get(kind, {})
    updates = make_updates(kind, params, sg.grad(loss, params), lr, **opts)
    step = sg.function([], loss, updates=updates, backend=backend)
    program, runs = step._program, build.compiler_runs
    ref = Reference(kind, **opts)
    schedule = [0.05, 0.05, 0.01, 0.0, 0.2, 0.001]
    for rate in schedule:
        lr.set_value(rate)
        if rate == 0.0 and kind == "sgd":
            frozen = [p.get_value() for p in params]
        step()
        ref.step(rate)
        check_against(ref, params, updates, kind)
        if rate == 0.0 and kind == "sgd":  # no step at all (the velocity still accumulates)
            for p, f in zip(params, frozen):
                np.testing.assert_array_equal(p.get_value(), f)
    assert build.compiler_runs == runs, "set_value of the learning rate rebuilt the step"
    assert step._program is program


def test_float32_shared_lr_as_in_the_docs(backend):
    """The documented form: `lr = sg.shared(np.float32(0.1))` with float32 parameters."""
    params, loss = problem("float32")
    lr = sg.shared(np.float32(0.1))
    step = sg.function([], loss, updates=sg.optim.sgd(params, sg.grad(loss, params), lr=lr,
                                                      momentum=0.9), backend=backend)
    runs = build.compiler_runs
    ref = Reference("sgd", momentum=0.9)
    for rate in (0.1, 0.1, 0.01, 0.01):
        lr.set_value(np.float32(rate))
        step()
        ref.step(float(np.float32(rate)))
    assert build.compiler_runs == runs
    for p, r in zip(params, ref.ps):
        assert p.get_value().dtype == np.float32
        np.testing.assert_allclose(p.get_value(), r, rtol=1e-5, atol=1e-6)


def test_shared_weight_decay_and_max_norm(backend):
    params, loss = problem()
    wd = sg.shared(np.float64(0.1), name="wd")
    max_norm = sg.shared(np.float64(1.0), name="max_norm")
    step = sg.function([], loss, updates=sg.optim.sgd(
        params, sg.grad(loss, params), lr=0.1, weight_decay=wd, clip_norm=max_norm),
        backend=backend)
    ref = Reference("sgd", weight_decay=0.1, clip_norm=1.0)
    step(), ref.step(0.1)
    wd.set_value(0.0), max_norm.set_value(3.0)
    ref.wd, ref.clip = 0.0, 3.0
    step(), ref.step(0.1)
    for p, r in zip(params, ref.ps):
        np.testing.assert_allclose(p.get_value(), r, **TOL)


# ---------------------------------------------------------------- state
def test_state_survives_across_calls_and_functions(backend):
    """The state lives in shared tensors, not in the Function: a second function compiled from
    the same updates carries on where the first stopped."""
    params, loss = problem()
    updates = sg.optim.adam(params, sg.grad(loss, params), lr=0.05, weight_decay=0.01)
    first = sg.function([], loss, updates=updates, backend=backend)
    ref = Reference("adam", weight_decay=0.01)
    for _ in range(3):
        first()
        ref.step(0.05)
    second = sg.function([], loss, updates=updates, backend=backend)
    for _ in range(3):
        second()
        ref.step(0.05)
    check_against(ref, params, updates, "adam")
    assert float(by_name(updates)["adam.step"].get_value()) == 6


def test_state_names_are_readable():
    params, loss = problem(names=("W1", "b1"))
    grads = sg.grad(loss, params)
    assert [t.name for t, _ in sg.optim.sgd(params, grads, momentum=0.9)] == \
        ["W1.velocity", "W1", "b1.velocity", "b1"]
    assert [t.name for t, _ in sg.optim.rmsprop(params, grads)] == \
        ["W1.sq_avg", "W1", "b1.sq_avg", "b1"]
    assert [t.name for t, _ in sg.optim.adamw(params, grads)] == \
        ["adam.step", "W1.m", "W1.v", "W1", "b1.m", "b1.v", "b1"]
    unnamed = [sg.shared(np.zeros(2)), sg.shared(np.zeros(3))]
    ups = sg.optim.sgd(unnamed, [sg.constant(np.ones(2)), sg.constant(np.ones(3))], momentum=0.5)
    assert [t.name for t, _ in ups if t.name] == ["param0.velocity", "param1.velocity"]
    state = sg.optim.state(sg.optim.adam(params, grads), params)
    assert [t.name for t in state] == ["adam.step", "W1.m", "W1.v", "b1.m", "b1.v"]
    assert sg.optim.sgd(params, grads) and sg.optim.state(sg.optim.sgd(params, grads), params) == []


def test_two_optimizers_in_one_checkpoint(tmp_path, backend):
    """Two param groups, each with its own Adam (a body at one rate, a head at another): the
    `name` prefixes keep the state apart, so one checkpoint holds both and resumes both."""
    def build_step():
        params, loss = problem(names=("body", "head"))
        grads = sg.grad(loss, params)
        updates = (sg.optim.adam(params[:1], grads[:1], lr=0.05, name="slow")
                   + sg.optim.adam(params[1:], grads[1:], lr=0.2, name="fast"))
        return params, updates, sg.function([], loss, updates=updates, backend=backend)

    params, updates, step = build_step()
    names = [t.name for t in sg.optim.state(updates, params)]
    assert names == ["slow.step", "slow.body.m", "slow.body.v", "fast.step", "fast.head.m",
                     "fast.head.v"]
    for _ in range(3):
        step()
    checkpoint = sg.save_params(tmp_path / "ckpt", params + sg.optim.state(updates, params))
    for _ in range(2):
        step()
    expected = [p.get_value() for p in params]

    params2, updates2, step2 = build_step()
    sg.load_params(checkpoint, params2 + sg.optim.state(updates2, params2))
    for _ in range(2):
        step2()
    for got, want in zip(params2, expected):
        np.testing.assert_array_equal(got.get_value(), want)
    # each group follows its own rule: the same as one Adam per param at that rate
    for p, lr in zip(params, (0.05, 0.2)):
        ref = Reference("adam")
        for _ in range(5):
            ref.step(lr)
        i = ("body", "head").index(p.name)
        np.testing.assert_allclose(p.get_value(), ref.ps[i], **TOL)


def test_unnamed_optimizers_clash_with_a_hint(tmp_path):
    params, loss = problem()
    grads = sg.grad(loss, params)
    updates = sg.optim.adam(params[:1], grads[:1]) + sg.optim.adam(params[1:], grads[1:])
    with pytest.raises(ValueError, match=r"duplicate name 'adam.step'.*name='head'"):
        sg.save_params(tmp_path / "x", sg.optim.state(updates, params))
    with pytest.raises(TypeError, match="adam: name must be a non-empty string"):
        sg.optim.adam(params, grads, name="")
    unnamed = sg.shared(np.zeros(2))
    ups = sg.optim.sgd([unnamed], [sg.constant(np.ones(2))], momentum=0.5, name="g2")
    assert ups[0][0].name == "g2.param0.velocity"


def test_state_dtype_follows_the_params():
    """The moments take their parameter's dtype; the step count is float64, as torch keeps
    1 - beta^t in Python doubles."""
    params, loss = problem("float32")
    for t, _ in sg.optim.adam(params, sg.grad(loss, params)):
        assert t.dtype == (np.float64 if t.name == "adam.step" else np.float32)


@pytest.mark.parametrize("first", ["float32", "float64"])
def test_adam_bias_correction_is_exact_in_float32_and_next_to_other_dtypes(first):
    """With eps = 0 and lr = 1 every Adam step moves each element by exactly 1, whatever beta2
    and the other parameters' dtype: float32's 0.9999 (0.99989998) once made 1 - beta2^t 1.7e-4
    off, and a float64 parameter listed after a float32 one inherited that."""
    dtypes = [first, "float64" if first == "float32" else "float32"]
    params = [sg.shared(np.zeros(3, d), name=f"w{i}") for i, d in enumerate(dtypes)]
    grads = [sg.constant(np.array([1.0, -2.0, 0.5], d)) for d in dtypes]
    step = sg.function([], [], updates=sg.optim.adam(params, grads, lr=1.0, beta2=0.9999,
                                                    eps=0.0))
    for k in range(1, 4):
        step()
        for p in params:
            np.testing.assert_allclose(p.get_value(), [-k, k, -k], rtol=1e-6 if
                                       p.dtype == np.float32 else 1e-12)


def test_optimizer_argument_errors():
    params, loss = problem()
    grads = sg.grad(loss, params)
    with pytest.raises(ValueError, match="nesterov needs momentum > 0"):
        sg.optim.sgd(params, grads, nesterov=True)
    with pytest.raises(ValueError, match="lr must be >= 0"):
        sg.optim.adam(params, grads, lr=-1.0)
    with pytest.raises(ValueError, match=r"beta2 must be in \[0.0, 1.0\)"):
        sg.optim.adam(params, grads, beta2=1.0)
    with pytest.raises(ValueError, match="lr must be a scalar tensor"):
        sg.optim.sgd(params, grads, lr=sg.shared(np.ones(2)))
    with pytest.raises(ValueError, match=r"grads\[0\] has shape \(2,\) but params\[0\] 'w'"):
        sg.optim.sgd(params, grads[::-1])
    with pytest.raises(ValueError, match="max_norm must be > 0"):
        sg.optim.clip_by_global_norm(grads, 0.0)
    with pytest.raises(TypeError, match="only float parameters"):
        sg.optim.sgd([sg.shared(np.zeros(2, np.int64), name="n")], [sg.constant(np.zeros(2))])
    with pytest.raises(ValueError, match="appears twice"):
        sg.optim.sgd([params[0], params[0]], [grads[0], grads[0]])


# ---------------------------------------------------------------- freezing
def test_frozen_param_is_unchanged_while_others_train(backend):
    """Transfer learning: the frozen layer is left out of the optimizer's params (its gradient
    is not even needed); the rest trains."""
    rng = np.random.default_rng(0)
    x = sg.placeholder("x", (None, 5))
    t = sg.placeholder("t", (None,), "int64")
    W1 = sg.shared(sg.init.he_normal((5, 8), seed=1), name="W1")
    b1 = sg.shared(np.zeros(8, np.float32), name="b1")
    W2 = sg.shared(sg.init.glorot_uniform((8, 3), seed=2), name="W2")
    b2 = sg.shared(np.zeros(3, np.float32), name="b2")
    loss = sg.cross_entropy(sg.relu(x @ W1 + b1) @ W2 + b2, t)
    frozen, trained = [W1, b1], [W2, b2]
    step = sg.function([x, t], loss, updates=sg.optim.adam(
        trained, sg.grad(loss, trained), lr=0.01, weight_decay=0.01), backend=backend)
    frozen_before = [p.get_value() for p in frozen]
    trained_before = [p.get_value() for p in trained]
    xs = rng.normal(size=(32, 5)).astype(np.float32)
    ts = rng.integers(0, 3, 32)
    losses = [float(step(xs, ts)) for _ in range(20)]
    for p, v in zip(frozen, frozen_before):
        np.testing.assert_array_equal(p.get_value(), v)
    for p, v in zip(trained, trained_before):
        assert not np.allclose(p.get_value(), v)
    assert losses[-1] < losses[0]


# ---------------------------------------------------------------- save / load
def test_save_load_round_trip_resumes_training(tmp_path, backend):
    params, loss = problem(names=("W", "b"))
    updates = sg.optim.adam(params, sg.grad(loss, params), lr=0.05)
    step = sg.function([], loss, updates=updates, backend=backend)
    checkpoint = params + sg.optim.state(updates, params)
    for _ in range(3):
        step()
    path = sg.save_params(tmp_path / "ckpt.npz", checkpoint)
    assert path == str(tmp_path / "ckpt.npz")
    saved = {t.name: t.get_value() for t in checkpoint}
    with np.load(path) as data:
        assert sorted(data.files) == sorted(saved)
        for name, value in saved.items():
            np.testing.assert_array_equal(data[name], value)
    after = [float(step()) for _ in range(3)]
    result = sg.load_params(path, checkpoint)
    assert sorted(result.loaded) == sorted(saved) and not result.missing and not result.unexpected
    for t in checkpoint:
        np.testing.assert_array_equal(t.get_value(), saved[t.name])
    # the already compiled step sees the loaded values (in place) and repeats the same steps
    assert [float(step()) for _ in range(3)] == after


def test_a_functions_state_resumes_dropout_training_exactly(tmp_path, backend):
    """fn.state holds the dropout draw's counter as well as the parameters and Adam's state:
    a model rebuilt from a checkpoint of it takes the same steps (without the counter it
    replayed the first steps' masks)."""
    rng = np.random.default_rng(0)
    xs, ts = rng.standard_normal((16, 5)), rng.integers(0, 3, 16)

    def build():
        x = sg.placeholder("x", (None, 5), "float64")
        t = sg.placeholder("t", (None,), "int64")
        W1 = sg.shared(sg.init.glorot_uniform((5, 4), seed=1, dtype="float64"), name="W1")
        W2 = sg.shared(sg.init.glorot_uniform((4, 3), seed=2, dtype="float64"), name="W2")
        loss = sg.cross_entropy(sg.dropout(sg.relu(x @ W1), 0.3, seed=7) @ W2, t)
        return sg.function([x, t], loss, updates=sg.optim.adam(
            [W1, W2], sg.grad(loss, [W1, W2]), lr=0.01), backend=backend)

    straight = build()
    expected = [float(straight(xs, ts)) for _ in range(6)]
    first = build()
    for _ in range(3):
        first(xs, ts)
    assert any(t.name == "rng7.counter" for t in first.state)
    sg.save_params(tmp_path / "ckpt.npz", first.state)
    resumed = build()
    sg.load_params(tmp_path / "ckpt.npz", resumed.state)
    assert [float(resumed(xs, ts)) for _ in range(3)] == expected[3:]


def test_load_into_a_fresh_model(tmp_path):
    params, _ = problem(names=("W", "b"))
    params[0].set_value(np.arange(6.0).reshape(2, 3))
    sg.save_params(tmp_path / "m", params)  # ".npz" appended, as np.savez does
    assert os.path.exists(tmp_path / "m.npz")
    fresh, _ = problem(names=("W", "b"))
    sg.load_params(tmp_path / "m", fresh)
    np.testing.assert_array_equal(fresh[0].get_value(), np.arange(6.0).reshape(2, 3))
    # a {name: tensor} dict saves unnamed tensors and renames
    sg.save_params(tmp_path / "d.npz", {"file": sg.shared(np.ones(3)),
                                        "allow_pickle": params[1]})
    target = sg.shared(np.zeros(3))
    res = sg.load_params(tmp_path / "d.npz", {"file": target}, strict=False)
    np.testing.assert_array_equal(target.get_value(), np.ones(3))
    assert res.loaded == ["file"] and res.unexpected == ["allow_pickle"]


def test_save_errors(tmp_path):
    a = sg.shared(np.zeros(2), name="a")
    with pytest.raises(ValueError, match=r"duplicate name 'a': params\[0\] and params\[1\]"):
        sg.save_params(tmp_path / "x.npz", [a, sg.shared(np.ones(3), name="a")])
    with pytest.raises(ValueError, match=r"params\[1\] \(shared tensor of shape \(3,\) float64\) "
                                         "has no name"):
        sg.save_params(tmp_path / "x.npz", [a, sg.shared(np.ones(3))])
    with pytest.raises(ValueError, match="same tensor"):
        sg.save_params(tmp_path / "x.npz", [a, a])
    with pytest.raises(TypeError, match=r"params\[0\] must be a shared tensor, got placeholder"):
        sg.save_params(tmp_path / "x.npz", [sg.placeholder("p", (2,))])
    assert not list(tmp_path.iterdir())  # nothing written, no temp file left behind


def test_load_errors_name_the_param_and_change_nothing(tmp_path):
    W = sg.shared(np.ones((2, 3), np.float32), name="W")
    b = sg.shared(np.ones(3, np.float32), name="b")
    path = sg.save_params(tmp_path / "p.npz", [W, b])

    def fresh(w_shape=(2, 3), w_dtype=np.float32, b_name="b"):
        return [sg.shared(np.zeros(w_shape, w_dtype), name="W"),
                sg.shared(np.zeros(3, np.float32), name=b_name)]

    ps = fresh(w_shape=(3, 2))
    with pytest.raises(sg.ShapeError, match=r"param 'W' has shape \(3, 2\) but the file's array "
                                            r"has shape \(2, 3\)"):
        sg.load_params(path, ps)
    ps = fresh(w_dtype=np.float64)
    with pytest.raises(TypeError, match="param 'W' is float64 but the file's array is float32"):
        sg.load_params(path, ps[::-1])  # b first: a failed load sets nothing, in any order
    assert not ps[1].get_value().any()
    ps = fresh(b_name="bias")
    with pytest.raises(ValueError, match="missing from the file: 'bias'; in the file but not "
                                         "among the params: 'b'"):
        sg.load_params(path, ps)
    assert not ps[0].get_value().any()
    res = sg.load_params(path, ps, strict=False)
    assert res.loaded == ["W"] and res.missing == ["bias"] and res.unexpected == ["b"]
    np.testing.assert_array_equal(ps[0].get_value(), np.ones((2, 3)))
    assert not ps[1].get_value().any()
    with pytest.raises(ValueError, match="in the file but not among the params: 'b'"):
        sg.load_params(path, [sg.shared(np.zeros((2, 3), np.float32), name="W")])
    # shape errors are errors even when not strict
    with pytest.raises(sg.ShapeError, match="param 'W'"):
        sg.load_params(path, fresh(w_shape=(6,)), strict=False)


# ---------------------------------------------------------------- initializers
INITS = ["glorot_uniform", "glorot_normal", "he_normal", "he_uniform", "xavier_uniform",
         "xavier_normal", "kaiming_normal", "kaiming_uniform"]


@pytest.mark.parametrize("name", INITS + ["zeros"])
def test_init_reproducible(name):
    fn = getattr(sg.init, name)
    a = fn((50, 40), seed=3)
    assert a.shape == (50, 40) and a.dtype == np.float32
    np.testing.assert_array_equal(a, fn((50, 40), seed=3))
    assert fn((50, 40), seed=3, dtype="float64").dtype == np.float64
    if name != "zeros":
        assert not np.array_equal(a, fn((50, 40), seed=4))
        # one seed gives one stream, whatever else the process drew
        np.random.seed(0), np.random.rand(10)
        np.testing.assert_array_equal(a, fn((50, 40), seed=3))
    else:
        assert not a.any()


@pytest.mark.parametrize("name,shape,variance", [
    ("glorot_uniform", (400, 300), 2 / 700),
    ("glorot_normal", (400, 300), 2 / 700),
    ("he_normal", (400, 300), 2 / 400),
    ("he_uniform", (400, 300), 2 / 400),
    ("glorot_uniform", (32, 16, 3, 3), 2 / (16 * 9 + 32 * 9)),  # conv (out, in, kh, kw)
    ("he_normal", (32, 16, 3, 3), 2 / (16 * 9)),
])
def test_init_variance(name, shape, variance):
    a = getattr(sg.init, name)(shape, seed=0, dtype="float64")
    n = a.size
    assert abs(a.mean()) < 5 * np.sqrt(variance / n)
    # the sample variance's relative standard error is sqrt(2/n) for a normal (less for a uniform)
    assert abs(a.var() / variance - 1) < 5 * np.sqrt(2 / n), a.var() / variance
    limit = np.sqrt(3 * variance)
    if name.endswith("uniform"):
        assert np.all(np.abs(a) <= limit) and np.abs(a).max() > 0.99 * limit
        # uniform: each tenth of [-limit, limit] holds about a tenth of the values
        counts = np.histogram(a, bins=10, range=(-limit, limit))[0] / n
        assert np.all(np.abs(counts - 0.1) < 0.01), counts
    else:
        # normal: about 68.3% within one std and 95.4% within two
        std = np.sqrt(variance)
        assert abs(np.mean(np.abs(a) < std) - 0.6827) < 0.01
        assert abs(np.mean(np.abs(a) < 2 * std) - 0.9545) < 0.01
        assert np.abs(a).max() > limit  # not truncated


def test_init_aliases():
    assert sg.init.xavier_uniform is sg.init.glorot_uniform
    assert sg.init.xavier_normal is sg.init.glorot_normal
    assert sg.init.kaiming_normal is sg.init.he_normal
    assert sg.init.kaiming_uniform is sg.init.he_uniform
