"""Reductions: sums, products, extrema, statistics, norms, softmax, scans and logical tests.

``dim`` may be an int, a tuple of ints or None (all dimensions); ``keepdim`` keeps reduced
dimensions with size 1; ``axis=`` is accepted as an alias of ``dim``. Backward rules broadcast
the incoming gradient back over the reduced dimensions (``_unreduce``) and multiply by the
local derivative:

* sum/mean: the gradient is spread unchanged (divided by the count for mean);
* prod: the product of all the *other* elements, from two exclusive cumulative products
  (exact with zeros, no division);
* max/min/amax/amin/median: the gradient goes to the selected element; reductions without an
  index (``x.max()``, ``amax``) split it evenly between tied elements, as PyTorch does;
* var/std, logsumexp, softmax, log_softmax, norms: their closed forms, written with chainrule
  ops so that second derivatives work.
"""

from __future__ import annotations

import builtins
import math
import warnings

from chainrule import backend
from chainrule.backend import array_module
from chainrule.ops.elementwise import (
    abs,
    cast,
    exp,
    maximum,
    minimum,
    sign,
    where,
)
from chainrule.ops.movement import broadcast_to, flip, reshape
from chainrule.tensor import Node, Tensor, wrap_dim

__all__ = [
    "sum",
    "mean",
    "prod",
    "max",
    "min",
    "amax",
    "amin",
    "argmax",
    "argmin",
    "median",
    "var",
    "std",
    "var_mean",
    "std_mean",
    "logsumexp",
    "softmax",
    "log_softmax",
    "norm",
    "cumsum",
    "cumprod",
    "all",
    "any",
    "count_nonzero",
]

_INF = math.inf
_IGNORE = {"all": "ignore"}  # inf/NaN results are values here, not errors

# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """``dim`` (None, int, or sequence) as a sorted tuple of non-negative axes.

    An empty tuple means every dimension, as in PyTorch. A 0-d tensor accepts ``dim`` 0 or -1
    and has no axis to reduce, so it gives ``()``.
    """
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        d = wrap_dim(dim, ndim, op)
        return (d,) if ndim else ()
    dims = tuple(sorted(wrap_dim(d, ndim, op) for d in dim))
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"{op}: dim {list(dim)} appears multiple times in the list of dims")
    if not ndim:
        return ()
    return dims if dims else tuple(range(ndim))


def _dim_arg(dim, axis):
    """PyTorch's ``dim``, or NumPy's ``axis`` as an alias."""
    if axis is not None:
        if dim is not None and dim != ():
            raise TypeError("pass either dim or axis, not both")
        return axis
    return dim


def _keepdim_shape(shape: tuple, dims: tuple) -> tuple:
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _reduced_shape(shape: tuple, dims: tuple, keepdim: bool) -> tuple:
    if keepdim:
        return _keepdim_shape(shape, dims)
    return tuple(s for i, s in enumerate(shape) if i not in dims)


def _unreduce(g: Tensor, in_shape: tuple, dims: tuple, keepdim: bool) -> Tensor:
    """Broadcast a reduced gradient back to the input's shape."""
    if not keepdim and dims:
        g = reshape(g, _keepdim_shape(in_shape, dims))
    return broadcast_to(g, in_shape)


def _count(shape: tuple, dims: tuple) -> int:
    n = 1
    for d in dims:
        n *= shape[d]
    return n


def _require_float(x: Tensor, op: str) -> None:
    if x._data.dtype not in backend.FLOAT_NP_DTYPES:
        raise RuntimeError(
            f"{op}: expected a floating point tensor as input, got "
            f"{backend.from_np(x._data.dtype).name} (shape {list(x._data.shape)})"
        )


def _to_float(x: Tensor) -> Tensor:
    """Integer and bool inputs are computed in the default float dtype, as PyTorch does."""
    if x._data.dtype in backend.FLOAT_NP_DTYPES:
        return x
    return cast(x, backend.get_default_dtype())


def _check_nonempty(x: Tensor, dims: tuple, op: str) -> None:
    """Reductions without an identity (max, min, argmax...) refuse empty reduced dimensions."""
    shape = x._data.shape
    for d in dims:
        if shape[d] == 0:
            raise IndexError(
                f"{op}(): Expected reduction dim {d} to have non-zero size (input shape "
                f"{list(shape)})."
            )


def _const(arr) -> Tensor:
    return Tensor._make(arr)


# ---------------------------------------------------------------------------------------------
# return types: tuples whose items also have names (PyTorch's ``torch.return_types``)
# ---------------------------------------------------------------------------------------------


class _NamedResult(tuple):
    """A tuple of results that can also be read by name (``out.values``, ``out.indices``)."""

    __slots__ = ()
    _fields: tuple = ()

    def __new__(cls, *values):
        return tuple.__new__(cls, values)

    def __repr__(self) -> str:
        items = ",\n".join(f"{name}={value!r}" for name, value in zip(self._fields, self))
        return f"chainrule.return_types.{type(self).__name__}(\n{items})"

    def __reduce__(self):
        return (type(self), tuple(self))


def return_type(name: str, fields: tuple) -> type:
    """A named result class like ``torch.return_types.<name>`` with the given field names."""

    def getter(i):
        return property(lambda self: tuple.__getitem__(self, i), doc=f"Item {i}.")

    body = {"__slots__": (), "_fields": tuple(fields), "__module__": "chainrule.return_types"}
    body.update({f: getter(i) for i, f in enumerate(fields)})
    return type(name, (_NamedResult,), body)


