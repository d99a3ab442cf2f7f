"""A LeNet-style CNN training step on a 64 x 1 x 28 x 28 batch.

conv 1->16 k5 pad 2 + ReLU + maxpool 2; conv 16->32 k5 + ReLU + maxpool 2; flatten;
linear 800->128 + ReLU; linear 128->10; cross-entropy; backward; one ``optim.Adam`` step.
The model is built from ``nn`` layers of the framework under test and loaded with the same
NumPy-drawn weights (PyTorch's default init distributions), so both start from one loss.
"""

from __future__ import annotations

import importlib

import numpy as np

BATCH = 64
LR = 1e-3


def _uniform(rng, bound, shape):
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _arrays(seed: int):
    """Weights keyed like the model's ``state_dict``, one input batch and its labels."""
    rng = np.random.default_rng(seed)
    state = {}
    for key, shape in (
        ("0", (16, 1, 5, 5)),
        ("3", (32, 16, 5, 5)),
        ("7", (128, 800)),
        ("9", (10, 128)),
    ):
        bound = 1.0 / np.sqrt(int(np.prod(shape[1:])))
        state[f"{key}.weight"] = _uniform(rng, bound, shape)
        state[f"{key}.bias"] = _uniform(rng, bound, shape[0])
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH).astype(np.int64)
    return state, x, y


def build(fw, seed: int):
    """``fw`` is ``chainrule`` or ``torch``; returns ``(step, initial_loss, None)``."""
    nn = fw.nn
    state, x_np, y_np = _arrays(seed)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(800, 128),
        nn.ReLU(),
        nn.Linear(128, 10),
    )
    model.load_state_dict({k: fw.tensor(v) for k, v in state.items()})
    optimizer = fw.optim.Adam(model.parameters(), lr=LR)
    x = fw.tensor(x_np)
    y = fw.tensor(y_np)
    cross_entropy = importlib.import_module(f"{fw.__name__}.nn.functional").cross_entropy

    def step():
        loss = cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item()

    with fw.no_grad():
        initial = cross_entropy(model(x), y).item()
    return step, initial, None


WORKLOADS = {"cnn": build}
