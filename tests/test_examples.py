"""The examples, in a shortened mode: they run, and training makes progress."""
from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_mlp_digits_learns(capsys):
    pytest.importorskip("sklearn")
    history, test_acc = load("mlp_digits").main(["--epochs", "4"])
    assert history[-1] < history[0] * 0.5
    assert test_acc > 0.85
    out = capsys.readouterr().out
    assert "examples/s" in out and "test: loss" in out


def test_sigmoid_fusion_example_runs():
    result = subprocess.run([sys.executable, str(EXAMPLES / "sigmoid_fusion.py")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1 kernel(s)" in result.stdout and "sg_sigmoid" in result.stdout
