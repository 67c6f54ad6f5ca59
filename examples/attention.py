"""A one-block transformer (token + position embeddings, self-attention, layer norm, residuals,
an MLP) that learns to reverse short sequences, compiled into one native training step.

    python examples/attention.py [--epochs 12] [--causal]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import symgrad as sg

VOCAB, LENGTH = 10, 8


def batch(rng, n):
    tokens = rng.integers(0, VOCAB, (n, LENGTH))
    return tokens, tokens[:, ::-1].copy()


def build(width=64, hidden=128, lr=3e-3, causal=False, seed=0):
    tokens = sg.placeholder("tokens", ("batch", LENGTH), dtype="int64")
    targets = sg.placeholder("targets", ("batch", LENGTH), dtype="int64")
    init = sg.init

    def param(name, shape, scale=None, value=None):
        if value is not None:
            return sg.shared(np.full(shape, value, np.float32), name=name)
        return sg.shared(init.glorot_normal(shape, seed=hash(name) % 2 ** 31), name=name)

    embed, position = param("embed", (VOCAB, width)), param("position", (LENGTH, width))
    Wq, Wk, Wv, Wo = (param(n, (width, width)) for n in ("Wq", "Wk", "Wv", "Wo"))
    g1, b1 = param("ln1.w", (width,), value=1.0), param("ln1.b", (width,), value=0.0)
    g2, b2 = param("ln2.w", (width,), value=1.0), param("ln2.b", (width,), value=0.0)
    W1, c1 = param("mlp.W1", (width, hidden)), param("mlp.b1", (hidden,), value=0.0)
    W2, c2 = param("mlp.W2", (hidden, width)), param("mlp.b2", (width,), value=0.0)
    Wout = param("unembed", (width, VOCAB))
    params = [embed, position, Wq, Wk, Wv, Wo, g1, b1, g2, b2, W1, c1, W2, c2, Wout]

    x = sg.take(embed, tokens, axis=0) + position          # (batch, LENGTH, width)
    h = sg.layer_norm(x, g1, b1)
    x = x + sg.scaled_dot_product_attention(h @ Wq, h @ Wk, h @ Wv, causal=causal) @ Wo
    h = sg.layer_norm(x, g2, b2)
    x = x + sg.relu(h @ W1 + c1) @ W2 + c2
    logits = x @ Wout                                      # (batch, LENGTH, VOCAB)
    loss = sg.cross_entropy(logits, targets)
    correct = sg.sum(sg.argmax(logits, axis=2) == targets)
    updates = sg.optim.adam(params, sg.grad(loss, params), lr=lr)
    train = sg.function([tokens, targets], [loss, correct], updates=updates)
    evaluate = sg.function([tokens, targets], [loss, sg.argmax(logits, axis=2)])
    return train, evaluate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=100, help="steps per epoch")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--causal", action="store_true", help="mask future positions (the "
                        "task then becomes impossible for the first half: a good sanity check)")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    train, evaluate = build(causal=args.causal)
    print(f"reverse {LENGTH} tokens over {VOCAB} symbols; compiled in "
          f"{time.perf_counter() - t0:.2f} s ({len(train.kernels)} kernels)")
    rng = np.random.default_rng(0)
    test_x, test_y = batch(np.random.default_rng(123), 1000)
    history = []
    for epoch in range(1, args.epochs + 1):
        t0, total_loss, total_correct = time.perf_counter(), 0.0, 0
        for _ in range(args.steps):
            x, y = batch(rng, args.batch)
            loss, correct = train(x, y)
            total_loss += float(loss)
            total_correct += int(correct)
        seconds = time.perf_counter() - t0
        n = args.steps * args.batch
        history.append(total_loss / args.steps)
        print(f"epoch {epoch:3d}  loss {history[-1]:.4f}  token acc "
              f"{total_correct / (n * LENGTH):.3f}  {n / seconds:,.0f} sequences/s")
    test_loss, predicted = evaluate(test_x, test_y)
    token_acc = float(np.mean(predicted == test_y))
    seq_acc = float(np.mean(np.all(predicted == test_y, axis=1)))
    print(f"test: loss {float(test_loss):.4f}  token accuracy {token_acc:.4f}  "
          f"whole-sequence accuracy {seq_acc:.4f}")
    return history, token_acc


if __name__ == "__main__":
    main()
