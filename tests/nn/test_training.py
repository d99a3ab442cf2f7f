"""End to end: a LeNet-style CNN and a 3-layer MLP learn a small generated dataset with a
hand-written SGD loop (parameters updated under ``no_grad``)."""

from __future__ import annotations

import numpy as np

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn


def _sgd(params, lr):
    with cr.no_grad():
        for p in params:
            p -= lr * p.grad
            p.grad = None


def _blobs(n, size, seed):
    """Images whose class is which quadrant holds a bright square (learnable by a CNN)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.standard_normal((n, 1, size, size)).astype(np.float32) * 0.3
    half = size // 2
    for i, c in enumerate(y):
        r, col = divmod(int(c), 2)
        x[i, 0, r * half : r * half + half, col * half : col * half + half] += 1.0
    return cr.tensor(x), cr.tensor(y)


def test_lenet_loss_falls():
    cr.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 2 * 2, 16),
        nn.ReLU(),
        nn.Linear(16, 4),
    )
    x, y = _blobs(64, 12, 0)
    losses = []
    for _ in range(40):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        _sgd(model.parameters(), 0.1)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    accuracy = float((model(x).argmax(1) == y).float().mean())
    assert accuracy > 0.8


def test_mlp_with_batchnorm_and_dropout_loss_falls():
    cr.manual_seed(1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((128, 10)).astype(np.float32)
    w = rng.standard_normal((10, 3))
    y = (x @ w).argmax(1)
    x, y = cr.tensor(x), cr.tensor(y)
    model = nn.Sequential(
        nn.Linear(10, 32),
        nn.BatchNorm1d(32),
        nn.ReLU(),
        nn.Dropout(0.1),
        nn.Linear(32, 32),
        nn.Tanh(),
        nn.Linear(32, 3),
    )
    first = None
    for _ in range(60):
        loss = nn.CrossEntropyLoss()(model(x), y)
        model.zero_grad()
        loss.backward()
        _sgd(model.parameters(), 0.2)
        first = loss.item() if first is None else first
    model.eval()
    with cr.no_grad():
        final = F.cross_entropy(model(x), y).item()
    assert final < 0.4 * first
