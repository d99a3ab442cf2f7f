"""Neural-network building blocks (``chainrule.nn``), PyTorch's names and semantics."""

from chainrule.nn.parameter import Parameter

__all__ = ["Parameter"]
