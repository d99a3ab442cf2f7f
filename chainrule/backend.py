"""The one module that talks to NumPy and CuPy.

Every array that chainrule computes with is a NumPy array on the CPU or a CuPy array on a GPU.
Ops receive the array namespace ``xp`` of their inputs and call ``xp.tanh`` and friends, so the
same op runs on both; the few places where NumPy and CuPy spell something differently (scatter
with accumulation, the error-state context) live here as small helpers.

This module also defines chainrule's dtypes (``chainrule.float32`` ...), the mapping to array
dtypes, PyTorch's type-promotion rules, and chainrule's own random generator.
"""

from __future__ import annotations

from typing import Any

import numpy

np = numpy  # the CPU namespace; ops reach it only through ``xp``

try:  # bfloat16 needs ml_dtypes (the ``bf16`` extra); everything else works without it
    import ml_dtypes as _ml_dtypes

    _BF16_NP = numpy.dtype(_ml_dtypes.bfloat16)
except ImportError:  # pragma: no cover - exercised only without ml_dtypes
    _ml_dtypes = None
    _BF16_NP = None

_cupy: Any = None


def _tune_allocator() -> None:
    """Keep freed array memory for reuse instead of returning it to the OS (Linux, glibc).

    Every op allocates its output. By default glibc serves blocks above 128 KiB with a fresh
    ``mmap`` and unmaps them on free, so each training step page-faults on every large
    array again (measured: a third of a small CNN's step). Raising the mmap and trim
    thresholds makes such blocks come from, and return to, the reusable heap.
    Set ``CHAINRULE_MALLOC_TUNING=0`` to leave the allocator alone.
    """
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("CHAINRULE_MALLOC_TUNING") == "0":
        return
    try:
        import ctypes

        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD: glibc's maximum, 32 MiB
        libc.mallopt(-1, 512 * 1024 * 1024)  # M_TRIM_THRESHOLD
    except (OSError, ValueError, AttributeError):  # pragma: no cover - no usable C library
        pass


_tune_allocator()


def _load_cupy():
    global _cupy
    if _cupy is None:
        try:
            import cupy
        except ImportError as exc:
            raise RuntimeError(
                "device 'cuda' needs CuPy: install chainrule with the 'cuda' extra "
                "(pip install 'chainrule[cuda]') on a machine with an NVIDIA GPU"
            ) from exc
        _cupy = cupy
    return _cupy


def array_module(array) -> Any:
    """Return the array namespace (numpy or cupy) that ``array`` belongs to."""
    if type(array) is numpy.ndarray or _cupy is None:
        return numpy
    return _cupy if isinstance(array, _cupy.ndarray) else numpy


def device_of(array) -> str:
    """``'cpu'`` for NumPy arrays, ``'cuda'`` for CuPy arrays."""
    return "cpu" if array_module(array) is numpy else "cuda"


def namespace_for(device: str | None) -> Any:
    """Array namespace for a device string (``None`` and ``'cpu'`` mean NumPy)."""
    if device is None:
        return numpy
    name = str(device).split(":")[0]
    if name == "cpu":
        return numpy
    if name == "cuda":
        return _load_cupy()
    raise ValueError(f"unknown device {device!r}: expected 'cpu' or 'cuda'")


def to_device(array, device: str | None):
    """Move ``array`` to ``device`` (a no-op when it is already there)."""
    xp = namespace_for(device)
    if array_module(array) is xp:
        return array
    if xp is numpy:
        return _cupy.asnumpy(array)
    return xp.asarray(array)


def to_numpy(array) -> numpy.ndarray:
    """A NumPy view (CPU) or copy (GPU) of ``array``."""
    if type(array) is numpy.ndarray:
        return array
    if _cupy is not None and isinstance(array, _cupy.ndarray):
        return _cupy.asnumpy(array)
    return numpy.asarray(array)


# ---------------------------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------------------------


class dtype:  # noqa: N801 - PyTorch spells its dtype class in lower case
    """A chainrule element type, e.g. ``chainrule.float32``.

    >>> import chainrule
    >>> chainrule.float32.is_floating_point, chainrule.float32.itemsize
    (True, 4)
    """

    __slots__ = ("name", "np", "is_floating_point", "itemsize", "_category")

    def __init__(self, name: str, np_dtype, category: int):
        self.name = name
        self.np = np_dtype
        self.is_floating_point = category == 2
        self.itemsize = np_dtype.itemsize if np_dtype is not None else 2
        self._category = category  # 0 bool, 1 integer, 2 floating

    def __repr__(self) -> str:
        return f"chainrule.{self.name}"

    def __reduce__(self):
        return self.name


