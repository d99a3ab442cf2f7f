"""Planted faults are diagnosed, healthy networks are not."""

from __future__ import annotations

import os

import pytest

import chainrule as cr
from chainrule import nn
from chainrule.cli.explain import deep_residual, deep_sigmoid
from chainrule.diagnostics import GradientMonitor, plots


def _data(n=256, d=8, classes=3, seed=0):
    g = cr.Generator().manual_seed(seed)
    x = cr.randn(n, d, generator=g)
    w = cr.randn(d, classes, generator=g)
    y = (x @ w).argmax(1)
    return x, y


def _train(model, steps=30, lr=0.05, momentum=0.0, batch=64, monitor=None, leak=False):
    monitor = monitor or GradientMonitor(model)
    x, y = _data(d=model[0].in_features)
    opt = cr.optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    total = 0.0
    for step in range(steps):
        i = (step * batch) % len(x)
        loss = nn.functional.cross_entropy(model(x[i : i + batch]), y[i : i + batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total = total + loss if leak else total + loss.item()
    return monitor


def kinds(findings):
    return {f.kind for f in findings}


def test_deep_sigmoid_is_flagged_vanishing_at_first_layers():
    cr.manual_seed(0)
    model = deep_sigmoid(10, 32, 8, 3)
    findings = _train(model).diagnose()
    vanishing = [f for f in findings if f.kind == "vanishing"]
    assert vanishing, findings
    assert vanishing[0].layer.split(",")[0].strip() == "0"  # the first Linear
    assert "sigmoid" in vanishing[0].advice or "ReLU" in vanishing[0].advice


def test_relu_he_residual_of_same_depth_is_healthy():
    cr.manual_seed(0)
    model = deep_residual(10, 32, 8, 3)
    findings = _train(model).diagnose()
    unhealthy = {"vanishing", "exploding", "dead", "saturated", "nonfinite"}
    assert not kinds(findings) & unhealthy, findings


def test_deep_linear_net_with_large_weights_is_flagged_exploding():
    cr.manual_seed(0)
    layers = []
    for _ in range(8):
        lin = nn.Linear(16, 16)
        nn.init.normal_(lin.weight, std=1.0)  # gain ~4 per layer
        layers.append(lin)
    model = nn.Sequential(nn.Linear(8, 16), *layers, nn.Linear(16, 3))
    findings = _train(model, steps=5, lr=1e-6).diagnose()
    assert "exploding" in kinds(findings) or "nonfinite" in kinds(findings), findings


def test_relu_with_large_negative_bias_is_flagged_dead():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    with cr.no_grad():
        model[0].bias.fill_(-20.0)
    findings = _train(model, steps=10).diagnose()
    dead = [f for f in findings if f.kind == "dead"]
    assert dead and dead[0].layer == "1", findings


def test_learning_rate_ten_is_flagged_too_high():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    findings = _train(model, steps=10, lr=10.0).diagnose()
    assert "lr_high" in kinds(findings) or "nonfinite" in kinds(findings), findings


def test_learning_rate_far_too_low_is_flagged():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    findings = _train(model, steps=10, lr=1e-8).diagnose()
    assert "lr_low" in kinds(findings), findings


def test_tiny_updates_after_convergence_are_not_flagged_low():
    # an annealed schedule ends with near-zero steps; the gradient has shrunk by then
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    monitor = _train(model, steps=60, lr=0.5, momentum=0.9)
    _train(model, steps=10, lr=1e-9, monitor=monitor)
    grads = [s.grad_norm for s in monitor.layers.values()]
    assert max(g[-1] for g in grads) < 0.1 * max(g[0] for g in grads)  # it did converge
    assert "lr_low" not in kinds(monitor.diagnose()), monitor.diagnose()


def test_healthy_training_has_no_findings():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3))
    findings = _train(model, steps=40, lr=0.05, momentum=0.9).diagnose()
    assert findings == [], findings


def test_history_leak_is_reported_with_its_growth():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    findings = _train(model, steps=12, leak=True).diagnose()
    leak = [f for f in findings if f.kind == "leak"]
    assert leak and "nodes per step" in leak[0].evidence, findings
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    assert "leak" not in kinds(_train(model, steps=12).diagnose())


def test_attribution_ranks_parameters():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    monitor = _train(model, steps=5)
    ranked = monitor.attribution()
    assert {name for name, _ in ranked} == {n for n, _ in model.named_parameters()}
    values = [v for _, v in ranked]
    assert values == sorted(values, reverse=True) and values[0] > 0
    shares = [share for _, _, share in monitor.layer_attribution()]
    assert sum(shares) == pytest.approx(1.0)


def test_plots_are_written(tmp_path):
    pytest.importorskip("matplotlib")
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    monitor = _train(model, steps=5)
    for fn in (plots.plot_gradient_flow, plots.plot_layer_stats, plots.plot_attribution):
        path = fn(monitor, str(tmp_path / f"{fn.__name__}.png"))
        assert os.path.getsize(path) > 1000


def test_detach_removes_hooks():
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    monitor = _train(model, steps=3)
    steps = len(monitor.layers["0"].grad_norm)
    monitor.detach()
    _train(model, steps=3, monitor=monitor)
    assert len(monitor.layers["0"].grad_norm) == steps


def test_sampled_update_ratio_and_attribution_match_exact_values():
    # a 512 x 784 weight is measured on an evenly spaced sample; compare with full sums
    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 3))
    monitor = GradientMonitor(model)
    x, y = cr.randn(64, 784), cr.randint(0, 3, (64,))
    opt = cr.optim.Adam(model.parameters(), lr=1e-3)
    weight = model[0].weight
    for _ in range(3):
        before = weight.detach().clone()
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        exact_attr = float((weight.detach() * weight.grad).abs().sum())
        sampled_attr = monitor._pending_attr["0"] - float(
            (model[0].bias.detach() * model[0].bias.grad).abs().sum()
        )
        assert sampled_attr == pytest.approx(exact_attr, rel=0.05)
        opt.step()
        exact_ratio = float(
            ((weight.detach() - before).pow(2).sum() + 0.0).sqrt() / before.pow(2).sum().sqrt()
        )
    model(x)  # closes the last step
    # the layer's ratio mixes weight and (exactly measured) bias, dominated by the weight
    assert monitor.layers["0"].update_ratio[-1] == pytest.approx(exact_ratio, rel=0.05)
