"""`sg.print_graph` and `Function.graph`: one line per node with its op, shape and dtype."""
from __future__ import annotations

import re

import numpy as np

import symgrad as sg

LINE = re.compile(r"^%(\d+) = (\w+)\((.*)\) : \(([^)]*)\) (float32|float64|int32|int64|bool)"
                  r"(  # .*)?$")


def parse(text):
    lines = text.splitlines()
    assert lines[-1].startswith("return ")
    nodes = []
    for line in lines[:-1]:
        m = LINE.match(line)
        assert m, f"not a node line: {line!r}"
        nodes.append(dict(id=int(m.group(1)), op=m.group(2), args=m.group(3),
                          shape=m.group(4), dtype=m.group(5), label=m.group(6)))
    return nodes, lines[-1]


def test_print_graph_one_line_per_node(capsys):
    x = sg.placeholder("x", (None, 3), "float32")
    w = sg.shared(np.ones((3, 2), np.float32), name="w")
    y = sg.relu(x @ w)
    loss = sg.sum(y)
    sg.print_graph(loss)
    nodes, ret = parse(capsys.readouterr().out)
    assert [n["op"] for n in nodes] == ["placeholder", "shared", "matmul", "relu", "sum"]
    assert ret == f"return %{loss.id}"
    by_op = {n["op"]: n for n in nodes}
    assert by_op["placeholder"]["shape"] == "x.shape[0], 3"
    assert by_op["placeholder"]["label"] == "  # x"
    assert by_op["shared"]["shape"] == "3, 2" and by_op["shared"]["label"] == "  # w"
    assert by_op["matmul"]["shape"] == "x.shape[0], 2"
    assert by_op["matmul"]["args"] == f"%{x.id}, %{w.id}"
    assert by_op["sum"]["shape"] == "" and "axes=(0, 1)" in by_op["sum"]["args"]
    assert all(n["dtype"] == "float32" for n in nodes)


def test_format_graph_shows_dtypes_attrs_and_constants():
    t = sg.placeholder("t", (4,), "int64")
    one_hot = sg.one_hot(t, 5, dtype="float64")
    mask = one_hot > 0.5
    out = sg.where(mask, one_hot * 2.0, sg.constant(np.zeros(5)))
    nodes, _ = parse(sg.format_graph([out]))
    ops = [n["op"] for n in nodes]
    assert ops.count("constant") == 3 and len(nodes) == 8
    dtypes = {n["op"]: n["dtype"] for n in nodes}
    assert dtypes["placeholder"] == "int64" and dtypes["one_hot"] == "float64"
    assert dtypes["greater"] == "bool" and dtypes["where"] == "float64"
    by_op = {n["op"]: n for n in nodes}
    assert "depth=5" in by_op["one_hot"]["args"] and by_op["one_hot"]["shape"] == "4, 5"
    constants = [n["args"] for n in nodes if n["op"] == "constant"]
    assert "value=0.5" in constants and "value=2.0" in constants
    assert "value=<5 values>" in constants


def test_function_graph_lists_outputs_and_update_nodes(backend):
    x = sg.placeholder("x", (2,), "float64")
    s = sg.shared(np.zeros(2), name="s")
    fn = sg.function([x], sg.exp(x), updates=[(s, s + x)], backend=backend)
    text = str(fn.graph)
    nodes, ret = parse(text)  # every line but the last is a node with op, shape and dtype
    # the number of lines is the number of distinct nodes plus the return line
    assert len(text.splitlines()) == len(nodes) + 1 == len({n["id"] for n in nodes}) + 1
    assert len(ret.split(",")) == 2  # the output and the update's new value
    assert repr(fn.graph) == text
    assert all(n["dtype"] == "float64" for n in nodes)
    if backend == "numpy":  # the reference backend runs the graph as built
        assert sorted(n["op"] for n in nodes) == ["add", "exp", "placeholder", "shared"]
        assert all(n["shape"] == "2," for n in nodes)
