"""Every tensor op, and the ``Tensor`` methods and operators that call them.

The primitives live in family files (``elementwise``, ``reduce``, ``movement``, ``indexing``,
``linalg``, ``nn``); ``creation`` builds new tensors. This module gathers the public functions
(``chainrule.exp`` is ``ops.exp``) and binds the method forms (``x.exp()``, ``x + y``).
"""

from __future__ import annotations

from chainrule import backend
from chainrule.ops import (
    creation,
    elementwise,
    indexing,
    linalg,
    movement,
    nn_kernels,
    reduce,
    sequence_kernels,
)
from chainrule.ops.creation import *  # noqa: F401,F403
from chainrule.ops.elementwise import *  # noqa: F401,F403
from chainrule.ops.indexing import *  # noqa: F401,F403
from chainrule.ops.linalg import *  # noqa: F401,F403
from chainrule.ops.movement import *  # noqa: F401,F403
from chainrule.ops.nn_kernels import *  # noqa: F401,F403
from chainrule.ops.reduce import *  # noqa: F401,F403
from chainrule.ops.sequence_kernels import *  # noqa: F401,F403
from chainrule.tensor import Tensor

# Families of primitives. Each lists its public ops in ``__all__`` (the op table must have a
# row for every one) and its Tensor methods in ``METHODS`` (bound below).
FAMILIES = (elementwise, reduce, movement, indexing, linalg, nn_kernels, sequence_kernels)

__all__ = [name for module in (creation, *FAMILIES) for name in module.__all__]


def _swap(fn):
    """``fn(other, self)``: the reflected operator (``2 - x``)."""

    def reflected(self, other):
        return fn(other, self)

    reflected.__name__ = f"r{fn.__name__}"
    return reflected


def _inplace_method(fn, name):
    def method(self, *args, **kwargs):
        return elementwise.inplace(self, lambda t, *a: fn(t, *a, **kwargs), name, *args)

    method.__name__ = name
    method.__doc__ = f"In-place :func:`{fn.__name__}`; returns ``self``."
    return method


def _to(self, *args, **kwargs):
    """Convert dtype and/or device: ``x.to(chainrule.float64)``, ``x.to('cuda')``, ``x.to(y)``."""
    dtype = kwargs.pop("dtype", None)
    device = kwargs.pop("device", None)
    copy = kwargs.pop("copy", False)
    for a in args:
        if isinstance(a, Tensor):
            dtype, device = a.dtype, a.device.type
        elif isinstance(a, (backend.dtype,)) or (isinstance(a, str) and a in backend._BY_NAME):
            dtype = a
        elif a is not None:
            device = str(a)
    out = self
    if dtype is not None:
        out = elementwise.cast(out, dtype)
    if device is not None and backend.device_of(out._data) != str(device).split(":")[0]:
        out = ToDevice.apply(out, device=str(device))
    if copy and out is self:
        out = self.clone()
    return out


class ToDevice(elementwise.Node):
    """Move between CPU and GPU; the gradient moves back."""

    __slots__ = ("source",)

    def forward(self, xp, a, device="cpu"):
        self.source = backend.device_of(a)
        return backend.to_device(a, device)

    def backward(self, g):
        return ToDevice.apply(g, device=self.source)


def _dtype_method(dtype):
    def method(self):
        return elementwise.cast(self, dtype)

    method.__doc__ = f"``self.to({dtype!r})``."
    return method


def _type_as(self, other):
    """``self`` converted to ``other``'s dtype."""
    return elementwise.cast(self, other.dtype)


def _zero_(self):
    """Fill with zeros in place."""
    self._data[...] = 0
    elementwise.bump_version(self)
    return self


def _fill_(self, value):
    """Fill with ``value`` in place."""
    if isinstance(value, Tensor):
        return elementwise.inplace(self, lambda t, v: t * 0 + v, "fill_", value)
    self._data[...] = value
    elementwise.bump_version(self)
    return self