_MaxResult = return_type("max", ("values", "indices"))
_MinResult = return_type("min", ("values", "indices"))
_MedianResult = return_type("median", ("values", "indices"))


# ---------------------------------------------------------------------------------------------
# sum, mean, prod
# ---------------------------------------------------------------------------------------------


class Sum(Node):
    """Sum over ``dims``; the gradient is the incoming one broadcast back over them."""

    __slots__ = ("dims", "keepdim", "in_shape")

    def forward(self, xp, a, dims=(), keepdim=False, dtype=None):
        self.dims, self.keepdim, self.in_shape = dims, keepdim, a.shape
        return xp.sum(a, axis=dims, keepdims=keepdim, dtype=dtype)

    def backward(self, g):
        return _unreduce(g, self.in_shape, self.dims, self.keepdim)


def sum(input, dim=None, keepdim: bool = False, *, dtype=None, axis=None):
    """Sum over ``dim`` (all dimensions when None). Integer and bool sums are int64.

    >>> import chainrule as cr
    >>> cr.tensor([[1.0, 2.0], [3.0, 4.0]]).sum(dim=0)
    tensor([4., 6.])
    """
    dim = _dim_arg(dim, axis)
    dims = normalize_dims(dim, input._data.ndim, "sum")
    if dtype is not None:
        np_dtype = backend.as_dtype(dtype).np
    elif input._data.dtype.kind in "biu":
        np_dtype = backend.int64.np
    else:
        np_dtype = None
    return Sum.apply(input, dims=dims, keepdim=keepdim, dtype=np_dtype)


def sum_to(g: Tensor, shape: tuple, op: str = "backward") -> Tensor:
    """Sum ``g`` over the dimensions broadcasting added, so that it has ``shape``."""
    shape = tuple(shape)
    gshape = g._data.shape
    lead = len(gshape) - len(shape)
    if lead < 0:
        raise RuntimeError(
            f"{op}: gradient of shape {list(gshape)} cannot be summed to {list(shape)}"
        )
    dims = tuple(range(lead)) + tuple(
        lead + i for i, s in enumerate(shape) if s == 1 and gshape[lead + i] != 1
    )
    for i, s in enumerate(shape):
        if s != 1 and gshape[lead + i] != s:
            raise RuntimeError(
                f"{op}: gradient of shape {list(gshape)} does not broadcast to input shape "
                f"{list(shape)}"
            )
    out = Sum.apply(g, dims=dims, keepdim=True, dtype=None) if dims else g
    if out._data.shape != shape:
        out = reshape(out, shape)
    return out


def mean(input, dim=None, keepdim: bool = False, *, dtype=None, axis=None):
    """Arithmetic mean over ``dim``; floating-point inputs only, as in PyTorch."""
    dim = _dim_arg(dim, axis)
    if dtype is not None:
        input = cast(input, dtype)
    if input._data.dtype not in backend.FLOAT_NP_DTYPES:
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {backend.from_np(input._data.dtype).name}"
        )
    dims = normalize_dims(dim, input._data.ndim, "mean")
    count = _count(input._data.shape, dims)
    return sum(input, dims, keepdim) / count if count else sum(input, dims, keepdim) * float("nan")


class Prod(Node):
    """Product over one axis (or all elements when ``axis`` is None)."""

    __slots__ = ("axis", "keepdim")
    saves = (0,)

    def forward(self, xp, a, axis=None, keepdim=False, dtype=None):
        self.axis, self.keepdim = axis, keepdim
        return xp.prod(a, axis=axis, keepdims=keepdim, dtype=dtype)

    def backward(self, g, a):
        if self.axis is None:
            others = reshape(_prod_of_others(reshape(a, (-1,)), 0), a._data.shape)
            dims = tuple(range(a._data.ndim))
        else:
            others = _prod_of_others(a, self.axis)
            dims = (self.axis,)
        return _unreduce(g, a._data.shape, dims, self.keepdim) * others


def _prod_of_others(x: Tensor, axis: int) -> Tensor:
    """Along ``axis``, the product of every element except the one at each position.

    It is (product of the elements before) * (product of the elements after): two exclusive
    cumulative products. Unlike ``prod / x`` this is exact when some elements are zero and
    cannot overflow or underflow more than the products themselves.
    """
    before = cumprod(_shift(x, axis, 1.0), axis)
    after = _flip(cumprod(_shift(_flip(x, axis), axis, 1.0), axis), axis)
    return before * after


def prod(input, dim=None, keepdim: bool = False, *, dtype=None, axis=None):
    """Product of the elements (over one dimension ``dim`` when given).

    Integer and bool products are int64. The gradient is the product of the other elements,
    computed without division, so zeros (one or several) are handled exactly.

    >>> import chainrule as cr
    >>> x = cr.tensor([2.0, 0.0, 3.0], requires_grad=True)
    >>> x.prod().backward(); x.grad
    tensor([0., 6., 0.])
    """
    dim = _dim_arg(dim, axis)
    if dtype is not None:
        input = cast(input, dtype)
    np_dtype = backend.int64.np if input._data.dtype.kind in "biu" else None
    if dim is None:
        return Prod.apply(input, axis=None, keepdim=False, dtype=np_dtype)
    if not isinstance(dim, int):
        raise TypeError(f"prod(): argument 'dim' must be int, not {type(dim).__name__}")
    if input._data.ndim == 0:
        wrap_dim(dim, 0, "prod")
        return Prod.apply(input, axis=None, keepdim=False, dtype=np_dtype)
    d = wrap_dim(dim, input._data.ndim, "prod")
    return Prod.apply(input, axis=d, keepdim=keepdim, dtype=np_dtype)


