"""Weight initialisation (``chainrule.nn.init``), PyTorch's functions and formulas.

Every function fills its tensor in place (without recording a graph) from chainrule's random
generator (``chainrule.manual_seed`` makes it reproducible; ``generator=`` picks another one)
and returns the tensor. The draws follow PyTorch's distributions; the exact numbers differ,
since the generators differ.

>>> import chainrule as cr
>>> w = cr.empty(256, 128)
>>> _ = cr.nn.init.kaiming_uniform_(w, nonlinearity="relu")
>>> bound = (2.0 ** 0.5) * (3.0 / 128) ** 0.5
>>> bool(w.abs().max() <= bound)
True
"""

from __future__ import annotations

import math

from chainrule import backend
from chainrule.ops.elementwise import bump_version
from chainrule.tensor import Tensor

__all__ = [
    "calculate_gain",
    "uniform_",
    "normal_",
    "trunc_normal_",
    "constant_",
    "ones_",
    "zeros_",
    "eye_",
    "dirac_",
    "xavier_uniform_",
    "xavier_normal_",
    "kaiming_uniform_",
    "kaiming_normal_",
    "orthogonal_",
    "sparse_",
]


def _gen(generator):
    return backend.default_generator if generator is None else generator


def _write(tensor: Tensor, values) -> Tensor:
    """Store host ``values`` into ``tensor`` in place (on its device, in its dtype)."""
    arr = tensor._data
    values = backend.np.asarray(values)
    if backend.device_of(arr) != "cpu":
        values = backend.to_device(values, backend.device_of(arr))
    arr[...] = values.astype(arr.dtype, copy=False) if hasattr(values, "astype") else values
    bump_version(tensor)
    return tensor


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity (scales the init's standard deviation).

    ``linear``/``conv*``/``sigmoid``: 1; ``tanh``: 5/3; ``relu``: sqrt(2); ``leaky_relu``:
    sqrt(2 / (1 + slope^2)) (``param`` is the slope, 0.01 by default); ``selu``: 3/4.
    """
    linear = (
        "linear",
        "conv1d",
        "conv2d",
        "conv3d",
        "conv_transpose1d",
        "conv_transpose2d",
        "conv_transpose3d",
    )
    if nonlinearity in linear or nonlinearity == "sigmoid":
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, (int, float)) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)``: ``size(1) * receptive field`` and ``size(0) * receptive field``."""
    if tensor.dim() < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions"
        )
    receptive = 1
    for s in tensor.shape[2:]:
        receptive *= s
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator=None) -> Tensor:
    """Fill with draws from ``U(a, b)``."""
    return _write(tensor, _gen(generator).uniform(tuple(tensor.shape), a, b, backend.float64))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator=None) -> Tensor:
    """Fill with draws from ``N(mean, std^2)``."""
    return _write(tensor, _gen(generator).normal(tuple(tensor.shape), mean, std, backend.float64))


def trunc_normal_(
    tensor: Tensor,
    mean: float = 0.0,
    std: float = 1.0,
    a: float = -2.0,
    b: float = 2.0,
    generator=None,
) -> Tensor:
    """Fill with ``N(mean, std^2)`` draws conditioned on lying in ``[a, b]``.

    Rejection sampling: draws outside ``[a, b]`` are redrawn until none is left (each round
    redraws only the rejected ones, so it finishes quickly unless ``[a, b]`` is far in a tail).
    """
    if not a < b:
        raise ValueError(f"trunc_normal_: expected a < b, got a={a}, b={b}")
    np = backend.np
    gen = _gen(generator)
    shape = tuple(tensor.shape)
    out = gen.normal(shape, mean, std, backend.float64).reshape(-1)
    bad = np.flatnonzero((out < a) | (out > b))
    for _ in range(10_000):
        if bad.size == 0:
            break
        redraw = gen.normal((bad.size,), mean, std, backend.float64)
        out[bad] = redraw
        bad = bad[(redraw < a) | (redraw > b)]
    else:  # an interval with (almost) no mass: fall back to clamping what is left
        out[bad] = np.clip(out[bad], a, b)
    return _write(tensor, out.reshape(shape))


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    tensor._data[...] = val
    bump_version(tensor)
    return tensor


def ones_(tensor: Tensor) -> Tensor:
    """Fill with ones."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with zeros."""
    return constant_(tensor, 0.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal)."""
    if tensor.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _write(tensor, backend.np.eye(*tensor.shape))


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3/4/5-D convolution weight with the Dirac delta (an identity convolution)."""
    d = tensor.dim()
    if d not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    shape = tuple(tensor.shape)
    if shape[0] % groups:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = shape[0] // groups
    n = min(out_per_group, shape[1])
    vals = backend.np.zeros(shape)
    centre = tuple(s // 2 for s in shape[2:])
    for g in range(groups):
        for i in range(n):
            vals[(g * out_per_group + i, i, *centre)] = 1
    return _write(tensor, vals)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -a, a, generator)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Glorot normal: ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
) -> Tensor:
    """He uniform: ``U(-bound, bound)`` with ``bound = gain * sqrt(3 / fan)``.

    ``a`` is the negative slope of the rectifier that follows (for ``leaky_relu``'s gain);
    ``mode`` picks ``fan_in`` (preserves forward variance) or ``fan_out`` (backward).
    """
    if 0 in tuple(tensor.shape):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    bound = math.sqrt(3.0) * gain / math.sqrt(fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(
    tensor: Tensor,
    a: float = 0,
    mode: str = "fan_in",
    nonlinearity: str = "leaky_relu",
    generator=None,
) -> Tensor:
    """He normal: ``N(0, std^2)`` with ``std = gain / sqrt(fan)``."""
    if 0 in tuple(tensor.shape):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    return normal_(tensor, 0.0, gain / math.sqrt(fan), generator)


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator=None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix (rows or columns orthonormal), times ``gain``.

    Dimensions after the first are flattened. The matrix is the Q of the QR decomposition of
    a Gaussian matrix, with signs fixed so that it is uniformly distributed.
    """
    if tensor.dim() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    np = backend.np
    rows = tensor.shape[0]
    cols = tensor.numel() // rows
    flat = _gen(generator).normal((rows, cols), 0.0, 1.0, backend.float64)
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # makes the distribution uniform (Haar)
    if rows < cols:
        q = q.T
    return _write(tensor, (q * gain).reshape(tuple(tensor.shape)))


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01, generator=None) -> Tensor:
    """A 2-D tensor with ``N(0, std^2)`` entries and a fraction ``sparsity`` of each column
    set to zero."""
    if tensor.dim() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    gen = _gen(generator)
    vals = gen.normal((rows, cols), 0.0, std, backend.float64)
    n_zero = int(math.ceil(sparsity * rows))
    for c in range(cols):
        vals[gen.permutation(rows)[:n_zero], c] = 0
    return _write(tensor, vals)
