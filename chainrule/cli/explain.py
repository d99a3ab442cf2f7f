"""``chainrule explain`` and ``chainrule demo vanishing``: backprop made visible."""

from __future__ import annotations

import math
import os

import chainrule as cr
from chainrule import nn
from chainrule.diagnostics import GradientMonitor, draw_graph, plots, record, trace_backward
from chainrule.diagnostics.trace import tiny_network


def run_explain(args) -> int:
    """Print the chain-rule trace of the tiny network and write its graph."""
    print("The network (x1 = 1.0, x2 = -0.5, target t = 1.0):")
    print("  h1 = tanh(w11*x1 + w12*x2 + b1)    w11=0.4, w12=-0.2, b1=0.1")
    print("  h2 = tanh(w21*x1 + w22*x2 + b2)    w21=-0.3, w22=0.6, b2=0.0")
    print("  y  = wo1*h1 + wo2*h2 + bo          wo1=0.7, wo2=-0.5, bo=0.2")
    print("  L  = (y - t)^2")
    print()
    with record() as rec:
        loss, params = tiny_network()
    trace = trace_backward(loss, params=params)
    print(trace)
    os.makedirs(args.out, exist_ok=True)
    loss.backward()
    rec.names.update({id(t): n for n, t in params.items()})
    graph = draw_graph(loss, recording=rec)
    dot_path = graph.save(os.path.join(args.out, "graph.dot"))
    print(f"\ngraph written to {dot_path}")
    try:
        print(f"rendered: {graph.save(os.path.join(args.out, 'graph.svg'))}")
    except RuntimeError as exc:
        print(f"(not rendered: {exc})")
    return 0


# ---- demo vanishing -----------------------------------------------------------------------


class ResidualBlock(nn.Module):
    """``x + linear(relu(x))``, the pre-activation form: the identity path carries the
    gradient past the block untouched, and the stream itself is never clipped by a ReLU
    (with ``x + relu(...)`` it stays non-negative and many units die on low-dimensional data).

    The branch starts as He initialisation scaled by ``branch_gain``: each block adds its
    branch's variance to the signal, so a stack of n blocks uses ``1/sqrt(n)`` to keep the
    activations (and the first steps of SGD) from growing with depth."""

    def __init__(self, width: int, branch_gain: float = 1.0):
        super().__init__()
        self.act = nn.ReLU()
        self.linear = nn.Linear(width, width)
        nn.init.kaiming_normal_(self.linear.weight, nonlinearity="relu")
        with cr.no_grad():
            self.linear.weight.mul_(branch_gain)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x):
        return x + self.linear(self.act(x))


def deep_sigmoid(depth: int, width: int, n_in: int, n_out: int) -> nn.Sequential:
    """``depth`` sigmoid layers with PyTorch's default initialisation."""
    mods: list = [nn.Linear(n_in, width), nn.Sigmoid()]
    for _ in range(depth - 1):
        mods += [nn.Linear(width, width), nn.Sigmoid()]
    return nn.Sequential(*mods, nn.Linear(width, n_out))


def deep_residual(depth: int, width: int, n_in: int, n_out: int) -> nn.Sequential:
    """The same depth with ReLU, He initialisation and (pre-activation) residual blocks."""
    first = nn.Linear(n_in, width)
    nn.init.kaiming_normal_(first.weight, nonlinearity="relu")
    gain = 1.0 / math.sqrt(max(depth - 1, 1))
    blocks = [ResidualBlock(width, gain) for _ in range(depth - 1)]
    return nn.Sequential(first, *blocks, nn.ReLU(), nn.Linear(width, n_out))


def train_and_monitor(model, data, steps: int, lr: float, seed: int):
    """SGD on ``data`` for ``steps`` steps with a monitor attached; returns (monitor, losses)."""
    monitor = GradientMonitor(model)
    opt = cr.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loader = cr.utils.data.DataLoader(
        data.train, batch_size=64, shuffle=True, generator=cr.Generator().manual_seed(seed)
    )
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    step = 0
    while step < steps:
        for x, y in loader:
            loss = loss_fn(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
            step += 1
            if step >= steps:
                break
    return monitor, losses


def run_demo(args) -> int:
    """Deep sigmoid network vs the same depth with ReLU + He init + residuals."""
    data = cr.datasets.load("spirals", seed=args.seed)
    n_in = math.prod(data.input_shape)
    os.makedirs(args.out, exist_ok=True)
    results = {}
    for name, builder in (("sigmoid", deep_sigmoid), ("relu-he-residual", deep_residual)):
        cr.manual_seed(args.seed)
        model = builder(args.depth, 32, n_in, data.num_classes)
        monitor, losses = train_and_monitor(model, data, args.steps, 0.05, args.seed)
        findings = monitor.diagnose()
        results[name] = (monitor, losses, findings)
        print(f"== {args.depth} layers, {name}: loss {losses[0]:.3f} -> {losses[-1]:.3f}")
        print(monitor.summary())
        if findings:
            for f in findings:
                print(f"diagnosis: {f}")
        else:
            print("diagnosis: healthy (no findings)")
        try:
            plots.plot_gradient_flow(
                monitor,
                os.path.join(args.out, f"gradient_flow_{name}.png"),
                title=f"{args.depth} layers, {name}",
            )
            plots.plot_layer_stats(
                monitor, os.path.join(args.out, f"layer_stats_{name}.png"), title=name
            )
        except ImportError as exc:
            print(f"(no plots: {exc})")
        print()
    print(f"plots written to {args.out}")
    return 0
