"""Creating tensors: from data, filled, ranges and random draws.

Random draws come from chainrule's own generator (``manual_seed`` makes them reproducible).
"""

from __future__ import annotations

import math

from chainrule import backend
from chainrule.backend import default_generator
from chainrule.tensor import Tensor

__all__ = [
    "tensor",
    "as_tensor",
    "from_numpy",
    "zeros",
    "ones",
    "empty",
    "full",
    "zeros_like",
    "ones_like",
    "empty_like",
    "full_like",
    "arange",
    "linspace",
    "logspace",
    "eye",
    "manual_seed",
    "seed",
    "initial_seed",
    "get_rng_state",
    "set_rng_state",
    "rand",
    "randn",
    "randint",
    "randperm",
    "rand_like",
    "randn_like",
    "randint_like",
    "normal",
    "bernoulli",
    "multinomial",
]


def _shape(size) -> tuple:
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = size[0]
    return tuple(int(s) for s in size)


def _dtype(dtype, fallback=None):
    if dtype is None:
        return fallback or backend.get_default_dtype()
    return backend.as_dtype(dtype)


def _finish(arr, requires_grad: bool) -> Tensor:
    t = Tensor._make(arr)
    if requires_grad:
        t.requires_grad_(True)
    return t


def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data`` (lists, numbers, arrays or tensors).

    >>> import chainrule as cr
    >>> cr.tensor([[1, 2], [3, 4]]).dtype, cr.tensor([1.5]).dtype
    (chainrule.int64, chainrule.float32)
    """
    if isinstance(data, Tensor):
        data = data._data
    if isinstance(data, (list, tuple)) and any(isinstance(x, Tensor) for x in data):
        data = [x.tolist() if isinstance(x, Tensor) else x for x in data]
    arr = backend.asarray(data, dtype, device, copy=True)
    return _finish(arr, requires_grad)


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """A tensor sharing ``data``'s memory when possible (arrays, tensors)."""
    if isinstance(data, Tensor):
        if dtype is None or data.dtype is backend.as_dtype(dtype):
            return data if device is None else data.to(device)
        return data.to(dtype)
    return Tensor._make(backend.asarray(data, dtype, device))


def from_numpy(ndarray) -> Tensor:
    """A tensor sharing memory with a NumPy array."""
    if not backend.is_array(ndarray):
        raise TypeError(f"from_numpy: expected a NumPy array, got {type(ndarray).__name__}")
    backend.from_np(ndarray.dtype)  # raises for unsupported dtypes
    return Tensor._make(ndarray)


def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros."""
    xp = backend.namespace_for(device)
    return _finish(xp.zeros(_shape(size), dtype=_dtype(dtype).np), requires_grad)


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones."""
    xp = backend.namespace_for(device)
    return _finish(xp.ones(_shape(size), dtype=_dtype(dtype).np), requires_grad)


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """An uninitialised tensor (chainrule fills it with zeros)."""
    return zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)


def _fill_dtype(fill_value):
    if isinstance(fill_value, bool):
        return backend.bool_
    if isinstance(fill_value, int):
        return backend.int64
    return backend.get_default_dtype()


