"""`pip install .` must ship every subpackage and data file (an editable install hides a
forgotten one; CI installs for real)."""
from __future__ import annotations

import pathlib
import re

import symgrad

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_every_subpackage_is_listed_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'"(symgrad(?:\.[a-z_]+)*)"', text.split("[tool.setuptools]")[1]))
    source = ROOT / "symgrad"
    if not source.is_dir():  # running against an installed copy only
        return
    packages = {"symgrad." + ".".join(p.parent.relative_to(source).parts)
                for p in source.rglob("__init__.py") if p.parent != source}
    assert packages <= listed, packages - listed


def test_templates_and_headers_are_installed():
    from symgrad import build
    from symgrad.resources import resource_dir
    assert build._csrc_dir() is not None and (build._csrc_dir() / "symgrad_runtime.h").is_file()
    templates = pathlib.Path(resource_dir("templates"))
    csrc = pathlib.Path(resource_dir("csrc"))
    for name in ("c/step.c.j2", "c/loops.c.j2", "c/special.c.j2", "common/workspace.j2",
                 "cuda/step.cu.j2", "cuda/loops.cu.j2", "cuda/special.cu.j2"):
        assert (templates / name).is_file(), name
    for name in ("symgrad_runtime.h", "symgrad_call.c", "symgrad_cuda.h",
                 "symgrad_cuda_emulate.h"):
        assert (csrc / name).is_file(), name
    assert symgrad.__version__