# ---------------------------------------------------------------------------------------------
# extrema: max, min, amax, amin, argmax, argmin, median
# ---------------------------------------------------------------------------------------------


class Extremum(Node):
    """A value-selecting reduction without indices: amax/amin, and the full max/min/median.

    The gradient is split evenly between the elements equal to the result (PyTorch's rule for
    ties). Where the result is NaN, PyTorch sends the gradient to the NaN elements for the full
    reductions (``nan_hits``) and makes it NaN over the slice for amax/amin; so does this.
    """

    __slots__ = ("dims", "keepdim", "kind", "nan_hits")
    saves = (0,)
    save_output = True

    def forward(self, xp, a, dims=(), keepdim=False, kind="max", nan_hits=False):
        self.dims, self.keepdim, self.kind, self.nan_hits = dims, keepdim, kind, nan_hits
        if kind == "max":
            return xp.amax(a, axis=dims, keepdims=keepdim)
        if kind == "min":
            return xp.amin(a, axis=dims, keepdims=keepdim)
        return _median_value(xp, a)  # kind == "median": all dimensions, 0-d result

    def backward(self, g, a, out):
        share = _tie_share(a._data, out._data, self.dims, self.keepdim, self.nan_hits)
        return _unreduce(g, a._data.shape, self.dims, self.keepdim) * _const(share)


def _tie_share(a, out, dims: tuple, keepdim: bool, nan_hits: bool = False):
    """1/k at each of the k elements equal to the reduced value, 0 elsewhere (0/0 = NaN over
    a slice whose result is NaN, unless ``nan_hits`` counts its NaN elements as equal)."""
    xp = array_module(a)
    if not keepdim and dims:
        out = out.reshape(_keepdim_shape(a.shape, dims))
    hit = a == out
    if nan_hits and a.dtype.kind == "f" and bool(xp.isnan(out).any()):
        hit |= xp.isnan(a) & xp.isnan(out)
    hit = hit.astype(a.dtype)
    with backend.errstate(**_IGNORE):
        return hit / hit.sum(axis=dims, keepdims=True)


def _median_value(xp, a):
    flat = a.reshape(-1)
    if flat.size == 0:
        return xp.asarray(xp.nan, dtype=a.dtype)
    if a.dtype.kind == "f" and bool(xp.isnan(flat).any()):
        return xp.asarray(xp.nan, dtype=a.dtype)
    k = (flat.size - 1) // 2  # the lower of the two middle values, as PyTorch returns
    return xp.partition(flat, k)[k]


class Select(Node):
    """One element per slice along ``axis``, chosen by ``index`` (max/min/median with dim).

    The gradient is written back at the chosen positions (``Place``); the two are each
    other's adjoints, so derivatives of any order work.
    """

    __slots__ = ("index", "axis", "keepdim", "in_shape")

    def forward(self, xp, a, index=None, axis=0, keepdim=False):
        self.index, self.axis, self.keepdim, self.in_shape = index, axis, keepdim, a.shape
        out = xp.take_along_axis(a, index, axis)
        return out if keepdim else out.squeeze(axis)

    def backward(self, g):
        return Place.apply(
            g, index=self.index, axis=self.axis, keepdim=self.keepdim, shape=self.in_shape
        )


class Place(Node):
    """Zeros of ``shape`` with ``g`` written where ``index`` points along ``axis``."""

    __slots__ = ("index", "axis", "keepdim")

    def forward(self, xp, g, index=None, axis=0, keepdim=False, shape=()):
        self.index, self.axis, self.keepdim = index, axis, keepdim
        if not keepdim:
            g = xp.expand_dims(g, axis)
        positions = xp.arange(shape[axis]).reshape((-1,) + (1,) * (len(shape) - axis - 1))
        hit = positions == index
        return xp.where(hit, g, xp.zeros((), dtype=g.dtype))

    def backward(self, gg):
        return Select.apply(gg, index=self.index, axis=self.axis, keepdim=self.keepdim)


def _select_reduce(input: Tensor, dim, keepdim: bool, op: str, result_cls):
    """``(values, indices)`` along ``dim`` for max/min/median."""
    x = input
    if x._data.ndim == 0:
        wrap_dim(dim, 0, op)
        x = reshape(x, (1,))
        keepdim = False
    d = wrap_dim(dim, x._data.ndim, op)
    _check_nonempty(x, (d,), op)
    xp = array_module(x._data)
    a = x._data
    if op == "max":
        index = xp.expand_dims(xp.argmax(a, axis=d), d)
    elif op == "min":
        index = xp.expand_dims(xp.argmin(a, axis=d), d)
    else:  # median: the lower middle element of a stable sort; a NaN wins, as in PyTorch
        k = (a.shape[d] - 1) // 2
        index = xp.take(xp.argsort(a, axis=d, kind="stable"), [k], axis=d)
        if a.dtype.kind == "f":
            nan = xp.isnan(a)
            has_nan = nan.any(axis=d, keepdims=True)
            if bool(has_nan.any()):
                index = xp.where(has_nan, xp.expand_dims(xp.argmax(nan, axis=d), d), index)
    values = Select.apply(x, index=index, axis=d, keepdim=keepdim)
    indices = index if keepdim else index.squeeze(d)
    return result_cls(values, _const(indices.astype(backend.int64.np, copy=False)))