bool_ = dtype("bool", numpy.dtype(numpy.bool_), 0)
uint8 = dtype("uint8", numpy.dtype(numpy.uint8), 1)
int8 = dtype("int8", numpy.dtype(numpy.int8), 1)
int16 = dtype("int16", numpy.dtype(numpy.int16), 1)
int32 = dtype("int32", numpy.dtype(numpy.int32), 1)
int64 = dtype("int64", numpy.dtype(numpy.int64), 1)
float16 = dtype("float16", numpy.dtype(numpy.float16), 2)
bfloat16 = dtype("bfloat16", _BF16_NP, 2)
float32 = dtype("float32", numpy.dtype(numpy.float32), 2)
float64 = dtype("float64", numpy.dtype(numpy.float64), 2)

ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, bfloat16, float32, float64)
_FROM_NP = {d.np: d for d in ALL_DTYPES if d.np is not None}
_BY_NAME = {d.name: d for d in ALL_DTYPES}
_BY_NAME.update({"float": float32, "double": float64, "half": float16, "long": int64, "int": int32})
FLOAT_NP_DTYPES = frozenset(d.np for d in ALL_DTYPES if d.is_floating_point and d.np is not None)


class _DefaultDtype:
    __slots__ = ("value",)

    def __init__(self):
        self.value = float32


default_dtype = _DefaultDtype()


def get_default_dtype() -> dtype:
    """The dtype Python floats become (float32 unless changed)."""
    return default_dtype.value


def set_default_dtype(d: dtype) -> None:
    """Set the dtype that Python floats and float creation functions use."""
    d = as_dtype(d)
    if not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    default_dtype.value = d


def from_np(np_dtype) -> dtype:
    """The chainrule dtype for an array dtype."""
    try:
        return _FROM_NP[np_dtype]
    except KeyError:
        d = numpy.dtype(np_dtype)
        if d in _FROM_NP:
            return _FROM_NP[d]
        raise TypeError(f"arrays of dtype {d} are not supported by chainrule") from None


def as_dtype(d) -> dtype:
    """Accept a chainrule dtype, a NumPy dtype/type or a name and return the chainrule dtype."""
    if type(d) is dtype:
        if d.np is None:
            raise RuntimeError(
                "bfloat16 needs the ml_dtypes package: pip install 'chainrule[bf16]'"
            )
        return d
    if isinstance(d, str):
        if d in _BY_NAME:
            return as_dtype(_BY_NAME[d])
        raise TypeError(f"unknown dtype name {d!r}")
    if d is float:
        return default_dtype.value
    if d is int:
        return int64
    if d is bool:
        return bool_
    return from_np(numpy.dtype(d))


