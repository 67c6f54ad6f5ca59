"""Backends turn a Function's graph into a program: `compile(fn) -> program` with
`program.run(arrays, dims, outs) -> list of output arrays` and `.graph`, `.source`, `.kernels`."""
from __future__ import annotations


def get_backend(name: str):
    if name == "numpy":
        from . import numpy_backend
        return numpy_backend
    if name == "c":
        from . import c_backend
        return c_backend
    if name == "cuda":
        from . import cuda_backend
        return cuda_backend
    raise ValueError(f"unknown backend {name!r}; choose 'c', 'cuda' or 'numpy'")
