"""``chainrule.nn.functional``: the stateless forms of the layers, activations and losses.

Every function has PyTorch's name, signature, defaults and semantics. Heavy kernels
(convolution, pooling, lookups) are primitives in :mod:`chainrule.ops.nn_kernels`; the rest
are compositions of tensor ops, written in numerically stable forms (log-softmax through
log-sum-exp, softplus and ``BCEWithLogits`` through a ``log(1 + exp(x))`` primitive that never
overflows) so that extreme inputs give finite values and gradients.

>>> import chainrule as cr
>>> import chainrule.nn.functional as F
>>> logits = cr.tensor([[1e4, -1e4, 0.0]], requires_grad=True)
>>> loss = F.cross_entropy(logits, cr.tensor([1]))
>>> loss.backward(); loss.item(), logits.grad.tolist()
(20000.0, [[1.0, -1.0, 0.0]])
"""

from __future__ import annotations

import math
import warnings

from chainrule import backend
from chainrule.autograd.grad_mode import no_grad
from chainrule.ops import elementwise as _ew
from chainrule.ops import nn_kernels as _k
from chainrule.ops.elementwise import (
    abs,
    cast,
    clamp,
    exp,
    expm1,
    log,
    minimum,
    sigmoid,
    tanh,
    where,
)
from chainrule.ops.elementwise import (
    relu as _relu,
)
from chainrule.ops.indexing import gather, index_select
from chainrule.ops.linalg import matmul
from chainrule.ops.movement import permute, reshape, squeeze, transpose, unsqueeze
from chainrule.ops.nn_kernels import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    fold,
    group_norm,
    max_pool1d,
    max_pool2d,
    rms_norm,
    unfold,
)
from chainrule.ops.reduce import log_softmax as _log_softmax
from chainrule.ops.reduce import mean, norm, sum
from chainrule.ops.reduce import softmax as _softmax
from chainrule.ops.sequence_kernels import scaled_dot_product_attention
from chainrule.tensor import Tensor

__all__ = [
    # linear and convolution
    "linear",
    "bilinear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "unfold",
    "fold",
    # pooling
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    # normalisation
    "batch_norm",
    "instance_norm",
    "layer_norm",
    "group_norm",
    "rms_norm",
    "normalize",
    # dropout and lookups
    "dropout",
    "dropout1d",
    "dropout2d",
    "dropout3d",
    "embedding",
    "one_hot",
    # activations
    "relu",
    "relu_",
    "relu6",
    "leaky_relu",
    "leaky_relu_",
    "elu",
    "elu_",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "softsign",
    "hardtanh",
    "hardtanh_",
    "hardsigmoid",
    "hardswish",
    "sigmoid",
    "tanh",
    "logsigmoid",
    "softmax",
    "softmin",
    "log_softmax",
    "glu",
    "prelu",
    "threshold",
    "tanhshrink",
    "softshrink",
    "hardshrink",
    # shape and sampling
    "pad",
    "interpolate",
    "upsample",
    "cosine_similarity",
    "pairwise_distance",
    # losses
    "mse_loss",
    "l1_loss",
    "smooth_l1_loss",
    "huber_loss",
    "cross_entropy",
    "nll_loss",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "kl_div",
    "soft_margin_loss",
    "margin_ranking_loss",
    "hinge_embedding_loss",
    "cosine_embedding_loss",
    "poisson_nll_loss",
    "gaussian_nll_loss",
    # attention
    "scaled_dot_product_attention",
]


