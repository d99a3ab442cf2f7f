"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their one-step ``*Cell`` forms.

Parameter names, shapes, gate order and default initialisation are PyTorch's, so a PyTorch
``state_dict`` loads and gives the same outputs. The arithmetic happens in the fused kernels
of :mod:`chainrule.ops.sequence_kernels`: every layer-direction of a sequence is ONE node in
the autograd graph, with a hand-written backpropagation through time, so long sequences cost
neither graph bookkeeping nor recursion depth.
"""

from __future__ import annotations

import math
import warnings

from chainrule.nn import init
from chainrule.nn.modules.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.ops import creation
from chainrule.ops import movement as mv
from chainrule.ops import sequence_kernels as sk
from chainrule.tensor import Tensor

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}


class RNNBase(Module):
    """What :class:`RNN`, :class:`LSTM` and :class:`GRU` share: parameters and checks.

    Per layer ``k`` and direction (suffix ``""`` or ``"_reverse"``) it registers
    ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` (with ``bias``)
    and ``weight_hr_l{k}`` (LSTM with ``proj_size > 0``), in that order, all initialised from
    ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``.
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"Unrecognized RNN mode: {mode}")
        if (
            not isinstance(dropout, (int, float))
            or isinstance(dropout, bool)
            or not 0 <= dropout <= 1
        ):
            raise ValueError(
                "dropout should be a number in range [0, 1] representing the probability of an "
                "element being zeroed"
            )
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        if not isinstance(hidden_size, int) or isinstance(hidden_size, bool):
            raise TypeError(f"hidden_size should be of type int, got: {type(hidden_size).__name__}")
        if hidden_size <= 0:
            raise ValueError("hidden_size must be greater than zero")
        if num_layers <= 0:
            raise ValueError("num_layers must be greater than zero")
        if proj_size < 0:
            raise ValueError(
                "proj_size should be a positive integer or zero to disable projections"
            )
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        self.proj_size = proj_size
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        real_hidden = proj_size if proj_size > 0 else hidden_size
        self._flat_weights_names: list = []
        for layer in range(num_layers):
            for direction in range(directions):
                in_size = input_size if layer == 0 else real_hidden * directions
                suffix = "_reverse" if direction == 1 else ""
                shapes = [
                    (f"weight_ih_l{layer}{suffix}", (gate_size, in_size)),
                    (f"weight_hh_l{layer}{suffix}", (gate_size, real_hidden)),
                ]
                if bias:
                    shapes += [
                        (f"bias_ih_l{layer}{suffix}", (gate_size,)),
                        (f"bias_hh_l{layer}{suffix}", (gate_size,)),
                    ]
                if proj_size > 0:
                    shapes.append((f"weight_hr_l{layer}{suffix}", (proj_size, hidden_size)))
                for name, shape in shapes:
                    setattr(
                        self, name, Parameter(creation.empty(*shape, dtype=dtype, device=device))
                    )
                    self._flat_weights_names.append(name)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    @property
    def _flat_weights(self) -> list:
        """The parameters in the order the kernels take them (looked up afresh each call)."""
        return [getattr(self, name) for name in self._flat_weights_names]

    @property
    def all_weights(self) -> list:
        """The parameters grouped per layer-direction: ``[[w_ih, w_hh, b_ih, b_hh], ...]``."""
        per = len(self._flat_weights_names) // (self.num_layers * (2 if self.bidirectional else 1))
        flat = self._flat_weights
        return [flat[i : i + per] for i in range(0, len(flat), per)]

    def flatten_parameters(self) -> None:
        """Does nothing: chainrule's kernels need no packed weight buffer (PyTorch API)."""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    # -- forward helpers ---------------------------------------------------------------------
    def _batched(self, input: Tensor) -> bool:
        if input.dim() not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 2D or 3D, got {input.dim()}D "
                "tensor instead"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input.size(-1) must be equal to input_size. Expected {self.input_size}, "
                f"got {input.shape[-1]}"
            )
        return input.dim() == 3

    def _state_shape(self, input: Tensor, size: int) -> tuple:
        directions = 2 if self.bidirectional else 1
        batch = input.shape[0 if self.batch_first else 1]
        return (self.num_layers * directions, batch, size)

    def _check_state(self, state: Tensor, expected: tuple, what: str = "hidden") -> None:
        if tuple(state.shape) != expected:
            raise RuntimeError(f"Expected {what} size {expected}, got {list(state.shape)}")

    def _zeros_state(self, input: Tensor, size: int) -> Tensor:
        return creation.zeros(
            *self._state_shape(input, size), dtype=input.dtype, device=input.device
        )


def _unbatched_state(name: str, states, batched: bool) -> None:
    for s in states:
        want = 3 if batched else 2
        if s.dim() != want:
            kind = "batched 3-D" if batched else "unbatched 2-D"
            raise RuntimeError(
                f"For {kind} input, {name} should also be {want}-D but got {s.dim()}-D tensor"
            )


class _SingleStateRNN(RNNBase):
    """RNN and GRU: one state tensor ``h``."""

    def forward(self, input: Tensor, hx: Tensor | None = None) -> tuple:
        batched = self._batched(input)
        if not batched:
            input = mv.unsqueeze(input, 0 if self.batch_first else 1)
            if hx is not None:
                _unbatched_state("hx", (hx,), False)
                hx = mv.unsqueeze(hx, 1)
        elif hx is not None:
            _unbatched_state("hx", (hx,), True)
        if hx is None:
            hx = self._zeros_state(input, self.hidden_size)
        else:
            self._check_state(hx, self._state_shape(input, self.hidden_size))
        fn = {"GRU": sk.gru, "RNN_TANH": sk.rnn_tanh, "RNN_RELU": sk.rnn_relu}[self.mode]
        output, h_n = fn(
            input,
            hx,
            self._flat_weights,
            self.bias,
            self.num_layers,
            self.dropout,
            self.training,
            self.bidirectional,
            self.batch_first,
        )
        if not batched:
            output = mv.squeeze(output, 0 if self.batch_first else 1)
            h_n = mv.squeeze(h_n, 1)
        return output, h_n


class RNN(_SingleStateRNN):
    """A multi-layer Elman RNN: ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``.

    ``RNN(input_size, hidden_size, num_layers=1, nonlinearity='tanh', bias=True,
    batch_first=False, dropout=0.0, bidirectional=False)``; ``forward(input, hx=None)``
    returns ``(output, h_n)``. Input ``(L, N, H_in)`` (``(N, L, H_in)`` with ``batch_first``)
    or unbatched ``(L, H_in)``.

    >>> import chainrule as cr
    >>> rnn = cr.nn.RNN(3, 5, num_layers=2)
    >>> out, h = rnn(cr.randn(7, 2, 3))
    >>> tuple(out.shape), tuple(h.shape)
    ((7, 2, 5), (2, 2, 5))
    """

    def __init__(self, *args, **kwargs) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if len(args) > 3:
            nonlinearity = args[3]
            args = args[:3] + args[4:]
        else:
            nonlinearity = kwargs.pop("nonlinearity", "tanh")
        if nonlinearity == "tanh":
            mode = "RNN_TANH"
        elif nonlinearity == "relu":
            mode = "RNN_RELU"
        else:
            raise ValueError(
                f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        super().__init__(mode, *args, **kwargs)
        self.nonlinearity = nonlinearity


class GRU(_SingleStateRNN):
    """A multi-layer gated recurrent unit (PyTorch's equations and gate order ``r, z, n``).

    ``GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False)``; ``forward(input, hx=None)`` returns ``(output, h_n)``.

    >>> import chainrule as cr
    >>> gru = cr.nn.GRU(3, 4, batch_first=True, bidirectional=True)
    >>> out, h = gru(cr.randn(2, 6, 3))
    >>> tuple(out.shape), tuple(h.shape)
    ((2, 6, 8), (2, 2, 4))
    """

    def __init__(self, *args, **kwargs) -> None:
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        super().__init__("GRU", *args, **kwargs)


class LSTM(RNNBase):
    """A multi-layer long short-term memory (PyTorch's equations and gate order ``i, f, g, o``).

    ``LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
    bidirectional=False, proj_size=0)``; ``forward(input, hx=None)`` with ``hx = (h_0, c_0)``
    returns ``(output, (h_n, c_n))``. With ``proj_size > 0`` the hidden state is projected
    by ``weight_hr_l{k}`` to ``proj_size`` features.

    >>> import chainrule as cr
    >>> lstm = cr.nn.LSTM(3, 4, num_layers=2, proj_size=2)
    >>> out, (h, c) = lstm(cr.randn(5, 3))  # unbatched
    >>> tuple(out.shape), tuple(h.shape), tuple(c.shape)
    ((5, 2), (2, 2), (2, 4))
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("LSTM", *args, **kwargs)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        batched = self._batched(input)
        real_hidden = self.proj_size if self.proj_size > 0 else self.hidden_size
        if not batched:
            input = mv.unsqueeze(input, 0 if self.batch_first else 1)
        if hx is None:
            h0 = self._zeros_state(input, real_hidden)
            c0 = self._zeros_state(input, self.hidden_size)
        else:
            h0, c0 = hx
            if not batched:
                if h0.dim() != 2 or c0.dim() != 2:
                    raise RuntimeError(
                        "For unbatched 2-D input, hx and cx should also be 2-D but got "
                        f"({h0.dim()}-D, {c0.dim()}-D) tensors"
                    )
                h0, c0 = mv.unsqueeze(h0, 1), mv.unsqueeze(c0, 1)
            elif h0.dim() != 3 or c0.dim() != 3:
                raise RuntimeError(
                    "For batched 3-D input, hx and cx should also be 3-D but got "
                    f"({h0.dim()}-D, {c0.dim()}-D) tensors"
                )
            self._check_state(h0, self._state_shape(input, real_hidden), "hidden[0]")
            self._check_state(c0, self._state_shape(input, self.hidden_size), "hidden[1]")
        output, h_n, c_n = sk.lstm(
            input,
            (h0, c0),
            self._flat_weights,
            self.bias,
            self.num_layers,
            self.dropout,
            self.training,
            self.bidirectional,
            self.batch_first,
        )
        if not batched:
            output = mv.squeeze(output, 0 if self.batch_first else 1)
            h_n, c_n = mv.squeeze(h_n, 1), mv.squeeze(c_n, 1)
        return output, (h_n, c_n)


# ---------------------------------------------------------------------------------------------
# cells: one time step
# ---------------------------------------------------------------------------------------------


class RNNCellBase(Module):
    """Parameters of the one-step cells: ``weight_ih (G*H, I)``, ``weight_hh (G*H, H)``,
    ``bias_ih``, ``bias_hh (G*H)``, initialised from ``U(-1/sqrt(H), 1/sqrt(H))``."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool,
        num_chunks: int,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        rows = num_chunks * hidden_size
        kw = {"dtype": dtype, "device": device}
        self.weight_ih = Parameter(creation.empty(rows, input_size, **kw))
        self.weight_hh = Parameter(creation.empty(rows, hidden_size, **kw))
        if bias:
            self.bias_ih = Parameter(creation.empty(rows, **kw))
            self.bias_hh = Parameter(creation.empty(rows, **kw))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Every weight and bias from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        stdv = 1.0 / math.sqrt(self.hidden_size) if self.hidden_size > 0 else 0
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        nonlinearity = getattr(self, "nonlinearity", "tanh")
        if nonlinearity != "tanh":
            s += f", nonlinearity={nonlinearity}"
        return s

    def _prepare(self, input: Tensor, states: list) -> tuple:
        """Check shapes; unbatched 1-D input and states get a batch dimension."""
        if input.dim() not in (1, 2):
            raise ValueError(
                f"{type(self).__name__}: Expected input to be 1D or 2D, got {input.dim()}D instead"
            )
        if input.shape[-1] != self.input_size:
            raise RuntimeError(
                f"input has inconsistent input_size: got {input.shape[-1]} expected "
                f"{self.input_size}"
            )
        batched = input.dim() == 2
        for s in states:
            if s is not None and s.dim() != input.dim():
                raise RuntimeError(
                    f"{type(self).__name__}: Expected hidden to be {input.dim()}D, got "
                    f"{s.dim()}D instead"
                )
        if not batched:
            input = mv.unsqueeze(input, 0)
            states = [None if s is None else mv.unsqueeze(s, 0) for s in states]
        zeros = None
        out = []
        for s in states:
            if s is None:
                if zeros is None:
                    zeros = creation.zeros(
                        input.shape[0], self.hidden_size, dtype=input.dtype, device=input.device
                    )
                s = zeros
            out.append(s)
        return batched, input, out


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    >>> import chainrule as cr
    >>> cell = cr.nn.RNNCell(3, 4, nonlinearity="relu")
    >>> cell(cr.randn(2, 3)).shape
    chainrule.Size([2, 4])
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device=None,
        dtype=None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        batched, input, (hx,) = self._prepare(input, [hx])
        fn = sk.rnn_tanh_cell if self.nonlinearity == "tanh" else sk.rnn_relu_cell
        h = fn(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if batched else mv.squeeze(h, 0)


class LSTMCell(RNNCellBase):
    """One LSTM step; ``forward(input, hx=None)`` with ``hx = (h, c)`` returns ``(h', c')``.

    >>> import chainrule as cr
    >>> cell = cr.nn.LSTMCell(3, 4)
    >>> h, c = cell(cr.randn(2, 3))
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 4), (2, 4))
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        states = [None, None] if hx is None else list(hx)
        batched, input, (h0, c0) = self._prepare(input, states)
        h, c = sk.lstm_cell(
            input, (h0, c0), self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh
        )
        return (h, c) if batched else (mv.squeeze(h, 0), mv.squeeze(c, 0))


class GRUCell(RNNCellBase):
    """One GRU step (PyTorch's equations); ``forward(input, hx=None)`` returns ``h'``.

    >>> import chainrule as cr
    >>> cr.nn.GRUCell(3, 4)(cr.randn(3)).shape  # unbatched
    chainrule.Size([4])
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device=None, dtype=None
    ) -> None:
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        batched, input, (hx,) = self._prepare(input, [hx])
        h = sk.gru_cell(input, hx, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
        return h if batched else mv.squeeze(h, 0)
