"""Shared fixtures for the optimiser tests: twin parameters in chainrule and PyTorch."""

from __future__ import annotations

import numpy as np

import chainrule as cr

# three small parameters (updated together through one flat buffer) and one large one (updated
# on its own), so both paths of the optimiser base class are compared with PyTorch
SHAPES = [(3, 4), (5,), (2, 3, 2), (130, 130)]


def initial_arrays(seed: int = 0, shapes=SHAPES) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


def gradient_sequence(steps: int, seed: int = 1, shapes=SHAPES) -> list[list[np.ndarray]]:
    """Gradients of varied scale per step (float64)."""
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(s) * rng.uniform(0.1, 3.0) for s in shapes] for _ in range(steps)]


def twin_params(arrays):
    import torch

    ours = [cr.nn.Parameter(cr.tensor(a.copy(), dtype=cr.float64)) for a in arrays]
    theirs = [torch.nn.Parameter(torch.tensor(a.copy(), dtype=torch.float64)) for a in arrays]
    return ours, theirs


def set_grads(params, grads, framework, skip=()):
    """Set ``.grad`` of each parameter (``None`` for the indices in ``skip``)."""
    for i, (p, g) in enumerate(zip(params, grads)):
        if i in skip:
            p.grad = None
        elif framework == "torch":
            import torch

            p.grad = torch.tensor(g, dtype=torch.float64)
        else:
            p.grad = cr.tensor(g, dtype=cr.float64)


def assert_same(ours, theirs, rtol=1e-10, atol=1e-12, where=""):
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(
            a.detach().numpy(),
            b.detach().numpy(),
            rtol=rtol,
            atol=atol,
            err_msg=f"parameter {i} {where}",
        )
