"""Train a two-layer MLP (with dropout) on scikit-learn's handwritten digits with one compiled
training step.

    python examples/mlp_digits.py            # C backend (default), prints a line per epoch
    python examples/mlp_digits.py --show-c   # also writes the generated C of the step
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import symgrad as sg


def load_digits(seed=0):
    try:
        from sklearn.datasets import load_digits as sk_load_digits
    except ImportError:
        raise SystemExit("this example needs scikit-learn: pip install '.[examples]'") from None
    data = sk_load_digits()
    x = (data.data / 16.0).astype(np.float32)
    y = data.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    x, y = x[order], y[order]
    n_test, n_val = len(x) // 5, len(x) // 10
    return ((x[n_test + n_val:], y[n_test + n_val:]), (x[n_test:n_test + n_val],
            y[n_test:n_test + n_val]), (x[:n_test], y[:n_test]))


def mlp(hidden=256, dropout=0.3):
    """The network: 64 -> hidden (relu, then inverted dropout) -> 10, initialized from the same
    seeds every time.  Returns the inputs, the parameters, and (mean loss, count of correct
    predictions) twice: for training, with dropout, and for evaluation, without it."""
    x = sg.placeholder("x", ("batch", 64))
    t = sg.placeholder("t", ("batch",), dtype="int64")
    W1 = sg.shared(sg.init.he_normal((64, hidden), seed=1), name="W1")
    b1 = sg.shared(np.zeros(hidden, np.float32), name="b1")
    W2 = sg.shared(sg.init.glorot_uniform((hidden, 10), seed=2), name="W2")
    b2 = sg.shared(np.zeros(10, np.float32), name="b2")

    def head(training):
        # training is a Python bool, so each graph has dropout compiled in or left out
        h = sg.dropout(sg.relu(x @ W1 + b1), dropout, training=training, seed=3)
        logits = h @ W2 + b2
        return sg.cross_entropy(logits, t), sg.sum(sg.argmax(logits, axis=1) == t)
    return [x, t], [W1, b1, W2, b2], head(True), head(False)


def build(backend, hidden=256, dropout=0.3, lr=0.05, momentum=0.9, weight_decay=1e-4):
    inputs, params, (loss, correct), evaluated = mlp(hidden, dropout)
    grads = sg.grad(loss, params)
    updates = sg.optim.sgd(params, grads, lr=lr, momentum=momentum, weight_decay=weight_decay)
    train_step = sg.function(inputs, [loss, correct], updates=updates, backend=backend)
    evaluate = sg.function(inputs, list(evaluated), backend=backend)
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


def fit(train_step, evaluate, params, data, epochs, batch, patience=None):
    """Train with a progress line per epoch, keep the parameters of the best validation loss
    (stopping early after `patience` epochs without improvement), report the test set."""
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = data
    rng = np.random.default_rng(0)
    best, best_values, waited, history = np.inf, None, 0, []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        train_loss, train_acc = run_epoch(train_step, x_train, y_train, batch, rng)
        seconds = time.perf_counter() - t0
        val_loss, val_acc = run_epoch(evaluate, x_val, y_val, 512)
        history.append(train_loss)
        print(f"epoch {epoch:3d}  loss {train_loss:.4f}  acc {train_acc:.3f}  "
              f"val_loss {val_loss:.4f}  val_acc {val_acc:.3f}  "
              f"{len(x_train) / seconds:,.0f} examples/s")
        if val_loss < best - 1e-4:
            best, waited = val_loss, 0
            best_values = [p.get_value() for p in params]
        else:
            waited += 1
            if patience is not None and waited >= patience:
                print(f"early stop: no val_loss improvement in {patience} epochs")
                break
    for p, v in zip(params, best_values):
        p.set_value(v)
    test_loss, test_acc = run_epoch(evaluate, x_test, y_test, 512)
    print(f"test: loss {test_loss:.4f}  accuracy {test_acc:.4f}  (best val_loss {best:.4f})")
    return history, test_acc


def compile_and_report(build_fn, backend, show_c, data):
    print(f"digits: {len(data[0][0])} train, {len(data[1][0])} validation, "
          f"{len(data[2][0])} test; backend={backend}")
    t0 = time.perf_counter()
    train_step, evaluate, params = build_fn(backend)
    kernels = f" ({len(train_step.kernels)} kernels)" if backend != "numpy" else ""
    print(f"compiled the training step in {time.perf_counter() - t0:.2f} s{kernels}")
    if show_c:
        with open(show_c, "w") as f:
            f.write(train_step.source)
        print(f"wrote the generated source to {show_c}")
    return train_step, evaluate, params


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--patience", type=int, default=10, help="early stopping on val loss")
    parser.add_argument("--backend", default="c", choices=["c", "numpy", "cuda"])
    parser.add_argument("--show-c", metavar="FILE", nargs="?", const="mlp_step.c",
                        help="write the generated source of the training step")
    args = parser.parse_args(argv)
    data = load_digits()
    train_step, evaluate, params = compile_and_report(build, args.backend, args.show_c, data)
    return fit(train_step, evaluate, params, data, args.epochs, args.batch, args.patience)


if __name__ == "__main__":
    main()
