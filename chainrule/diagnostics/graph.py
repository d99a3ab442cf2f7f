"""Draw the computation graph behind a tensor: ops, leaves, shapes, values and gradients.

>>> import chainrule as cr
>>> from chainrule.diagnostics import draw_graph
>>> w = cr.tensor([0.5, -1.0], requires_grad=True)
>>> loss = (w * 3).tanh().sum()
>>> graph = draw_graph(loss, params={"w": w})
>>> "TanhBackward0" in graph.dot and '"w' in graph.dot
True

``graph.dot`` is Graphviz DOT text (always available); ``graph.save("g.svg")`` and
``graph.save("g.png")`` render it with Graphviz's ``dot`` program when it is installed.

To show the forward value of every intermediate result and which module computed it, record
the forward pass::

    with record(model) as rec:
        loss = loss_fn(model(x), y)
    loss.backward()
    draw_graph(loss, recording=rec).save("graph.svg")

Nodes of one module are drawn inside a box named after the module path (``fc1``); with
``collapse=True`` (automatic for graphs of more than ``collapse_above`` nodes) each module
becomes a single node, so large models stay readable.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from dataclasses import dataclass, field

from chainrule import backend
from chainrule.tensor import AccumulateGrad, Node, Tensor, modes


class Recording:
    """What :func:`record` saw during a forward pass: output values and owning modules."""

    def __init__(self):
        self.values: dict = {}  # node -> output arrays (tuple)
        self.module_of: dict = {}  # node -> module path ("" for the top level)
        self.names: dict = {}  # id(parameter) -> qualified name
        self._stack: list = []
        self._handles: list = []

    def observe(self, node: Node, outputs: tuple) -> None:
        """Called by every op while recording (see ``chainrule.tensor.modes.observers``)."""
        self.values[node] = tuple(o._data for o in outputs)
        if self._stack:
            self.module_of[node] = self._stack[-1]

    def __enter__(self):
        modes.observers.append(self.observe)
        return self

    def __exit__(self, *exc):
        if self.observe in modes.observers:
            modes.observers.remove(self.observe)
        for h in self._handles:
            h.remove()
        self._handles.clear()
        return False


def record(model=None) -> Recording:
    """Context manager recording values (and, given a ``Module``, module paths) of ops."""
    rec = Recording()
    if model is not None:
        for name, p in model.named_parameters():
            rec.names[id(p)] = name
        for path, module in model.named_modules():
            if path == "":
                continue

            def pre(mod, args, path=path):
                rec._stack.append(path)

            def post(mod, args, out):
                if rec._stack:
                    rec._stack.pop()

            rec._handles.append(module.register_forward_pre_hook(pre))
            rec._handles.append(module.register_forward_hook(post))
    return rec


@dataclass
class Graph:
    """A drawn graph: DOT text plus rendering helpers."""

    dot: str
    nodes: list = field(default_factory=list)

    def save(self, path: str) -> str:
        """Write ``.dot`` text, or render ``.svg``/``.png``/``.pdf`` with Graphviz's ``dot``."""
        path = str(path)
        fmt = path.rsplit(".", 1)[-1].lower()
        if fmt in ("dot", "gv"):
            with open(path, "w") as fh:
                fh.write(self.dot)
            return path
        exe = shutil.which("dot")
        if exe is None:
            raise RuntimeError(
                f"rendering {path} needs Graphviz's 'dot' program, which is not installed. "
                "Install it with your system's package manager (Debian/Ubuntu: "
                "'apt-get install graphviz'; macOS: 'brew install graphviz'; conda: 'conda "
                "install graphviz'), or save the DOT text with graph.save('graph.dot')."
            )
        result = subprocess.run(
            [exe, f"-T{fmt}", "-o", path], input=self.dot.encode(), capture_output=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"dot failed to render {path}: {result.stderr.decode().strip()}")
        return path

    def _repr_svg_(self):  # Jupyter shows the picture when Graphviz is there
        exe = shutil.which("dot")
        if exe is None:
            return None
        out = subprocess.run([exe, "-Tsvg"], input=self.dot.encode(), capture_output=True)
        return out.stdout.decode() if out.returncode == 0 else None


def _op_name(node: Node) -> str:
    name = node.name
    return name[: -len("Backward0")] if name.endswith("Backward0") else name


def _fmt_array(arr, max_values: int) -> str | None:
    if arr is None or arr.size > max_values:
        return None
    vals = backend.to_numpy(arr).astype("float64").ravel().tolist()
    body = ", ".join(f"{v:.4g}" for v in vals)
    return body if arr.ndim <= 1 else f"[{body}]"


def _walk(root_nodes: list) -> list:
    """All nodes reachable from ``root_nodes`` (iteratively), in discovery order."""
    seen, order, stack = set(), [], list(root_nodes)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        order.append(node)
        for edge in node.edges:
            if edge is not None and edge[0] not in seen:
                stack.append(edge[0])
    return order


def _leaf_node(t: Tensor):
    from chainrule.tensor import _edge

    return _edge(t)[0] if t.requires_grad else None


