"""The chain rule, step by step: the backward pass of a small computation, with numbers.

``trace_backward(loss)`` runs the backward pass and reports, in the order the engine runs it,
for every node: the gradient arriving from above (∂L/∂out), the local derivative of the
node's output with respect to each input (∂out/∂in) where it is a number per element, their
product (what flows down), and the sums where paths meet. Every number is what the engine
itself computed, so a learner can redo the arithmetic on paper and check it.

>>> import chainrule as cr
>>> from chainrule.diagnostics import trace_backward
>>> x = cr.tensor(2.0, requires_grad=True)
>>> y = x * x + x            # two paths from x meet at the sum
>>> t = trace_backward(y, params={"x": x})
>>> t.gradients["x"]
5.0
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chainrule import backend
from chainrule.autograd import engine
from chainrule.backend import float64
from chainrule.ops.creation import tensor
from chainrule.tensor import AccumulateGrad, Node, Tensor, modes


@dataclass
class Step:
    """One node of the backward pass."""

    index: int
    op: str
    incoming: list  # ∂L/∂output per output (arrays or None)
    inputs: list = field(default_factory=list)  # per input: dict(source, local, product)


@dataclass
class ChainRuleTrace:
    """The recorded backward pass; ``str()`` gives the walkthrough text."""

    output_value: object
    steps: list
    meets: list  # (where, [contributions], total)
    gradients: dict  # leaf name -> gradient (float for one element, else list)

    def __str__(self) -> str:
        return format_trace(self)


def _num(arr):
    if arr is None:
        return None
    a = backend.to_numpy(arr).astype("float64")
    return float(a.reshape(())) if a.size == 1 else a.tolist()


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    flat = backend.np.asarray(value, dtype="float64").ravel()
    inner = ", ".join(f"{v:.4g}" for v in flat[:8])
    return f"[{inner}{', ...' if flat.size > 8 else ''}]"


def _source_name(edge, names) -> str:
    if edge is None:
        return "constant"
    node = edge[0]
    if type(node) is AccumulateGrad:
        return names.get(id(node.variable), "leaf")
    name = node.name
    return name[: -len("Backward0")] if name.endswith("Backward0") else name


def _op(node: Node) -> str:
    name = node.name
    return name[: -len("Backward0")] if name.endswith("Backward0") else name


class _Observer:
    """Receives the engine's steps (see ``engine.run(observer=...)``)."""

    def __init__(self, names: dict, max_elements: int):
        self.names = names
        self.max_elements = max_elements
        self.steps: list = []
        self.meets: list = []
        self.gradients: dict = {}

    def node(self, node: Node, grads, saved, results) -> None:
        incoming = grads if isinstance(grads, list) else [grads]
        step = Step(
            len(self.steps) + 1,
            _op(node),
            [_num(g._data) if g is not None else None for g in incoming],
        )
        local = self._local_derivatives(node, incoming, saved)
        for i, edge in enumerate(node.edges):
            if edge is None:
                continue
            r = results[i] if i < len(results) else None
            step.inputs.append(
                {
                    "position": i,
                    "source": _source_name(edge, self.names),
                    "local": local[i] if local is not None else None,
                    "product": _num(r._data) if r is not None else None,
                }
            )
        self.steps.append(step)

    def _local_derivatives(self, node, incoming, saved):
        """∂out/∂in per element when it is a number per element (elementwise ops)."""
        if node.n_outputs != 1 or incoming[0] is None:
            return None
        g = incoming[0]
        if g._data.size > self.max_elements:
            return None
        out_shape = g._data.shape
        if any(e is not None and tuple(e[2]) != tuple(out_shape) for e in node.edges):
            return None  # not elementwise: the rule is a vector-Jacobian product
        xp = backend.array_module(g._data)
        ones = Tensor._make(xp.ones(out_shape, dtype=g._data.dtype))
        previous = modes.grad_enabled
        modes.grad_enabled = False
        try:
            res = node.backward(ones, *saved)
        finally:
            modes.grad_enabled = previous
        res = res if isinstance(res, tuple) else (res,)
        return [_num(r._data) if isinstance(r, Tensor) else None for r in res]

    def meet(self, node, nr, old, new, total) -> None:
        where = (
            self.names.get(id(node.variable), "leaf")
            if type(node) is AccumulateGrad
            else f"output of {_op(node)}"
        )
        self.meets.append((where, [_num(old._data), _num(new._data)], _num(total._data)))

    def leaf(self, var: Tensor, grad: Tensor) -> None:
        self.gradients[self.names.get(id(var), f"leaf{len(self.gradients)}")] = _num(grad._data)


