"""The graphs the CUDA backend is checked on, grouped so that each group is one compiled step.

A step per op case would mean hundreds of builds; a chunk of cases in one step (each case's
inputs and outputs side by side) checks the same kernels with a few builds.  The same chunks
feed the emulated runs (tests/test_cuda.py) and the nvcc compile check (tests/test_cuda_nvcc.py).
"""
from __future__ import annotations

import numpy as np

import symgrad as sg

from op_cases import CASES
from test_ops import differentiated, first_order, rng_for, second_order

CHUNK = 40


class Chunk:
    """Several cases compiled as one step: `inputs` placeholders, `outputs`, `arrays` sample
    values and `labels` (which case each output belongs to)."""

    def __init__(self, name):
        self.name = name
        self.inputs, self.outputs, self.arrays, self.labels = [], [], [], []

    def holders(self, arrays, tag):
        start = len(self.inputs)
        holders = [sg.placeholder(f"c{start + i}", a.shape, a.dtype)
                   for i, a in enumerate(arrays)]
        self.inputs += holders
        self.arrays += list(arrays)
        return holders

    def add(self, label, outputs):
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        self.outputs += list(outputs)
        self.labels += [label] * len(outputs)


def _chunked(items, kind):
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]


def value_chunks():
    """(name, builder) per chunk of the registry's value tests, float32 and float64."""
    specs = [(c, d) for c in CASES for d in c.dtypes]
    out = []
    for n, part in enumerate(_chunked(specs, "values")):
        def build(part=part, n=n):
            chunk = Chunk(f"values{n}")
            for case, dtype in part:
                arrays = case.inputs(rng_for(case.id, dtype), np.dtype(dtype))
                chunk.add(f"{case.id}-{dtype}", case.fn(*chunk.holders(arrays, case.id)))
            return chunk
        out.append((f"values{n}", build))
    return out


def gradient_chunks():
    """(name, builder) per chunk of first-order (and second-order) gradient graphs, float64."""
    specs = [(c, 1) for c in CASES if c.gradcheck and "float64" in c.dtypes]
    specs += [(c, 2) for c in CASES if c.second_order]
    out = []
    for n, part in enumerate(_chunked(specs, "grads")):
        def build(part=part, n=n):
            chunk = Chunk(f"grads{n}")
            for case, order in part:
                arrays = case.inputs(rng_for(case.id, "grad" if order == 1 else "grad2"),
                                     np.dtype("float64"))
                diff = differentiated(case, arrays)
                make = first_order if order == 1 else second_order
                f = make(case, arrays, diff, rng_for(case.id, "w" if order == 1 else "wv"))
                holders = chunk.holders([arrays[i] for i in diff], case.id)
                chunk.add(f"{case.id}-grad{order}", sg.grad(f(*holders), holders))
            return chunk
        out.append((f"grads{n}", build))
    return out


def mlp_step(backend, batch_dim="batch_cuda", hidden=24):
    """A small MLP training step (relu, softmax cross-entropy, SGD with momentum): fresh
    parameters on every call, so two backends start from the same values."""
    x = sg.placeholder("x", (batch_dim, 12))
    t = sg.placeholder("t", (batch_dim,), dtype="int64")
    W1 = sg.shared(sg.init.he_normal((12, hidden), seed=1), name="W1")
    b1 = sg.shared(np.zeros(hidden, np.float32), name="b1")
    W2 = sg.shared(sg.init.glorot_uniform((hidden, 5), seed=2), name="W2")
    b2 = sg.shared(np.full(5, 0.1, np.float32), name="b2")
    params = [W1, b1, W2, b2]
    logits = sg.relu(x @ W1 + b1) @ W2 + b2
    loss = sg.cross_entropy(logits, t)
    correct = sg.sum(sg.argmax(logits, axis=1) == t)
    updates = sg.optim.sgd(params, sg.grad(loss, params), lr=0.1, momentum=0.9,
                           weight_decay=1e-4)
    step = sg.function([x, t], [loss, correct], updates=updates, backend=backend)
    return step, params


def mlp_data(batches=4, batch=37, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 2, (5, 12))
    out = []
    for _ in range(batches):
        t = rng.integers(0, 5, batch)
        x = (centers[t] + rng.normal(0, 1, (batch, 12))).astype(np.float32)
        out.append((x, t.astype(np.int64)))
    return out


def all_chunks():
    return value_chunks() + gradient_chunks()


CHUNKS_BY_NAME = all_chunks()
