"""Issue 5 figures: whole training steps, against a handwritten numpy backprop, torch eager,
torch.compile and jax.jit when installed, in the same interleaved run.

  sgemm peak  2048^3 float32 on all cores, the faster of symgrad's GEMM and numpy's (the ceiling),
              timed inside W4's interleaved loop (the VM's speed drifts within a run)
  W4          MLP 784-512-512-10, relu, softmax cross-entropy, batch 256, SGD momentum
              (0.82 GFLOP per step): target faster than jax.jit, >= 0.8 of the sgemm peak
  conv        batch 64, 1x28x28 -> conv3x3x16 -> relu -> pool -> conv3x3x32 -> relu -> pool ->
              dense 10 (when sg.conv2d exists): target faster than torch eager and torch.compile

    python bench/bench_training.py [--no-compile-peers]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import symgrad  # noqa: E402,F401  (first: it sets GOMP_SPINCOUNT before torch loads libgomp)
from common import interleaved, kernel_count, optional, report  # noqa: E402

import symgrad as sg  # noqa: E402

torch = optional("torch")
jax = optional("jax")

SIZES = [(784, 512), (512, 512), (512, 10)]
BATCH, LR, MU = 256, 0.01, 0.9


PEAK_FLOPS = 2 * 2048 ** 3


def sgemm_systems() -> dict:
    """2048^3 float32 products on all cores, symgrad's (OpenBLAS on each thread's rows) and
    numpy's (its own OpenBLAS, with its own threads): the faster, in the same run, is the
    peak."""
    a = sg.placeholder("a", (2048, 2048))
    b = sg.placeholder("b", (2048, 2048))
    f = sg.function([a, b], a @ b)
    rng = np.random.default_rng(0)
    av, bv = (rng.standard_normal((2048, 2048), dtype=np.float32) for _ in range(2))
    out = np.empty((2048, 2048), np.float32)
    return {"sgemm 2048^3 symgrad": lambda: f(av, bv, out=out),
            "sgemm 2048^3 numpy": lambda: np.matmul(av, bv, out=out)}


def split_peak(med: dict) -> float:
    """Takes the sgemm timings out of `med`; returns the peak (flop/s) they give."""
    rates = {k: PEAK_FLOPS / med.pop(k) for k in [k for k in med if k.startswith("sgemm")]}
    print("\n== sgemm 2048^3 float32, all cores, same run: "
          + ", ".join(f"{k.removeprefix('sgemm 2048^3 ')} {r / 1e9:.1f} GFLOP/s"
                      for k, r in rates.items()) + " (the peak: the faster)")
    return max(rates.values())


def init_params(seed=0):
    rng = np.random.default_rng(seed)
    params = []
    for n_in, n_out in SIZES:
        limit = np.sqrt(6 / (n_in + n_out))
        params += [rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32),
                   np.zeros(n_out, np.float32)]
    return params


def symgrad_step(values, backend="c"):
    x = sg.placeholder("x", ("batch", 784))
    t = sg.placeholder("t", ("batch",), dtype="int64")
    ps = [sg.shared(v.copy(), name=f"p{i}") for i, v in enumerate(values)]
    h = x
    for i in range(0, len(ps), 2):
        h = h @ ps[i] + ps[i + 1]
        if i + 2 < len(ps):
            h = sg.relu(h)
    loss = sg.cross_entropy(h, t)
    step = sg.function([x, t], loss, updates=sg.optim.sgd(ps, sg.grad(loss, ps), lr=LR,
                                                          momentum=MU), backend=backend)
    return step


class NumpyMLP:
    """The handwritten backprop of the notes, with momentum."""

    def __init__(self, values):
        self.p = [v.copy() for v in values]
        self.v = [np.zeros_like(v) for v in values]

    def __call__(self, x, t):
        W1, b1, W2, b2, W3, b3 = self.p
        h1 = np.maximum(x @ W1 + b1, 0)
        h2 = np.maximum(h1 @ W2 + b2, 0)
        z = h2 @ W3 + b3
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        probs = e / e.sum(axis=1, keepdims=True)
        n = len(x)
        loss = -np.log(probs[np.arange(n), t]).mean()
        dz = probs
        dz[np.arange(n), t] -= 1
        dz /= n
        dW3, db3 = h2.T @ dz, dz.sum(0)
        dh2 = (dz @ W3.T) * (h2 > 0)
        dW2, db2 = h1.T @ dh2, dh2.sum(0)
        dh1 = (dh2 @ W2.T) * (h1 > 0)
        dW1, db1 = x.T @ dh1, dh1.sum(0)
        for p, v, g in zip(self.p, self.v, (dW1, db1, dW2, db2, dW3, db3)):
            v *= MU
            v += g
            p -= LR * v
        return loss


def torch_step(values, forward, compiled):
    """A torch training step (SGD momentum) of `forward(params, x, t) -> loss`."""
    params = [torch.tensor(v, requires_grad=True) for v in values]
    opt = torch.optim.SGD(params, lr=LR, momentum=MU)

    def loss_of(x, t):
        return forward(params, x, t)

    fwd = torch.compile(loss_of) if compiled else loss_of

    def step(x, t):
        opt.zero_grad(set_to_none=True)
        loss = fwd(x, t)
        loss.backward()
        opt.step()
        return loss
    return step


def add_torch_peers(systems, values, forward, arrays, compile_peers):
    tensors = [torch.from_numpy(a) for a in arrays]
    eager = torch_step(values, forward, compiled=False)
    systems["torch eager"] = lambda: eager(*tensors)
    if compile_peers:
        try:
            compiled = torch_step(values, forward, compiled=True)
            compiled(*tensors)
            systems["torch.compile"] = lambda: compiled(*tensors)
        except Exception as exc:  # noqa: BLE001
            print(f"  (torch.compile failed: {type(exc).__name__})")


def torch_mlp(p, x, t):
    h = torch.relu(x @ p[0] + p[1])
    h = torch.relu(h @ p[2] + p[3])
    return torch.nn.functional.cross_entropy(h @ p[4] + p[5], t)


def torch_cnn(p, x, t):
    F = torch.nn.functional
    h = F.max_pool2d(F.relu(F.conv2d(x, p[0], p[1])), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p[2], p[3])), 2)
    return F.cross_entropy(h.reshape(len(x), -1) @ p[4] + p[5], t)


def jax_step(values):
    import jax.numpy as jnp

    def loss_fn(params, x, t):
        h = jax.nn.relu(x @ params[0] + params[1])
        h = jax.nn.relu(h @ params[2] + params[3])
        logits = h @ params[4] + params[5]
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(x.shape[0]), t])

    @jax.jit
    def step(params, vel, x, t):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, t)
        vel = [MU * v + g for v, g in zip(vel, grads)]
        return loss, [p - LR * v for p, v in zip(params, vel)], vel

    state = {"p": [jnp.asarray(v) for v in values], "v": [jnp.zeros_like(v) for v in values]}

    def run(x, t):
        loss, state["p"], state["v"] = step(state["p"], state["v"], x, t)
        return loss.block_until_ready()
    return run


def w4(compile_peers):
    values = init_params()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((BATCH, 784), dtype=np.float32)
    t = rng.integers(0, 10, BATCH)
    step = symgrad_step(values)
    reference = NumpyMLP(values)
    for _ in range(3):  # the same training trajectory
        np.testing.assert_allclose(step(x, t), reference(x, t), rtol=1e-4)
    systems = {"symgrad c": lambda: step(x, t), "numpy backprop": lambda: reference(x, t)}
    if torch is not None:
        add_torch_peers(systems, values, torch_mlp, (x, t), compile_peers)
    if jax is not None:
        run = jax_step(values)
        jx, jt = jax.numpy.asarray(x), jax.numpy.asarray(t)
        systems["jax.jit"] = lambda: run(jx, jt)
    med = interleaved({**systems, **sgemm_systems()}, repeats=21)
    peak = split_peak(med)
    # forward, and the weight and input gradients, except the input gradient of layer 1
    flops = 2 * BATCH * (3 * sum(a * b for a, b in SIZES) - SIZES[0][0] * SIZES[0][1])
    extra = {k: f"{flops / v / 1e9:.0f} GFLOP/s, {flops / v / peak:.2f} of sgemm peak"
             for k, v in med.items()}
    report(f"W4 MLP training step 784-512-512-10, batch {BATCH}, SGD momentum "
           f"({flops / 1e9:.2f} GFLOP) [symgrad: {kernel_count(step)}]", med,
           "numpy backprop", extra=extra)


def conv_case(seed=2):
    """The conv training step and one batch: (step, parameter values, x, t)."""
    rng = np.random.default_rng(seed)
    shapes = [(16, 1, 3, 3), (16,), (32, 16, 3, 3), (32,), (32 * 5 * 5, 10), (10,)]
    values = [(rng.standard_normal(s) * 0.1).astype(np.float32) for s in shapes]
    x = sg.placeholder("x", ("batch", 1, 28, 28))
    t = sg.placeholder("t", ("batch",), dtype="int64")
    ps = [sg.shared(v.copy(), name=f"c{i}") for i, v in enumerate(values)]
    h = sg.max_pool2d(sg.relu(sg.conv2d(x, ps[0], ps[1])), 2)
    h = sg.max_pool2d(sg.relu(sg.conv2d(h, ps[2], ps[3])), 2)
    logits = sg.reshape(h, (h.shape[0], 32 * 5 * 5)) @ ps[4] + ps[5]
    loss = sg.cross_entropy(logits, t)
    step = sg.function([x, t], loss, updates=sg.optim.sgd(ps, sg.grad(loss, ps), lr=LR,
                                                          momentum=MU))
    xv = rng.standard_normal((64, 1, 28, 28), dtype=np.float32)
    tv = rng.integers(0, 10, 64)
    return step, values, xv, tv


def conv_step(compile_peers):
    if not hasattr(sg, "conv2d"):
        print("\n== conv step: sg.conv2d not available yet")
        return
    step, values, xv, tv = conv_case()
    systems = {"symgrad c": lambda: step(xv, tv)}
    if torch is not None:
        add_torch_peers(systems, values, torch_cnn, (xv, tv), compile_peers)
    med = interleaved(systems, repeats=11)
    report(f"conv training step, batch 64 [symgrad: {kernel_count(step)}]", med,
           "symgrad c")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-compile-peers", action="store_true")
    args = parser.parse_args()
    print(f"symgrad {sg.__version__}, numpy {np.__version__}, torch "
          f"{getattr(torch, '__version__', 'absent')}, jax {getattr(jax, '__version__', 'absent')}")
    w4(not args.no_compile_peers)
    conv_step(not args.no_compile_peers)


if __name__ == "__main__":
    main()