def _full_extremum(input: Tensor, kind: str, op: str) -> Tensor:
    if input._data.size == 0:
        raise RuntimeError(
            f"{op}(): Expected reduction dim to be specified for input.numel() == 0. Specify "
            "the reduction dim with the 'dim' argument."
        )
    dims = tuple(range(input._data.ndim))
    return Extremum.apply(input, dims=dims, keepdim=False, kind=kind, nan_hits=True)


def max(input, dim=None, keepdim: bool = False, *, axis=None):
    """The largest element; with ``dim``, ``(values, indices)`` along that dimension.

    ``max(a, b)`` with a tensor ``b`` is the elementwise :func:`maximum`. Without ``dim`` the
    gradient is split evenly between tied maxima; with ``dim`` it goes to the returned index.

    >>> import chainrule as cr
    >>> x = cr.tensor([[1.0, 5.0], [4.0, 2.0]])
    >>> x.max()
    tensor(5.)
    >>> x.max(dim=1).indices
    tensor([1, 0])
    """
    if isinstance(dim, Tensor):
        return maximum(input, dim)
    dim = _dim_arg(dim, axis)
    if dim is None:
        return _full_extremum(input, "max", "max")
    return _select_reduce(input, dim, keepdim, "max", _MaxResult)


def min(input, dim=None, keepdim: bool = False, *, axis=None):
    """The smallest element; with ``dim``, ``(values, indices)`` along that dimension.

    ``min(a, b)`` with a tensor ``b`` is the elementwise :func:`minimum`. Gradients follow
    :func:`max`.
    """
    if isinstance(dim, Tensor):
        return minimum(input, dim)
    dim = _dim_arg(dim, axis)
    if dim is None:
        return _full_extremum(input, "min", "min")
    return _select_reduce(input, dim, keepdim, "min", _MinResult)


def _amax_amin(input, dim, keepdim, kind):
    dims = normalize_dims(() if dim is None else dim, input._data.ndim, f"a{kind}")
    _check_nonempty(input, dims, f"a{kind}")
    if input._data.size == 0 and not dims:
        raise IndexError(f"a{kind}(): Expected reduction dim to be specified for an empty input")
    return Extremum.apply(input, dims=dims, keepdim=keepdim, kind=kind)


def amax(input, dim=(), keepdim: bool = False, *, axis=None):
    """Maximum over ``dim`` (int or tuple; all dimensions by default), values only.

    The gradient is split evenly between tied maxima.

    >>> import chainrule as cr
    >>> cr.tensor([[1.0, 5.0], [4.0, 2.0]]).amax(dim=0)
    tensor([4., 5.])
    """
    return _amax_amin(input, _dim_arg(dim, axis), keepdim, "max")


def amin(input, dim=(), keepdim: bool = False, *, axis=None):
    """Minimum over ``dim`` (int or tuple; all dimensions by default), values only."""
    return _amax_amin(input, _dim_arg(dim, axis), keepdim, "min")


def _arg_extremum(input, dim, keepdim, op):
    xp = array_module(input._data)
    a = input._data
    fn = xp.argmax if op == "argmax" else xp.argmin
    if dim is None:
        if a.size == 0:
            raise RuntimeError(
                f"{op}(): Expected reduction dim to be specified for input.numel() == 0."
            )
        out = xp.asarray(fn(a.reshape(-1)))
        if keepdim:
            out = out.reshape((1,) * a.ndim)
    else:
        if a.ndim == 0:
            wrap_dim(dim, 0, op)
            return _const(xp.zeros((), dtype=backend.int64.np))
        d = wrap_dim(dim, a.ndim, op)
        _check_nonempty(input, (d,), op)
        out = fn(a, axis=d, keepdims=keepdim)
    return _const(xp.asarray(out).astype(backend.int64.np, copy=False))


def argmax(input, dim=None, keepdim: bool = False, *, axis=None):
    """Index of the largest element (of the flattened tensor when ``dim`` is None)."""
    return _arg_extremum(input, _dim_arg(dim, axis), keepdim, "argmax")


def argmin(input, dim=None, keepdim: bool = False, *, axis=None):
    """Index of the smallest element (of the flattened tensor when ``dim`` is None)."""
    return _arg_extremum(input, _dim_arg(dim, axis), keepdim, "argmin")


def median(input, dim=None, keepdim: bool = False, *, axis=None):
    """The lower median; with ``dim``, ``(values, indices)`` along that dimension.

    Unlike ``numpy.median`` the two middle values of an even count are not averaged: the
    smaller one is returned, as in PyTorch. NaN is the median of any slice containing NaN.
    """
    dim = _dim_arg(dim, axis)
    if dim is None:
        dims = tuple(range(input._data.ndim))
        return Extremum.apply(input, dims=dims, keepdim=False, kind="median", nan_hits=True)
    return _select_reduce(input, dim, keepdim, "median", _MedianResult)


# ---------------------------------------------------------------------------------------------
# statistics: var, std
# ---------------------------------------------------------------------------------------------


def _var_args(input, dim, unbiased, correction, op):
    if isinstance(dim, bool):  # the old overload var(input, unbiased)
        dim, unbiased = None, dim
    if unbiased is not None and correction is not None:
        raise TypeError(f"{op}(): pass either unbiased or correction, not both")
    if correction is None:
        correction = 1 if unbiased is None or unbiased else 0
    _require_float(input, op)
    dims = normalize_dims(dim, input._data.ndim, op)
    dof = _count(input._data.shape, dims) - correction
    if dof <= 0:
        warnings.warn(
            f"{op}(): degrees of freedom is <= 0. Correction should be strictly less than the "
            "reduction factor (input numel divided by output numel).",
            UserWarning,
            stacklevel=3,
        )
    return dims, builtins.max(dof, 0)


