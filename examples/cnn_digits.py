"""Train a small convolutional network on scikit-learn's 8x8 handwritten digits with one compiled
training step (forward, backward and Adam updates in one native call).

    conv 3x3 (1 -> 16, padding 1) -> relu -> max_pool 2x2 -> dense 256 -> 10

    python examples/cnn_digits.py                # C backend (default), a line per epoch
    python examples/cnn_digits.py --epochs 5     # shorter
    python examples/cnn_digits.py --show-c       # also writes the generated C of the step
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import symgrad as sg


def load_digits(seed=0):
    """The same split as examples/mlp_digits.py: 70% train, 10% validation, 20% test."""
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise SystemExit("this example needs scikit-learn: pip install '.[examples]'") from None
    data = sk_load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None]     # (n, 1, 8, 8), NCHW
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_test, n_val = len(x) // 5, len(x) // 10
    return ((x[n_test + n_val:], y[n_test + n_val:]), (x[n_test:n_test + n_val],
            y[n_test:n_test + n_val]), (x[:n_test], y[:n_test]))


def build(backend, channels=16, lr=3e-3, weight_decay=3e-4):
    x = sg.placeholder("x", ("batch", 1, 8, 8))
    t = sg.placeholder("t", ("batch",), dtype="int64")
    K = sg.shared(sg.init.he_normal((channels, 1, 3, 3), seed=1), name="K")
    c = sg.shared(np.zeros(channels, np.float32), name="c")
    W = sg.shared(sg.init.glorot_uniform((channels * 16, 10), seed=2), name="W")
    b = sg.shared(np.zeros(10, np.float32), name="b")
    params = [K, c, W, b]
    h = sg.relu(sg.conv2d(x, K, c, padding=1))                  # (batch, channels, 8, 8)
    h = sg.max_pool2d(h, 2)                                     # (batch, channels, 4, 4)
    logits = sg.reshape(h, (x.shape[0], channels * 16)) @ W + b
    loss = sg.cross_entropy(logits, t)
    correct = sg.sum(sg.argmax(logits, axis=1) == t)
    # L2 on the weights (not the biases) added to the cost
    cost = loss + weight_decay * (sg.sum(sg.square(K)) + sg.sum(sg.square(W)))
    grads = sg.grad(cost, params)
    updates = sg.optim.adam(params, grads, lr=lr)
    train_step = sg.function([x, t], [loss, correct], updates=updates, backend=backend)
    evaluate = sg.function([x, t], [loss, correct], backend=backend)
    return train_step, evaluate, params


def run_epoch(fn, x, y, batch, rng=None):
    order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
    total_loss, total_correct = 0.0, 0
    for start in range(0, len(x), batch):
        idx = order[start:start + batch]
        loss, correct = fn(x[idx], y[idx])
        total_loss += float(loss) * len(idx)
        total_correct += int(correct)
    return total_loss / len(x), total_correct / len(x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--backend", default="c", choices=["c", "numpy", "cuda"])
    parser.add_argument("--show-c", metavar="FILE", nargs="?", const="cnn_step.c",
                        help="write the generated source of the training step")
    args = parser.parse_args(argv)

    (x_train, y_train), (x_val, y_val), (x_test, y_test) = load_digits()
    print(f"digits: {len(x_train)} train, {len(x_val)} validation, {len(x_test)} test; "
          f"backend={args.backend}")
    t0 = time.perf_counter()
    train_step, evaluate, params = build(args.backend)
    print(f"compiled the training step in {time.perf_counter() - t0:.2f} s "
          f"({len(train_step.kernels)} kernels)")
    if args.show_c:
        with open(args.show_c, "w") as f:
            f.write(train_step.source)
        print(f"wrote the generated source to {args.show_c}")

    rng = np.random.default_rng(0)
    best, best_values, history = np.inf, None, []
    for epoch in range(1, args.epochs + 1):
        t0 = time.perf_counter()
        train_loss, train_acc = run_epoch(train_step, x_train, y_train, args.batch, rng)
        seconds = time.perf_counter() - t0
        val_loss, val_acc = run_epoch(evaluate, x_val, y_val, 512)
        history.append(train_loss)
        print(f"epoch {epoch:3d}  loss {train_loss:.4f}  acc {train_acc:.3f}  "
              f"val_loss {val_loss:.4f}  val_acc {val_acc:.3f}  "
              f"{len(x_train) / seconds:,.0f} examples/s")
        if val_loss < best:   # keep the parameters of the best validation loss
            best, best_values = val_loss, [p.get_value() for p in params]
    for p, v in zip(params, best_values):
        p.set_value(v)
    test_loss, test_acc = run_epoch(evaluate, x_test, y_test, 512)
    print(f"test: loss {test_loss:.4f}  accuracy {test_acc:.4f}  (best val_loss {best:.4f})")
    return history, test_acc


if __name__ == "__main__":
    main()
