"""Optimiser steps alone: Adam and SGD with momentum over two parameter layouts.

* ``mlp``: the parameters of a 784 -> 512 -> 512 -> 10 MLP (six tensors, 670k numbers), where
  the time is the arithmetic over long arrays;
* ``small``: 200 vectors of 64 numbers (norm scales, biases...), where the time is the cost of
  visiting many parameters.

Gradients are fixed NumPy draws set once; ``step()`` is one ``optimizer.step()``. PyTorch runs
its default implementation. The initial "loss" is a checksum of the starting weights, so the
harness can check both frameworks start from the same numbers.
"""

from __future__ import annotations

import numpy as np

MLP_SHAPES = [(512, 784), (512,), (512, 512), (512,), (10, 512), (10,)]
SMALL_SHAPES = [(64,)] * 200


def _arrays(shapes, seed: int):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float32) * 0.05 for s in shapes]
    grads = [rng.standard_normal(s).astype(np.float32) * 0.01 for s in shapes]
    return params, grads


def _build(fw, seed: int, shapes, optimizer: str):
    arrays, grad_arrays = _arrays(shapes, seed)
    params = [fw.nn.Parameter(fw.tensor(a)) for a in arrays]
    for p, g in zip(params, grad_arrays):
        p.grad = fw.tensor(g)
    if optimizer == "adam":
        opt = fw.optim.Adam(params, lr=1e-3)
    else:
        opt = fw.optim.SGD(params, lr=1e-2, momentum=0.9)

    def step():
        opt.step()
        return None

    checksum = float(sum(float(a.astype(np.float64).sum()) for a in arrays))
    return step, checksum, None


def build(fw, seed: int, variant: str):
    """``variant`` is ``'<adam|sgd>_<mlp|small>'``; returns ``(step, checksum, None)``."""
    optimizer, layout = variant.split("_")
    shapes = {"mlp": MLP_SHAPES, "small": SMALL_SHAPES}[layout]
    return _build(fw, seed, shapes, optimizer)


def _workload(variant: str):
    def build_variant(fw, seed: int):
        return build(fw, seed, variant)

    build_variant.__name__ = f"build_optim_{variant}"
    build_variant.__doc__ = f"``optimizer.step()`` only: {variant.replace('_', ' over ')}."
    return build_variant


WORKLOADS = {
    f"optim_{variant}": _workload(variant)
    for variant in ("adam_mlp", "sgd_mlp", "adam_small", "sgd_small")
}
