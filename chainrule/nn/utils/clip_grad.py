"""Gradient clipping: ``clip_grad_norm_`` and ``clip_grad_value_``."""

from __future__ import annotations

import math
from collections.abc import Iterable

from chainrule import backend
from chainrule.tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _grads(parameters) -> list:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def _norm(xp, arr, norm_type: float):
    if norm_type == math.inf:
        return xp.max(xp.abs(arr)) if arr.size else xp.zeros((), arr.dtype)
    if norm_type == -math.inf:
        return xp.min(xp.abs(arr)) if arr.size else xp.zeros((), arr.dtype)
    if norm_type == 0:
        return xp.asarray(xp.count_nonzero(arr), dtype=arr.dtype)
    if norm_type == 2:
        return xp.sqrt(xp.sum(arr * arr))
    if norm_type == 1:
        return xp.sum(xp.abs(arr))
    return xp.sum(xp.abs(arr) ** norm_type) ** (1.0 / norm_type)


def get_total_norm(
    tensors, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach=None
) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` taken together (as one long vector)."""
    if isinstance(tensors, Tensor):
        tensors = [tensors]
    tensors = [t for t in tensors if t is not None]
    norm_type = float(norm_type)
    if not tensors:
        return Tensor._make(backend.np.zeros((), dtype=backend.get_default_dtype().np))
    xp = backend.array_module(tensors[0]._data)
    dtype = tensors[0]._data.dtype
    norms = xp.stack([xp.asarray(_norm(xp, t._data, norm_type)).astype(dtype) for t in tensors])
    total = xp.asarray(_norm(xp, norms, norm_type)).astype(dtype)
    if error_if_nonfinite and not bool(xp.isfinite(total)):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is "
            "non-finite, so it cannot be clipped. To disable this error and scale the gradients "
            "by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return Tensor._make(total)


def clip_grads_with_norm_(parameters, max_norm: float, total_norm: Tensor, foreach=None) -> None:
    """Scale the gradients by ``max_norm / (total_norm + 1e-6)`` when that is below 1."""
    grads = _grads(parameters)
    if not grads:
        return
    coef = float(max_norm) / (float(total_norm.item()) + 1e-6)
    if coef < 1.0 or math.isnan(coef):
        with backend.errstate(invalid="ignore"):  # inf * 0 is NaN, as in PyTorch
            for g in grads:
                g._data *= g._data.dtype.type(coef)


def clip_grad_norm_(
    parameters: Tensor | Iterable[Tensor],
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach=None,
) -> Tensor:
    """Rescale the gradients of ``parameters`` in place so that their total norm (all
    gradients seen as one vector) is at most ``max_norm``; returns the norm before clipping.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.zeros(2))
    >>> w.grad = cr.tensor([3.0, 4.0])
    >>> cr.nn.utils.clip_grad_norm_([w], max_norm=1.0).item(), w.grad.tolist()
    (5.0, [0.6000000238418579, 0.800000011920929])
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    parameters = list(parameters)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    if grads:
        clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_value_(
    parameters: Tensor | Iterable[Tensor], clip_value: float, foreach=None
) -> None:
    """Clamp every gradient of ``parameters`` to ``[-clip_value, clip_value]`` in place."""
    clip_value = float(clip_value)
    for g in _grads(parameters):
        xp = backend.array_module(g._data)
        xp.clip(g._data, -clip_value, clip_value, out=g._data)