def scalar_category(value) -> int:
    """0 for bool, 1 for int, 2 for float (the promotion category of a Python scalar)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return 1
    if isinstance(value, float):
        return 2
    raise TypeError(f"unsupported scalar type {type(value).__name__}")


def promote_types(a: dtype, b: dtype) -> dtype:
    """The smallest dtype both ``a`` and ``b`` convert to safely (PyTorch's table)."""
    if a is b:
        return a
    if a._category != b._category:
        return a if a._category > b._category else b
    if {a.name, b.name} == {"float16", "bfloat16"}:
        return float32
    if {a.name, b.name} == {"uint8", "int8"}:
        return int16
    if a is bool_:
        return b
    if b is bool_:
        return a
    return a if a.itemsize >= b.itemsize else b


def result_type(operands) -> dtype:
    """PyTorch's result type for an elementwise op over tensors and Python scalars.

    Tensors with dimensions decide first; zero-dimensional tensors count only when they are
    of a higher category (bool < integer < floating); Python scalars count only when they are
    of a higher category still, and then give the default dtype (float) or int64 (int).
    """
    dim_t = zero_t = None
    scalar_cat = -1
    for x in operands:
        d = getattr(x, "dtype", None)
        if d is None:
            scalar_cat = max(scalar_cat, scalar_category(x))
            continue
        if x.ndim:
            dim_t = d if dim_t is None else promote_types(dim_t, d)
        else:
            zero_t = d if zero_t is None else promote_types(zero_t, d)
    result = dim_t
    if zero_t is not None:
        if result is None or zero_t._category > result._category:
            result = zero_t
    if scalar_cat >= 0 and (result is None or scalar_cat > result._category):
        result = (bool_, int64, default_dtype.value)[scalar_cat]
    return result


# ---------------------------------------------------------------------------------------------
# helpers where NumPy and CuPy differ
# ---------------------------------------------------------------------------------------------


def add_at(xp, target, index, values) -> None:
    """``target[index] += values`` with repeated indices accumulating (unbuffered)."""
    if xp is numpy:
        if not _add_rows_at(target, index, values):
            numpy.add.at(target, index, values)
    else:  # pragma: no cover - GPU only
        import cupyx

        cupyx.scatter_add(target, index, values)


def _add_rows_at(target, index, values) -> bool:
    """The row case of :func:`add_at` (an embedding's or a row gather's backward), ~6x
    faster: ``numpy.add.at`` has a fast loop only for 1-D targets, so the rows are added
    through flat element indices into the target's flat view. Returns False when the call
    is not that case."""
    if not (
        isinstance(index, numpy.ndarray)
        and index.ndim == 1
        and index.dtype.kind in "iu"
        and target.ndim >= 2
        and target.flags.c_contiguous
        and values.shape == (index.shape[0], *target.shape[1:])
        and index.shape[0] > 0
    ):
        return False
    n = target.shape[0]
    index = numpy.where(index < 0, index + n, index)  # negative rows as add.at reads them
    if index.min() < 0 or index.max() >= n:
        return False  # let add.at raise its IndexError
    width = target.size // n
    flat = (index.astype(numpy.intp)[:, None] * width + numpy.arange(width)).reshape(-1)
    numpy.add.at(target.reshape(-1), flat, values.reshape(-1))
    return True


# ---------------------------------------------------------------------------------------------
# threads and memory on the CPU
# ---------------------------------------------------------------------------------------------

_threads_override: int | None = None
_threads_for_env: dict[str, int] = {}


def get_num_threads() -> int:
    """Threads chainrule uses on the CPU: the value given to :func:`set_num_threads`, else
    ``OMP_NUM_THREADS``, else the CPUs this process may run on (at most 8).

    >>> import chainrule as cr
    >>> cr.get_num_threads() >= 1
    True
    """
    if _threads_override is not None:
        return _threads_override
    import os

    env = os.environ.get("OMP_NUM_THREADS", "")
    n = _threads_for_env.get(env)  # asked at every optimiser step: worked out once per value
    if n is None:
        if env.isdigit() and int(env) > 0:
            n = min(int(env), 8)
        else:
            try:
                cpus = len(os.sched_getaffinity(0))
            except AttributeError:  # pragma: no cover - platforms without affinity
                cpus = os.cpu_count() or 1
            n = max(1, min(cpus, 8))
        _threads_for_env[env] = n
    return n


def set_num_threads(n: int) -> None:
    """Use ``n`` threads on the CPU: in chainrule's own parallel work (optimiser steps) and,
    where its thread switch can be found, in the BLAS library NumPy calls for matrix products.

    >>> import chainrule as cr
    >>> before = cr.get_num_threads()
    >>> cr.set_num_threads(1); cr.get_num_threads()
    1
    >>> cr.set_num_threads(before)
    """
    global _threads_override
    n = int(n)
    if n < 1:
        raise ValueError(f"set_num_threads: expected a positive number of threads, got {n}")
    _threads_override = n
    if _Blas.found():
        _Blas.set_fn(n)


class _Blas:
    """The thread switch of the OpenBLAS that NumPy was built with (Linux; absent elsewhere).

    NumPy's wheels bundle OpenBLAS under prefixed names (``scipy_openblas...64_``); other
    builds link a plain ``libopenblas``. The library is looked for among the ones this
    process has loaded.
    """

    get_fn: Any = None
    set_fn: Any = None
    searched = False

    @classmethod
    def found(cls) -> bool:
        if not cls.searched:
            cls.searched = True
            cls._search()
        return cls.set_fn is not None

    @classmethod
    def _search(cls) -> None:
        import ctypes

        try:
            with open("/proc/self/maps") as maps:
                paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
        except OSError:  # not Linux
            return
        names = [
            ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
            ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
            ("openblas_get_num_threads", "openblas_set_num_threads"),
        ]
        for path in sorted(p for p in paths if p.startswith("/")):
            try:
                lib = ctypes.CDLL(path)
            except OSError:  # pragma: no cover - a mapping that is not a loadable library
                continue
            for get_name, set_name in names:
                get_fn, set_fn = getattr(lib, get_name, None), getattr(lib, set_name, None)
                if get_fn is not None and set_fn is not None:
                    get_fn.restype, get_fn.argtypes = ctypes.c_int, []
                    set_fn.restype, set_fn.argtypes = None, [ctypes.c_int]
                    cls.get_fn, cls.set_fn = get_fn, set_fn
                    return


ALIGN = 64  # bytes: where the arrays of :func:`aligned_empty` start


def aligned_empty(xp, shape, dtype_):
    """An uninitialised array whose data starts on a 64-byte cache line.

    NumPy's allocator only guarantees 16 bytes: an array that starts mid-line makes every
    other 32-byte SIMD load straddle two lines, which costs several percent on long,
    memory-bound passes such as an optimiser's update.
    """
    if xp is not numpy:
        return xp.empty(shape, dtype=dtype_)
    dt = numpy.dtype(dtype_)
    count = shape if isinstance(shape, int) else int(numpy.prod(shape, dtype=numpy.int64))
    raw = numpy.empty(count * dt.itemsize + ALIGN, dtype=numpy.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start : start + count * dt.itemsize].view(dt).reshape(shape)


def errstate(**kwargs):
    """Silence or raise floating-point warnings for a block, on either backend."""
    return numpy.errstate(**kwargs)


def is_array(value) -> bool:
    """True for a NumPy or CuPy array."""
    if isinstance(value, numpy.ndarray):
        return True
    return _cupy is not None and isinstance(value, _cupy.ndarray)


def asarray(data, dtype_: dtype | None = None, device: str | None = None, copy: bool = False):
    """Turn nested lists, scalars or arrays into a backend array of ``dtype_``."""
    xp = namespace_for(device)
    if is_array(data):
        arr = to_device(data, device) if device is not None else data
        xp = array_module(arr)
    else:
        arr = numpy.asarray(data)
        if dtype_ is None:
            if arr.dtype.kind == "f":
                dtype_ = default_dtype.value
            elif arr.dtype.kind in "iu" and arr.dtype != numpy.uint8:
                dtype_ = int64
            elif arr.dtype.kind == "O":
                raise TypeError(f"cannot build a tensor from {type(data).__name__} data")
        if xp is not numpy:
            arr = xp.asarray(arr)
    if dtype_ is not None:
        target = as_dtype(dtype_).np
        if arr.dtype != target:
            return arr.astype(target)
    if copy:
        return arr.copy()
    return arr


# ---------------------------------------------------------------------------------------------
# random numbers
# ---------------------------------------------------------------------------------------------


class Generator:
    """A seedable source of random numbers, like ``torch.Generator``.

    chainrule draws every random number (initialisation, dropout, shuffling) from a generator
    of its own, so ``chainrule.manual_seed(0)`` makes a whole run reproducible.

    >>> g = Generator().manual_seed(3)
    >>> a = g.normal((2,)); b = Generator().manual_seed(3).normal((2,))
    >>> bool((a == b).all())
    True
    """

    __slots__ = ("_rng", "_seed")

    def __init__(self, device: str = "cpu"):
        self._seed = 67280421310721
        self._rng = numpy.random.Generator(numpy.random.PCG64(self._seed))

    def manual_seed(self, seed: int) -> Generator:
        """Reset the stream to the one ``seed`` defines; returns the generator."""
        self._seed = int(seed)
        self._rng = numpy.random.Generator(numpy.random.PCG64(self._seed))
        return self

    def seed(self) -> int:
        """Seed from the operating system's entropy and return the seed used."""
        s = int(numpy.random.SeedSequence().entropy % (2**63))
        self.manual_seed(s)
        return s

    def initial_seed(self) -> int:
        """The seed last given to :meth:`manual_seed`."""
        return self._seed

    def get_state(self) -> dict:
        """A JSON-friendly snapshot of the stream position."""
        return {"seed": self._seed, "bit_generator": self._rng.bit_generator.state}

    def set_state(self, state: dict) -> None:
        """Return to a position captured by :meth:`get_state`."""
        self._seed = int(state["seed"])
        self._rng.bit_generator.state = state["bit_generator"]

    # draws (NumPy arrays; creation functions move them to the device)
    def uniform(self, shape, low=0.0, high=1.0, dtype_=None):
        out = self._rng.random(shape, dtype=numpy.float64)
        if low != 0.0 or high != 1.0:
            out = out * (high - low) + low
        return out.astype((dtype_ or default_dtype.value).np, copy=False)

    def normal(self, shape, mean=0.0, std=1.0, dtype_=None):
        out = self._rng.standard_normal(shape, dtype=numpy.float64)
        if std != 1.0 or mean != 0.0:
            out = out * std + mean
        return out.astype((dtype_ or default_dtype.value).np, copy=False)

    def integers(self, low, high, shape):
        return self._rng.integers(low, high, size=shape, dtype=numpy.int64)

    def permutation(self, n: int):
        return self._rng.permutation(n).astype(numpy.int64)

    def bernoulli(self, shape, p: float):
        return self._rng.random(shape) < p


default_generator = Generator()
