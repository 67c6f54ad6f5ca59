"""Train a small convolutional network on scikit-learn's 8x8 handwritten digits with one compiled
training step (forward, backward and Adam updates in one native call).

    conv 3x3 (1 -> 16, padding 1) -> relu -> max_pool 2x2 -> dropout -> dense 256 -> 10

    python examples/cnn_digits.py                # C backend (default), a line per epoch
    python examples/cnn_digits.py --epochs 5     # shorter
    python examples/cnn_digits.py --show-c       # also writes the generated C of the step
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import symgrad as sg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp_digits import compile_and_report, fit, load_digits  # noqa: E402  (same data, same loop)


def load_images():
    """The split of examples/mlp_digits.py, as (n, 1, 8, 8) NCHW images."""
    return [(x.reshape(-1, 1, 8, 8), y) for x, y in load_digits()]


def build(backend, channels=16, lr=3e-3, weight_decay=3e-4, dropout=0.5):
    x = sg.placeholder("x", ("batch", 1, 8, 8))
    t = sg.placeholder("t", ("batch",), dtype="int64")
    K = sg.shared(sg.init.he_normal((channels, 1, 3, 3), seed=1), name="K")
    c = sg.shared(np.zeros(channels, np.float32), name="c")
    W = sg.shared(sg.init.glorot_uniform((channels * 16, 10), seed=2), name="W")
    b = sg.shared(np.zeros(10, np.float32), name="b")
    params = [K, c, W, b]

    def head(training):
        h = sg.relu(sg.conv2d(x, K, c, padding=1))              # (batch, channels, 8, 8)
        h = sg.max_pool2d(h, 2)                                 # (batch, channels, 4, 4)
        h = sg.reshape(h, (x.shape[0], channels * 16))
        # inverted dropout on the features, compiled into the training step only
        logits = sg.dropout(h, dropout, training=training, seed=3) @ W + b
        return sg.cross_entropy(logits, t), sg.sum(sg.argmax(logits, axis=1) == t)

    loss, correct = head(True)
    # L2 on the weights (not the biases) added to the cost
    cost = loss + weight_decay * (sg.sum(sg.square(K)) + sg.sum(sg.square(W)))
    updates = sg.optim.adam(params, sg.grad(cost, params), lr=lr)
    train_step = sg.function([x, t], [loss, correct], updates=updates, backend=backend)
    evaluate = sg.function([x, t], list(head(False)), backend=backend)
    return train_step, evaluate, params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--backend", default="c", choices=["c", "numpy", "cuda"])
    parser.add_argument("--show-c", metavar="FILE", nargs="?", const="cnn_step.c",
                        help="write the generated source of the training step")
    args = parser.parse_args(argv)
    data = load_images()
    train_step, evaluate, params = compile_and_report(build, args.backend, args.show_c, data)
    return fit(train_step, evaluate, params, data, args.epochs, args.batch)


if __name__ == "__main__":
    main()