def full(size, fill_value, *, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A tensor filled with ``fill_value`` (dtype inferred from it, as in PyTorch)."""
    if isinstance(fill_value, Tensor):
        fill_value = fill_value.item()
    xp = backend.namespace_for(device)
    d = _dtype(dtype, _fill_dtype(fill_value))
    return _finish(xp.full(_shape((size,)), fill_value, dtype=d.np), requires_grad)


def _like(input, dtype):
    return backend.array_module(input._data), _dtype(dtype, input.dtype)


def zeros_like(input, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """Zeros with ``input``'s shape, dtype and device."""
    xp, d = _like(input, dtype)
    return _finish(xp.zeros(input._data.shape, dtype=d.np), requires_grad)


def ones_like(input, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """Ones with ``input``'s shape, dtype and device."""
    xp, d = _like(input, dtype)
    return _finish(xp.ones(input._data.shape, dtype=d.np), requires_grad)


def empty_like(input, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """Like :func:`zeros_like` (chainrule never hands out uninitialised memory)."""
    return zeros_like(input, dtype=dtype, requires_grad=requires_grad)


def full_like(input, fill_value, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``fill_value`` everywhere, with ``input``'s shape, dtype and device."""
    xp, d = _like(input, dtype)
    return _finish(xp.full(input._data.shape, fill_value, dtype=d.np), requires_grad)


def arange(start, end=None, step=1, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Values from ``start`` up to (not including) ``end`` in steps of ``step``."""
    if end is None:
        start, end = 0, start
    vals = [v.item() if isinstance(v, Tensor) else v for v in (start, end, step)]
    if step == 0:
        raise RuntimeError("arange: step must be nonzero")
    if dtype is None:
        is_float = any(isinstance(v, float) for v in vals)
        dtype = backend.get_default_dtype() if is_float else backend.int64
    d = backend.as_dtype(dtype)
    xp = backend.namespace_for(device)
    n = max(0, math.ceil((vals[1] - vals[0]) / vals[2]))
    if d.is_floating_point:  # start + i * step, as PyTorch computes it
        arr = (xp.arange(n, dtype=backend.float64.np) * vals[2] + vals[0]).astype(d.np)
    else:
        arr = xp.arange(vals[0], vals[1], vals[2]).astype(d.np)
    return _finish(arr, requires_grad)


def linspace(start, end, steps: int, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    xp = backend.namespace_for(device)
    d = _dtype(dtype)
    arr = xp.linspace(float(start), float(end), int(steps), dtype=backend.float64.np)
    return _finish(arr.astype(d.np), requires_grad)


def logspace(start, end, steps: int, base: float = 10.0, *, dtype=None, device=None) -> Tensor:
    """``base ** linspace(start, end, steps)``."""
    xp = backend.namespace_for(device)
    arr = base ** xp.linspace(float(start), float(end), int(steps), dtype=backend.float64.np)
    return Tensor._make(arr.astype(_dtype(dtype).np))


def eye(n: int, m: int | None = None, *, dtype=None, device=None, requires_grad=False) -> Tensor:
    """An identity matrix (``n`` × ``m``)."""
    xp = backend.namespace_for(device)
    return _finish(xp.eye(n, m, dtype=_dtype(dtype).np), requires_grad)


# ---- random ----------------------------------------------------------------------------------


def manual_seed(seed: int):
    """Seed chainrule's default random generator; returns it."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the default generator non-deterministically and return the seed."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed the default generator was last seeded with."""
    return default_generator.initial_seed()


def get_rng_state() -> dict:
    """The default generator's state (restore with :func:`set_rng_state`)."""
    return default_generator.get_state()


def set_rng_state(state: dict) -> None:
    """Restore the default generator's state."""
    default_generator.set_state(state)


def _gen(generator):
    return default_generator if generator is None else generator


def _place(arr, device):
    return backend.to_device(arr, device) if device is not None else arr


def rand(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Uniform samples from [0, 1)."""
    arr = _gen(generator).uniform(_shape(size), dtype_=_dtype(dtype))
    return _finish(_place(arr, device), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False) -> Tensor:
    """Standard normal samples."""
    arr = _gen(generator).normal(_shape(size), dtype_=_dtype(dtype))
    return _finish(_place(arr, device), requires_grad)


def randint(low, high=None, size=None, *, generator=None, dtype=None, device=None) -> Tensor:
    """Integers drawn uniformly from [low, high) (``randint(high, size)`` also works)."""
    if size is None:
        low, high, size = 0, low, high
    if high is None:
        raise TypeError("randint() missing the 'high' argument")
    arr = _gen(generator).integers(low, high, tuple(size))
    d = _dtype(dtype, backend.int64)
    return Tensor._make(_place(arr.astype(d.np), device))


def randperm(n: int, *, generator=None, dtype=None, device=None) -> Tensor:
    """A random permutation of ``0 .. n-1``."""
    arr = _gen(generator).permutation(n)
    return Tensor._make(_place(arr.astype(_dtype(dtype, backend.int64).np), device))


def rand_like(input, *, dtype=None, generator=None) -> Tensor:
    """Uniform samples shaped like ``input``."""
    return rand(
        *input.shape, generator=generator, dtype=dtype or input.dtype, device=input.device.type
    )


def randn_like(input, *, dtype=None, generator=None) -> Tensor:
    """Standard normal samples shaped like ``input``."""
    return randn(
        *input.shape, generator=generator, dtype=dtype or input.dtype, device=input.device.type
    )


def randint_like(input, low, high=None, *, dtype=None, generator=None) -> Tensor:
    """Random integers shaped like ``input``."""
    if high is None:
        low, high = 0, low
    return randint(
        low,
        high,
        tuple(input.shape),
        generator=generator,
        dtype=dtype or input.dtype,
        device=input.device.type,
    )


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None) -> Tensor:
    """Normal samples with the given mean and standard deviation."""
    if isinstance(mean, Tensor) or isinstance(std, Tensor):
        shape = (mean if isinstance(mean, Tensor) else std).shape
        return randn(*shape, generator=generator) * std + mean
    return randn(*tuple(size), generator=generator, dtype=dtype) * std + mean


def bernoulli(input, p=None, *, generator=None) -> Tensor:
    """0/1 samples with probability ``input`` (or ``p``) of a one."""
    probs = input._data if p is None else p
    draws = _gen(generator).uniform(tuple(input.shape), dtype_=backend.float64)
    xp = backend.array_module(input._data)
    return Tensor._make(xp.asarray(draws < backend.to_numpy(probs)).astype(input._data.dtype))


def multinomial(input, num_samples: int, replacement: bool = False, *, generator=None) -> Tensor:
    """Draw category indices with probabilities proportional to the rows of ``input``."""
    probs = backend.to_numpy(input._data).astype("float64")
    rows = probs.reshape(-1, probs.shape[-1])
    rng = _gen(generator)._rng
    out = []
    for row in rows:
        pr = row / row.sum()
        out.append(rng.choice(len(pr), size=num_samples, replace=replacement, p=pr))
    arr = backend.np.asarray(out, dtype="int64").reshape(*probs.shape[:-1], num_samples)
    return Tensor._make(arr)
