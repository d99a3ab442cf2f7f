"""Seeing backprop at work: graphs, a chain-rule trace, and gradient-health diagnosis.

* :func:`draw_graph` — the computation graph with shapes, values and gradients (DOT/SVG/PNG);
* :func:`trace_backward` — the backward pass step by step, with the numbers;
* :class:`GradientMonitor` (:func:`watch`) — per-layer gradient statistics while training and
  a diagnosis of vanishing/exploding gradients, dead or saturated units, learning rates and
  graph leaks, with the usual remedies; ``plots`` draws them.
"""

from chainrule.diagnostics import plots
from chainrule.diagnostics.graph import Graph, Recording, draw_graph, record
from chainrule.diagnostics.health import Finding, GradientMonitor, watch
from chainrule.diagnostics.trace import ChainRuleTrace, format_trace, trace_backward

__all__ = [
    "GradientMonitor",
    "watch",
    "Finding",
    "plots",
    "draw_graph",
    "record",
    "Graph",
    "Recording",
    "trace_backward",
    "format_trace",
    "ChainRuleTrace",
]
