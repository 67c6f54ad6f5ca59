"""Seeded, reproducible initializers returning numpy arrays (wrap them in `sg.shared`).

`seed=None` takes the next draw of this process's own sequence: two layers of one shape get
different weights (a fixed default gave them the same), and a script that builds its layers in
the same order gets the same weights every run.  An int seed gives the same array every time."""
from __future__ import annotations

import itertools

import numpy as np

_unseeded = itertools.count()


def _rng(seed):
    if seed is None:  # a stream apart from every int seed: (k, tag) is no int's SeedSequence
        return np.random.default_rng((next(_unseeded), 0x73676E))
    return np.random.default_rng(seed)


def _fans(shape):
    shape = tuple(shape)
    if len(shape) < 2:
        return shape[0] if shape else 1, shape[0] if shape else 1
    if len(shape) == 2:  # (n_in, n_out), as in x @ W
        return shape[0], shape[1]
    receptive = int(np.prod(shape[2:]))  # conv (out, in, kh, kw)
    return shape[1] * receptive, shape[0] * receptive


def _scale(name, shape, dtype, numerator, fan) -> float:
    """sqrt(numerator / fan) for initializer `name`, after checking its arguments; an empty shape
    (a zero fan) has nothing to draw, so any scale serves."""
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"init.{name}: dtype must be a float type, got {np.dtype(dtype).name}")
    if any(int(d) < 0 for d in shape):
        raise ValueError(f"init.{name}: negative dim in shape {tuple(shape)}")
    return float(np.sqrt(numerator / fan)) if fan > 0 else 0.0


def glorot_uniform(shape, seed=None, dtype="float32"):
    """Xavier uniform: U(-a, a) with a = sqrt(6 / (n_in + n_out))."""
    fan_in, fan_out = _fans(shape)
    limit = _scale("glorot_uniform", shape, dtype, 6.0, fan_in + fan_out)
    return _rng(seed).uniform(-limit, limit, shape).astype(dtype)


def glorot_normal(shape, seed=None, dtype="float32"):
    """Xavier normal: N(0, 2 / (n_in + n_out))."""
    fan_in, fan_out = _fans(shape)
    std = _scale("glorot_normal", shape, dtype, 2.0, fan_in + fan_out)
    return (_rng(seed).standard_normal(shape) * std).astype(dtype)


def he_normal(shape, seed=None, dtype="float32"):
    """He/Kaiming normal for ReLU layers: N(0, 2 / n_in)."""
    fan_in, _ = _fans(shape)
    std = _scale("he_normal", shape, dtype, 2.0, fan_in)
    return (_rng(seed).standard_normal(shape) * std).astype(dtype)


def he_uniform(shape, seed=None, dtype="float32"):
    """He/Kaiming uniform: U(-a, a) with a = sqrt(6 / n_in)."""
    fan_in, _ = _fans(shape)
    limit = _scale("he_uniform", shape, dtype, 6.0, fan_in)
    return _rng(seed).uniform(-limit, limit, shape).astype(dtype)


def zeros(shape, seed=None, dtype="float32"):
    return np.zeros(shape, dtype)


xavier_uniform, xavier_normal, kaiming_normal, kaiming_uniform = (
    glorot_uniform, glorot_normal, he_normal, he_uniform)