# ---------------------------------------------------------------------------------------------
# linear layers
# ---------------------------------------------------------------------------------------------


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias`` over the last dimension of ``input``.

    >>> import chainrule as cr
    >>> F.linear(cr.ones(2, 3), cr.ones(4, 3), cr.zeros(4)).shape
    chainrule.Size([2, 4])
    """
    if input._data.dtype != weight._data.dtype or (
        bias is not None and bias._data.dtype != weight._data.dtype
    ):
        other = weight if input._data.dtype != weight._data.dtype else bias
        raise RuntimeError(
            f"linear: mat1 and mat2 must have the same dtype, but got {input.dtype.name} and "
            f"{other.dtype.name}"
        )
    if weight.ndim != 2 or input.ndim == 0 or input.shape[-1] != weight.shape[1]:
        lead = "x".join(str(s) for s in input.shape)
        raise RuntimeError(
            f"linear: mat1 and mat2 shapes cannot be multiplied ({lead} and "
            f"{weight.shape[1] if weight.ndim == 2 else '?'}x{weight.shape[0]})"
        )
    if bias is not None and tuple(bias.shape) not in ((weight.shape[0],), ()):
        raise RuntimeError(
            f"linear: bias of shape {list(bias.shape)} does not match out_features "
            f"{weight.shape[0]}"
        )
    return _k.Linear.apply(input, weight, bias)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_o = x1^T W_o x2 + b_o`` for ``weight`` of shape ``(out, in1, in2)``."""
    if (
        weight.ndim != 3
        or input1.shape[-1] != weight.shape[1]
        or input2.shape[-1] != weight.shape[2]
    ):
        raise RuntimeError(
            f"bilinear: input1 {list(input1.shape)} and input2 {list(input2.shape)} do not match "
            f"weight of size {list(weight.shape)} (expected (out, in1, in2))"
        )
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise RuntimeError(
            f"bilinear: input1 {list(input1.shape)} and input2 {list(input2.shape)} must have "
            "the same leading dimensions"
        )
    o, i1, i2 = weight.shape
    lead = tuple(input1.shape[:-1])
    x1 = reshape(input1, (-1, i1))
    x2 = reshape(input2, (-1, i2))
    # x1 @ W (as an (in1, out * in2) matrix), then a dot product with x2 per output
    t = reshape(matmul(x1, reshape(permute(weight, 1, 0, 2), (i1, o * i2))), (-1, o, i2))
    out = sum(t * unsqueeze(x2, 1), -1)
    if bias is not None:
        out = out + bias
    return reshape(out, (*lead, o))


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (dimension 1) with batch statistics (``training``) or the
    running ones; updates the running statistics in place when training."""
    return _k.batch_norm(
        input, weight, bias, running_mean, running_var, training, momentum, eps, False
    )


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel of each sample over its positions.

    With ``use_input_stats`` each sample's own statistics are used, and running statistics,
    when given, are updated in place as PyTorch does: blended with ``momentum`` towards the
    per-sample means and unbiased variances averaged over the batch. Without it the running
    statistics normalise (evaluation of a layer that tracks them).
    """
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    n, c = input.shape[:2]
    if running_mean is not None or running_var is not None:
        _update_instance_stats(input, running_mean, running_var, momentum)
    out = group_norm(reshape(input, (1, n * c, *input.shape[2:])), n * c, None, None, eps)
    out = reshape(out, tuple(input.shape))
    shape = (1, -1) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * reshape(weight, shape)
    if bias is not None:
        out = out + reshape(bias, shape)
    return out


def _update_instance_stats(input: Tensor, running_mean, running_var, momentum: float) -> None:
    """``running = (1 - momentum) * running + momentum * (batch average of each sample's
    statistic)``, per channel; variances are unbiased (divided by positions - 1)."""
    xp = backend.array_module(input._data)
    data = input._data
    dims = tuple(range(2, data.ndim))
    count = math.prod(data.shape[2:])
    mean = xp.mean(data, axis=dims, dtype=xp.float64, keepdims=True)  # (N, C, 1...)
    stats = [(running_mean, mean)]
    if running_var is not None:
        var = xp.sum((data - mean) ** 2, axis=dims, keepdims=True) / max(count - 1, 1)
        stats.append((running_var, var))
    for running, stat in stats:
        if running is not None:
            r = running._data
            r *= 1 - momentum
            r += (momentum * stat.reshape(data.shape[0], -1).mean(0)).astype(r.dtype)


def layer_norm(
    input: Tensor,
    normalized_shape,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dimensions, then ``* weight + bias``."""
    return _k.layer_norm(input, normalized_shape, weight, bias, eps)


def normalize(input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out=None) -> Tensor:
    """``input / max(||input||_p, eps)`` along ``dim``."""
    denom = clamp(norm(input, p, dim, True), min=eps)
    return input / denom


# ---------------------------------------------------------------------------------------------
# dropout and lookups
# ---------------------------------------------------------------------------------------------


def _check_p(p: float) -> None:
    if p < 0.0 or p > 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")


def _dropout(input: Tensor, p: float, training: bool, inplace: bool, mask_shape: tuple) -> Tensor:
    _check_p(p)
    if not training or p == 0.0:
        return input
    xp = backend.array_module(input._data)
    if p == 1.0:
        keep = xp.zeros(mask_shape, dtype=input._data.dtype)
    else:
        draws = backend.default_generator.bernoulli(mask_shape, 1.0 - p)
        keep = (draws * (1.0 / (1.0 - p))).astype(input._data.dtype)
        if xp is not backend.np:
            keep = backend.to_device(keep, "cuda")
    mask = Tensor._make(keep)
    if inplace:
        return _ew.inplace(input, lambda t, m: t * m, "dropout_", mask)
    return input * mask


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``
    (training only). The mask comes from chainrule's generator, so ``manual_seed`` fixes it.

    >>> import chainrule as cr
    >>> y = F.dropout(cr.ones(1000), 0.5)
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    """
    return _dropout(input, p, training, inplace, tuple(input.shape))


def _feature_dropout(input, p, training, inplace, nd, op):
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(
            f"{op}: expected {nd + 1}D or {nd + 2}D input, got input of size {list(input.shape)}"
        )
    batched = input.ndim == nd + 2
    lead = tuple(input.shape[: 2 if batched else 1])
    return _dropout(input, p, training, inplace, lead + (1,) * nd)


def dropout1d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of ``(N, C, L)`` input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, 1, "dropout1d")