class Var(Node):
    """Variance with ``correction`` (Bessel's correction is 1); a primitive for speed."""

    __slots__ = ("dims", "keepdim", "dof")
    saves = (0,)

    def forward(self, xp, a, dims=(), keepdim=False, dof=1):
        self.dims, self.keepdim, self.dof = dims, keepdim, dof
        with backend.errstate(**_IGNORE):
            centred = a - a.mean(axis=dims, keepdims=True) if a.size else a
            return (xp.sum(centred * centred, axis=dims, keepdims=keepdim) / dof).astype(
                a.dtype, copy=False
            )

    def backward(self, g, a):
        # d var / d x_i = 2 (x_i - mean) / dof
        centred = a - mean(a, self.dims, keepdim=True)
        scale = 2.0 / self.dof if self.dof else _INF
        return _unreduce(g, a._data.shape, self.dims, self.keepdim) * centred * scale


class Std(Node):
    """Standard deviation; the gradient is 0 where it is 0 (PyTorch's convention)."""

    __slots__ = ("dims", "keepdim", "dof")
    saves = (0,)
    save_output = True

    def forward(self, xp, a, dims=(), keepdim=False, dof=1):
        self.dims, self.keepdim, self.dof = dims, keepdim, dof
        with backend.errstate(**_IGNORE):
            centred = a - a.mean(axis=dims, keepdims=True) if a.size else a
            var = xp.sum(centred * centred, axis=dims, keepdims=keepdim) / dof
            return xp.sqrt(var).astype(a.dtype, copy=False)

    def backward(self, g, a, out):
        # d std / d x_i = (x_i - mean) / (dof * std); guarded so that std == 0 gives 0 (and no
        # NaN reaches second derivatives through the unused branch)
        zero = out == 0
        per_std = where(zero, 0.0, g / where(zero, 1.0, out))
        centred = a - mean(a, self.dims, keepdim=True)
        scale = 1.0 / self.dof if self.dof else _INF
        return _unreduce(per_std, a._data.shape, self.dims, self.keepdim) * centred * scale


def var(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None, axis=None):
    """Variance over ``dim`` divided by ``N - correction`` (``correction=1`` by default).

    ``unbiased=False`` is ``correction=0``.

    >>> import chainrule as cr
    >>> cr.tensor([1.0, 2.0, 3.0, 4.0]).var()
    tensor(1.6667)
    """
    dims, dof = _var_args(input, _dim_arg(dim, axis), unbiased, correction, "var")
    return Var.apply(input, dims=dims, keepdim=keepdim, dof=dof)


def std(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None, axis=None):
    """Standard deviation: the square root of :func:`var` (same arguments)."""
    dims, dof = _var_args(input, _dim_arg(dim, axis), unbiased, correction, "std")
    return Std.apply(input, dims=dims, keepdim=keepdim, dof=dof)


def var_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """``(var(input, ...), mean(input, ...))`` in one call."""
    out = var(input, dim, unbiased, keepdim, correction=correction)
    dims = normalize_dims(None if isinstance(dim, bool) else dim, input._data.ndim, "var_mean")
    return out, mean(input, dims, keepdim)


