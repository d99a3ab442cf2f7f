"""Padding layers (``ZeroPad2d``, ``ConstantPad1d/2d``, ``ReflectionPad1d/2d``,
``ReplicationPad1d/2d``, ``CircularPad1d/2d``): modules around ``nn.functional.pad``."""

from __future__ import annotations

from chainrule.nn import functional as F
from chainrule.nn.modules.module import Module
from chainrule.ops.nn_kernels import ntuple
from chainrule.tensor import Tensor

__all__ = [
    "ZeroPad1d",
    "ZeroPad2d",
    "ConstantPad1d",
    "ConstantPad2d",
    "ReflectionPad1d",
    "ReflectionPad2d",
    "ReplicationPad1d",
    "ReplicationPad2d",
    "CircularPad1d",
    "CircularPad2d",
]


class _PadNd(Module):
    mode = "constant"
    nd = 1

    def __init__(self, padding) -> None:
        super().__init__()
        self.padding = ntuple(padding, 2 * self.nd, "padding", type(self).__name__)

    def forward(self, input: Tensor) -> Tensor:
        return F.pad(input, self.padding, self.mode)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class _ConstantPadNd(_PadNd):
    def __init__(self, padding, value: float) -> None:
        super().__init__(padding)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dimension with ``value``: ``padding`` is an int or ``(left, right)``."""

    nd = 1


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dimensions with ``value``: ``(left, right, top, bottom)``."""

    nd = 2


class ZeroPad1d(ConstantPad1d):
    """Pad the last dimension with zeros."""

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dimensions with zeros.

    >>> import chainrule as cr
    >>> cr.nn.ZeroPad2d(1)(cr.ones(1, 2, 2)).shape
    chainrule.Size([1, 4, 4])
    """

    def __init__(self, padding) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        return f"{self.padding}"


class ReflectionPad1d(_PadNd):
    """Pad the last dimension with its reflection (the edge is not repeated)."""

    mode = "reflect"
    nd = 1


class ReflectionPad2d(_PadNd):
    """Pad the last two dimensions with their reflection."""

    mode = "reflect"
    nd = 2


class ReplicationPad1d(_PadNd):
    """Pad the last dimension by repeating the edge value."""

    mode = "replicate"
    nd = 1


class ReplicationPad2d(_PadNd):
    """Pad the last two dimensions by repeating the edge values."""

    mode = "replicate"
    nd = 2


class CircularPad1d(_PadNd):
    """Pad the last dimension by wrapping around."""

    mode = "circular"
    nd = 1


class CircularPad2d(_PadNd):
    """Pad the last two dimensions by wrapping around."""

    mode = "circular"
    nd = 2
