"""What watching costs: the MLP benchmark as ``nn`` modules, with and without the monitor.

* ``mlp_module``: 784→512→ReLU→512→ReLU→10 built from ``nn.Linear``/``nn.ReLU`` and loaded
  with the ``mlp`` workload's weights, batch 128, cross-entropy, backward, ``optim.SGD``.
* ``mlp_monitored``: the same step with chainrule's
  :class:`~chainrule.diagnostics.GradientMonitor` attached, recording every step (gradient
  and weight norms, update ratios, dead units, attribution, live-graph counts). PyTorch has no
  such monitor, so its column runs the plain step: the ``vs torch`` ratio of this row over
  that of ``mlp_module`` is the monitor's overhead.
"""

from __future__ import annotations

import importlib

from benchmarks.workloads.core import MLP_LR, MLP_SIZES, _mlp_arrays


def _build(fw, seed: int, monitored: bool):
    nn = importlib.import_module(f"{fw.__name__}.nn")
    arrays, x_np, y_np = _mlp_arrays(seed)
    layers = []
    for fan_in, fan_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    model = nn.Sequential(*layers[:-1])
    with fw.no_grad():
        linears = [m for m in model if isinstance(m, nn.Linear)]
        for lin, w, b in zip(linears, arrays[0::2], arrays[1::2]):
            lin.weight.copy_(fw.tensor(w))
            lin.bias.copy_(fw.tensor(b))
    if monitored and fw.__name__ == "chainrule":
        from chainrule.diagnostics import GradientMonitor

        monitor = GradientMonitor(model, every=1)
    else:
        monitor = None
    x, y = fw.tensor(x_np), fw.tensor(y_np)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = fw.optim.SGD(model.parameters(), lr=MLP_LR)

    def step():
        loss = loss_fn(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    with fw.no_grad():
        initial = loss_fn(model(x), y).item()
    step.monitor = monitor  # referenced by the step so it lives as long as the workload
    return step, initial, None


def build_mlp_module(fw, seed: int):
    return _build(fw, seed, monitored=False)


def build_mlp_monitored(fw, seed: int):
    return _build(fw, seed, monitored=True)


WORKLOADS = {"mlp_module": build_mlp_module, "mlp_monitored": build_mlp_monitored}
