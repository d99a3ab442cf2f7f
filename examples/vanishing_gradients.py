"""Diagnose vanishing gradients in a deep sigmoid network, then fix them.

A :class:`~chainrule.diagnostics.GradientMonitor` attached to the model records per-layer
gradient statistics while the ordinary training loop runs; ``diagnose()`` names the problem
and the usual remedies.

Run: ``python examples/vanishing_gradients.py [--steps N]``
"""

import argparse

import chainrule as cr
from chainrule import datasets, nn
from chainrule.diagnostics import GradientMonitor


def deep_net(activation, depth: int = 10, width: int = 32) -> nn.Sequential:
    layers = [nn.Linear(2, width), activation()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), activation()]
    layers.append(nn.Linear(width, 3))
    return nn.Sequential(*layers)


def train(model, steps: int) -> GradientMonitor:
    data = datasets.load("spirals")
    x, y = data.train.tensors
    monitor = GradientMonitor(model)
    optimizer = cr.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(steps):
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model(x[:1])  # closes the last recorded step (update ratios)
    return monitor


def main(steps: int = 20) -> list:
    cr.manual_seed(0)
    sick = train(deep_net(nn.Sigmoid), steps)
    findings = sick.diagnose()
    print("deep sigmoid network:")
    for finding in findings:
        print(" ", finding)

    cr.manual_seed(0)
    model = deep_net(nn.Tanh)
    for layer in model:
        if isinstance(layer, nn.Linear):
            nn.init.xavier_normal_(layer.weight, gain=nn.init.calculate_gain("tanh"))
            nn.init.zeros_(layer.bias)
    healthy = train(model, steps)
    print("same depth, tanh with Xavier initialisation:")
    print(" ", [f.kind for f in healthy.diagnose()] or "no findings")
    return findings


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    main(parser.parse_args().steps)
