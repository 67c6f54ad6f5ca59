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


@pytest.mark.parametrize("name,epochs", [("mlp_digits", 4), ("cnn_digits", 3)])
def test_digits_examples_learn(name, epochs, capsys):
    pytest.importorskip("sklearn")
    history, test_acc = load(name).main(["--epochs", str(epochs)])
    assert history[-1] < history[0] * 0.5
    assert test_acc > 0.85
    out = capsys.readouterr().out
    assert "examples/s" in out and "test: loss" in out


def test_optimizers_example_runs(capsys):
    pytest.importorskip("sklearn")
    results = load("optimizers").main(["--epochs", "2", "--no-plot", "--lr-decay", "0.5"])
    assert list(results) == ["SGD", "SGD+momentum", "RMSprop", "Adam"]
    for name, (losses, val_loss, val_acc, _, _) in results.items():
        assert len(losses) == 2 and losses[1] < losses[0], name
        assert val_acc > 0.5, name
    out = capsys.readouterr().out
    assert "training loss per epoch" in out and "SGD+momentum" in out


def test_attention_example_learns_to_reverse(capsys):
    history, token_acc = load("attention").main(["--epochs", "2", "--steps", "60"])
    assert history[-1] < history[0] * 0.5
    assert token_acc > 0.9
    assert "sequences/s" in capsys.readouterr().out


def test_sigmoid_fusion_example_runs():
    result = subprocess.run([sys.executable, str(EXAMPLES / "sigmoid_fusion.py")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "1 kernel(s)" in result.stdout and "sg_sigmoid" in result.stdout