def dropout2d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of ``(N, C, H, W)`` input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, 2, "dropout2d")


def dropout3d(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    """Zero whole channels of ``(N, C, D, H, W)`` input with probability ``p``."""
    return _feature_dropout(input, p, training, inplace, 3, "dropout3d")


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by the integer tensor ``input`` (output ``(*input, dim)``).

    The row at ``padding_idx`` receives no gradient; with ``max_norm`` the rows used are first
    rescaled in place to norm at most ``max_norm``.
    """
    num = weight.shape[0]
    if padding_idx is not None:
        if padding_idx < 0:
            if padding_idx < -num:
                raise AssertionError("Padding_idx must be within num_embeddings")
            padding_idx += num
        elif padding_idx >= num:
            raise AssertionError("Padding_idx must be within num_embeddings")
    if max_norm is not None:
        _renorm_rows(weight, input, max_norm, norm_type)
    return _k.embedding_lookup(weight, input, padding_idx, scale_grad_by_freq)


def _renorm_rows(weight: Tensor, input, max_norm: float, norm_type: float) -> None:
    xp = backend.array_module(weight._data)
    idx = input._data if isinstance(input, Tensor) else backend.asarray(input)
    rows = xp.unique(idx.reshape(-1))
    with no_grad():
        w = weight._data
        sel = w[rows]
        norms = xp.sum(xp.abs(sel) ** norm_type, axis=1) ** (1.0 / norm_type)
        scale = xp.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
        w[rows] = sel * scale[:, None].astype(w.dtype)
        _ew.bump_version(weight)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """``(*shape)`` class indices -> ``(*shape, num_classes)`` int64 one-hot rows.

    >>> import chainrule as cr
    >>> F.one_hot(cr.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    arr = tensor._data
    if arr.dtype.kind not in "iu":
        raise RuntimeError("one_hot is only applicable to index tensor of type LongTensor.")
    xp = backend.array_module(arr)
    if arr.size and int(arr.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if num_classes == -1:
        num_classes = int(arr.max()) + 1 if arr.size else 0
    elif arr.size and int(arr.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = (arr[..., None] == xp.arange(num_classes)).astype(xp.int64)
    return Tensor._make(out)


# ---------------------------------------------------------------------------------------------
# activations
# ---------------------------------------------------------------------------------------------


def _maybe_inplace(input: Tensor, fn, inplace: bool, name: str) -> Tensor:
    if inplace:
        return _ew.inplace(input, fn, name)
    return fn(input)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """``max(input, 0)``."""
    return _maybe_inplace(input, _relu, inplace, "relu_")


def relu_(input: Tensor) -> Tensor:
    """In-place :func:`relu`."""
    return relu(input, inplace=True)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """``min(max(input, 0), 6)``."""
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``input`` where positive, ``negative_slope * input`` elsewhere."""
    return _maybe_inplace(
        input, lambda x: where(x > 0, x, x * negative_slope), inplace, "leaky_relu_"
    )


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """In-place :func:`leaky_relu`."""
    return leaky_relu(input, negative_slope, inplace=True)


def _elu(x: Tensor, alpha: float, scale: float = 1.0, input_scale: float = 1.0) -> Tensor:
    # expm1 only sees non-positive values, so the unused branch never overflows
    neg = expm1(minimum(x, 0.0) * input_scale) * alpha
    out = where(x > 0, x, neg)
    return out * scale if scale != 1.0 else out


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``input`` where positive, ``alpha * (exp(input) - 1)`` elsewhere."""
    return _maybe_inplace(input, lambda x: _elu(x, alpha), inplace, "elu_")


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """In-place :func:`elu`."""
    return elu(input, alpha, inplace=True)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """Scaled ELU with the self-normalising constants."""
    return _maybe_inplace(input, lambda x: _elu(x, _SELU_ALPHA, _SELU_SCALE), inplace, "selu_")


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""
    return _maybe_inplace(input, lambda x: _elu(x, alpha, 1.0, 1.0 / alpha), inplace, "celu_")


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """``x * Phi(x)`` (``approximate='none'``, ``Phi`` the standard normal CDF) or its tanh
    approximation ``x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3))) / 2`` (``'tanh'``).

    One fused node (its backward reuses what the forward computed); differentiable any
    number of times.

    >>> import chainrule as cr
    >>> F.gelu(cr.tensor([-1.0, 0.0, 2.0]))
    tensor([-0.1587,  0.0000,  1.9545])
    """
    if approximate not in ("none", "tanh"):
        raise RuntimeError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    _k._check_float("gelu", input)
    return _k.Gelu.apply(input, approximate=approximate)


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (swish)."""
    return _maybe_inplace(input, lambda x: x * sigmoid(x), inplace, "silu_")


def _softplus(z: Tensor) -> Tensor:
    """``log(1 + exp(z))``, finite and accurate for any ``z`` (a stability primitive)."""
    return _k.Softplus.apply(z)


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold``."""
    z = input * beta if beta != 1 else input
    soft = _softplus(z)
    if beta != 1:
        soft = soft / beta
    return where(z > threshold, input, soft)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))``."""
    return _maybe_inplace(input, lambda x: x * tanh(_softplus(x)), inplace, "mish_")


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + |x|)``."""
    return input / (abs(input) + 1.0)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """``clamp(x, min_val, max_val)``; the gradient is 1 strictly inside, 0 outside."""
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")

    def fn(x):
        inside = (x > min_val) & (x < max_val)
        return where(inside, x, clamp(x, min_val, max_val).detach())

    return _maybe_inplace(input, fn, inplace, "hardtanh_")


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """In-place :func:`hardtanh`."""
    return hardtanh(input, min_val, max_val, inplace=True)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """``relu6(x + 3) / 6``."""
    return _maybe_inplace(
        input, lambda x: hardtanh(x / 6.0 + 0.5, 0.0, 1.0), inplace, "hardsigmoid_"
    )


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * relu6(x + 3) / 6``."""

    def fn(x):
        # PyTorch's gradient: 0 below -3, 1 above 3, x/3 + 1/2 in between (both ends closed)
        mid = x * (x + 3.0) / 6.0
        return where(x < -3.0, x * 0.0, where(x > 3.0, x, mid))

    return _maybe_inplace(input, fn, inplace, "hardswish_")


def logsigmoid(input: Tensor) -> Tensor:
    """``log(sigmoid(x)) = -softplus(-x)``, finite for any finite input."""
    return -_softplus(-input)


def softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim`` (stable for any finite logits)."""
    return _softmax(input, dim, dtype)


def softmin(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``softmax(-x)`` along ``dim``."""
    return _softmax(-input, dim, dtype)


def log_softmax(input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype=None) -> Tensor:
    """``log(softmax(x))`` computed as ``x - logsumexp(x)`` (finite for any finite logits)."""
    return _log_softmax(input, dim, dtype)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """Gated linear unit: ``a * sigmoid(b)`` for the two halves of ``dim``."""
    n = input.shape[dim]
    if n % 2:
        raise RuntimeError(f"glu: Halving dimension must be even, but dimension {dim} is size {n}")
    a, b = input.split(n // 2, dim)
    return a * sigmoid(b)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """``x`` where positive, ``weight * x`` elsewhere (``weight`` per channel or shared)."""
    if weight.numel() != 1 and input.ndim >= 2:
        weight = reshape(weight, (-1,) + (1,) * (input.ndim - 2))
    return where(input > 0, input, input * weight)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """``x`` where ``x > threshold``, ``value`` elsewhere."""
    return _maybe_inplace(
        input, lambda x: where(x > threshold, x, x * 0.0 + value), inplace, "threshold_"
    )


def tanhshrink(input: Tensor) -> Tensor:
    """``x - tanh(x)``."""
    return input - tanh(input)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, 0 between."""
    return where(input > lambd, input - lambd, where(input < -lambd, input + lambd, input * 0.0))


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """``x`` where ``|x| > lambd``, 0 elsewhere."""
    return where((input > lambd) | (input < -lambd), input, input * 0.0)


# ---------------------------------------------------------------------------------------------
# padding and resampling
# ---------------------------------------------------------------------------------------------


def _wrap_index(xp, n: int, lo: int, hi: int, mode: str):
    i = xp.arange(-lo, n + hi)
    if mode == "reflect":
        if lo >= n or hi >= n:
            raise RuntimeError(
                f"pad: padding size should be less than the corresponding input dimension, "
                f"but got: padding ({lo}, {hi}) at dimension of size {n} (mode 'reflect')"
            )
        period = 2 * (n - 1)
        i = xp.abs(i) % period if period else i * 0
        return xp.where(i >= n, period - i, i)
    if mode == "replicate":
        return xp.clip(i, 0, n - 1)
    if mode == "circular":
        if lo > n or hi > n:
            raise RuntimeError(
                f"pad: padding value causes wrapping around more than once: ({lo}, {hi}) for a "
                f"dimension of size {n} (mode 'circular')"
            )
        return i % n
    raise NotImplementedError(f"pad: unsupported padding mode {mode!r}")


def pad(input: Tensor, pad, mode: str = "constant", value: float | None = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dimensions: ``pad = (left, right, top, bottom, ...)``
    starting from the last dimension. Modes: ``'constant'`` (with ``value``), ``'reflect'``,
    ``'replicate'``, ``'circular'``.

    >>> import chainrule as cr
    >>> F.pad(cr.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="reflect").tolist()
    [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    """
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) // 2 > input.ndim:
        raise ValueError(
            "Padding length should be less than or equal to two times the input dimension"
        )
    if mode == "constant":
        return _k.constant_pad_nd(input, pad, 0.0 if value is None else value)
    if value is not None and value != 0:
        raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument.')
    xp = backend.array_module(input._data)
    out = input
    for k in range(len(pad) // 2):
        dim = input.ndim - 1 - k
        lo, hi = pad[2 * k], pad[2 * k + 1]
        if lo == 0 and hi == 0:
            continue
        idx = _wrap_index(xp, input.shape[dim], lo, hi, mode)
        out = index_select(out, dim, Tensor._make(idx.astype(xp.int64)))
    return out


def _interp_matrix(xp, n_in, n_out, mode, align_corners, scale_factor, dtype):
    """``(n_out, n_in)`` matrix that resamples one axis (separable interpolation)."""
    i = xp.arange(n_out, dtype=xp.float64)
    if mode in ("nearest", "nearest-exact"):
        # PyTorch computes these source indices in float32
        scale = xp.float32(1.0 / scale_factor if scale_factor else n_in / n_out)
        pos = i.astype(xp.float32) + (xp.float32(0.5) if mode == "nearest-exact" else 0)
        src = xp.minimum(xp.floor(pos * scale).astype(xp.int64), n_in - 1)
        m = xp.zeros((n_out, n_in), dtype=dtype)
        m[xp.arange(n_out), src] = 1
        return m
    if align_corners:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = i * scale
    else:
        scale = 1.0 / scale_factor if scale_factor else n_in / n_out
        src = xp.maximum((i + 0.5) * scale - 0.5, 0.0)
    lo = xp.minimum(xp.floor(src).astype(xp.int64), n_in - 1)
    hi = xp.minimum(lo + 1, n_in - 1)
    frac = src - lo
    m = xp.zeros((n_out, n_in), dtype=xp.float64)
    rows = xp.arange(n_out)
    m[rows, lo] += 1 - frac
    m[rows, hi] += frac
    return m.astype(dtype)


_INTERP_DIMS = {"linear": 1, "bilinear": 2, "trilinear": 3}


def interpolate(
    input: Tensor,
    size=None,
    scale_factor=None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize the spatial dimensions of ``(N, C, *spatial)`` input to ``size`` (or by
    ``scale_factor``). Modes: ``'nearest'``, ``'nearest-exact'``, ``'linear'``,
    ``'bilinear'``, ``'trilinear'`` (with ``align_corners``) and ``'area'``.

    Each axis is resampled by a small interpolation matrix, so the op and its gradient are
    plain matrix products.
    """
    nd = input.ndim - 2
    if nd < 1:
        raise ValueError(f"interpolate: expected 3D, 4D or 5D input, got {input.ndim}D")
    if mode in _INTERP_DIMS and _INTERP_DIMS[mode] != nd:
        raise NotImplementedError(
            f"interpolate: mode '{mode}' expects {_INTERP_DIMS[mode] + 2}D input, got {input.ndim}D"
        )
    if mode not in ("nearest", "nearest-exact", "area", *_INTERP_DIMS):
        raise NotImplementedError(f"interpolate: unsupported mode {mode!r}")
    if align_corners is not None and mode not in _INTERP_DIMS:
        raise ValueError(
            "align_corners option can only be set with the interpolating modes: "
            "linear | bilinear | bicubic | trilinear"
        )
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    in_size = tuple(input.shape[2:])
    if (size is None) == (scale_factor is None):
        raise ValueError("only one of size or scale_factor should be defined")
    if size is not None:
        out_size = tuple(size) if isinstance(size, (list, tuple)) else (int(size),) * nd
        if len(out_size) != nd:
            raise ValueError(
                f"Input and output must have the same number of spatial dimensions, but got "
                f"input with spatial dimensions of {list(in_size)} and output size of "
                f"{list(out_size)}."
            )
        scales = (None,) * nd
    else:
        scales = (
            tuple(float(s) for s in scale_factor)
            if isinstance(scale_factor, (list, tuple))
            else (float(scale_factor),) * nd
        )
        out_size = tuple(int(math.floor(n * s)) for n, s in zip(in_size, scales))
        if recompute_scale_factor:
            scales = (None,) * nd
    if mode == "area":
        if nd == 1:
            return adaptive_avg_pool1d(input, out_size)
        if nd == 2:
            return adaptive_avg_pool2d(input, out_size)
        raise NotImplementedError("interpolate: mode 'area' supports 3D and 4D input")
    xp = backend.array_module(input._data)
    dtype = input._data.dtype
    out = input
    for k in range(nd):  # resample axis 2 + k
        mat = Tensor._make(
            _interp_matrix(xp, in_size[k], out_size[k], mode, bool(align_corners), scales[k], dtype)
        )
        back = nd - 1 - k  # distance from the last axis
        if back == 0:
            out = matmul(out, transpose(mat, 0, 1))
        else:
            moved = transpose(out, -2, 2 + k) if back > 1 else out
            moved = matmul(mat, moved)
            out = transpose(moved, -2, 2 + k) if back > 1 else moved
    return out


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of :func:`interpolate`."""
    return interpolate(input, size, scale_factor, mode, align_corners)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``x1 . x2 / max(||x1|| ||x2||, eps)`` along ``dim``."""
    dot = sum(x1 * x2, dim)
    n1 = norm(x1, 2, dim)
    n2 = norm(x2, 2, dim)
    return dot / clamp(n1 * n2, min=eps)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """``||x1 - x2 + eps||_p`` along the last dimension."""
    return norm(x1 - x2 + eps, p, -1, keepdim)


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------


def _reduction(size_average, reduce, reduction: str) -> str:
    """PyTorch's legacy ``size_average``/``reduce`` flags mapped onto ``reduction``."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if size_average and reduce:
        return "mean"
    return "sum" if reduce else "none"


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _check_same_size(input: Tensor, target: Tensor, op: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        warnings.warn(
            f"{op}: Using a target size ({list(target.shape)}) that is different to the input "
            f"size ({list(input.shape)}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            stacklevel=3,
        )


def _weighted(loss: Tensor, weight: Tensor | None, reduction: str, by_weight_sum: bool):
    if weight is None:
        return _reduce(loss, reduction)
    if tuple(weight.shape) != tuple(loss.shape):
        raise ValueError("Weights and input must have the same size.")
    loss = loss * weight
    if reduction == "mean" and by_weight_sum:
        return sum(loss) / sum(weight)
    return _reduce(loss, reduction)


def mse_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None
) -> Tensor:
    """Mean squared error ``(input - target)^2`` (optionally weighted per element)."""
    _check_same_size(input, target, "mse_loss")
    reduction = _reduction(size_average, reduce, reduction)
    d = input - target
    return _weighted(d * d, weight, reduction, True)


def l1_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean", weight=None
) -> Tensor:
    """Mean absolute error ``|input - target|`` (optionally weighted per element)."""
    _check_same_size(input, target, "l1_loss")
    reduction = _reduction(size_average, reduce, reduction)
    return _weighted(abs(input - target), weight, reduction, True)


def smooth_l1_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean", beta: float = 1.0
) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input - target``)."""
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _check_same_size(input, target, "smooth_l1_loss")
    reduction = _reduction(size_average, reduce, reduction)
    d = abs(input - target)
    if beta == 0:
        return _reduce(d, reduction)
    loss = where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0, weight=None) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``."""
    if delta <= 0:
        raise RuntimeError("huber_loss does not support non-positive values for delta.")
    _check_same_size(input, target, "huber_loss")
    d = abs(input - target)
    loss = where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    return _weighted(loss, weight, reduction, False)


def _class_dim(input: Tensor) -> int:
    return 0 if input.ndim == 1 else 1


def _check_targets(t, n_classes: int, ignore_index: int, op: str):
    xp = backend.array_module(t)
    valid = t != ignore_index
    if t.size:
        bad = valid & ((t < 0) | (t >= n_classes))
        if bool(bad.any()):
            value = int(t[bad].reshape(-1)[0])
            raise IndexError(
                f"Target {value} is out of bounds. ({op}: {n_classes} classes, so targets must "
                f"be in [0, {n_classes - 1}] or equal ignore_index={ignore_index})"
            )
    return valid, xp.where(valid, t, 0)


def _class_target_shape_check(input: Tensor, target: Tensor, op: str) -> None:
    expected = (input.shape[0],) + tuple(input.shape[2:]) if input.ndim >= 2 else ()
    if tuple(target.shape) != expected:
        raise ValueError(
            f"{op}: expected target of size {list(expected)} for input of size "
            f"{list(input.shape)} (class indices), got {list(target.shape)}"
        )


def nll_loss(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log-likelihood of class indices given log-probabilities ``(N, C, *d)``.

    ``loss_i = -weight[t_i] * input[i, t_i]``; ``'mean'`` divides by the summed weights of the
    targets that are not ``ignore_index``.
    """
    reduction = _reduction(size_average, reduce, reduction)
    if input.ndim < 1:
        raise ValueError(f"nll_loss: expected input with at least 1 dimension, got {input.ndim}")
    safe, w = _class_index_weights(input, target, weight, ignore_index, "nll_loss")
    c_dim = _class_dim(input)
    xp = backend.array_module(safe)
    index = Tensor._make(xp.expand_dims(safe.astype(xp.int64), c_dim))
    picked = squeeze(gather(input, c_dim, index), c_dim)
    return _reduce_class_losses(-picked * Tensor._make(w), w, reduction)


def _class_index_weights(input, target, weight, ignore_index: int, op: str) -> tuple:
    """The checks of a loss on class indices; returns the targets with ignored entries set to
    0 and each entry's weight (``weight[t]``, or 1, and 0 where ignored)."""
    if target._data.dtype.kind not in "iu":
        raise RuntimeError(
            f"{op}: expected target of an integer dtype (class indices), got {target.dtype.name}"
        )
    _class_target_shape_check(input, target, op)
    n_classes = input.shape[_class_dim(input)]
    if weight is not None and tuple(weight.shape) != (n_classes,):
        raise RuntimeError(
            f"{op}: weight tensor should be defined either for all {n_classes} classes or "
            f"no classes but got weight tensor of shape: {list(weight.shape)}"
        )
    valid, safe = _check_targets(target._data, n_classes, ignore_index, op)
    dt = input._data.dtype
    if weight is not None:
        return safe, (weight._data.astype(dt)[safe] * valid).astype(dt)
    return safe, valid.astype(dt)


def _reduce_class_losses(loss: Tensor, w, reduction: str) -> Tensor:
    """``reduction`` of per-entry losses; ``'mean'`` divides by the summed weights ``w``."""
    if reduction == "none":
        return loss
    total = sum(loss)
    if reduction == "sum":
        return total
    if reduction == "mean":
        return _divide_by_weight(total, w.sum(), backend.array_module(w), loss._data.dtype)
    raise ValueError(f"{reduction} is not a valid value for reduction")


def _divide_by_weight(total: Tensor, denom, xp, dt) -> Tensor:
    """``total / denom``; when every target is ignored (``denom == 0``) the value is NaN, as in
    PyTorch, but the gradient is zero rather than NaN."""
    if float(denom) == 0.0:
        return total * 0.0 + Tensor._make(xp.asarray(float("nan"), dtype=dt))
    return total / Tensor._make(xp.asarray(denom, dtype=dt))


def cross_entropy(
    input,
    target,
    weight=None,
    size_average=None,
    ignore_index: int = -100,
    reduce=None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy between logits ``(N, C, *d)`` (or ``(C,)``) and class indices or class
    probabilities; ``log_softmax`` + :func:`nll_loss`, with optional ``label_smoothing``.

    >>> import chainrule as cr
    >>> round(F.cross_entropy(cr.zeros(2, 4), cr.tensor([0, 3])).item(), 4)  # log(4)
    1.3863
    """
    reduction = _reduction(size_average, reduce, reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if (
        label_smoothing == 0
        and input.ndim == 2
        and 0 not in input.shape
        and target._data.dtype.kind in "iu"
    ):  # the common case, as one node (see SoftmaxCrossEntropy)
        safe, w = _class_index_weights(input, target, weight, ignore_index, "cross_entropy")
        loss = _k.SoftmaxCrossEntropy.apply(input, target=safe, weight=w)
        return _reduce_class_losses(loss, w, reduction)
    c_dim = _class_dim(input)
    n_classes = input.shape[c_dim]
    logp = _log_softmax(input, c_dim)
    shape_w = (n_classes,) + (1,) * (input.ndim - c_dim - 1)
    if target._data.dtype in backend.FLOAT_NP_DTYPES:  # class probabilities
        if tuple(target.shape) != tuple(input.shape):
            raise RuntimeError(
                f"cross_entropy: expected probability targets of size {list(input.shape)}, got "
                f"{list(target.shape)}"
            )
        if label_smoothing > 0:
            target = target * (1 - label_smoothing) + label_smoothing / n_classes
        terms = logp * target
        if weight is not None:
            terms = terms * reshape(weight, shape_w)
        loss = -sum(terms, c_dim)
        if reduction == "mean":
            count = input.numel() // n_classes if input.numel() else 0
            return sum(loss) / count if count else sum(loss) * float("nan")
        return _reduce(loss, reduction)
    nll = nll_loss(logp, target, weight, None, ignore_index, None, reduction)
    if label_smoothing == 0:
        return nll
    valid, safe = _check_targets(target._data, n_classes, ignore_index, "cross_entropy")
    terms = logp if weight is None else logp * reshape(weight, shape_w)
    dt = input._data.dtype
    smooth = -sum(terms, c_dim) * Tensor._make(valid.astype(dt))
    if reduction == "mean":
        if weight is not None:
            denom = (weight._data[safe] * valid).sum()
        else:
            denom = valid.sum()
        xp = backend.array_module(target._data)
        smooth = _divide_by_weight(sum(smooth), denom, xp, dt)
    else:
        smooth = _reduce(smooth, reduction)
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


def binary_cross_entropy(
    input, target, weight=None, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities ``p``; each log is clamped at
    -100 (so ``p = 0`` or ``1`` gives a finite loss), as PyTorch does."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({list(target.shape)}) that is different to the input size "
            f"({list(input.shape)}) is deprecated. Please ensure they have the same size."
        )
    arr = input._data
    if arr.size and (bool((arr < 0).any()) or bool((arr > 1).any())):
        raise RuntimeError("all elements of input should be between 0 and 1")
    if target._data.dtype != arr.dtype:
        target = cast(target, input.dtype)
    loss = _k.BinaryCrossEntropy.apply(input, target)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(
    input,
    target,
    weight=None,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
    pos_weight=None,
) -> Tensor:
    """``binary_cross_entropy(sigmoid(input), target)`` computed from the logits without ever
    overflowing; ``pos_weight`` weighs the positive term per class."""
    reduction = _reduction(size_average, reduce, reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Target size ({list(target.shape)}) must be the same as input size "
            f"({list(input.shape)})"
        )
    # -log(sigmoid(x)) = softplus(-x): finite for any logit
    neg_log_sig = _softplus(-input)
    if pos_weight is not None:
        log_weight = (pos_weight - 1) * target + 1
        loss = (1 - target) * input + log_weight * neg_log_sig
    else:
        loss = (1 - target) * input + neg_log_sig
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)


def kl_div(
    input, target, size_average=None, reduce=None, reduction: str = "mean", log_target: bool = False
) -> Tensor:
    """Pointwise KL divergence ``target * (log(target) - input)`` with ``input`` given as
    log-probabilities (``log_target``: ``target`` too). ``'batchmean'`` divides the sum by
    the batch size (the true KL divergence per sample)."""
    reduction = _reduction(size_average, reduce, reduction)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        # target * log(target), defined as 0 where target is 0 (no 0 * -inf)
        positive = target > 0
        safe = where(positive, target, 1.0)
        loss = target * log(safe) - target * input
    if reduction == "batchmean":
        return sum(loss) / (input.shape[0] if input.ndim else 1)
    if reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            stacklevel=2,
        )
    return _reduce(loss, reduction)


def soft_margin_loss(
    input, target, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """``log(1 + exp(-target * input))`` (targets are +1/-1)."""
    reduction = _reduction(size_average, reduce, reduction)
    return _reduce(_softplus(-target * input), reduction)


def margin_ranking_loss(
    input1,
    input2,
    target,
    margin: float = 0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """``max(0, -target * (input1 - input2) + margin)``."""
    reduction = _reduction(size_average, reduce, reduction)
    return _reduce(_relu(-target * (input1 - input2) + margin), reduction)


def hinge_embedding_loss(
    input, target, margin: float = 1.0, size_average=None, reduce=None, reduction: str = "mean"
) -> Tensor:
    """``input`` where ``target == 1``, ``max(0, margin - input)`` where ``target == -1``."""
    reduction = _reduction(size_average, reduce, reduction)
    pos = where(target == 1, input, input * 0.0)
    neg = where(target == -1, _relu(margin - input), input * 0.0)
    return _reduce(pos + neg, reduction)


def cosine_embedding_loss(
    input1,
    input2,
    target,
    margin: float = 0,
    size_average=None,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """``1 - cos(x1, x2)`` for ``target == 1``, ``max(0, cos(x1, x2) - margin)`` for -1."""
    reduction = _reduction(size_average, reduce, reduction)
    eps = 1e-12
    dot = sum(input1 * input2, -1)
    m1 = sum(input1 * input1, -1) + eps
    m2 = sum(input2 * input2, -1) + eps
    cos = dot / (m1 * m2) ** 0.5
    loss = where(target == 1, 1 - cos, where(target == -1, _relu(cos - margin), cos * 0.0))
    return _reduce(loss, reduction)


def poisson_nll_loss(
    input,
    target,
    log_input: bool = True,
    full: bool = False,
    size_average=None,
    eps: float = 1e-8,
    reduce=None,
    reduction: str = "mean",
) -> Tensor:
    """Poisson negative log-likelihood (``input`` is the log-rate when ``log_input``)."""
    reduction = _reduction(size_average, reduce, reduction)
    if log_input:
        loss = exp(input) - target * input
    else:
        loss = input - target * log(input + eps)
    if full:
        safe = where(target > 1, target, 1.0)
        stirling = safe * log(safe) - safe + log(safe * (2 * math.pi)) * 0.5
        loss = loss + where(target > 1, stirling, target * 0.0)
    return _reduce(loss, reduction)


def gaussian_nll_loss(
    input, target, var, full: bool = False, eps: float = 1e-6, reduction: str = "mean"
) -> Tensor:
    """``0.5 (log(var) + (input - target)^2 / var)`` (+ ``0.5 log(2 pi)`` if ``full``), with
    ``var`` clamped to at least ``eps`` (the clamp passes the gradient through, as in PyTorch).
    """
    if not isinstance(var, Tensor):
        var = input * 0.0 + float(var)
    elif tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = unsqueeze(var, -1)
        elif not (tuple(input.shape[:-1]) == tuple(var.shape[:-1]) and var.shape[-1] == 1):
            raise ValueError("var is of incorrect size")
    if bool((var._data < 0).any()):
        raise ValueError("var has negative entry/entries")
    v = var + (clamp(var, min=eps) - var).detach()
    loss = (log(v) + (input - target) ** 2 / v) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(loss, reduction)
