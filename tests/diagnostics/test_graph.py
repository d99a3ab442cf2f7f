"""The computation graph: valid DOT naming every op and parameter of a small model."""

from __future__ import annotations

import re
import shutil

import pytest

import chainrule as cr
from chainrule import nn
from chainrule.diagnostics import draw_graph, record


def parse_dot(text: str):
    """A strict-enough reader for the DOT we write: node ids, labels and edges."""
    assert text.startswith("digraph") and text.rstrip().endswith("}")
    assert text.count("{") == text.count("}")
    nodes = dict(re.findall(r"^\s*(\w+) \[label=(.*?)(?:, (?:fillcolor|shape).*)?\];$", text, re.M))
    edges = re.findall(r"^\s*(\w+) -> (\w+);$", text, re.M)
    for a, b in edges:
        assert a in nodes and b in nodes, f"edge {a} -> {b} to an undeclared node"
    return nodes, edges


def small_model():
    cr.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))


def test_dot_names_every_op_and_parameter():
    model = small_model()
    x = cr.randn(5, 3)
    with record(model) as rec:
        loss = model(x).pow(2).mean()
    loss.backward()
    graph = draw_graph(loss, recording=rec)
    nodes, edges = parse_dot(graph.dot)
    labels = " ".join(nodes.values())
    for name, _ in model.named_parameters():
        assert name in labels, name
    for op in ("Tanh", "Linear", "Sum", "Div"):  # mean is sum / n
        assert op in labels or op.lower() in labels.lower(), op
    assert "cluster" in graph.dot  # nodes grouped by module
    assert "grad:" in labels  # gradients shown after backward
    assert len(edges) >= len(nodes) - 2


def test_small_values_are_shown():
    w = cr.tensor([0.5, -1.0], requires_grad=True)
    with record() as rec:
        loss = (w * 3).tanh().sum()
    graph = draw_graph(loss, params={"w": w}, recording=rec)
    assert "value: 0.5, -1" in graph.dot
    assert "1.5, -3" in graph.dot  # the recorded forward value of w * 3


def test_large_graphs_collapse_by_module():
    cr.manual_seed(0)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(4, 4), nn.ReLU()) for _ in range(20)])
    with record(model) as rec:
        out = model(cr.randn(2, 4)).sum()
    graph = draw_graph(out, recording=rec, collapse_above=20)
    assert "(module)" in graph.dot
    nodes, _ = parse_dot(graph.dot)
    assert len(nodes) < 80


def test_save_dot_and_missing_graphviz_message(tmp_path, monkeypatch):
    w = cr.tensor([1.0], requires_grad=True)
    graph = draw_graph((w * 2).sum(), params={"w": w})
    path = graph.save(str(tmp_path / "g.dot"))
    assert open(path).read() == graph.dot
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        graph.save(str(tmp_path / "g.svg"))


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' not installed")
def test_renders_with_graphviz(tmp_path):
    model = small_model()
    loss = model(cr.randn(2, 3)).sum()
    graph = draw_graph(loss, model=model)
    for ext in ("svg", "png"):
        path = graph.save(str(tmp_path / f"g.{ext}"))
        assert (tmp_path / f"g.{ext}").stat().st_size > 100, path