def _copy_(self, src, non_blocking=False):
    """Copy ``src`` (broadcast) into this tensor in place (differentiable)."""
    if not isinstance(src, Tensor):
        src = Tensor(src)
    src = elementwise.cast(src, self.dtype)
    return elementwise.inplace(self, lambda t, s: t * 0 + s, "copy_", src)


_METHODS = {
    # arithmetic and math
    "add": elementwise.add,
    "sub": elementwise.sub,
    "subtract": elementwise.sub,
    "mul": elementwise.mul,
    "multiply": elementwise.mul,
    "div": elementwise.div,
    "divide": elementwise.div,
    "true_divide": elementwise.div,
    "pow": elementwise.pow,
    "float_power": elementwise.float_power,
    "remainder": elementwise.remainder,
    "fmod": elementwise.fmod,
    "floor_divide": elementwise.floor_divide,
    "neg": elementwise.neg,
    "negative": elementwise.neg,
    "abs": elementwise.abs,
    "absolute": elementwise.abs,
    "exp": elementwise.exp,
    "expm1": elementwise.expm1,
    "log": elementwise.log,
    "log1p": elementwise.log1p,
    "log2": elementwise.log2,
    "log10": elementwise.log10,
    "sqrt": elementwise.sqrt,
    "rsqrt": elementwise.rsqrt,
    "square": elementwise.square,
    "sign": elementwise.sign,
    "sin": elementwise.sin,
    "cos": elementwise.cos,
    "tan": elementwise.tan,
    "atan": elementwise.atan,
    "arctan": elementwise.atan,
    "tanh": elementwise.tanh,
    "sigmoid": elementwise.sigmoid,
    "relu": elementwise.relu,
    "clamp": elementwise.clamp,
    "clip": elementwise.clamp,
    "clamp_min": elementwise.clamp_min,
    "clamp_max": elementwise.clamp_max,
    "maximum": elementwise.maximum,
    "minimum": elementwise.minimum,
    "where": lambda self, condition, other: elementwise.where(condition, self, other),
    "reciprocal": elementwise.reciprocal,
    "floor": elementwise.floor,
    "ceil": elementwise.ceil,
    "round": elementwise.round,
    "trunc": elementwise.trunc,
    "erf": elementwise.erf,
    "atan2": elementwise.atan2,
    "arctan2": elementwise.atan2,
    "lerp": elementwise.lerp,
    "addcmul": elementwise.addcmul,
    "addcdiv": elementwise.addcdiv,
    "eq": elementwise.eq,
    "ne": elementwise.ne,
    "lt": elementwise.lt,
    "le": elementwise.le,
    "gt": elementwise.gt,
    "ge": elementwise.ge,
    "logical_and": elementwise.logical_and,
    "logical_or": elementwise.logical_or,
    "logical_not": elementwise.logical_not,
    "logical_xor": elementwise.logical_xor,
    "isnan": elementwise.isnan,
    "isinf": elementwise.isinf,
    "isfinite": elementwise.isfinite,
    "equal": elementwise.equal,
    "allclose": elementwise.allclose,
    "isclose": elementwise.isclose,
    # reductions
    "sum": reduce.sum,
    "mean": reduce.mean,
    # shape
    "reshape": movement.reshape,
    "view": movement.view,
    "expand": movement.expand,
    "expand_as": movement.expand_as,
    "broadcast_to": movement.broadcast_to,
    "permute": movement.permute,
    "transpose": movement.transpose,
    "swapaxes": movement.transpose,
    "swapdims": movement.transpose,
    "t": movement.t,
    # linear algebra
    "matmul": linalg.matmul,
    "mm": linalg.mm,
    "bmm": linalg.bmm,
    # conversion
    "to": _to,
    "type_as": _type_as,
    "float": _dtype_method(backend.float32),
    "double": _dtype_method(backend.float64),
    "half": _dtype_method(backend.float16),
    "bfloat16": _dtype_method(backend.bfloat16),
    "long": _dtype_method(backend.int64),
    "int": _dtype_method(backend.int32),
    "bool": _dtype_method(backend.bool_),
    "zero_": _zero_,
    "fill_": _fill_,
    "copy_": _copy_,
}