def std_mean(input, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
    """``(std(input, ...), mean(input, ...))`` in one call."""
    out = std(input, dim, unbiased, keepdim, correction=correction)
    dims = normalize_dims(None if isinstance(dim, bool) else dim, input._data.ndim, "std_mean")
    return out, mean(input, dims, keepdim)


# ---------------------------------------------------------------------------------------------
# logsumexp, softmax, log_softmax (primitives for numerical stability)
# ---------------------------------------------------------------------------------------------


class LogSumExp(Node):
    """``log(sum(exp(x)))`` computed as ``m + log(sum(exp(x - m)))`` with ``m = max(x)``.

    Subtracting the maximum keeps ``exp`` from overflowing; an infinite maximum is replaced by
    0 so that ``inf - inf`` never appears (all ``-inf`` gives ``-inf``, any ``+inf`` gives
    ``+inf``). The gradient is the softmax of ``x``.
    """

    __slots__ = ("dims", "keepdim")
    saves = (0,)

    def forward(self, xp, a, dims=(), keepdim=False):
        self.dims, self.keepdim = dims, keepdim
        with backend.errstate(**_IGNORE):
            if a.size:
                m = xp.amax(a, axis=dims, keepdims=True)
                m = xp.where(xp.isinf(m), xp.zeros((), dtype=a.dtype), m)
            else:
                m = xp.zeros(_keepdim_shape(a.shape, dims), dtype=a.dtype)
            out = xp.log(xp.sum(xp.exp(a - m), axis=dims, keepdims=True)) + m
        if not keepdim:
            out = out.reshape(_reduced_shape(a.shape, dims, False))
        return out.astype(a.dtype, copy=False)

    def backward(self, g, a):
        # the softmax over the reduced dimensions, from its own stable primitive: exp(a - out)
        # would compute inf - inf for infinite inputs
        return _unreduce(g, a._data.shape, self.dims, self.keepdim) * Softmax.apply(
            a, axis=self.dims
        )


def logsumexp(input, dim=None, keepdim: bool = False, *, axis=None):
    """``log(sum(exp(input), dim))``, without overflow for large inputs.

    >>> import chainrule as cr
    >>> cr.logsumexp(cr.tensor([1000.0, 1000.0], dtype=cr.float64), dim=0)
    tensor(1000.6931, dtype=chainrule.float64)
    """
    dim = _dim_arg(dim, axis)
    if dim is None:
        raise TypeError("logsumexp() missing 1 required positional argument: 'dim'")
    input = _to_float(input)
    dims = normalize_dims(dim, input._data.ndim, "logsumexp")
    return LogSumExp.apply(input, dims=dims, keepdim=keepdim)


def _softmax_dim(input: Tensor, dim, op: str) -> int | None:
    if dim is None:
        ndim = input._data.ndim
        dim = 0 if ndim in (0, 1, 3) else 1
        warnings.warn(
            f"Implicit dimension choice for {op} has been deprecated. Change the call to "
            "include dim=X as an argument.",
            UserWarning,
            stacklevel=3,
        )
    d = wrap_dim(dim, input._data.ndim, op)
    return d if input._data.ndim else None


def _softmax_input(input: Tensor, dtype, op: str) -> Tensor:
    if dtype is not None:
        input = cast(input, dtype)
    _require_float(input, op)
    return input


class Softmax(Node):
    """``exp(x - max) / sum(exp(x - max))``: never overflows; the gradient is
    ``y * (g - sum(g * y))``. ``axis`` is an int, a tuple (logsumexp's gradient) or None."""

    __slots__ = ("axis",)
    save_output = True

    def forward(self, xp, a, axis=None):
        self.axis = axis
        if a.size == 0:
            return a.copy()
        with backend.errstate(**_IGNORE):
            e = xp.exp(a - xp.amax(a, axis=axis, keepdims=True))
            e /= xp.sum(e, axis=axis, keepdims=True)
        return e

    def backward(self, g, out):
        axis = () if self.axis is None else self.axis
        return out * (g - sum(g * out, axis, keepdim=True))


class LogSoftmax(Node):
    """``x - max - log(sum(exp(x - max)))``; the gradient is ``g - softmax * sum(g)``."""

    __slots__ = ("axis",)
    save_output = True

    def forward(self, xp, a, axis=None):
        self.axis = axis
        if a.size == 0:
            return a.copy()
        with backend.errstate(**_IGNORE):
            shifted = a - xp.amax(a, axis=axis, keepdims=True)
            return shifted - xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))

    def backward(self, g, out):
        axis = () if self.axis is None else self.axis
        return g - exp(out) * sum(g, axis, keepdim=True)


def softmax(input, dim=None, dtype=None):
    """``exp(input)`` normalised to sum to 1 along ``dim``; stable for any finite logits.

    ``dtype`` converts the input first (e.g. to compute a float16 softmax in float32).

    >>> import chainrule as cr
    >>> cr.softmax(cr.tensor([0.0, 1e4]), dim=0)
    tensor([0., 1.])
    """
    input = _softmax_input(input, dtype, "softmax")
    return Softmax.apply(input, axis=_softmax_dim(input, dim, "softmax"))


def log_softmax(input, dim=None, dtype=None):
    """``log(softmax(input, dim))`` computed directly, finite for any finite logits."""
    input = _softmax_input(input, dtype, "log_softmax")
    return LogSoftmax.apply(input, axis=_softmax_dim(input, dim, "log_softmax"))


# ---------------------------------------------------------------------------------------------
# norms
# ---------------------------------------------------------------------------------------------


class VectorNorm(Node):
    """``(sum |x|^p)^(1/p)`` over ``dims``; ``p`` may be 0, ±inf or any real number.

    A primitive so that the gradient can be defined where the norm is 0 (it is 0 there, as
    in PyTorch) and so that ``|x|^(p-2)`` is never evaluated at 0.
    """

    __slots__ = ("ord", "dims", "keepdim")
    saves = (0,)
    save_output = True

    def forward(self, xp, a, ord=2.0, dims=(), keepdim=False):
        self.ord, self.dims, self.keepdim = ord, dims, keepdim
        with backend.errstate(**_IGNORE):
            if ord == 2:
                out = xp.sqrt(xp.sum(a * a, axis=dims, keepdims=keepdim))
            elif ord == 1:
                out = xp.sum(xp.abs(a), axis=dims, keepdims=keepdim)
            elif ord == _INF:
                out = xp.amax(xp.abs(a), axis=dims, keepdims=keepdim)
            elif ord == -_INF:
                out = xp.amin(xp.abs(a), axis=dims, keepdims=keepdim)
            elif ord == 0:
                out = xp.sum(a != 0, axis=dims, keepdims=keepdim)
            else:
                out = xp.sum(xp.abs(a) ** ord, axis=dims, keepdims=keepdim) ** (1.0 / ord)
        return xp.asarray(out).astype(a.dtype, copy=False)

    def backward(self, g, a, out):
        p, dims, keepdim = self.ord, self.dims, self.keepdim
        shape = a._data.shape
        if p == 0:
            return a * 0.0
        if p == 1:
            return _unreduce(g, shape, dims, keepdim) * sign(a)
        if p in (_INF, -_INF):
            share = _tie_share(array_module(a._data).abs(a._data), out._data, dims, keepdim)
            return _unreduce(g, shape, dims, keepdim) * sign(a) * _const(share)
        zero = out == 0
        safe_out = where(zero, 1.0, out)
        if p == 2:
            scale = where(zero, 0.0, g / safe_out)
            return _unreduce(scale, shape, dims, keepdim) * a
        # d/dx_i = sign(x_i) |x_i|^(p-1) / norm^(p-1); zero where x_i or the norm is zero
        scale = where(zero, 0.0, g / safe_out ** (p - 1))
        a_zero = a == 0
        abs_safe = where(a_zero, 1.0, abs(a))
        local = where(a_zero, 0.0, sign(a) * abs_safe ** (p - 1))
        return _unreduce(scale, shape, dims, keepdim) * local


