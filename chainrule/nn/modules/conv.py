"""Convolution layers: ``Conv1d``, ``Conv2d``, ``Conv3d``, ``ConvTranspose1d``,
``ConvTranspose2d``.

The arithmetic lives in :mod:`chainrule.ops.nn_kernels`; these classes hold the weights,
their default initialisation (PyTorch's: ``kaiming_uniform_(a=sqrt(5))`` on the weight and
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` on the bias) and the non-zero ``padding_mode``\\ s,
which pad explicitly before a convolution without padding.
"""

from __future__ import annotations

from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.modules.linear import _kaiming_init, _register_bias
from chainrule.nn.modules.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.ops.creation import empty
from chainrule.ops.nn_kernels import ntuple
from chainrule.tensor import Tensor

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared state and repr of the convolution layers (``nd`` spatial dimensions)."""

    nd = 2
    transposed = False

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride,
        padding,
        dilation,
        groups: int,
        bias: bool,
        padding_mode: str,
        output_padding=0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        nd = self.nd
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {list(_PADDING_MODES)}, but got "
                f"padding_mode='{padding_mode}'"
            )
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = ntuple(kernel_size, nd, "kernel_size", name)
        self.stride = ntuple(stride, nd, "stride", name)
        self.dilation = ntuple(dilation, nd, "dilation", name)
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f"Invalid padding string {padding!r}, should be one of {{'valid', 'same'}}"
                )
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError("padding='same' is not supported for strided convolutions")
            self.padding = padding
        else:
            self.padding = ntuple(padding, nd, "padding", name)
        self.output_padding = ntuple(output_padding, nd, "output_padding", name)
        self.groups = groups
        self.padding_mode = padding_mode
        if self.transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(empty(shape, dtype=dtype, device=device))
        _register_bias(self, bias, out_channels, device, dtype)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw fresh initial values (PyTorch's default distributions)."""
        bound = _kaiming_init(self.weight)
        # unlike Linear's, a convolution's bias is left alone when the weight has no inputs
        if self.bias is not None and bound != 0:
            init.uniform_(self.bias, -bound, bound)

    def _explicit_pad(self, input: Tensor) -> tuple:
        """For non-zero padding modes: pad ``input`` itself and convolve without padding."""
        if self.padding_mode == "zeros":
            return input, self.padding
        if self.padding == "valid":
            return input, 0
        if self.padding == "same":
            pads = []
            for k, d in zip(reversed(self.kernel_size), reversed(self.dilation)):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]
        else:
            pads = []
            for p in reversed(self.padding):
                pads += [p, p]
        return F.pad(input, pads, mode=self.padding_mode), 0

    def extra_repr(self) -> str:
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * self.nd:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * self.nd:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self.nd:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    """The public constructor of ``Conv1d``, ``Conv2d`` and ``Conv3d``, which differ only in
    ``nd`` and in the functional convolution their ``forward`` calls."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            device=device,
            dtype=dtype,
        )


class Conv1d(_Conv):
    """1-D convolution over ``(N, C_in, L)`` input; weight ``(C_out, C_in/groups, k)``.

    >>> import chainrule as cr
    >>> cr.nn.Conv1d(2, 3, 3)
    Conv1d(2, 3, kernel_size=(3,), stride=(1,))
    """

    nd = 1

    def forward(self, input: Tensor) -> Tensor:
        x, padding = self._explicit_pad(input)
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv2d(_Conv):
    """2-D convolution over ``(N, C_in, H, W)`` input; weight ``(C_out, C_in/groups, kH, kW)``.

    ``padding`` may be an int, a pair, ``'same'`` or ``'valid'``; ``padding_mode`` is
    ``'zeros'``, ``'reflect'``, ``'replicate'`` or ``'circular'``.

    >>> import chainrule as cr
    >>> conv = cr.nn.Conv2d(1, 16, 5, padding=2)
    >>> conv(cr.zeros(8, 1, 28, 28)).shape
    chainrule.Size([8, 16, 28, 28])
    """

    nd = 2

    def forward(self, input: Tensor) -> Tensor:
        x, padding = self._explicit_pad(input)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class Conv3d(_Conv):
    """3-D convolution over ``(N, C_in, D, H, W)`` input."""

    nd = 3

    def forward(self, input: Tensor) -> Tensor:
        x, padding = self._explicit_pad(input)
        return F.conv3d(x, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)


class _ConvTransposeNd(_ConvNd):
    """Constructor and ``forward`` of ``ConvTranspose1d`` and ``ConvTranspose2d``, which differ
    only in ``nd`` and in the functional form ``forward`` calls (``_conv_transpose``)."""

    transposed = True
    # the functional form ``forward`` calls (``F.conv_transpose1d`` ...), set by each subclass
    _conv_transpose = None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        groups: int = 1,
        bias: bool = True,
        dilation=1,
        padding_mode: str = "zeros",
        device=None,
        dtype=None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {type(self).__name__}')
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding,
            dilation,
            groups,
            bias,
            padding_mode,
            output_padding=output_padding,
            device=device,
            dtype=dtype,
        )

    def forward(self, input: Tensor, output_size=None) -> Tensor:
        return self._conv_transpose(
            input,
            self.weight,
            self.bias,
            self.stride,
            self.padding,
            self._output_padding(input, output_size),
            self.groups,
            self.dilation,
        )

    def _output_padding(self, input: Tensor, output_size) -> tuple:
        """``output_padding``, or the one that makes the output ``output_size``."""
        if output_size is None:
            return self.output_padding
        size = tuple(output_size)[-self.nd :]
        extra = []
        for i in range(self.nd):
            n = input.shape[input.ndim - self.nd + i]
            smallest = (
                (n - 1) * self.stride[i]
                - 2 * self.padding[i]
                + self.dilation[i] * (self.kernel_size[i] - 1)
                + 1
            )
            diff = size[i] - smallest
            if not 0 <= diff < max(self.stride[i], self.dilation[i]):
                raise ValueError(
                    f"requested an output size of {list(size)}, but valid sizes range from "
                    f"{smallest} to {smallest + max(self.stride[i], self.dilation[i]) - 1} "
                    f"along dimension {i}"
                )
            extra.append(diff)
        return tuple(extra)


class ConvTranspose1d(_ConvTransposeNd):
    """Transposed 1-D convolution; weight ``(C_in, C_out/groups, k)``."""

    nd = 1
    _conv_transpose = staticmethod(F.conv_transpose1d)


class ConvTranspose2d(_ConvTransposeNd):
    """Transposed 2-D convolution (the gradient of ``Conv2d`` with respect to its input, used
    as an upsampling layer); weight ``(C_in, C_out/groups, kH, kW)``.

    >>> import chainrule as cr
    >>> up = cr.nn.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1)
    >>> up(cr.zeros(1, 4, 5, 5)).shape
    chainrule.Size([1, 2, 10, 10])
    """

    nd = 2
    _conv_transpose = staticmethod(F.conv_transpose2d)
