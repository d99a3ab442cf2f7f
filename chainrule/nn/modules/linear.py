"""Fully connected layers: ``Identity``, ``Linear``, ``Bilinear``."""

from __future__ import annotations

import math

from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.modules.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.ops.creation import empty
from chainrule.tensor import Tensor

__all__ = ["Identity", "Linear", "Bilinear"]


def _register_bias(module: Module, bias: bool, size: int, device, dtype) -> None:
    """``module.bias``: a parameter of ``size`` values when ``bias`` is True, else None
    (registered as a parameter either way, as PyTorch does)."""
    if bias:
        module.bias = Parameter(empty(size, dtype=dtype, device=device))
    else:
        module.register_parameter("bias", None)


def _kaiming_init(weight: Parameter) -> float:
    """PyTorch's default initialisation of ``Linear`` and convolution weights,
    ``kaiming_uniform_(a=sqrt(5))``. Returns the bound ``1/sqrt(fan_in)`` (0 for a weight
    without inputs) of the ``U(-bound, bound)`` their bias is drawn from."""
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    fan_in, _ = init._calculate_fan_in_and_fan_out(weight)
    return 1 / math.sqrt(fan_in) if fan_in > 0 else 0


class Identity(Module):
    """Returns its input unchanged (accepts and ignores any constructor arguments).

    >>> import chainrule as cr
    >>> cr.nn.Identity(54, unused="x")(cr.ones(2)).tolist()
    [1.0, 1.0]
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return input


class Linear(Module):
    """``y = x @ weight.T + bias`` with ``weight`` of shape ``(out_features, in_features)``.

    Initialised like PyTorch: ``weight`` by ``kaiming_uniform_(a=sqrt(5))`` (that is,
    ``U(-1/sqrt(in), 1/sqrt(in))``) and ``bias`` by ``U(-1/sqrt(in), 1/sqrt(in))``.

    >>> import chainrule as cr
    >>> cr.nn.Linear(784, 512)
    Linear(in_features=784, out_features=512, bias=True)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        self.weight = Parameter(empty((out_features, in_features), dtype=dtype, device=device))
        _register_bias(self, bias, out_features, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh initial values (PyTorch's default distributions)."""
        bound = _kaiming_init(self.weight)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class Bilinear(Module):
    """``y_o = x1^T weight_o x2 + bias_o`` with ``weight`` of shape ``(out, in1, in2)``.

    Weight and bias are drawn from ``U(-1/sqrt(in1), 1/sqrt(in1))``, as in PyTorch.
    """

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        self.weight = Parameter(
            empty((out_features, in1_features, in2_features), dtype=dtype, device=device)
        )
        _register_bias(self, bias, out_features, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh initial values (PyTorch's default distributions)."""
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )
