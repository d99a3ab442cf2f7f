"""Reductions: sums, means, extrema, norms, scans.

``dim`` may be an int, a tuple of ints or None (all dimensions); ``keepdim`` keeps reduced
dimensions with size 1. Backward rules broadcast the incoming gradient back over the reduced
dimensions (``_unreduce``).
"""

from __future__ import annotations

from chainrule import backend
from chainrule.ops.movement import broadcast_to, reshape
from chainrule.tensor import Node, Tensor, wrap_dim

__all__ = ["sum", "mean"]


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """``dim`` (None, int, or sequence) as a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    if isinstance(dim, int):
        return (wrap_dim(dim, ndim, op),)
    dims = tuple(sorted(wrap_dim(d, ndim, op) for d in dim))
    if len(set(dims)) != len(dims):
        raise RuntimeError(f"{op}: dim {list(dim)} appears multiple times in the list of dims")
    return dims if dims else tuple(range(ndim))


def _keepdim_shape(shape: tuple, dims: tuple) -> tuple:
    return tuple(1 if i in dims else s for i, s in enumerate(shape))


def _unreduce(g: Tensor, in_shape: tuple, dims: tuple, keepdim: bool) -> Tensor:
    """Broadcast a reduced gradient back to the input's shape."""
    if not keepdim and dims:
        g = reshape(g, _keepdim_shape(in_shape, dims))
    return broadcast_to(g, in_shape)


class Sum(Node):
    __slots__ = ("dims", "keepdim", "in_shape")

    def forward(self, xp, a, dims=(), keepdim=False, dtype=None):
        self.dims, self.keepdim, self.in_shape = dims, keepdim, a.shape
        return xp.sum(a, axis=dims, keepdims=keepdim, dtype=dtype)

    def backward(self, g):
        return _unreduce(g, self.in_shape, self.dims, self.keepdim)


def sum(input, dim=None, keepdim: bool = False, *, dtype=None, axis=None):
    """Sum over ``dim`` (all dimensions when None). Integer and bool sums are int64."""
    if axis is not None:
        dim = axis
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
    if axis is not None:
        dim = axis
    if dtype is not None:
        from chainrule.ops.elementwise import cast

        input = cast(input, dtype)
    if input._data.dtype not in backend.FLOAT_NP_DTYPES:
        raise RuntimeError(
            f"mean(): could not infer output dtype. Input dtype must be either a floating point "
            f"or complex dtype. Got: {backend.from_np(input._data.dtype).name}"
        )
    dims = normalize_dims(dim, input._data.ndim, "mean")
    count = 1
    for d in dims:
        count *= input._data.shape[d]
    return sum(input, dims, keepdim) / count if count else sum(input, dims, keepdim) * float("nan")


# Tensor methods (bound in ops/__init__.py)
METHODS = {"sum": sum, "mean": mean}