_OPERATORS = {
    "__add__": elementwise.add,
    "__radd__": _swap(elementwise.add),
    "__sub__": elementwise.sub,
    "__rsub__": _swap(elementwise.sub),
    "__mul__": elementwise.mul,
    "__rmul__": _swap(elementwise.mul),
    "__truediv__": elementwise.div,
    "__rtruediv__": _swap(elementwise.div),
    "__floordiv__": elementwise.floor_divide,
    "__rfloordiv__": _swap(elementwise.floor_divide),
    "__mod__": elementwise.remainder,
    "__rmod__": _swap(elementwise.remainder),
    "__pow__": elementwise.pow,
    "__rpow__": _swap(elementwise.pow),
    "__matmul__": linalg.matmul,
    "__rmatmul__": _swap(linalg.matmul),
    "__neg__": elementwise.neg,
    "__pos__": lambda self: self,
    "__abs__": elementwise.abs,
    "__eq__": elementwise.eq,
    "__ne__": elementwise.ne,
    "__lt__": elementwise.lt,
    "__le__": elementwise.le,
    "__gt__": elementwise.gt,
    "__ge__": elementwise.ge,
    "__and__": elementwise.bitwise_and,
    "__rand__": _swap(elementwise.bitwise_and),
    "__or__": elementwise.bitwise_or,
    "__ror__": _swap(elementwise.bitwise_or),
    "__xor__": elementwise.bitwise_xor,
    "__rxor__": _swap(elementwise.bitwise_xor),
    "__invert__": elementwise.bitwise_not,
}

# In-place forms (``x.add_(y)``, ``x += y``) go through ``elementwise.inplace``.
_INPLACE = {
    "add_": elementwise.add,
    "sub_": elementwise.sub,
    "mul_": elementwise.mul,
    "div_": elementwise.div,
    "pow_": elementwise.pow,
    "clamp_": elementwise.clamp,
    "clip_": elementwise.clamp,
    "neg_": elementwise.neg,
    "exp_": elementwise.exp,
    "log_": elementwise.log,
    "sqrt_": elementwise.sqrt,
    "tanh_": elementwise.tanh,
    "sigmoid_": elementwise.sigmoid,
    "relu_": elementwise.relu,
    "abs_": elementwise.abs,
    "lerp_": elementwise.lerp,
    "addcmul_": elementwise.addcmul,
    "addcdiv_": elementwise.addcdiv,
    "floor_": elementwise.floor,
    "ceil_": elementwise.ceil,
    "round_": elementwise.round,
    "reciprocal_": elementwise.reciprocal,
    "square_": elementwise.square,
    "remainder_": elementwise.remainder,
    "__iadd__": elementwise.add,
    "__isub__": elementwise.sub,
    "__imul__": elementwise.mul,
    "__itruediv__": elementwise.div,
    "__ipow__": elementwise.pow,
}


def bind(methods: dict) -> None:
    """Attach ``name -> function`` pairs to ``Tensor`` (family modules call this too)."""
    for name, fn in methods.items():
        setattr(Tensor, name, fn)


bind(_METHODS)
for _family in FAMILIES[1:]:
    bind(_family.METHODS)
bind(_OPERATORS)
bind({name: _inplace_method(fn, name) for name, fn in _INPLACE.items()})
Tensor.T = property(
    lambda self: movement.permute(self, *reversed(range(self.ndim))), doc="All dimensions reversed."
)
Tensor.mT = property(
    lambda self: movement.transpose(self, -2, -1),
    doc="The last two dimensions swapped (batched matrix transpose).",
)