def trace_backward(
    output: Tensor,
    params: dict | None = None,
    model=None,
    max_elements: int = 16,
    accumulate: bool = False,
) -> ChainRuleTrace:
    """Run backward from ``output`` and record every chain-rule step with its numbers.

    Leaves are named from ``params`` or ``model.named_parameters()``. With ``accumulate`` the
    leaves' ``.grad`` are updated as by ``backward()``; by default they are left alone.
    """
    names = {}
    if model is not None:
        names.update({id(p): n for n, p in model.named_parameters()})
    if params:
        names.update({id(p): n for n, p in params.items()})
    observer = _Observer(names, max_elements)
    roots, grads = engine._prepare((output,), None, "trace_backward")
    leaves = _leaves(output)
    engine.run(
        roots,
        grads,
        retain_graph=True,
        create_graph=False,
        targets=None if accumulate else leaves,
        accumulate=accumulate,
        observer=observer,
    )
    return ChainRuleTrace(_num(output._data), observer.steps, observer.meets, observer.gradients)


def _leaves(output: Tensor) -> list:
    """Leaf tensors requiring grad in ``output``'s graph, in discovery order."""
    if output.grad_fn is None:
        return [output]
    seen, order, stack = set(), [], [output.grad_fn]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if type(node) is AccumulateGrad:
            order.append(node.variable)
        stack.extend(e[0] for e in node.edges if e is not None)
    return order


def format_trace(trace: ChainRuleTrace) -> str:
    """The walkthrough as text (what ``chainrule explain`` prints)."""
    lines = [
        f"Backward pass from L = {_fmt(trace.output_value)}: {len(trace.steps)} steps, in the "
        "order the engine runs them.",
        "At each step: gradient arriving from above (dL/dout) x local derivative (dout/din) "
        "= gradient sent to the input.",
        "",
    ]
    for step in trace.steps:
        incoming = ", ".join(_fmt(g) for g in step.incoming)
        lines.append(f"step {step.index}: {step.op}    dL/dout = {incoming}")
        for inp in step.inputs:
            if inp["local"] is not None:
                lines.append(
                    f"    -> {inp['source']:<12} dout/din = {_fmt(inp['local'])}    "
                    f"dL/din = {incoming} x {_fmt(inp['local'])} = {_fmt(inp['product'])}"
                )
            else:
                lines.append(
                    f"    -> {inp['source']:<12} dL/din = {_fmt(inp['product'])}  "
                    "(vector-Jacobian product)"
                )
    if trace.meets:
        lines.append("")
        lines.append("Where paths meet, gradients add:")
        for where, parts, total in trace.meets:
            lines.append(f"    {where}: {' + '.join(_fmt(p) for p in parts)} = {_fmt(total)}")
    lines.append("")
    lines.append("Gradients of the leaves:")
    for name, g in trace.gradients.items():
        lines.append(f"    dL/d{name} = {_fmt(g)}")
    return "\n".join(lines)


# A 2-2-1 network with fixed numbers, small enough to redo by hand:
#   h_j = tanh(w_j1 x1 + w_j2 x2 + b_j),  y = w_o1 h1 + w_o2 h2 + b_o,  L = (y - t)^2
TINY_NETWORK = {
    "x1": 1.0,
    "x2": -0.5,
    "w11": 0.4,
    "w12": -0.2,
    "b1": 0.1,
    "w21": -0.3,
    "w22": 0.6,
    "b2": 0.0,
    "wo1": 0.7,
    "wo2": -0.5,
    "bo": 0.2,
    "target": 1.0,
}


def tiny_network(values: dict | None = None):
    """The explain network as scalar tensors: returns (loss, parameters by name)."""
    v = dict(TINY_NETWORK, **(values or {}))
    p = {
        k: tensor(v[k], dtype=float64, requires_grad=True)
        for k in v
        if k not in ("x1", "x2", "target")
    }
    x1, x2 = v["x1"], v["x2"]
    h1 = (p["w11"] * x1 + p["w12"] * x2 + p["b1"]).tanh()
    h2 = (p["w21"] * x1 + p["w22"] * x2 + p["b2"]).tanh()
    y = p["wo1"] * h1 + p["wo2"] * h2 + p["bo"]
    loss = (y - v["target"]) ** 2
    return loss, p


__all__ = [
    "tiny_network",
    "TINY_NETWORK",
    "trace_backward",
    "ChainRuleTrace",
    "Step",
    "format_trace",
]
