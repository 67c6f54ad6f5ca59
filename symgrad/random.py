"""Random draws and dropout as graph ops.  Each draw owns a shared int64 counter that a compiled
function advances by one per call (added to its updates automatically), so the same seed gives
the same stream on every backend, and a new mask every step."""
from __future__ import annotations

import itertools

import numpy as np

from . import api as sg
from .graph import Tensor, is_float

_auto_seed = itertools.count(1)


def _counter(seed):
    counter = sg.shared(np.zeros((), np.int64), name=f"rng{seed}.counter")
    counter.attr["storage"].default_update = lambda node: node + 1
    return counter


def _like(shape_or_tensor):
    if isinstance(shape_or_tensor, Tensor):
        return shape_or_tensor
    return sg.broadcast_to(sg.constant(0.0), tuple(shape_or_tensor))


def uniform(shape, seed=None, dtype="float32", low=0.0, high=1.0) -> Tensor:
    """U[low, high) of `shape` (a tuple, or a tensor whose shape to take)."""
    seed = next(_auto_seed) if seed is None else int(seed)
    u = sg.apply("random_uniform", _counter(seed), _like(shape), seed=seed,
                 dtype=np.dtype(dtype).name)
    return u if (low, high) == (0.0, 1.0) else low + (high - low) * u


def normal(shape, seed=None, dtype="float32", mean=0.0, std=1.0) -> Tensor:
    """N(mean, std^2) by Box-Muller from two uniform draws."""
    seed = next(_auto_seed) if seed is None else int(seed)
    u1 = uniform(shape, seed, dtype)
    u2 = uniform(shape, seed + 0x9E3779B9, dtype)
    z = sg.sqrt(-2.0 * sg.log(1.0 - u1)) * sg.cos(2 * np.pi * u2)
    return mean + std * z


def bernoulli(shape, p, seed=None, dtype="float32") -> Tensor:
    """1 with probability p, else 0."""
    return sg.cast(uniform(shape, seed) < p, dtype)


def dropout(x, p=0.5, training=True, seed=None) -> Tensor:
    """Inverted dropout: zero each element with probability p and scale the rest by 1/(1-p), so
    the expectation is unchanged.  `training` is a Python bool (chosen at compile time) or a
    bool scalar tensor (chosen per call)."""
    x = sg.as_tensor(x)
    if not is_float(x.dtype):
        raise TypeError(f"dropout: expects a float tensor, got {x.dtype.name}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if training is False or p == 0.0:
        return x
    keep = 1.0 - p
    if keep == 0.0:  # everything dropped (as torch gives), and no 1/0 scale
        dropped = sg.zeros_like(x)
    else:
        dropped = sg.where(uniform(x, seed, x.dtype) < keep, x * (1.0 / keep), 0.0)
    if training is True:
        return dropped
    return sg.where(sg.cast(training, "bool"), dropped, x)