def draw_graph(
    output: Tensor | list,
    params: dict | None = None,
    model=None,
    recording: Recording | None = None,
    show_values: bool = True,
    show_grads: bool = True,
    max_values: int = 8,
    collapse: bool | None = None,
    collapse_above: int = 60,
) -> Graph:
    """Draw the graph that produced ``output`` (a tensor or a list of tensors).

    Parameters are labelled with their names from ``params`` (``{"fc1.weight": p}``) or
    ``model.named_parameters()``; values and gradients with at most ``max_values`` elements
    are printed in the nodes.
    """
    outputs = [output] if isinstance(output, Tensor) else list(output)
    names = {}
    if recording is not None:
        names.update(recording.names)
    if model is not None:
        names.update({id(p): n for n, p in model.named_parameters()})
    if params:
        names.update({id(p): n for n, p in params.items()})

    roots = []
    for t in outputs:
        if t.grad_fn is not None:
            roots.append(t.grad_fn)
        elif t.requires_grad:
            roots.append(_leaf_node(t))
    nodes = _walk(roots)

    # shape and dtype of each node's outputs, read off the edges that consume them
    meta: dict = {}
    for node in nodes:
        for edge in node.edges:
            if edge is not None:
                meta[(edge[0], edge[1])] = (tuple(edge[2]), backend.from_np(edge[3]).name)
    for t in outputs:
        if t.grad_fn is not None:
            meta[(t.grad_fn, t._output_nr)] = (tuple(t.shape), t.dtype.name)

    module_of = recording.module_of if recording is not None else {}
    if collapse is None:
        collapse = len(nodes) > collapse_above and bool(module_of)

    ids = {node: f"n{i}" for i, node in enumerate(nodes)}
    lines = [
        "digraph chainrule {",
        '  graph [rankdir=BT, fontname="Helvetica"];',
        '  node [fontname="Helvetica", fontsize=10, shape=box, style="rounded,filled"];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    clusters: dict = {}
    collapsed_id: dict = {}

    for node in nodes:
        nid = ids[node]
        if type(node) is AccumulateGrad:
            var = node.variable
            title = names.get(id(var), "leaf")
            rows = [f"<b>{html.escape(title)}</b>", f"{list(var.shape)} {var.dtype.name}"]
            if show_values:
                v = _fmt_array(var._data, max_values)
                if v is not None:
                    rows.append(f"value: {html.escape(v)}")
            if show_grads and var.grad is not None:
                g = _fmt_array(var.grad._data, max_values)
                rows.append(f"grad: {html.escape(g)}" if g is not None else "grad: ✓")
            color = "#cfe8ff" if id(var) in names else "#e8e8e8"
            lines.append(f'  {nid} [label=<{"<br/>".join(rows)}>, fillcolor="{color}"];')
            continue
        module = module_of.get(node)
        if collapse and module:
            top = module.split(".")[0]
            collapsed_id.setdefault(top, f"m{len(collapsed_id)}")
            continue
        rows = [f"<b>{html.escape(_op_name(node))}</b>"]
        for nr in range(node.n_outputs):
            if (node, nr) in meta:
                shape, dt = meta[(node, nr)]
                rows.append(f"{list(shape)} {dt}")
        if show_values and recording is not None and node in recording.values:
            for arr in recording.values[node]:
                v = _fmt_array(arr, max_values)
                if v is not None:
                    rows.append(f"value: {html.escape(v)}")
        label = f'  {nid} [label=<{"<br/>".join(rows)}>, fillcolor="#fff2cc"];'
        if module:
            clusters.setdefault(module, []).append(label)
        else:
            lines.append(label)

    for i, (module, labels) in enumerate(sorted(clusters.items())):
        lines.append(f"  subgraph cluster_{i} {{")
        lines.append(f'    label="{html.escape(module)}"; style=dashed; color="#888888";')
        lines.extend("  " + lab for lab in labels)
        lines.append("  }")
    for top, mid in collapsed_id.items():
        lines.append(
            f"  {mid} [label=<<b>{html.escape(top)}</b><br/>(module)>, "
            'fillcolor="#d9ead3", shape=box3d];'
        )

    def endpoint(node):
        module = module_of.get(node)
        if collapse and module and type(node) is not AccumulateGrad:
            return collapsed_id[module.split(".")[0]]
        return ids[node]

    seen_edges = set()
    for node in nodes:
        for edge in node.edges:
            if edge is None:
                continue
            src, dst = endpoint(edge[0]), endpoint(node)
            if src == dst or (src, dst) in seen_edges:
                continue
            seen_edges.add((src, dst))
            lines.append(f"  {src} -> {dst};")
    for k, t in enumerate(outputs):
        lines.append(
            f'  out{k} [label="output {list(t.shape)}", shape=ellipse, fillcolor="#f4cccc"];'
        )
        if t.grad_fn is not None or t.requires_grad:
            root = t.grad_fn if t.grad_fn is not None else _leaf_node(t)
            lines.append(f"  {endpoint(root)} -> out{k};")
    lines.append("}")
    return Graph("\n".join(lines) + "\n", nodes)


__all__ = ["draw_graph", "record", "Graph", "Recording"]
