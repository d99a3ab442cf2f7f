"""Core workloads: per-op overhead and a small MLP training step.

Data and initial weights come from NumPy (seeded), so every framework starts from the same
numbers; the harness checks that the initial losses agree.
"""

from __future__ import annotations

import importlib

import numpy as np

# -------------------------------------------------------------------------------------------
# overhead: a long chain of tiny elementwise ops, where the time is all framework bookkeeping
# -------------------------------------------------------------------------------------------

OVERHEAD_LENGTH = 200  # links in the chain; each link is 3 ops (mul, add, tanh)


def _overhead_input(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(16).astype(np.float32)


def build_overhead(fw, seed: int):
    """``y = tanh(y * 1.01 + 0.1)`` 200 times on 16 numbers, then ``sum`` and backward."""
    x = fw.tensor(_overhead_input(seed), requires_grad=True)

    def forward():
        y = x
        for _ in range(OVERHEAD_LENGTH):
            y = fw.tanh(y * 1.01 + 0.1)
        return y.sum()

    def step():
        loss = forward()
        loss.backward()
        x.grad = None
        return loss.item()

    with fw.no_grad():
        initial = forward().item()
    return step, initial, 3 * OVERHEAD_LENGTH


def build_overhead_jax(jax, seed: int):
    """The overhead chain under ``jax.jit`` (XLA fuses it: a lower bound, not a like-for-like)."""
    jnp = jax.numpy
    x = jnp.asarray(_overhead_input(seed))

    def forward(x):
        y = x
        for _ in range(OVERHEAD_LENGTH):
            y = jnp.tanh(y * 1.01 + 0.1)
        return y.sum()

    value_and_grad = jax.jit(jax.value_and_grad(forward))

    def step():
        loss, grad = value_and_grad(x)
        grad.block_until_ready()
        return float(loss)

    return step, float(jax.jit(forward)(x)), 3 * OVERHEAD_LENGTH


# -------------------------------------------------------------------------------------------
# mlp: 784 -> 512 -> ReLU -> 512 -> ReLU -> 10, cross-entropy, plain SGD, batch 128
# -------------------------------------------------------------------------------------------

MLP_SIZES = (784, 512, 512, 10)
MLP_BATCH = 128
MLP_LR = 0.01


def _mlp_arrays(seed: int):
    """Weights drawn like PyTorch's default ``Linear`` init, and one fixed batch."""
    rng = np.random.default_rng(seed)
    params = []
    for fan_in, fan_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        bound = 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_out, fan_in)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, fan_out).astype(np.float32))
    x = rng.standard_normal((MLP_BATCH, MLP_SIZES[0])).astype(np.float32)
    y = rng.integers(0, MLP_SIZES[-1], MLP_BATCH).astype(np.int64)
    return params, x, y


def build_mlp(fw, seed: int):
    """One SGD step of a 3-layer MLP written with raw tensors (no ``nn.Module``)."""
    arrays, x_np, y_np = _mlp_arrays(seed)
    params = [fw.tensor(a, requires_grad=True) for a in arrays]
    x = fw.tensor(x_np)
    y = fw.tensor(y_np)
    # the usual `import torch.nn.functional as F`, for whichever framework `fw` is
    cross_entropy = importlib.import_module(f"{fw.__name__}.nn.functional").cross_entropy

    def forward():
        w1, b1, w2, b2, w3, b3 = params
        h = fw.relu(x @ w1.T + b1)
        h = fw.relu(h @ w2.T + b2)
        return cross_entropy(h @ w3.T + b3, y)

    def step():
        loss = forward()
        loss.backward()
        with fw.no_grad():
            for p in params:
                p -= MLP_LR * p.grad
                p.grad = None
        return loss.item()

    with fw.no_grad():
        initial = forward().item()
    return step, initial, None


def build_mlp_jax(jax, seed: int):
    """The MLP step as one ``jax.jit``-compiled function."""
    jnp = jax.numpy
    arrays, x_np, y_np = _mlp_arrays(seed)
    params = [jnp.asarray(a) for a in arrays]
    x = jnp.asarray(x_np)
    y = jnp.asarray(y_np.astype(np.int32))

    def loss_fn(params):
        w1, b1, w2, b2, w3, b3 = params
        h = jax.nn.relu(x @ w1.T + b1)
        h = jax.nn.relu(h @ w2.T + b2)
        logp = jax.nn.log_softmax(h @ w3.T + b3, axis=-1)
        return -jnp.take_along_axis(logp, y[:, None], axis=1).mean()

    @jax.jit
    def update(params):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        return loss, [p - MLP_LR * g for p, g in zip(params, grads)]

    def step():
        nonlocal params
        loss, params = update(params)
        return float(loss)

    return step, float(jax.jit(loss_fn)(params)), None


WORKLOADS = {"overhead": build_overhead, "mlp": build_mlp}
JAX_WORKLOADS = {"overhead": build_overhead_jax, "mlp": build_mlp_jax}