def _as_ord(ord) -> float:
    if isinstance(ord, str):
        raise RuntimeError(f"linalg.vector_norm: ord must be a number, got {ord!r}")
    return float(ord)


def vector_norm(x, ord=2, dim=None, keepdim: bool = False, *, dtype=None):
    """The vector ``ord``-norm over ``dim`` (every element when None); ``linalg.vector_norm``.

    >>> import chainrule as cr
    >>> cr.linalg.vector_norm(cr.tensor([3.0, -4.0]))
    tensor(5.)
    """
    if dtype is not None:
        x = cast(x, dtype)
    _require_float(x, "linalg.vector_norm")
    p = _as_ord(ord)
    dims = normalize_dims(dim, x._data.ndim, "linalg.vector_norm")
    if p in (_INF, -_INF) and x._data.size == 0:
        raise RuntimeError(
            f"linalg.vector_norm: cannot compute the {ord} norm on an empty tensor because the "
            "operation does not have an identity"
        )
    return VectorNorm.apply(x, ord=p, dims=dims, keepdim=keepdim)


def norm(input, p="fro", dim=None, keepdim: bool = False, dtype=None):
    """Vector or matrix norm (PyTorch's ``torch.norm``).

    ``p`` is ``'fro'`` (the 2-norm of the elements over ``dim``), ``'nuc'`` (nuclear norm of
    the matrices in the last two dimensions or in ``dim``) or a number (the vector p-norm over
    ``dim``, every element when None). The gradient of the 2-norm is 0 at 0.

    >>> import chainrule as cr
    >>> cr.norm(cr.tensor([[3.0, 4.0], [0.0, 0.0]]), dim=1)
    tensor([5., 0.])
    """
    if p == "nuc":
        # matrix norms live with the rest of linear algebra, which imports this module
        from chainrule.ops.linalg import matrix_norm

        return matrix_norm(input, "nuc", (-2, -1) if dim is None else dim, keepdim, dtype=dtype)
    if p == "fro" or p is None:
        p = 2
    elif isinstance(p, str):
        raise RuntimeError(f"norm(): unsupported p {p!r}; use a number, 'fro' or 'nuc'")
    return vector_norm(input, p, dim, keepdim, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# scans: cumsum, cumprod
# ---------------------------------------------------------------------------------------------


class Cumsum(Node):
    """Running sum along ``axis`` (from the end when ``reverse``); the gradient is the running
    sum in the other direction."""

    __slots__ = ("axis", "reverse")

    def forward(self, xp, a, axis=0, reverse=False, dtype=None):
        self.axis, self.reverse = axis, reverse
        if reverse:  # copied: a negative-stride view is awkward for other libraries
            return xp.flip(xp.cumsum(xp.flip(a, axis), axis=axis, dtype=dtype), axis).copy()
        return xp.cumsum(a, axis=axis, dtype=dtype)

    def backward(self, g):
        return Cumsum.apply(g, axis=self.axis, reverse=not self.reverse)


class Cumprod(Node):
    """Running product along ``axis``."""

    __slots__ = ("axis",)
    saves = (0,)
    save_output = True

    def forward(self, xp, a, axis=0, dtype=None):
        self.axis = axis
        return xp.cumprod(a, axis=axis, dtype=dtype)

    def backward(self, g, x, y):
        return _cumprod_backward(g, x, y, self.axis)


def _cumprod_backward(g: Tensor, x: Tensor, y: Tensor, axis: int) -> Tensor:
    """d/dx_j of sum_i g_i y_i with y_i = x_0 ... x_i.

    It is ``sum_{i>=j} g_i prod_{k<=i, k!=j} x_k``. Without zeros that is
    ``(sum_{i>=j} g_i y_i) / x_j`` (a reversed cumsum). With zeros, division is impossible; the
    same sum factors into ``(x_0 ... x_{j-1}) * r_j`` with ``r_j = g_j + x_{j+1} r_{j+1}``, a
    linear recurrence (``Scan``) that never divides, so it is exact, and differentiable again
    at zeros.
    """
    if not bool((x._data == 0).any()):
        return _rcumsum(g * y, axis) / x
    exclusive = cumprod(_shift(x, axis, 1.0), axis)
    return exclusive * Scan.apply(g, x, axis=axis, reverse=True)


class Scan(Node):
    """The linear recurrences behind cumprod's gradient, along ``axis`` (length n):

    * forward: ``s_0 = h_0``, ``s_i = h_i + x_i s_{i-1}``;
    * reverse: ``r_{n-1} = h_{n-1}``, ``r_j = h_j + x_{j+1} r_{j+1}``.

    Both are linear in ``h`` and each is the other's adjoint in ``h``. In ``x``: the reverse
    scan's gradient is ``r_k * s'_{k-1}`` and the forward scan's ``s_{k-1} * r'_k``, where
    ``s'``/``r'`` is the other scan applied to the incoming gradient. A Python loop over the
    axis (vectorised over the other dimensions); only used when inputs contain zeros.
    """

    __slots__ = ("axis", "reverse")
    saves = (1,)
    save_output = True

    def forward(self, xp, h, x, axis=0, reverse=False):
        self.axis, self.reverse = axis, reverse
        out = xp.moveaxis(h.copy(), axis, 0)
        coef = xp.moveaxis(x, axis, 0)
        n = out.shape[0]
        if reverse:
            for j in range(n - 2, -1, -1):
                out[j] += coef[j + 1] * out[j + 1]
        else:
            for i in range(1, n):
                out[i] += coef[i] * out[i - 1]
        return xp.ascontiguousarray(xp.moveaxis(out, 0, axis))

    def backward(self, u, x, out):
        other = Scan.apply(u, x, axis=self.axis, reverse=not self.reverse)
        gx = None
        if self.edges[1]:
            if self.reverse:
                gx = out * Shift.apply(other, axis=self.axis, step=1, fill=0.0)
            else:
                gx = Shift.apply(out, axis=self.axis, step=1, fill=0.0) * other
        return other, gx


def _rcumsum(x: Tensor, axis: int) -> Tensor:
    return Cumsum.apply(x, axis=axis, reverse=True, dtype=None)


class Shift(Node):
    """Move elements one step towards the end of ``axis``, filling the first slot with
    ``fill`` (the exclusive part of an exclusive scan). Its adjoint moves them back."""

    __slots__ = ("axis", "step")

    def forward(self, xp, a, axis=0, step=1, fill=0.0):
        self.axis, self.step = axis, step
        out = xp.empty_like(a)
        n = a.shape[axis]
        if n == 0:
            return out
        lead = (slice(None),) * axis
        if step == 1:
            out[lead + (slice(1, None),)] = a[lead + (slice(0, n - 1),)]
            out[lead + (0,)] = fill
        else:
            out[lead + (slice(0, n - 1),)] = a[lead + (slice(1, None),)]
            out[lead + (n - 1,)] = fill
        return out

    def backward(self, g):
        return Shift.apply(g, axis=self.axis, step=-self.step, fill=0.0)


def _shift(x: Tensor, axis: int, fill: float) -> Tensor:
    return Shift.apply(x, axis=axis, step=1, fill=fill)


def _flip(x: Tensor, axis: int) -> Tensor:
    return flip(x, axis)


def _scan_args(input, dim, dtype, op):
    if dim is None:
        raise TypeError(f"{op}() missing 1 required positional argument: 'dim'")
    if dtype is not None:
        input = cast(input, dtype)
    np_dtype = backend.int64.np if input._data.dtype.kind in "biu" else None
    if input._data.ndim == 0:
        wrap_dim(dim, 0, op)
        return reshape(input, (1,)), 0, np_dtype, True
    return input, wrap_dim(dim, input._data.ndim, op), np_dtype, False


def cumsum(input, dim=None, *, dtype=None, axis=None):
    """Running sum along ``dim``; integer and bool inputs give int64.

    >>> import chainrule as cr
    >>> cr.cumsum(cr.tensor([1.0, 2.0, 3.0]), dim=0)
    tensor([1., 3., 6.])
    """
    dim = _dim_arg(dim, axis)
    x, d, np_dtype, scalar = _scan_args(input, dim, dtype, "cumsum")
    out = Cumsum.apply(x, axis=d, reverse=False, dtype=np_dtype)
    return reshape(out, ()) if scalar else out


def cumprod(input, dim=None, *, dtype=None, axis=None):
    """Running product along ``dim``; the gradient is exact when elements are zero."""
    dim = _dim_arg(dim, axis)
    x, d, np_dtype, scalar = _scan_args(input, dim, dtype, "cumprod")
    out = Cumprod.apply(x, axis=d, dtype=np_dtype)
    return reshape(out, ()) if scalar else out


# ---------------------------------------------------------------------------------------------
# logical reductions (not differentiable)
# ---------------------------------------------------------------------------------------------


def _logical(input, dim, keepdim, op):
    xp = array_module(input._data)
    dims = normalize_dims(dim, input._data.ndim, op)
    fn = xp.all if op == "all" else xp.any
    out = xp.asarray(fn(input._data, axis=dims, keepdims=keepdim))
    if input._data.dtype == backend.uint8.np:  # PyTorch keeps uint8 for uint8 inputs
        out = out.astype(backend.uint8.np)
    return _const(out)


def all(input, dim=None, keepdim: bool = False, *, axis=None):
    """True where every element along ``dim`` is nonzero (a bool tensor)."""
    return _logical(input, _dim_arg(dim, axis), keepdim, "all")


def any(input, dim=None, keepdim: bool = False, *, axis=None):
    """True where some element along ``dim`` is nonzero (a bool tensor)."""
    return _logical(input, _dim_arg(dim, axis), keepdim, "any")


def count_nonzero(input, dim=None, *, axis=None):
    """The number of nonzero elements over ``dim`` (int64)."""
    xp = array_module(input._data)
    dims = normalize_dims(_dim_arg(dim, axis), input._data.ndim, "count_nonzero")
    out = xp.asarray(xp.sum(input._data != 0, axis=dims))
    return _const(out.astype(backend.int64.np, copy=False))


# Tensor methods (bound in ops/__init__.py)
METHODS = {
    "sum": sum,
    "mean": mean,
    "prod": prod,
    "max": max,
    "min": min,
    "amax": amax,
    "amin": amin,
    "argmax": argmax,
    "argmin": argmin,
    "median": median,
    "var": var,
    "std": std,
    "logsumexp": logsumexp,
    "softmax": softmax,
    "log_softmax": log_softmax,
    "norm": norm,
    "cumsum": cumsum,
    "cumprod": cumprod,
    "all": all,
    "any": any,
    "count_nonzero": count_nonzero,
}
