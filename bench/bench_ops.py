"""Single ops where a compiled step once fell behind numpy or torch (performance cliffs), each
timed against numpy and torch eager (when installed) in the same interleaved run.

  row max / argmax     4096x1000 float32, along the contiguous axis (a NaN-propagating max
                       that did not vectorize: 3x numpy's time)
  argmax of all        4096x1000 (a serial scalar scan)
  sum of x.T           4096x1000 (walked x by columns)
  softmax over axis 0  1000x4096 (one column at a time: 5x numpy's time)
  batched matmul       8 products of 256^3 (each split across the threads: 1.4x torch's)

    python bench/bench_ops.py [--quick]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import symgrad  # noqa: E402,F401  (first: it sets GOMP_SPINCOUNT before torch loads libgomp)
from common import interleaved, optional, report  # noqa: E402

import symgrad as sg  # noqa: E402

torch = optional("torch")


def case(title, build, numpy_fn, torch_fn, arrays):
    """Time the symgrad function `build(placeholders...)` of `arrays` against numpy_fn and
    torch_fn of the same arrays, after checking that symgrad agrees with numpy."""
    holders = [sg.placeholder(f"a{i}", a.shape, a.dtype.name) for i, a in enumerate(arrays)]
    fn = sg.function(holders, build(*holders))
    np.testing.assert_allclose(fn(*arrays), numpy_fn(*arrays), rtol=1e-4, atol=1e-6)
    systems = {"symgrad c": lambda: fn(*arrays), "numpy": lambda: numpy_fn(*arrays)}
    if torch is not None and torch_fn is not None:
        tensors = [torch.from_numpy(a) for a in arrays]
        systems["torch eager"] = lambda: torch_fn(*tensors)
    report(title, interleaved(systems, repeats=11), "numpy")


def softmax0(x):
    e = np.exp(x - x.max(axis=0))
    return e / e.sum(axis=0)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    args = parser.parse_args()
    rows = 256 if args.quick else 4096
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, 1000), dtype=np.float32)
    print(f"symgrad {sg.__version__}, numpy {np.__version__}, torch "
          f"{getattr(torch, '__version__', 'absent')}, {os.cpu_count()} cpus")
    case(f"row max {x.shape}", lambda a: sg.max(a, axis=1), lambda a: a.max(axis=1),
         lambda t: t.amax(dim=1), [x])
    case(f"row argmax {x.shape}", lambda a: sg.argmax(a, axis=1), lambda a: a.argmax(axis=1),
         lambda t: t.argmax(dim=1), [x])
    case(f"argmax of all {x.shape}", sg.argmax, np.argmax, torch and torch.argmax, [x])
    case(f"sum of x.T {x.shape}", lambda a: sg.sum(a.T), lambda a: a.T.sum(dtype=np.float64),
         lambda t: t.T.sum(), [x])
    xt = np.ascontiguousarray(x.T)
    case(f"softmax over axis 0 {xt.shape}", lambda a: sg.softmax(a, axis=0), softmax0,
         lambda t: torch.softmax(t, dim=0), [xt])
    n = 64 if args.quick else 256
    a, b = (rng.standard_normal((8, n, n), dtype=np.float32) for _ in range(2))
    case(f"batched matmul 8 x {n}^3", lambda p, q: p @ q, np.matmul, torch and torch.bmm, [a, b])


if __name__ == "__main__":
    main()
