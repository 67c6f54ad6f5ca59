"""Shared fixtures: the backends every backend-generic test runs on, and fresh symbolic-dim names.

`backend` yields "numpy" (the reference) and, when it can run here, "c": the module
`symgrad.backends.c_backend` imports and a C compiler is on the PATH.  Set SYMGRAD_TEST_BACKENDS
(comma-separated, e.g. "numpy,c") to choose explicitly.
"""
from __future__ import annotations

import importlib
import itertools
import os
import shutil

import pytest


def _c_backend_status():
    """(usable, reason)."""
    try:
        importlib.import_module("symgrad.backends.c_backend")
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("symgrad.backends.c_backend"):
            return False, "symgrad.backends.c_backend does not exist yet"
        raise  # the module exists but one of its imports is missing: that is a real failure
    compilers = [os.environ.get("CC"), "cc", "gcc", "clang"]
    if not any(c and shutil.which(c) for c in compilers):
        return False, "no C compiler on the PATH"
    return True, ""


def available_backends():
    chosen = os.environ.get("SYMGRAD_TEST_BACKENDS")
    if chosen:
        return [b.strip() for b in chosen.split(",") if b.strip()]
    backends = ["numpy"]
    usable, _ = _c_backend_status()
    if usable:
        backends.append("c")
    return backends


BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """The name of a symgrad backend to compile with ("numpy" is the reference)."""
    return request.param


_dim_counter = itertools.count()


@pytest.fixture
def dim_name(request):
    """A fresh name for a symbolic dim.  Named dims are process-global (every placeholder naming
    "batch" shares one dim, and unifying it with an int pins it), so tests never reuse a name."""
    def make(base="batch"):
        return f"{base}_{request.node.name}_{next(_dim_counter)}"
    return make
