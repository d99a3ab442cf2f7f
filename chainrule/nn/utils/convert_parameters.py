"""Flatten parameters into one vector and back."""

from __future__ import annotations

from collections.abc import Iterable

from chainrule.ops.movement import cat, reshape
from chainrule.tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """All ``parameters`` flattened and concatenated into one 1-D tensor (differentiable).

    >>> import chainrule as cr
    >>> lin = cr.nn.Linear(3, 2)
    >>> cr.nn.utils.parameters_to_vector(lin.parameters()).shape
    chainrule.Size([8])
    """
    return cat([reshape(p, (-1,)) for p in parameters])


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` (replacing their data)."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected chainrule.Tensor, but got: {type(vec).__name__}")
    arr = vec._data
    pointer = 0
    for p in parameters:
        n = p.numel()
        if pointer + n > arr.size:
            raise RuntimeError(
                f"vector_to_parameters: the vector has {arr.size} elements, fewer than the "
                "parameters need"
            )
        p._data = arr[pointer : pointer + n].reshape(tuple(p.shape)).astype(p._data.dtype)
        pointer += n
