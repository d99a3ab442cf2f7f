"""The chain-rule walkthrough: its numbers equal hand computation and the engine's gradients."""

from __future__ import annotations

import math

import pytest

import chainrule as cr
from chainrule.diagnostics import trace_backward
from chainrule.diagnostics.trace import TINY_NETWORK, tiny_network


def hand_gradients(v: dict) -> dict:
    """The tiny 2-2-1 network's gradients, derived on paper and written out in floats."""
    x1, x2, t = v["x1"], v["x2"], v["target"]
    h1 = math.tanh(v["w11"] * x1 + v["w12"] * x2 + v["b1"])
    h2 = math.tanh(v["w21"] * x1 + v["w22"] * x2 + v["b2"])
    y = v["wo1"] * h1 + v["wo2"] * h2 + v["bo"]
    dy = 2 * (y - t)
    dz1 = dy * v["wo1"] * (1 - h1 * h1)
    dz2 = dy * v["wo2"] * (1 - h2 * h2)
    return {
        "wo1": dy * h1,
        "wo2": dy * h2,
        "bo": dy,
        "w11": dz1 * x1,
        "w12": dz1 * x2,
        "b1": dz1,
        "w21": dz2 * x1,
        "w22": dz2 * x2,
        "b2": dz2,
        "loss": (y - t) ** 2,
    }


def test_traced_gradients_equal_hand_computation_and_engine():
    loss, params = tiny_network()
    trace = trace_backward(loss, params=params)
    expected = hand_gradients(TINY_NETWORK)
    assert trace.output_value == pytest.approx(expected["loss"], rel=1e-12)
    loss.backward()
    for name, p in params.items():
        assert trace.gradients[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-15)
        assert p.grad.item() == pytest.approx(expected[name], rel=1e-12, abs=1e-15)


def test_trace_does_not_touch_grad_by_default():
    loss, params = tiny_network()
    trace_backward(loss, params=params)
    assert all(p.grad is None for p in params.values())


def test_each_step_is_incoming_times_local():
    loss, params = tiny_network()
    trace = trace_backward(loss, params=params)
    checked = 0
    for step in trace.steps:
        (incoming,) = step.incoming
        for inp in step.inputs:
            if inp["local"] is not None and isinstance(incoming, float):
                assert inp["product"] == pytest.approx(incoming * inp["local"], rel=1e-12)
                checked += 1
    assert checked >= 10
    # the first step is the square: local derivative 2(y - t) on each of its two paths
    first = trace.steps[0]
    assert first.op == "Mul" and len(first.inputs) == 2


def test_paths_meeting_are_summed():
    x = cr.tensor(2.0, dtype=cr.float64, requires_grad=True)
    y = x * x + x
    trace = trace_backward(y, params={"x": x})
    assert trace.gradients["x"] == pytest.approx(5.0)
    totals = [total for where, parts, total in trace.meets if where == "x"]
    assert totals and totals[-1] == pytest.approx(5.0)
    text = str(trace)
    assert "paths meet" in text and "dL/dx = 5" in text


def test_text_walkthrough_names_ops_and_parameters():
    loss, params = tiny_network()
    text = str(trace_backward(loss, params=params))
    for word in ("Tanh", "Mul", "Add", "w11", "wo2", "dL/dout", "dout/din"):
        assert word in text
