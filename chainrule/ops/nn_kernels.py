"""Neural-network kernels as primitives: convolution, pooling, padding, lookups, normalisation.

Convolution is im2col + one matrix product. The input is viewed (``as_strided``, no copy) as
every kernel window at once, copied into a ``(channels * kernel, batch * positions)`` matrix
and multiplied by the weight matrix: one large BLAS call, no Python loop over pixels, batch or
channels. Three primitives share that geometry, each the adjoint of the others in one
argument, so every backward rule is another of the three and second derivatives come free:

* ``ConvNd(x, w)``: the convolution (cross-correlation, as in PyTorch);
* ``ConvNdInput(g, w)``: its gradient with respect to ``x`` (a transposed convolution: weight
  matrix product, then the windows are added back into the input, one kernel tap at a time);
* ``ConvNdWeight(x, g)``: its gradient with respect to ``w`` (the same input windows times
  the output gradient).

Pooling works one spatial axis at a time (max and sum over a 2-D window are separable), so each
step is a few long vectorised passes over strided views. Max pooling keeps, per axis, which
tap won; its backward scatters the gradient to those taps and the adjoint of that scatter is
the matching gather, so max pooling is twice differentiable too. Average pooling is linear:
its backward is its adjoint and vice versa.
"""

from __future__ import annotations

import itertools
import math

from chainrule import backend
from chainrule.ops.elementwise import (
    _ERFCX_P32,
    _ERFCX_P64,
    _ERFCX_Q32,
    _ERFCX_Q64,
    _IGNORE,
    _ratio,
    _scaled_ratio,
    cast,
    clamp,
    exp,
    log,
    log1p,
    rsqrt,
    sigmoid,
)
from chainrule.ops.linalg import matmul
from chainrule.ops.movement import reshape, transpose, unsqueeze
from chainrule.ops.reduce import mean, softmax, sum
from chainrule.tensor import BufferedNode, Node, Tensor, modes

__all__ = [
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "adaptive_avg_pool1d",
    "batch_norm",
    "layer_norm",
    "group_norm",
    "rms_norm",
    "constant_pad_nd",
]

# Tensor methods (bound in ops/__init__.py)
METHODS: dict = {}


# ---------------------------------------------------------------------------------------------
# argument helpers
# ---------------------------------------------------------------------------------------------


