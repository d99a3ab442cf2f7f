"""``Flatten`` and ``Unflatten``: reshape layers."""

from __future__ import annotations

from chainrule.nn.modules.module import Module
from chainrule.ops.movement import flatten, unflatten
from chainrule.tensor import Tensor

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Merge dimensions ``start_dim..end_dim`` into one (by default all but the batch).

    >>> import chainrule as cr
    >>> cr.nn.Flatten()(cr.zeros(2, 3, 4)).shape
    chainrule.Size([2, 12])
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        return flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dimension ``dim`` into ``unflattened_size``.

    >>> import chainrule as cr
    >>> cr.nn.Unflatten(1, (3, 4))(cr.zeros(2, 12)).shape
    chainrule.Size([2, 3, 4])
    """

    def __init__(self, dim: int, unflattened_size) -> None:
        super().__init__()
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        return unflatten(input, self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
