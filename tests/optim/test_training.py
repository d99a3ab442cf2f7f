"""Each optimiser trains a small MLP (raw tensors) to a stated accuracy on generated data."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

ACCURACY = 0.95  # on held-out points of the generated set


def _xor_blobs(n: int, seed: int):
    """Four Gaussian blobs at the corners of a square, labelled XOR-wise (not linearly
    separable)."""
    rng = np.random.default_rng(seed)
    corner = rng.integers(0, 2, size=(n, 2))
    x = corner * 2.0 - 1.0 + rng.normal(0.0, 0.3, size=(n, 2))
    y = corner[:, 0] ^ corner[:, 1]
    return x, y


def _mlp(seed: int, hidden: int = 16):
    rng = np.random.default_rng(seed)
    shapes = [(2, hidden), (hidden,), (hidden, 2), (2,)]
    scales = [1 / np.sqrt(2), 0.0, 1 / np.sqrt(hidden), 0.0]
    return [
        cr.nn.Parameter(cr.tensor(rng.standard_normal(s) * k, dtype=cr.float64))
        for s, k in zip(shapes, scales)
    ]


def _forward(params, x):
    w1, b1, w2, b2 = params
    return cr.tanh(x @ w1 + b1) @ w2 + b2


def _loss(params, x, onehot):
    logp = cr.log_softmax(_forward(params, x), 1)
    return -(logp * onehot).sum() / x.shape[0]


OPTIMISERS = [
    ("SGD", {"lr": 0.1, "momentum": 0.9}, 150),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-4}, 150),
    ("Adam", {"lr": 0.05}, 150),
    ("AdamW", {"lr": 0.05, "amsgrad": True}, 150),
    ("RMSprop", {"lr": 0.01}, 150),
    ("Adagrad", {"lr": 0.3}, 150),
    ("Adadelta", {"lr": 5.0}, 200),
    ("Adamax", {"lr": 0.1}, 150),
    ("NAdam", {"lr": 0.05}, 150),
    ("LBFGS", {"line_search_fn": "strong_wolfe", "max_iter": 10}, 10),
    ("LBFGS", {"lr": 0.5, "max_iter": 10}, 10),
]


@pytest.mark.parametrize(
    "name,opts,steps", OPTIMISERS, ids=[o[0] + str(i) for i, o in enumerate(OPTIMISERS)]
)
def test_mlp_reaches_accuracy(name, opts, steps):
    x_np, y_np = _xor_blobs(400, seed=0)
    x_train, y_train = cr.tensor(x_np[:300], dtype=cr.float64), y_np[:300]
    x_test, y_test = cr.tensor(x_np[300:], dtype=cr.float64), y_np[300:]
    onehot = cr.tensor(np.eye(2)[y_train], dtype=cr.float64)
    params = _mlp(seed=1)
    opt = getattr(cr.optim, name)(params, **opts)

    def closure():
        opt.zero_grad()
        loss = _loss(params, x_train, onehot)
        loss.backward()
        return loss

    first = float(_loss(params, x_train, onehot))
    for _ in range(steps):
        loss = opt.step(closure) if name == "LBFGS" else (closure(), opt.step())[0]
    with cr.no_grad():
        predicted = _forward(params, x_test).numpy().argmax(1)
    accuracy = float((predicted == y_test).mean())
    assert float(loss) < first
    assert accuracy >= ACCURACY, f"{name}: accuracy {accuracy:.3f}"


def test_nn_module_with_scheduler_reaches_accuracy():
    """Module parameters, a scheduler stepped per batch, mini-batches: the usual loop."""
    nn = cr.nn
    cr.manual_seed(0)
    x_np, y_np = _xor_blobs(400, seed=2)
    x = cr.tensor(x_np, dtype=cr.float32)
    y = cr.tensor(y_np)
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    opt = cr.optim.AdamW(model.parameters(), lr=0.01)
    epochs, batches = 15, 6
    sched = cr.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.05, epochs=epochs, steps_per_epoch=batches
    )
    for _ in range(epochs):
        for b in range(batches):
            lo, hi = b * 50, (b + 1) * 50
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x[lo:hi]), y[lo:hi])
            loss.backward()
            opt.step()
            sched.step()
    with cr.no_grad():
        predicted = model(x[300:]).numpy().argmax(1)
    assert float((predicted == y_np[300:]).mean()) >= ACCURACY