def ntuple(value, n: int, name: str, op: str) -> tuple:
    """``value`` (an int or a sequence of ``n`` ints) as a tuple of ``n`` ints."""
    if isinstance(value, Tensor):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        if len(value) == 1 and n > 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ValueError(f"{op}: {name} must be an int or {n} ints, got {list(value)}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _shape_str(shape) -> str:
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _same_dtype(op: str, x: Tensor, *others) -> None:
    for name, t in others:
        if t is not None and t._data.dtype != x._data.dtype:
            raise RuntimeError(
                f"{op}: input type ({x.dtype.name}) and {name} type ({t.dtype.name}) should be "
                "the same"
            )


def _as_strided(xp, arr, shape, strides):
    return xp.lib.stride_tricks.as_strided(arr, shape=shape, strides=strides)


def _pad_array(xp, a, pads: tuple, value=0.0):
    """``a`` with ``pads[i] = (lo, hi)`` added to spatial axis ``i`` (the trailing axes)."""
    if not any(lo or hi for lo, hi in pads):
        return a
    lead = a.ndim - len(pads)
    shape = a.shape[:lead] + tuple(s + lo + hi for s, (lo, hi) in zip(a.shape[lead:], pads))
    out = xp.full(shape, value, dtype=a.dtype)
    inner = (slice(None),) * lead + tuple(
        slice(lo, lo + s) for s, (lo, _) in zip(a.shape[lead:], pads)
    )
    out[inner] = a
    return out


def _crop(a, pads: tuple):
    """Undo :func:`_pad_array` (a view)."""
    if not any(lo or hi for lo, hi in pads):
        return a
    lead = a.ndim - len(pads)
    inner = (slice(None),) * lead + tuple(
        slice(lo, s - hi) for s, (lo, hi) in zip(a.shape[lead:], pads)
    )
    return a[inner]


class WorkArrays:
    """Reusable scratch arrays for the kernels' large temporaries (NumPy only).

    A fresh multi-megabyte array costs a page fault per 4 KiB page on first touch: the C
    allocator hands big blocks straight from the operating system and gives them back on
    free. The convolution kernels therefore take their scratch arrays (im2col matrices,
    padded inputs, matrix products that are copied out) from here and give them back once
    nothing refers to them, so a training loop keeps reusing the same few blocks. Arrays that
    escape to the caller never come from here. CuPy has a memory pool of its own.
    """

    __slots__ = ("free", "held", "limit")

    smallest = 1 << 18  # smaller arrays are cheap to allocate: not worth keeping

    def __init__(self, limit: int = 1 << 28):
        self.free: dict = {}
        self.held = 0
        self.limit = limit

    def take(self, xp, shape, dtype):
        """An uninitialised array of ``shape`` (a reused one when available)."""
        size = math.prod(shape)
        if xp is not backend.np:
            return xp.empty(shape, dtype=dtype)
        stack = self.free.get((size, xp.dtype(dtype)))
        if stack:
            flat = stack.pop()
            self.held -= flat.nbytes
        else:
            flat = xp.empty(size, dtype=dtype)
        return flat.reshape(shape)

    def give(self, arr) -> None:
        """Return an array obtained from :meth:`take` that nothing else refers to any more."""
        if type(arr) is not backend.np.ndarray:
            return
        flat = arr if arr.base is None else arr.base
        if (
            flat.ndim != 1
            or flat.base is not None
            or flat.nbytes < self.smallest
            or self.held + flat.nbytes > self.limit
        ):
            return
        stack = self.free.setdefault((flat.size, flat.dtype), [])
        if len(stack) < 4:
            stack.append(flat)
            self.held += flat.nbytes


work_arrays = WorkArrays()


# ---------------------------------------------------------------------------------------------
# convolution
# ---------------------------------------------------------------------------------------------


class ConvGeometry:
    """Everything about a convolution except the arrays: sizes, stride, padding, dilation.

    ``pads`` holds ``(lo, hi)`` per spatial axis (PyTorch's ``padding='same'`` can be
    asymmetric). ``in_size`` is the unpadded input size, ``out_size`` the output size.

    The im2col matrix is ``(C * K, N * L)``: one row per (channel, kernel tap), one column per
    (sample, output position). For a tap, the windows of neighbouring positions form
    contiguous runs of ``W_out`` numbers. When ``W_out`` is small those runs are too short for
    NumPy's copy loops, so the columns are ordered (position, sample) instead
    (``batch_last``): the input is first transposed to ``(C, *S, N)`` and the runs become
    ``W_out * N`` numbers long.
    """

    __slots__ = (
        "stride",
        "pads",
        "dilation",
        "groups",
        "kernel",
        "in_size",
        "out_size",
        "batch_last",
    )

    def __init__(self, stride, pads, dilation, groups, kernel, in_size, out_size):
        self.stride = stride
        self.pads = pads
        self.dilation = dilation
        self.groups = groups
        self.kernel = kernel
        self.in_size = in_size
        self.out_size = out_size
        self.batch_last = out_size[-1] < ConvGeometry.batch_last_below

    # output widths below this use the batch-last layout (tests lower it to cover both)
    batch_last_below = 16

    def padded_size(self) -> tuple:
        return tuple(s + lo + hi for s, (lo, hi) in zip(self.in_size, self.pads))

    def _spatial_inner(self) -> tuple:
        return tuple(slice(lo, lo + s) for s, (lo, _) in zip(self.in_size, self.pads))

    def _padded(self, xp, x):
        """The input zero-padded, as ``(C, *S, N)`` (batch last) or ``(N, C, *S)``; the second
        value says whether the array is a scratch copy (to give back) or ``x`` itself."""
        if self.batch_last:
            x = x.transpose(1, *range(2, x.ndim), 0)
            inner = (slice(None), *self._spatial_inner(), slice(None))
            shape = (x.shape[0], *self.padded_size(), x.shape[-1])
        else:
            inner = (slice(None), slice(None), *self._spatial_inner())
            shape = (*x.shape[:2], *self.padded_size())
        padded = any(lo or hi for lo, hi in self.pads)
        if not padded and x.flags.c_contiguous:
            return x, False
        out = work_arrays.take(xp, shape, x.dtype)
        if padded:
            out[...] = 0
            out[inner] = x
        else:
            out[...] = x
        return out, True

    def cols(self, xp, x):
        """im2col: the ``(groups, C/groups * K, N * L)`` matrix of input windows.

        A strided view of every window of the padded input (no copy), then one copy into a
        scratch array (give it back with ``work_arrays.give`` when done).
        """
        xpad, scratch = self._padded(xp, x)
        st = xpad.strides
        nd = len(self.kernel)
        if self.batch_last:  # (C, *S, N) viewed as (C, *kernel, *out_size, N)
            sp = st[1:-1]
            shape = (xpad.shape[0], *self.kernel, *self.out_size, xpad.shape[-1])
            strides = (
                st[0],
                *(sp[i] * self.dilation[i] for i in range(nd)),
                *(sp[i] * self.stride[i] for i in range(nd)),
                st[-1],
            )
        else:  # (N, C, *S) viewed as (C, *kernel, N, *out_size)
            sp = st[2:]
            shape = (xpad.shape[1], *self.kernel, xpad.shape[0], *self.out_size)
            strides = (
                st[1],
                *(sp[i] * self.dilation[i] for i in range(nd)),
                st[0],
                *(sp[i] * self.stride[i] for i in range(nd)),
            )
        view = _as_strided(xp, xpad, shape, strides)
        out = work_arrays.take(xp, shape, xpad.dtype)
        out[...] = view
        if scratch:
            work_arrays.give(xpad)
        g = self.groups
        return out.reshape(g, (shape[0] // g) * math.prod(self.kernel), -1)

    def add_windows(self, xp, cols, n: int, channels: int, dtype):
        """col2im: add every column back at its window position; returns ``(N, C, *S)``.

        The loop runs over kernel taps only (``prod(kernel)`` iterations, each one vectorised
        over channels, batch and positions).
        """
        nd = len(self.kernel)
        padded = self.padded_size()
        if self.batch_last:  # a scratch array: the result is a transposed copy of it
            xpad = work_arrays.take(xp, (channels, *padded, n), dtype)
            xpad[...] = 0
            view = cols.reshape(channels, *self.kernel, *self.out_size, n)
        else:
            xpad = xp.zeros((n, channels, *padded), dtype=dtype)
            view = cols.reshape(channels, *self.kernel, n, *self.out_size)
        for tap in itertools.product(*(range(k) for k in self.kernel)):
            spatial = tuple(
                slice(
                    tap[i] * self.dilation[i],
                    tap[i] * self.dilation[i] + self.stride[i] * (self.out_size[i] - 1) + 1,
                    self.stride[i],
                )
                for i in range(nd)
            )
            src = view[(slice(None), *tap)]
            if self.batch_last:
                xpad[(slice(None), *spatial, slice(None))] += src
            else:
                xpad[(slice(None), slice(None), *spatial)] += src.swapaxes(0, 1)
        if self.batch_last:
            inner = xpad[(slice(None), *self._spatial_inner(), slice(None))]
            # always a copy: the scratch array goes back to the pool
            out = inner.transpose(nd + 1, 0, *range(1, nd + 1)).copy()
            work_arrays.give(xpad)
            return out
        return xpad[(slice(None), slice(None), *self._spatial_inner())]

    def grad_matrix(self, xp, g):
        """The output gradient ``(N, O, *L)`` as ``(groups, O/groups, N * L)`` columns (a
        scratch array)."""
        n, o = g.shape[:2]
        flat = g.reshape(n, o, -1)
        flat = flat.transpose(1, 2, 0) if self.batch_last else flat.transpose(1, 0, 2)
        out = work_arrays.take(xp, flat.shape, g.dtype)
        out[...] = flat
        return out.reshape(self.groups, o // self.groups, -1)

    def grad_matrix_t(self, xp, g):
        """The output gradient as ``(groups, N * L, O/groups)`` (rows in column order; a
        scratch array)."""
        n, o = g.shape[:2]
        view = g.reshape(n, self.groups, o // self.groups, -1)
        view = view.transpose(1, 3, 0, 2) if self.batch_last else view.transpose(1, 0, 3, 2)
        out = work_arrays.take(xp, view.shape, g.dtype)
        out[...] = view
        return out.reshape(self.groups, -1, o // self.groups)

    def unmatrix(self, xp, y, n: int):
        """``(groups, O/groups, N * L)`` back to a contiguous ``(N, O, *out_size)`` array."""
        o = y.shape[0] * y.shape[1]
        if self.batch_last:
            out = y.reshape(o, -1, n).transpose(2, 0, 1)
        else:
            out = y.reshape(o, n, -1).transpose(1, 0, 2)
        return out.copy().reshape(n, o, *self.out_size)  # a copy: ``y`` is a scratch array


class ConvNd(Node):
    """``y = conv(x, w) + b``: im2col of ``x`` times the weight matrix (see the module doc).

    Backward: ``dx`` is :class:`ConvNdInput` (a transposed convolution of ``g``), ``dw`` is
    :class:`ConvNdWeight`, ``db`` sums ``g`` over batch and positions.
    """

    __slots__ = ("geom", "cols")
    saves = (0, 1)

    def forward(self, xp, x, w, b, geom=None, keep_cols=True):
        self.geom = geom
        cols = geom.cols(xp, x)
        g = geom.groups
        wm = w.reshape(g, w.shape[0] // g, -1)
        y = work_arrays.take(xp, (g, wm.shape[1], cols.shape[2]), cols.dtype)
        xp.matmul(wm, cols, out=y)  # (groups, O/groups, N * L)
        if b is not None:
            y += b.reshape(g, -1, 1)
        out = geom.unmatrix(xp, y, x.shape[0])
        work_arrays.give(y)
        if keep_cols:  # reused by the weight gradient (saves a second im2col)
            self.cols = cols
        else:
            self.cols = None
            work_arrays.give(cols)
        return out

    def backward(self, g, x, w):
        geom = self.geom
        gx = gw = gb = None
        if self.edges[0]:
            gx = ConvNdInput.apply(g, w, geom=geom, channels=x._data.shape[1])
        if self.edges[1]:
            gw = ConvNdWeight.apply(x, g, geom=geom, w_shape=w._data.shape, cols=self.cols)
        if self.edges[2]:
            gb = sum(g, (0, *range(2, g.ndim)))
        if self.cols is not None:
            work_arrays.give(self.cols)
            self.cols = None
        return gx, gw, gb


class ConvNdInput(Node):
    """``dx = conv_transpose(g, w)``: the adjoint of :class:`ConvNd` in its input.

    Also the forward of the public transposed convolution (with an optional bias). Its own
    gradients are a convolution (for ``g``) and a weight gradient (for ``w``).
    """

    __slots__ = ("geom", "channels")
    saves = (0, 1)

    def forward(self, xp, g, w, b=None, geom=None, channels=0):
        self.geom, self.channels = geom, channels
        groups = geom.groups
        gm = geom.grad_matrix(xp, g)
        wm = w.reshape(groups, w.shape[0] // groups, -1)
        cols = work_arrays.take(xp, (groups, wm.shape[2], gm.shape[2]), gm.dtype)
        xp.matmul(wm.transpose(0, 2, 1), gm, out=cols)  # (groups, C/groups * K, N * L)
        work_arrays.give(gm)
        out = geom.add_windows(xp, cols, g.shape[0], channels, g.dtype)
        work_arrays.give(cols)
        if b is not None:
            out = out + b.reshape(-1, *(1,) * len(geom.kernel))
        return out

    def backward(self, gg, g, w):
        geom = self.geom
        d_g = d_w = d_b = None
        if self.edges[0]:
            d_g = ConvNd.apply(gg, w, None, geom=geom)
        if self.edges[1]:
            d_w = ConvNdWeight.apply(gg, g, geom=geom, w_shape=w._data.shape)
        if len(self.edges) > 2 and self.edges[2]:
            d_b = sum(gg, (0, *range(2, gg.ndim)))
        return d_g, d_w, d_b


class ConvNdWeight(Node):
    """``dw``: output-gradient matrix times the transposed im2col matrix of ``x``.

    The adjoint of :class:`ConvNd` in its weight; its own gradients are a transposed
    convolution (for ``x``) and a convolution (for ``g``).
    """

    __slots__ = ("geom",)
    saves = (0, 1)

    def forward(self, xp, x, g, geom=None, w_shape=(), cols=None):
        self.geom = geom
        own = cols is None
        if own:
            cols = geom.cols(xp, x)
        # (groups, C/groups * K, N * L) @ (groups, N * L, O/groups): both operands contiguous,
        # which keeps NumPy's stacked matmul on BLAS (a transposed stacked operand does not)
        gmt = geom.grad_matrix_t(xp, g)
        gw = xp.matmul(cols, gmt)
        work_arrays.give(gmt)
        if own:
            work_arrays.give(cols)
        return xp.ascontiguousarray(gw.transpose(0, 2, 1)).reshape(w_shape)

    def backward(self, ggw, x, g):
        geom = self.geom
        d_x = d_g = None
        if self.edges[0]:
            d_x = ConvNdInput.apply(g, ggw, geom=geom, channels=x._data.shape[1])
        if self.edges[1]:
            d_g = ConvNd.apply(x, ggw, None, geom=geom)
        return d_x, d_g


def _conv_pads(padding, kernel, dilation, stride, nd, op) -> tuple:
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions")
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads)
        raise ValueError(f"{op}: invalid padding string {padding!r}, expected 'same' or 'valid'")
    p = ntuple(padding, nd, "padding", op)
    if any(v < 0 for v in p):
        raise RuntimeError(f"{op}: negative padding is not supported, got {list(p)}")
    return tuple((v, v) for v in p)


def _batched(input: Tensor, nd: int, op: str):
    """Accept ``(N, C, *S)`` or unbatched ``(C, *S)`` input; returns (input, was_unbatched)."""
    if input.ndim == nd + 2:
        return input, False
    if input.ndim == nd + 1:
        return reshape(input, (1, *input.shape)), True
    raise RuntimeError(
        f"{op}: Expected {nd + 1}D (unbatched) or {nd + 2}D (batched) input, but got input of "
        f"size: {_shape_str(input.shape)}"
    )


def _unbatch(out: Tensor, unbatched: bool) -> Tensor:
    return reshape(out, out.shape[1:]) if unbatched else out


def _check_float(op: str, x: Tensor) -> None:
    if x._data.dtype not in backend.FLOAT_NP_DTYPES:
        raise RuntimeError(f"{op}: expected a floating-point input, got {x.dtype.name}")


def _convnd(input, weight, bias, stride, padding, dilation, groups, nd, op):
    input, unbatched = _batched(input, nd, op)
    _check_float(op, input)
    _same_dtype(op, input, ("weight", weight), ("bias", bias))
    if weight.ndim != nd + 2:
        raise RuntimeError(
            f"{op}: expected a {nd + 2}D weight, got weight of size {_shape_str(weight.shape)}"
        )
    stride = ntuple(stride, nd, "stride", op)
    dilation = ntuple(dilation, nd, "dilation", op)
    if any(s < 1 for s in stride) or any(d < 1 for d in dilation):
        raise RuntimeError(f"{op}: stride and dilation must be positive")
    kernel = tuple(weight.shape[2:])
    groups = int(groups)
    n, c = input.shape[:2]
    o, cg = weight.shape[:2]
    if groups < 1 or c % groups or o % groups or cg * groups != c:
        raise RuntimeError(
            f"{op}: Given groups={groups}, weight of size {_shape_str(weight.shape)}, expected "
            f"input{_shape_str(input.shape)} to have {cg * groups} channels, but got {c} "
            "channels instead"
        )
    if bias is not None and tuple(bias.shape) != (o,):
        raise RuntimeError(f"{op}: bias of size {_shape_str(bias.shape)}, expected [{o}]")
    pads = _conv_pads(padding, kernel, dilation, stride, nd, op)
    in_size = tuple(input.shape[2:])
    out_size = []
    for i in range(nd):
        span = in_size[i] + pads[i][0] + pads[i][1]
        eff = dilation[i] * (kernel[i] - 1) + 1
        if span < eff:
            padded = " x ".join(str(s + lo + hi) for s, (lo, hi) in zip(in_size, pads))
            raise RuntimeError(
                f"{op}: Calculated padded input size per channel: ({padded}). Kernel size: "
                f"({' x '.join(str(k) for k in kernel)}). Kernel size can't be greater than "
                "actual input size"
            )
        out_size.append((span - eff) // stride[i] + 1)
    geom = ConvGeometry(stride, pads, dilation, groups, kernel, in_size, tuple(out_size))
    # the im2col matrix is kept for the weight gradient only when one will be computed
    keep = modes.grad_enabled and weight.requires_grad
    out = ConvNd.apply(input, weight, bias, geom=geom, keep_cols=keep)
    return _unbatch(out, unbatched)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """1-D convolution (cross-correlation) of ``(N, C, L)`` input with ``(O, C/groups, k)``
    weight; ``padding`` may be an int, ``'same'`` or ``'valid'``.

    >>> import chainrule as cr
    >>> cr.conv1d(cr.ones(1, 1, 5), cr.ones(1, 1, 3)).tolist()
    [[[3.0, 3.0, 3.0]]]
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 1, "conv1d")


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """2-D convolution (cross-correlation) of ``(N, C, H, W)`` input with
    ``(O, C/groups, kH, kW)`` weight; ``padding`` may be an int, a pair, ``'same'`` or
    ``'valid'``.

    >>> import chainrule as cr
    >>> cr.conv2d(cr.ones(1, 1, 4, 4), cr.ones(2, 1, 3, 3), padding=1).shape
    chainrule.Size([1, 2, 4, 4])
    """
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 2, "conv2d")


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups: int = 1):
    """3-D convolution of ``(N, C, D, H, W)`` input with ``(O, C/groups, kD, kH, kW)`` weight."""
    return _convnd(input, weight, bias, stride, padding, dilation, groups, 3, "conv3d")


def _conv_transposend(
    input, weight, bias, stride, padding, output_padding, groups, dilation, nd, op, output_size=None
):
    input, unbatched = _batched(input, nd, op)
    _check_float(op, input)
    _same_dtype(op, input, ("weight", weight), ("bias", bias))
    if weight.ndim != nd + 2:
        raise RuntimeError(
            f"{op}: expected a {nd + 2}D weight, got weight of size {_shape_str(weight.shape)}"
        )
    stride = ntuple(stride, nd, "stride", op)
    dilation = ntuple(dilation, nd, "dilation", op)
    pad = ntuple(padding, nd, "padding", op)
    out_pad = ntuple(output_padding, nd, "output_padding", op)
    groups = int(groups)
    n, c = input.shape[:2]
    if weight.shape[0] != c or c % groups:
        raise RuntimeError(
            f"{op}: Given transposed=1, weight of size {_shape_str(weight.shape)}, expected "
            f"input{_shape_str(input.shape)} to have {weight.shape[0]} channels, but got {c} "
            "channels instead"
        )
    out_channels = weight.shape[1] * groups
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise RuntimeError(
            f"{op}: bias of size {_shape_str(bias.shape)}, expected [{out_channels}]"
        )
    for i in range(nd):
        if out_pad[i] >= max(stride[i], dilation[i]):
            raise RuntimeError(
                f"{op}: output padding must be smaller than either stride or dilation, but got "
                f"output_padding={out_pad[i]}, stride={stride[i]}, dilation={dilation[i]}"
            )
    kernel = tuple(weight.shape[2:])
    in_size = tuple(input.shape[2:])
    size = tuple(
        (in_size[i] - 1) * stride[i] - 2 * pad[i] + dilation[i] * (kernel[i] - 1) + out_pad[i] + 1
        for i in range(nd)
    )
    if any(s <= 0 for s in size):
        raise RuntimeError(f"{op}: the computed output size {list(size)} is too small")
    # the transposed convolution is the input-gradient of the convolution that maps an input
    # of ``size`` to ``in_size``
    geom = ConvGeometry(stride, tuple((p, p) for p in pad), dilation, groups, kernel, size, in_size)
    out = ConvNdInput.apply(input, weight, bias, geom=geom, channels=out_channels)
    return _unbatch(out, unbatched)


def conv_transpose1d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups: int = 1, dilation=1
):
    """Transposed 1-D convolution ("deconvolution"); ``weight`` is ``(C_in, C_out/groups, k)``."""
    return _conv_transposend(
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        1,
        "conv_transpose1d",
    )


def conv_transpose2d(
    input, weight, bias=None, stride=1, padding=0, output_padding=0, groups: int = 1, dilation=1
):
    """Transposed 2-D convolution: the gradient of :func:`conv2d` with respect to its input,
    used as a layer; ``weight`` is ``(C_in, C_out/groups, kH, kW)``.

    >>> import chainrule as cr
    >>> cr.conv_transpose2d(cr.ones(1, 1, 2, 2), cr.ones(1, 1, 3, 3), stride=2).shape
    chainrule.Size([1, 1, 5, 5])
    """
    return _conv_transposend(
        input,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        groups,
        dilation,
        2,
        "conv_transpose2d",
    )


# ---------------------------------------------------------------------------------------------
# unfold / fold (im2col / col2im as tensor ops)
# ---------------------------------------------------------------------------------------------


class Unfold(Node):
    """``(N, C, *S)`` -> ``(N, C * K, L)``: every window as a column. Backward: :class:`Fold`."""

    __slots__ = ("geom", "channels")

    def forward(self, xp, x, geom=None):
        self.geom, self.channels = geom, x.shape[1]
        cols = geom.cols(xp, x)  # (1, C * K, L * N) or (1, C * K, N * L)
        n = x.shape[0]
        mat = cols[0]
        if geom.batch_last:
            out = mat.reshape(mat.shape[0], -1, n).transpose(2, 0, 1).copy()
        else:
            out = mat.reshape(mat.shape[0], n, -1).transpose(1, 0, 2).copy()
        work_arrays.give(cols)
        return out

    def backward(self, g):
        return Fold.apply(g, geom=self.geom, channels=self.channels)


class Fold(Node):
    """``(N, C * K, L)`` -> ``(N, C, *S)``: columns added back at their windows (overlaps sum).

    Backward: :class:`Unfold`.
    """

    __slots__ = ("geom",)

    def forward(self, xp, cols, geom=None, channels=0):
        self.geom = geom
        n = cols.shape[0]
        order = (1, 2, 0) if geom.batch_last else (1, 0, 2)
        mat = cols.transpose(order).reshape(1, cols.shape[1], -1)
        return geom.add_windows(xp, mat, n, channels, cols.dtype)

    def backward(self, g):
        return Unfold.apply(g, geom=self.geom)


def _window_geometry(kernel_size, dilation, padding, stride, in_size, op) -> ConvGeometry:
    nd = len(in_size)
    k = ntuple(kernel_size, nd, "kernel_size", op)
    d = ntuple(dilation, nd, "dilation", op)
    p = ntuple(padding, nd, "padding", op)
    s = ntuple(stride, nd, "stride", op)
    out = []
    for i in range(nd):
        span = in_size[i] + 2 * p[i] - d[i] * (k[i] - 1) - 1
        if span < 0:
            raise RuntimeError(
                f"{op}: the kernel {list(k)} (dilation {list(d)}) does not fit in the padded "
                f"input of spatial size {list(in_size)} with padding {list(p)}"
            )
        out.append(span // s[i] + 1)
    return ConvGeometry(s, tuple((v, v) for v in p), d, 1, k, tuple(in_size), tuple(out))


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding windows: ``(N, C, H, W)`` -> ``(N, C * kH * kW, L)`` (im2col)."""
    if input.ndim != 4:
        raise RuntimeError(
            f"unfold: expected a 4D (N, C, H, W) input, got size {_shape_str(input.shape)}"
        )
    geom = _window_geometry(
        kernel_size, dilation, padding, stride, tuple(input.shape[2:]), "unfold"
    )
    return Unfold.apply(input, geom=geom)


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum sliding-window columns back into an image: the inverse layout of :func:`unfold`."""
    unbatched = input.ndim == 2
    if unbatched:
        input = reshape(input, (1, *input.shape))
    if input.ndim != 3:
        raise RuntimeError(
            f"fold: expected a 2D or 3D (N, C*K, L) input, got size {_shape_str(input.shape)}"
        )
    size = ntuple(output_size, 2, "output_size", "fold")
    geom = _window_geometry(kernel_size, dilation, padding, stride, size, "fold")
    k = math.prod(geom.kernel)
    ck, n_cols = input.shape[1], input.shape[2]
    if ck % k or n_cols != math.prod(geom.out_size):
        raise RuntimeError(
            f"fold: expected size {_shape_str(input.shape)} to have a multiple of {k} rows and "
            f"{math.prod(geom.out_size)} columns (blocks) for output_size {list(size)}"
        )
    out = Fold.apply(input, geom=geom, channels=ck // k)
    return reshape(out, out.shape[1:]) if unbatched else out


# ---------------------------------------------------------------------------------------------
# pooling
# ---------------------------------------------------------------------------------------------


class PoolAxis:
    """Pooling geometry along one axis: kernel, stride, dilation, padding, sizes."""

    __slots__ = ("axis", "k", "s", "d", "lo", "hi", "n_in", "n_out")

    def __init__(self, axis, k, s, d, lo, n_in, n_out):
        self.axis, self.k, self.s, self.d, self.lo = axis, k, s, d, lo
        self.n_in, self.n_out = n_in, n_out
        # extra right padding so that ceil-mode windows stay inside the array
        self.hi = max(0, (n_out - 1) * s + (k - 1) * d + 1 - (n_in + lo))

    def pad(self, xp, a, value):
        if not (self.lo or self.hi):
            return a
        shape = list(a.shape)
        shape[self.axis] += self.lo + self.hi
        out = xp.full(shape, value, dtype=a.dtype)
        out[self._index(slice(self.lo, self.lo + self.n_in), a.ndim)] = a
        return out

    def crop(self, a):
        if not (self.lo or self.hi):
            return a
        return a[self._index(slice(self.lo, self.lo + self.n_in), a.ndim)]

    def _index(self, sl, ndim):
        index = [slice(None)] * ndim
        index[self.axis] = sl
        return tuple(index)

    def tap(self, a, j):
        """The view of (padded) ``a`` that tap ``j`` of every window reads."""
        start = j * self.d
        return a[self._index(slice(start, start + self.s * (self.n_out - 1) + 1, self.s), a.ndim)]

    @property
    def tiles(self) -> bool:
        """True when the windows cover the padded axis exactly once (no overlap, no gap)."""
        return (
            self.d == 1
            and self.s == self.k
            and self.n_out * self.k == self.n_in + self.lo + self.hi
        )

    def spread_shape(self, shape):
        shape = list(shape)
        shape[self.axis] = self.n_in + self.lo + self.hi
        return tuple(shape)


def _pool_axes(op, input, nd, kernel_size, stride, padding, dilation, ceil_mode):
    k = ntuple(kernel_size, nd, "kernel_size", op)
    s = (
        k
        if stride is None or (isinstance(stride, (list, tuple)) and not stride)
        else ntuple(stride, nd, "stride", op)
    )
    p = ntuple(padding, nd, "padding", op)
    d = ntuple(dilation, nd, "dilation", op)
    if any(v <= 0 for v in k + s + d):
        raise RuntimeError(f"{op}: kernel_size, stride and dilation must be greater than zero")
    axes = []
    lead = input.ndim - nd
    for i in range(nd):
        if p[i] > k[i] // 2:
            raise RuntimeError(
                f"{op}: pad should be at most half of effective kernel size, but got pad={p[i]}, "
                f"kernel_size={k[i]} and dilation={d[i]}"
            )
        n = input.shape[lead + i]
        span = n + 2 * p[i] - d[i] * (k[i] - 1) - 1
        if ceil_mode:
            out = -(-span // s[i]) + 1
            if (out - 1) * s[i] >= n + p[i]:  # the last window must start inside the input
                out -= 1
        else:
            out = span // s[i] + 1
        if out < 1 or span < 0:
            raise RuntimeError(
                f"{op}: Given input size: {_shape_str(input.shape[lead:])}. Calculated output "
                f"size is too small (kernel {list(k)}, stride {list(s)}, padding {list(p)}, "
                f"dilation {list(d)})"
            )
        axes.append(PoolAxis(lead + i, k[i], s[i], d[i], p[i], n, out))
    return tuple(axes)


def _tap_mask(win, j: int):
    """Where tap ``j`` won (``win`` holds booleans for 2-wide windows, tap numbers otherwise)."""
    if win.dtype == bool:
        return win if j else ~win
    return win == j


def _neg_fill(xp, dtype):
    return -xp.inf if xp.dtype(dtype).kind == "f" else xp.iinfo(dtype).min


class MaxPool(Node):
    """Max over each window, one axis at a time; remembers the winning tap per axis.

    Ties go to the first element of the window, like PyTorch; NaN propagates to the output.
    Per axis and tap this is two passes (a comparison and a maximum) over the data; the
    winners are kept as booleans for 2-wide windows, int8 tap numbers otherwise.
    Backward: :class:`MaxPoolScatter` routes the gradient to the winners.
    """

    __slots__ = ("axes", "winners")

    def forward(self, xp, a, axes=()):
        self.axes = axes
        winners = []
        for ax in reversed(axes):  # last axis first: its windows are the contiguous ones
            a = ax.pad(xp, a, _neg_fill(xp, a.dtype))
            best = ax.tap(a, 0)
            win = None
            for j in range(1, ax.k):
                v = ax.tap(a, j)
                better = v > best  # strict: a tie keeps the earlier tap
                best = xp.maximum(best, v)
                if win is None:
                    win = better if ax.k == 2 else better.astype(xp.int8)
                else:
                    win = xp.where(better, xp.int8(j), win)
            if win is None:
                best = best.copy()
                win = xp.zeros(best.shape, dtype=bool)
            winners.append(win)
            a = best
        self.winners = winners[::-1]  # aligned with ``axes``
        return a

    def backward(self, g):
        return MaxPoolScatter.apply(g, axes=self.axes, winners=self.winners)

    def flat_indices(self, xp):
        """PyTorch's ``return_indices``: the flat offset of each winner within its plane."""
        idx = None
        size = 1
        # positions along each axis, innermost first, combined as row-major offsets
        for i in range(len(self.axes) - 1, -1, -1):
            ax = self.axes[i]
            win = self.winners[i]
            pos = win.astype(xp.int64) * ax.d - ax.lo
            start = xp.arange(ax.n_out, dtype=xp.int64) * ax.s
            shape = [1] * win.ndim
            shape[ax.axis] = ax.n_out
            pos = pos + start.reshape(shape)
            # the winner of an outer axis was chosen among rows of the inner result
            pos = self._select_outer(xp, pos, i)
            idx = pos * size if idx is None else idx + pos * size
            size *= ax.n_in
        return idx

    def _select_outer(self, xp, values, i):
        """Follow the winners of the axes before ``i`` so ``values`` lines up with the output."""
        for j in range(i - 1, -1, -1):
            ax = self.axes[j]
            values = ax.pad(xp, values, 0)
            win = self.winners[j]
            picked = ax.tap(values, 0)
            for t in range(1, ax.k):
                picked = xp.where(win == t, ax.tap(values, t), picked)
            values = picked
        return values


class MaxPoolScatter(Node):
    """Send each output gradient to the input element that won its window (adds on overlap).

    Its adjoint (and backward) is :class:`MaxPoolGather`.
    """

    __slots__ = ("axes", "winners")

    def forward(self, xp, g, axes=(), winners=()):
        self.axes, self.winners = axes, winners
        for ax, win in zip(axes, winners):  # first axis first: the reverse of the forward
            out_shape = ax.spread_shape(g.shape)
            out = (xp.empty if ax.tiles else xp.zeros)(out_shape, dtype=g.dtype)
            for j in range(ax.k):
                mask = _tap_mask(win, j)
                if ax.tiles:  # every input element is in exactly one window: plain writes
                    xp.multiply(g, mask, out=ax.tap(out, j))
                else:
                    ax.tap(out, j)[...] += g * mask
            g = ax.crop(out)
        return g

    def backward(self, gg):
        return MaxPoolGather.apply(gg, axes=self.axes, winners=self.winners)


class MaxPoolGather(Node):
    """Read the input at the recorded winners (the adjoint of :class:`MaxPoolScatter`)."""

    __slots__ = ("axes", "winners")

    def forward(self, xp, a, axes=(), winners=()):
        self.axes, self.winners = axes, winners
        for ax, win in zip(reversed(axes), reversed(winners)):
            a = ax.pad(xp, a, 0)
            picked = ax.tap(a, 0) * _tap_mask(win, 0)
            for j in range(1, ax.k):
                picked = picked + ax.tap(a, j) * _tap_mask(win, j)
            a = picked
        return a

    def backward(self, g):
        return MaxPoolScatter.apply(g, axes=self.axes, winners=self.winners)


def _max_poolnd(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, nd, op):
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(
            f"{op}: Expected {nd + 1}D or {nd + 2}D input, got input of size "
            f"{_shape_str(input.shape)}"
        )
    axes = _pool_axes(op, input, nd, kernel_size, stride, padding, dilation, ceil_mode)
    out = MaxPool.apply(input, axes=axes)
    if not return_indices:
        return out
    node = out.grad_fn
    if not isinstance(node, MaxPool):  # not recorded: run the geometry again to get winners
        node = MaxPool()
        node.forward(backend.array_module(input._data), input._data, axes=axes)
    return out, Tensor._make(node.flat_indices(backend.array_module(input._data)))


def max_pool1d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """Max over sliding windows of the last axis of ``(N, C, L)`` (or ``(C, L)``) input."""
    return _max_poolnd(
        input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1, "max_pool1d"
    )


def max_pool2d(
    input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False
):
    """Max over sliding ``kH x kW`` windows of ``(N, C, H, W)`` (or ``(C, H, W)``) input.

    >>> import chainrule as cr
    >>> cr.max_pool2d(cr.arange(16.0).reshape(1, 1, 4, 4), 2).tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """
    return _max_poolnd(
        input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2, "max_pool2d"
    )


class AvgPool(Node):
    """Sum over each window (one axis at a time) divided by the window count.

    Linear: the backward is :class:`AvgPoolAdjoint` (spread ``g / count`` over each window).
    """

    __slots__ = ("axes", "divisor")

    def forward(self, xp, a, axes=(), divisor=None):
        self.axes, self.divisor = axes, divisor
        for ax in reversed(axes):
            a = ax.pad(xp, a, 0)
            total = ax.tap(a, 0)
            for j in range(1, ax.k):
                total = total + ax.tap(a, j)
            a = total
        return (a / divisor).astype(a.dtype, copy=False)

    def backward(self, g):
        return AvgPoolAdjoint.apply(g, axes=self.axes, divisor=self.divisor)


class AvgPoolAdjoint(Node):
    """``g / count`` added to every element of its window; the adjoint of :class:`AvgPool`."""

    __slots__ = ("axes", "divisor")

    def forward(self, xp, g, axes=(), divisor=None):
        self.axes, self.divisor = axes, divisor
        g = (g / divisor).astype(g.dtype, copy=False)
        for ax in axes:
            out = (xp.empty if ax.tiles else xp.zeros)(ax.spread_shape(g.shape), dtype=g.dtype)
            for j in range(ax.k):
                if ax.tiles:
                    ax.tap(out, j)[...] = g
                else:
                    ax.tap(out, j)[...] += g
            g = ax.crop(out)
        return g

    def backward(self, gg):
        return AvgPool.apply(gg, axes=self.axes, divisor=self.divisor)


def _avg_divisor(xp, axes, ndim, count_include_pad, divisor_override, dtype):
    if divisor_override:
        return dtype.type(divisor_override)
    divisor = None
    for ax in axes:
        start = xp.arange(ax.n_out) * ax.s - ax.lo
        end = xp.minimum(start + ax.k, ax.n_in + ax.lo)
        if count_include_pad:
            count = end - start
        else:
            count = xp.minimum(end, ax.n_in) - xp.maximum(start, 0)
        shape = [1] * ndim
        shape[ax.axis] = ax.n_out
        count = count.reshape(shape)
        divisor = count if divisor is None else divisor * count
    return divisor.astype(dtype)


def _avg_poolnd(
    input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, nd, op
):
    if input.ndim not in (nd + 1, nd + 2):
        raise RuntimeError(
            f"{op}: Expected {nd + 1}D or {nd + 2}D input, got input of size "
            f"{_shape_str(input.shape)}"
        )
    _check_float(op, input)
    axes = _pool_axes(op, input, nd, kernel_size, stride, padding, 1, ceil_mode)
    xp = backend.array_module(input._data)
    divisor = _avg_divisor(
        xp, axes, input.ndim, count_include_pad, divisor_override, input._data.dtype
    )
    return AvgPool.apply(input, axes=axes, divisor=divisor)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Mean over sliding windows of the last axis of ``(N, C, L)`` input."""
    return _avg_poolnd(
        input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1, "avg_pool1d"
    )


def avg_pool2d(
    input,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
):
    """Mean over sliding ``kH x kW`` windows of ``(N, C, H, W)`` input; zero padding counts
    towards the mean unless ``count_include_pad=False``."""
    return _avg_poolnd(
        input,
        kernel_size,
        stride,
        padding,
        ceil_mode,
        count_include_pad,
        divisor_override,
        2,
        "avg_pool2d",
    )


def _adaptive_matrix(xp, n_in: int, n_out: int, dtype):
    """``(n_out, n_in)`` averaging matrix: row i averages PyTorch's adaptive window i."""
    i = xp.arange(n_out)
    start = (i * n_in) // n_out
    end = -((-(i + 1) * n_in) // n_out)
    cols = xp.arange(n_in)
    inside = (cols[None, :] >= start[:, None]) & (cols[None, :] < end[:, None])
    return Tensor._make((inside / (end - start)[:, None]).astype(dtype))


def adaptive_avg_pool1d(input, output_size):
    """Average over ``output_size`` nearly equal windows covering the last axis."""
    out = ntuple(output_size, 1, "output_size", "adaptive_avg_pool1d")[0]
    xp = backend.array_module(input._data)
    m = _adaptive_matrix(xp, input.shape[-1], out, input._data.dtype)
    return matmul(input, transpose(m, 0, 1))


def adaptive_avg_pool2d(input, output_size):
    """Average over an ``output_size`` grid of nearly equal windows (``None`` keeps a size).

    Written as two small averaging-matrix products (``A_h @ x @ A_w^T``), so it is exact and
    differentiable to any order.
    """
    if isinstance(output_size, int) or output_size is None:
        output_size = (output_size, output_size)
    h, w = input.shape[-2:]
    oh = h if output_size[0] is None else int(output_size[0])
    ow = w if output_size[1] is None else int(output_size[1])
    xp = backend.array_module(input._data)
    dt = input._data.dtype
    if (oh, ow) == (h, w):
        return input * 1
    out = matmul(_adaptive_matrix(xp, h, oh, dt), input)
    return matmul(out, transpose(_adaptive_matrix(xp, w, ow, dt), 0, 1))


# ---------------------------------------------------------------------------------------------
# padding
# ---------------------------------------------------------------------------------------------


class ConstantPad(Node):
    """Pad (or crop, for negative amounts) with a constant; the backward crops (pads) back."""

    __slots__ = ("pads",)

    def forward(self, xp, a, pads=(), value=0.0):
        self.pads = pads
        lead = a.ndim - len(pads)
        crop = (slice(None),) * lead + tuple(
            slice(max(-lo, 0), s - max(-hi, 0)) for s, (lo, hi) in zip(a.shape[lead:], pads)
        )
        a = a[crop]
        grow = tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads)
        if not any(lo or hi for lo, hi in grow):
            return a.copy()
        return _pad_array(xp, a, grow, value)

    def backward(self, g):
        return ConstantPad.apply(g, pads=tuple((-lo, -hi) for lo, hi in self.pads), value=0.0)


def constant_pad_nd(input, pad, value=0.0):
    """Pad the last ``len(pad) // 2`` dimensions with ``value``; ``pad`` lists
    ``(left, right)`` pairs starting from the last dimension (negative values crop)."""
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise RuntimeError(
            f"constant_pad_nd: padding length must be divisible by 2 and at most twice the number "
            f"of dimensions of the input ({input.ndim}), got {len(pad)}"
        )
    pairs = [(pad[2 * i], pad[2 * i + 1]) for i in range(len(pad) // 2)][::-1]
    for (lo, hi), s in zip(pairs, input.shape[input.ndim - len(pairs) :]):
        if s + lo + hi < 0:
            raise RuntimeError(
                f"constant_pad_nd: the input size {s} padded by ({lo}, {hi}) would be negative"
            )
    return ConstantPad.apply(input, pads=tuple(pairs), value=value)


# ---------------------------------------------------------------------------------------------
# row lookups (embedding) and their scatter
# ---------------------------------------------------------------------------------------------


class RowGather(Node):
    """``weight[index]`` (an embedding lookup); positions holding ``padding_idx`` send no
    gradient to the table.

    ``out_scale`` multiplies the output rows and ``grad_scale`` the gradient rows (PyTorch's
    ``scale_grad_by_freq``); ``zero_padding`` also zeroes padding positions in the output.
    The last two exist for the double backward, where this op is the adjoint of
    :class:`RowScatter`.
    """

    __slots__ = ("index", "num", "padding_idx", "grad_scale")

    def forward(
        self,
        xp,
        w,
        index=None,
        padding_idx=None,
        zero_padding=False,
        out_scale=None,
        grad_scale=None,
    ):
        self.index, self.num, self.padding_idx = index, w.shape[0], padding_idx
        self.grad_scale = out_scale if grad_scale is None else grad_scale
        out = xp.take(w, index, axis=0)
        if zero_padding and padding_idx is not None:
            out *= (index != padding_idx)[..., None]
        if out_scale is not None:
            out *= out_scale[..., None]
        return out

    def backward(self, g):
        return RowScatter.apply(
            g, index=self.index, num=self.num, padding_idx=self.padding_idx, scale=self.grad_scale
        )


class RowScatter(Node):
    """Add each gradient row into row ``index`` of a ``(num, D)`` zero array.

    The adjoint of :class:`RowGather`; repeated indices accumulate, padding positions are
    skipped, ``scale`` multiplies each row first.
    """

    __slots__ = ("index", "padding_idx", "scale")

    def forward(self, xp, g, index=None, num=0, padding_idx=None, scale=None):
        self.index, self.padding_idx, self.scale = index, padding_idx, scale
        rows = g.reshape(-1, g.shape[-1])
        flat = index.reshape(-1)
        if scale is not None:
            rows = rows * scale.reshape(-1, 1)
        if padding_idx is not None:
            keep = flat != padding_idx
            rows, flat = rows[keep], flat[keep]
        out = xp.zeros((num, g.shape[-1]), dtype=g.dtype)
        backend.add_at(xp, out, flat, rows)
        return out

    def backward(self, gg):
        return RowGather.apply(
            gg,
            index=self.index,
            padding_idx=self.padding_idx,
            zero_padding=True,
            out_scale=self.scale,
        )


def embedding_lookup(weight, index, padding_idx=None, scale_grad_by_freq=False) -> Tensor:
    """Rows of ``weight`` at integer ``index`` (any shape); see ``nn.functional.embedding``."""
    idx = index._data if isinstance(index, Tensor) else backend.asarray(index)
    if idx.dtype.kind not in "iu":
        raise RuntimeError(
            "embedding: Expected tensor for argument #1 'indices' to have one of the following "
            f"scalar types: Long, Int; but got {backend.from_np(idx.dtype).name} instead"
        )
    num = weight.shape[0]
    if idx.size:
        lo, hi = int(idx.min()), int(idx.max())
        if lo < 0 or hi >= num:
            bad = hi if hi >= num else lo
            raise IndexError(
                f"embedding: index {bad} is out of range for a table of {num} rows "
                "(index out of range in self)"
            )
    grad_scale = None
    if scale_grad_by_freq:
        xp = backend.array_module(idx)
        counts = xp.bincount(idx.reshape(-1), minlength=num)
        grad_scale = (1.0 / counts[idx]).astype(weight._data.dtype)
    return RowGather.apply(weight, index=idx, padding_idx=padding_idx, grad_scale=grad_scale)


# ---------------------------------------------------------------------------------------------
# fused elementwise cores kept as primitives for numerical stability or speed
# ---------------------------------------------------------------------------------------------


class Linear(Node):
    """``x @ w.T + b`` as one node (a speed primitive: one matrix product, bias added in place).

    Backward: ``dx = g @ w``, ``dw = g^T x`` (over all leading dimensions), ``db = g`` (the
    engine sums it over the leading dimensions).
    """

    __slots__ = ()
    saves = (0, 1)

    def forward(self, xp, x, w, b):
        # leading dimensions flattened: ONE matrix product (NumPy runs one per leading index
        # of a 3-D operand, about 40% slower at (32, 64, 256) @ (256, 64))
        out = xp.matmul(x.reshape(-1, x.shape[-1]), w.T).reshape(*x.shape[:-1], w.shape[0])
        if b is not None:
            out += b
        return out

    def backward(self, g, x, w):
        gx = gw = None
        o, i = w._data.shape
        g2 = reshape(g, (-1, o))
        if self.edges[0]:
            gx = reshape(matmul(g2, w), x.shape)
        if self.edges[1]:
            gw = matmul(transpose(g2, 0, 1), reshape(x, (-1, i)))
        return gx, gw, (g if self.edges[2] else None)


class Softplus(Node):
    """``log(1 + exp(x))`` via ``logaddexp(0, x)``: a primitive for numerical stability (never
    overflows, keeps ``exp(-|x|)`` accuracy for large ``|x|``). The gradient ``sigmoid(x)`` is
    written with chainrule ops, so it is differentiable again."""

    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        return xp.logaddexp(a.dtype.type(0), a)

    def backward(self, g, a):
        return g * sigmoid(a)


class SoftmaxCrossEntropy(BufferedNode):
    """Per-sample ``w_i * (logsumexp(x_i) - x_i[t_i])`` for logits ``x (N, C)`` with class
    indices ``target`` and sample weights ``weight`` (constant arrays): ``log_softmax`` and
    the pick of ``nll_loss`` in one node.

    A speed primitive: four passes over the logits forward and one backward, where the
    composite makes about eleven and records four nodes. The backward is
    ``(softmax(x) - onehot(t)) * (g w)[:, None]``, from the probabilities this forward keeps;
    when it must itself be differentiable (``create_graph``) it is written in chainrule ops.
    """

    __slots__ = ("probs", "target", "weight")
    _buffers = ("probs",)
    saves = (0,)

    def forward(self, xp, x, target=None, weight=None):
        self.target, self.weight = target, weight
        with backend.errstate(invalid="ignore", divide="ignore", over="ignore"):
            shifted = x - xp.amax(x, axis=1, keepdims=True)  # exp below never overflows
            picked = shifted[xp.arange(x.shape[0]), target]
            xp.exp(shifted, out=shifted)
            total = shifted.sum(axis=1)
            loss = (xp.log(total) - picked) * weight
            shifted /= total[:, None]
        self.probs = shifted
        return loss

    def backward(self, g, x):
        if modes.grad_enabled:  # create_graph: differentiable ops
            xp = backend.array_module(x._data)
            onehot = xp.zeros(x._data.shape, x._data.dtype)
            onehot[xp.arange(x._data.shape[0]), self.target] = 1
            coef = unsqueeze(g * Tensor._make(self.weight), 1)
            return (softmax(x, 1) - Tensor._make(onehot)) * coef
        xp = backend.array_module(g._data)
        coef = g._data * self.weight
        grad = self.probs * coef[:, None]
        grad[xp.arange(grad.shape[0]), self.target] -= coef
        return Tensor._make(grad)


class BinaryCrossEntropy(Node):
    """``-(y log x + (1 - y) log(1 - x))`` with each log clamped at -100, as PyTorch does.

    A primitive for numerical stability: the gradient ``(x - y) / max(x (1 - x), 1e-12)``
    stays finite at ``x = 0`` and ``x = 1`` where the composite would give ``0/0``.
    """

    __slots__ = ()
    saves = (0, 1)

    def forward(self, xp, x, y):
        with backend.errstate(all="ignore"):
            log_x = xp.maximum(xp.log(x), -100)
            log_1mx = xp.maximum(xp.log1p(-x), -100)
        return -(y * log_x + (1 - y) * log_1mx)

    def backward(self, g, x, y):
        gx = gy = None
        if self.edges[0]:
            gx = g * (x - y) / clamp((1 - x) * x, min=1e-12)
        if self.edges[1]:
            gy = g * (clamp(log1p(-x), min=-100) - clamp(log(x), min=-100))
        return gx, gy


# GELU. A speed primitive: the composite ``x * (erf(x / sqrt 2) + 1) / 2`` makes several
# full-size temporaries and graph nodes, and its backward evaluates erf again. Here the forward
# is a dozen or two in-place passes over arrays it owns, and keeps the normal CDF ``Phi(x)``
# and ``exp(-x*x/2)`` (or, for ``'tanh'``, the sigmoid below) so that the backward is four to
# ten more passes with no transcendental function at all.
#
# ``Phi(x) = erfc(-x / sqrt 2) / 2``. Its lower tail ``h(w) = Phi(-w)``, ``w = |x|``, is
# ``exp(-w*w/2) * R(w / sqrt 2) / 2`` with ``R = exp(u*u) erfc(u)``, the ratio fitted in
# elementwise.py, here rescaled to take ``w`` directly; then ``Phi(x) = h`` for ``x <= 0`` and
# ``1 - h`` for ``x > 0``. Unlike ``(1 + erf) / 2`` this keeps full relative accuracy in the
# lower tail (PyTorch's own kernel loses it there, which is within the op table's tolerance).
#
# ``approximate='tanh'``: ``(1 + tanh(y)) / 2 = sigmoid(2y) = 1 / (1 + exp(-2y))`` with
# ``y = sqrt(2/pi) (x + 0.044715 x^3)``: one exp instead of a slower tanh, no cancellation
# for negative ``x``, and ``exp -> inf`` there simply gives 0.

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GELU_CUBIC = 0.044715
# per itemsize: coefficients of h(w) * exp(w*w/2), and where h underflows (R's fitted range)
_GELU_TAIL = {
    8: (_scaled_ratio(_ERFCX_P64, _ERFCX_Q64, math.sqrt(0.5), 0.5), 27.0 * math.sqrt(2.0)),
    4: (_scaled_ratio(_ERFCX_P32, _ERFCX_Q32, math.sqrt(0.5), 0.5), 10.0 * math.sqrt(2.0)),
}


def _gelu_exact(xp, x):
    """``(x * Phi(x), Phi(x), exp(-x*x/2))`` for a float32 or float64 array ``x``."""
    (num, den), w_max = _GELU_TAIL[x.dtype.itemsize]
    w = xp.clip(x, -w_max, w_max)  # keeps NaN, and R finite for +-inf (h is 0 there anyway)
    xp.abs(w, out=w)
    tail = _ratio(xp, w, num, den)
    dens = xp.multiply(x, x)
    dens *= -0.5
    xp.exp(dens, out=dens)
    tail *= dens  # h(|x|) = Phi(-|x|)
    # Phi = m - s * h with m = [x > 0] and s = 2m - 1: s * h is exact, so Phi is h or 1 - h
    # rounded once (xp.where is several times slower when the mask changes often)
    cdf = xp.greater(x, 0, out=xp.empty_like(x))
    sign = xp.multiply(cdf, 2.0, out=w)
    sign -= 1.0
    tail *= sign
    cdf -= tail
    return x * cdf, cdf, dens


def _gelu_tanh(xp, x):
    """``(x * s, s)`` with ``s = sigmoid(2y) = (1 + tanh(y)) / 2``."""
    s = xp.multiply(x, x)
    s *= -2.0 * _SQRT_2_OVER_PI * _GELU_CUBIC
    s -= 2.0 * _SQRT_2_OVER_PI
    s *= x  # -2y
    xp.exp(s, out=s)
    s += 1.0
    xp.reciprocal(s, out=s)
    return x * s, s


def _gelu_cache(xp, x, approximate: str) -> tuple:
    """The output and what the derivative needs, computed in float32 for narrower types."""
    if x.ndim == 0:  # ufuncs return scalars for 0-d arrays; the in-place passes need arrays
        out, cache = _gelu_cache(xp, x.reshape(1), approximate)
        return out.reshape(()), cache
    if x.dtype.itemsize < 4:
        x = x.astype("float32")
    with backend.errstate(**_IGNORE):  # x*x -> inf, exp -> inf and -inf * 0 are all intended
        if approximate == "tanh":
            out, s = _gelu_tanh(xp, x)
            return out, (s,)
        out, cdf, dens = _gelu_exact(xp, x)
        return out, (cdf, dens)


def _gelu_derivative(xp, x, approximate: str, cache: tuple):
    """gelu'(x) as a new array: ``Phi + x phi`` or the derivative of the tanh form (1-d for
    a 0-d ``x``, like the cache)."""
    if x.ndim == 0:
        x = x.reshape(1)
    with backend.errstate(**_IGNORE):
        if approximate == "tanh":
            (s,) = cache
            d = xp.multiply(x, x, dtype=s.dtype)
            d *= 6.0 * _SQRT_2_OVER_PI * _GELU_CUBIC
            d += 2.0 * _SQRT_2_OVER_PI
            d *= x
            d *= s
            d *= xp.subtract(1.0, s)
            d += s  # s + x s (1 - s) 2y'
            return d
        cdf, dens = cache
        d = xp.multiply(x, dens, dtype=dens.dtype)
        d *= _INV_SQRT_2PI
        d += cdf  # Phi(x) + x phi(x)
        return d


def _gelu_second_derivative(x: Tensor, approximate: str) -> Tensor:
    """gelu''(x) in chainrule ops (so third derivatives work too)."""
    x2 = x * x
    if approximate == "tanh":
        dy = (x2 * (3.0 * _GELU_CUBIC) + 1.0) * _SQRT_2_OVER_PI  # y'
        z = (x + x2 * x * _GELU_CUBIC) * (2.0 * _SQRT_2_OVER_PI)
        s, s_neg = sigmoid(z), sigmoid(-z)  # s_neg = 1 - s without cancellation
        # s' = 2 s (1 - s) y', so gelu'' = 2 s' + x s'' is s (1 - s) times this
        inner = dy * 4.0 + x * dy * dy * (s_neg - s) * 4.0
        inner = inner + x2 * (12.0 * _GELU_CUBIC * _SQRT_2_OVER_PI)
        return s * s_neg * inner
    return (2.0 - x2) * exp(x2 * -0.5) * _INV_SQRT_2PI  # phi (2 - x^2)


class Gelu(BufferedNode):
    """``gelu(x)``, exact (``approximate='none'``) or in tanh form, as one node (a speed
    primitive; see the notes above). Backward: :class:`GeluBackward`, which reuses the
    arrays this forward kept."""

    __slots__ = ("approximate", "cache")
    _buffers = ("cache",)
    saves = (0,)

    def forward(self, xp, x, approximate="none"):
        self.approximate = approximate
        out, self.cache = _gelu_cache(xp, x, approximate)
        return out if out.dtype == x.dtype else out.astype(x.dtype)

    def backward(self, g, x):
        return GeluBackward.apply(g, x, approximate=self.approximate, cache=self.cache)


class GeluBackward(BufferedNode):
    """``g * gelu'(x)``. Backward: ``gelu'(x)`` again for ``g`` (the op is linear in it) and
    ``g * gelu''(x)`` in chainrule ops for ``x``, so GELU can be differentiated any number
    of times."""

    __slots__ = ("approximate", "cache")
    _buffers = ("cache",)
    saves = (0, 1)

    def forward(self, xp, g, x, approximate="none", cache=None):
        self.approximate = approximate
        if cache is None:  # not from a Gelu forward: recompute
            cache = _gelu_cache(xp, x, approximate)[1]
        self.cache = cache
        d = _gelu_derivative(xp, x, approximate, cache)
        d *= g
        if d.shape != x.shape:  # 0-d
            d = d.reshape(x.shape)
        return d if d.dtype == x.dtype else d.astype(x.dtype)

    def backward(self, gg, g, x):
        dg = dx = None
        if self.edges[0]:
            dg = GeluBackward.apply(gg, x, approximate=self.approximate, cache=self.cache)
        if self.edges[1]:
            dx = gg * g * _gelu_second_derivative(x, self.approximate)
        return dg, dx


# ---------------------------------------------------------------------------------------------
# normalisation (composites: their gradients, and second derivatives, come from the engine)
# ---------------------------------------------------------------------------------------------


def _normalize(x: Tensor, dims: tuple, eps: float) -> Tensor:
    """``(x - mean) / sqrt(var + eps)`` over ``dims`` (biased variance)."""
    mu = mean(x, dims, keepdim=True)
    centered = x - mu
    var = mean(centered * centered, dims, keepdim=True)
    return centered * rsqrt(var + eps)


def _channel_shape(x: Tensor) -> tuple:
    return (1, -1) + (1,) * (x.ndim - 2)


def batch_norm(
    input,
    weight,
    bias,
    running_mean,
    running_var,
    training: bool,
    momentum: float,
    eps: float,
    cudnn_enabled: bool = True,
):
    """Batch normalisation over all but the channel dimension (``torch.batch_norm``'s
    argument order; ``nn.functional.batch_norm`` is the usual entry point).

    In training (or without running statistics) the batch statistics are used and the running
    ones, when given, are updated in place: ``running = (1 - momentum) * running + momentum *
    batch`` with the unbiased batch variance (``momentum=None``: a cumulative average, which
    the caller implements by passing ``1 / num_batches_tracked``).
    """
    if input.ndim < 2:
        raise ValueError(
            f"batch_norm: expected at least 2D input (got {input.ndim}D input of size "
            f"{_shape_str(input.shape)})"
        )
    c = input.shape[1]
    for name, t in (
        ("weight", weight),
        ("bias", bias),
        ("running_mean", running_mean),
        ("running_var", running_var),
    ):
        if t is not None and t.numel() != c:
            raise RuntimeError(
                f"batch_norm: {name} should contain {c} elements (the number of channels of "
                f"input of size {_shape_str(input.shape)}), not {t.numel()}"
            )
    dims = (0, *range(2, input.ndim))
    shape = _channel_shape(input)
    if training:
        count = input.numel() // c
        if count <= 1:
            raise ValueError(
                "Expected more than 1 value per channel when training, got input size "
                f"{_shape_str(input.shape)}"
            )
        out = _normalize(input, dims, eps)
        if running_mean is not None or running_var is not None:
            xp = backend.array_module(input._data)
            data = input._data
            batch_mean = xp.mean(data, axis=dims, dtype=xp.float64)
            m = 0.1 if momentum is None else momentum
            if running_mean is not None:
                rm = running_mean._data
                rm *= 1 - m
                rm += (m * batch_mean).astype(rm.dtype)
            if running_var is not None:
                centered = data - batch_mean.reshape(shape).astype(data.dtype)
                batch_var = xp.sum(centered * centered, axis=dims, dtype=xp.float64) / (count - 1)
                rv = running_var._data
                rv *= 1 - m
                rv += (m * batch_var).astype(rv.dtype)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var must be defined in eval")
        out = (input - reshape(cast(running_mean, input.dtype), shape)) * reshape(
            rsqrt(cast(running_var, input.dtype) + eps), shape
        )
    if weight is not None:
        out = out * reshape(weight, shape)
    if bias is not None:
        out = out + reshape(bias, shape)
    return out


def layer_norm(
    input, normalized_shape, weight=None, bias=None, eps: float = 1e-5, cudnn_enable: bool = True
):
    """Normalise over the trailing ``normalized_shape`` dimensions, then scale and shift."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    nd = len(shape)
    if tuple(input.shape[input.ndim - nd :]) != shape or input.ndim < nd:
        raise RuntimeError(
            f"layer_norm: Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in shape)}], but got input of size "
            f"{_shape_str(input.shape)}"
        )
    out = _normalize(input, tuple(range(input.ndim - nd, input.ndim)), eps)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out


def group_norm(
    input, num_groups: int, weight=None, bias=None, eps: float = 1e-5, cudnn_enabled: bool = True
):
    """Normalise each of ``num_groups`` channel groups (over the group's channels and all
    positions) per sample, then scale and shift per channel."""
    if input.ndim < 2:
        raise RuntimeError(f"group_norm: expected at least 2D input, got {_shape_str(input.shape)}")
    n, c = input.shape[:2]
    if c % num_groups:
        raise RuntimeError(
            f"group_norm: Expected number of channels in input to be divisible by num_groups, "
            f"but got input of shape {_shape_str(input.shape)} and num_groups={num_groups}"
        )
    grouped = reshape(input, (n, num_groups, -1))
    out = reshape(_normalize(grouped, (2,), eps), tuple(input.shape))
    shape = _channel_shape(input)
    if weight is not None:
        out = out * reshape(weight, shape)
    if bias is not None:
        out = out + reshape(bias, shape)
    return out


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x^2) + eps)`` over the trailing ``normalized_shape`` dimensions, times
    ``weight``; ``eps=None`` uses the dtype's machine epsilon, as PyTorch does."""
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    nd = len(shape)
    if tuple(input.shape[input.ndim - nd :]) != shape:
        raise RuntimeError(
            f"rms_norm: Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(str(s) for s in shape)}], but got input of size "
            f"{_shape_str(input.shape)}"
        )
    if eps is None:
        eps = float(backend.np.finfo(input._data.dtype).eps)
    dims = tuple(range(input.ndim - nd, input.ndim))
    out = input * rsqrt(mean(input * input, dims, keepdim=True) + eps)
    if weight is not None:
        out = out * weight
    return out
