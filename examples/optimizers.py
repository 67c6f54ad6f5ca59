"""Train the same small MLP on scikit-learn's digits with SGD, SGD+momentum, RMSprop and Adam.

    python examples/optimizers.py               # 8 epochs each, prints a table of loss per epoch
    python examples/optimizers.py --epochs 20 --lr-decay 0.8 --clip-norm 1.0

Every optimizer starts from the same initial weights and sees the batches in the same order. The
learning rate is a shared scalar (`sg.shared(np.float32(lr))`), so `--lr-decay` changes it
between epochs with `lr.set_value(...)` and no rebuild of the compiled step. If matplotlib is
installed, the loss curves are also written to optimizers.png (`--plot FILE` to choose another
name, `--no-plot` to skip it).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

import symgrad as sg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp_digits import load_digits, mlp, run_epoch  # noqa: E402  (same data split as mlp_digits.py)

OPTIMIZERS = {
    # name: (optimizer, learning rate, extra options)
    "SGD": (sg.optim.sgd, 0.1, {}),
    "SGD+momentum": (sg.optim.sgd, 0.05, {"momentum": 0.9}),
    "RMSprop": (sg.optim.rmsprop, 0.001, {"rho": 0.9}),
    "Adam": (sg.optim.adam, 0.001, {}),
}


def build(optimizer, lr, options, backend, hidden=128, weight_decay=1e-4, clip_norm=None):
    """The MLP of mlp_digits.py without its dropout (one graph for training and evaluation),
    initialized from the same seeds every time."""
    inputs, params, (loss, correct), _ = mlp(hidden, dropout=0.0)
    lr_tensor = sg.shared(np.float32(lr), name="lr")
    updates = optimizer(params, sg.grad(loss, params), lr=lr_tensor, weight_decay=weight_decay,
                        clip_norm=clip_norm, **options)
    train_step = sg.function(inputs, [loss, correct], updates=updates, backend=backend)
    evaluate = sg.function(inputs, [loss, correct], backend=backend)
    return train_step, evaluate, lr_tensor


def train(name, data, args):
    optimizer, lr, options = OPTIMIZERS[name]
    (x_train, y_train), (x_val, y_val), _ = data
    t0 = time.perf_counter()
    train_step, evaluate, lr_tensor = build(optimizer, lr, options, args.backend,
                                            clip_norm=args.clip_norm)
    compile_s = time.perf_counter() - t0
    rng = np.random.default_rng(0)  # the same batches for every optimizer
    losses = []
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        lr_tensor.set_value(np.float32(lr * args.lr_decay ** epoch))
        loss, _ = run_epoch(train_step, x_train, y_train, args.batch, rng)
        losses.append(loss)
    train_s = time.perf_counter() - t0
    val_loss, val_acc = run_epoch(evaluate, x_val, y_val, 512)
    return losses, val_loss, val_acc, compile_s, train_s


def plot(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        print("(matplotlib is not installed: no plot)")
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, (losses, *_) in results.items():
        ax.plot(range(1, len(losses) + 1), losses, marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("training loss (mean cross-entropy)")
    ax.set_yscale("log")
    ax.set_title("MLP on digits: optimizers compared")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"wrote the loss curves to {path}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--backend", default="c", choices=["c", "numpy", "cuda"])
    parser.add_argument("--lr-decay", type=float, default=1.0,
                        help="multiply every learning rate by this after each epoch")
    parser.add_argument("--clip-norm", type=float, default=None,
                        help="clip the gradients' global norm to this")
    parser.add_argument("--plot", default="optimizers.png", metavar="FILE")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")

    data = load_digits()
    print(f"digits: {len(data[0][0])} train, {len(data[1][0])} validation; backend="
          f"{args.backend}; batch {args.batch}; {args.epochs} epochs per optimizer")
    results = {}
    for name in OPTIMIZERS:
        results[name] = train(name, data, args)
        _, val_loss, val_acc, compile_s, train_s = results[name]
        print(f"  {name:13s} compiled in {compile_s:5.2f} s, trained in {train_s:5.2f} s; "
              f"val_loss {val_loss:.4f}  val_acc {val_acc:.3f}")

    width = max(13, *(len(n) for n in results))
    print("\ntraining loss per epoch")
    print("epoch " + "".join(f"{name:>{width}s}" for name in results))
    for epoch in range(args.epochs):
        print(f"{epoch + 1:5d} " + "".join(f"{r[0][epoch]:>{width}.4f}" for r in results.values()))
    print("val   " + "".join(f"{r[2]:>{width}.3f}" for r in results.values()) + "  (accuracy)")
    if not args.no_plot:
        plot(results, args.plot)
    return results


if __name__ == "__main__":
    main()
