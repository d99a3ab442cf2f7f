"""Indexing primitives: ``t[...]``, ``t[...] = v``, gather/scatter, masks and index_select.

``t[key]`` runs in two stages, the way PyTorch does: the basic part of the key (ints, slices,
None, ``...``) is applied first as a view (``movement.Slice``); the advanced part (integer
arrays, and boolean masks turned into the integer arrays of their true positions) is then
applied to that view as a copy (``AdvIndex``). The ints are gone by the second stage, which is
what decides where the advanced dimensions land (``x[0, :, [0, 1]]`` has shape ``(4, 2)`` for
``x`` of shape ``(3, 4, 5)``, where NumPy would give ``(2, 4)``).

Gradients of reads scatter back into zeros and accumulate at repeated indices
(``IndexAccumulate``); gradients of writes (``IndexPut``) route to the written values and mask
out the overwritten positions. gather, scatter, index_select, index_add... are the same three
primitives with a key built from the index tensor.
"""

from __future__ import annotations

import operator

from chainrule import backend
from chainrule.ops.elementwise import bump_version, cast, inplace, where
from chainrule.ops.movement import Slice, broadcast_to, reshape
from chainrule.tensor import Node, Tensor, modes, wrap_dim

__all__ = [
    "gather",
    "scatter",
    "scatter_add",
    "index_select",
    "index_add",
    "index_fill",
    "masked_fill",
    "masked_select",
    "take",
    "take_along_dim",
    "nonzero",
    "argwhere",
]

_INT64 = backend.int64.np


# ---- primitives ------------------------------------------------------------------------------


class AdvIndex(Node):
    """``a[key]`` for a key of integer arrays and full slices: a copy."""

    __slots__ = ("key", "in_shape")

    def forward(self, xp, a, key=()):
        self.key, self.in_shape = key, a.shape
        return a[key]

    def backward(self, g):
        return IndexAccumulate.apply(g, key=self.key, shape=self.in_shape)


class IndexAccumulate(Node):
    """Zeros of ``shape`` with ``v`` added at ``key``; repeated positions add up."""

    __slots__ = ("key",)

    def forward(self, xp, v, key=(), shape=()):
        self.key = key
        out = xp.zeros(shape, dtype=v.dtype)
        backend.add_at(xp, out, key, v)
        return out

    def backward(self, gg):
        return AdvIndex.apply(gg, key=self.key)


def _write(out, basic, adv, value) -> None:
    target = out if basic is None else out[basic]  # a view: writing to it writes ``out``
    if adv is None:
        target[...] = value
    else:
        target[adv] = value


class IndexPut(Node):
    """``a`` with ``v`` written at ``a[basic][adv]`` (into ``a`` itself when ``inplace``).

    The gradient of ``a`` is ``g`` with the overwritten positions zeroed; the gradient of ``v``
    is ``g`` read at those positions (the engine sums it over ``v``'s broadcast dimensions).
    """

    __slots__ = ("basic", "adv", "v_ndim")

    def forward(self, xp, a, v, basic=None, adv=None, inplace=False):
        self.basic, self.adv = basic, adv
        self.v_ndim = getattr(v, "ndim", 0)
        out = a if inplace else a.copy()
        _write(out, basic, adv, v)
        return out

    def backward(self, g):
        ga = gv = None
        if self.edges[0]:
            ga = IndexPut.apply(g, 0, basic=self.basic, adv=self.adv)
        if self.edges[1]:
            gv = _apply_key(g, self.basic, self.adv)
            extra = self.v_ndim - gv._data.ndim
            if extra > 0:  # the value had leading size-1 dimensions the target lacks
                gv = reshape(gv, (1,) * extra + gv._data.shape)
        return ga, gv


def _apply_key(t: Tensor, basic, adv) -> Tensor:
    if basic is not None:
        t = Slice.apply(t, key=basic)
    if adv is not None:
        t = AdvIndex.apply(t, key=adv)
    return t


# ---- parsing an index key --------------------------------------------------------------------

_INT, _SLICE, _NONE, _ELLIPSIS, _BOOL, _ARRAY, _MASK = range(7)


def _dtype_error(dtype) -> IndexError:
    try:
        name = backend.from_np(dtype).name
    except TypeError:
        name = str(dtype)
    return IndexError(
        f"tensors used as indices must be long, int, byte or bool tensors (got {name})"
    )


def _classify(item, xp):
    """``(kind, value)`` for one entry of an index key."""
    if item is None:
        return _NONE, None
    if item is Ellipsis:
        return _ELLIPSIS, None
    tp = type(item)
    if tp is int:
        return _INT, item
    if tp is slice:
        start, stop, step = item.start, item.stop, item.step
        if not all(type(b) is int or b is None for b in (start, stop, step)):
            # tensor or NumPy bounds: plain ints, so the key compares and hashes cheaply
            start, stop, step = (
                None if b is None else operator.index(b) for b in (start, stop, step)
            )
            item = slice(start, stop, step)
        if step is not None and step <= 0:
            raise ValueError("step must be greater than zero")
        return _SLICE, item
    if tp is bool:
        return _BOOL, item
    if isinstance(item, Tensor):
        arr = item._data
    elif backend.is_array(item):
        arr = item
    elif isinstance(item, (list, tuple)):
        arr = backend.np.asarray(item)
        if arr.size == 0:
            arr = arr.astype(_INT64)
        elif arr.dtype.kind not in "biuf":
            raise IndexError(f"cannot index with a list of {type(item[0]).__name__}")
    elif hasattr(item, "__index__"):  # NumPy integers and bools
        if getattr(item, "dtype", None) is not None and item.dtype.kind == "b":
            return _BOOL, bool(item)
        return _INT, operator.index(item)
    else:
        raise IndexError(
            "only integers, slices (`:`), ellipsis (`...`), None and long or byte Variables are "
            f"valid indices (got {type(item).__name__})"
        )
    kind = arr.dtype.kind
    if kind == "b" or arr.dtype == backend.uint8.np:  # uint8 masks: PyTorch's legacy
        if arr.ndim == 0:
            return _BOOL, bool(arr)
        arr = arr.astype(bool, copy=False)
        return _MASK, arr if backend.array_module(arr) is xp else xp.asarray(arr)
    if kind not in "iu":
        raise _dtype_error(arr.dtype)
    if arr.ndim == 0:
        return _INT, int(arr)
    return _ARRAY, arr if backend.array_module(arr) is xp else xp.asarray(arr)


def _parse(t: Tensor, key) -> tuple:
    """Split ``key`` into a basic key for ``Slice`` and an advanced key for ``AdvIndex``.

    Either is None when that stage has nothing to do. Index values are checked against the
    dimension they index, so errors name it (``index 5 is out of bounds for dimension 0 with
    size 3``).
    """
    arr = t._data
    shape = arr.shape
    nd = len(shape)
    xp = backend.array_module(arr)
    items = [_classify(k, xp) for k in (key if type(key) is tuple else (key,))]
    consumed = 0
    n_ellipsis = 0
    for kind, v in items:
        if kind is _INT or kind is _SLICE or kind is _ARRAY:
            consumed += 1
        elif kind is _MASK:
            consumed += v.ndim
        elif kind is _ELLIPSIS:
            n_ellipsis += 1
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if consumed > nd:
        raise IndexError(
            f"too many indices for tensor of dimension {nd} (got {consumed} for shape "
            f"{list(shape)})"
        )
    basic = []
    adv = []  # (dimension of the stage-1 result, integer array)
    d = 0  # dimension of ``t``
    od = 0  # dimension of the basic-indexed view
    trivial = True
    full = slice(None)
    for kind, v in items:
        if kind is _SLICE:
            basic.append(v)
            d += 1
            od += 1
            if v != full:
                trivial = False
        elif kind is _INT:
            size = shape[d]
            if not -size <= v < size:
                raise IndexError(f"index {v} is out of bounds for dimension {d} with size {size}")
            basic.append(v)
            d += 1
            trivial = False
        elif kind is _NONE:
            basic.append(None)
            od += 1
            trivial = False
        elif kind is _ELLIPSIS:
            n = nd - consumed
            basic.extend([full] * n)
            d += n
            od += n
        elif kind is _BOOL:  # ``x[True]`` adds a dimension of size 1, ``x[False]`` of size 0
            basic.append(None)
            trivial = False
            if not v:
                adv.append((od, xp.zeros(0, dtype=_INT64)))
            od += 1
        elif kind is _ARRAY:
            _check_range(v, shape[d], d)
            adv.append((od, v))
            basic.append(full)
            d += 1
            od += 1
        else:  # _MASK
            k = v.ndim
            if v.shape != shape[d : d + k]:
                j = next(i for i in range(k) if v.shape[i] != shape[d + i])
                raise IndexError(
                    f"The shape of the mask {list(v.shape)} at index {j} does not match the "
                    f"shape of the indexed tensor {list(shape)} at index {d + j}"
                )
            for j, positions in enumerate(xp.nonzero(v)):
                adv.append((od + j, positions))
            basic.extend([full] * k)
            d += k
            od += k
    basic_key = None if trivial else tuple(basic) + (Ellipsis,)
    adv_key = None
    if adv:
        entries = [full] * (adv[-1][0] + 1)
        for pos, a in adv:
            entries[pos] = a
        adv_key = tuple(entries)
    return basic_key, adv_key


def _check_range(index, size: int, dim: int, allow_negative: bool = True, error=IndexError):
    """An error naming the dimension when an index falls outside ``[-size, size)`` (``[0,
    size)`` without ``allow_negative``)."""
    if index.size == 0:
        return
    lo = int(index.min())
    hi = int(index.max())
    if hi >= size or lo < (-size if allow_negative else 0):
        bad = hi if hi >= size else lo
        raise error(f"index {bad} is out of bounds for dimension {dim} with size {size}")


# ---- t[key] and t[key] = value ---------------------------------------------------------------


def getitem(self: Tensor, key) -> Tensor:
    """``t[key]``: ints, slices (positive steps), None, ``...``, masks and integer arrays.

    Keys without index arrays or masks give a view sharing memory and version counter with
    ``t``; the others give a copy. Repeated indices accumulate their gradients.

    >>> import chainrule as cr
    >>> x = cr.arange(12.0).reshape(3, 4)
    >>> x[1:, ::2], x[[0, 0], -1]
    (tensor([[ 4.,  6.],
            [ 8., 10.]]), tensor([3., 3.]))
    """
    if type(key) is int:  # the commonest key: skip the general parser
        shape = self._data.shape
        if shape and -shape[0] <= key < shape[0]:
            return Slice.apply(self, key=(key, Ellipsis))
    basic, adv = _parse(self, key)
    out = self
    if basic is not None:
        out = Slice.apply(out, key=basic)
    if adv is not None:
        out = AdvIndex.apply(out, key=adv)
    return out


def _value_operand(self: Tensor, value):
    """A Python scalar stays a scalar; anything else becomes a tensor of ``self``'s dtype."""
    if type(value) in (int, float, bool):
        return value
    if not isinstance(value, Tensor):
        if (
            hasattr(value, "item")
            and getattr(value, "ndim", 1) == 0
            and not backend.is_array(value)
        ):
            return value.item()
        value = Tensor(value)
    if value._data.dtype != self._data.dtype:
        value = cast(value, self.dtype)
    return value


def _write_error(self: Tensor, basic, adv, value) -> RuntimeError:
    target = self._data if basic is None else self._data[basic]
    if adv is not None:
        target = target[adv]
    vshape = list(getattr(value, "shape", ()))
    return RuntimeError(
        f"shape mismatch: value tensor of shape {vshape} cannot be broadcast to indexing result "
        f"of shape {list(target.shape)}"
    )


def setitem(self: Tensor, key, value) -> None:
    """``t[key] = value`` in place (``value`` broadcast, converted to ``t``'s dtype).

    Differentiable: ``t`` takes a new history in which the overwritten positions receive no
    gradient and ``value`` receives the gradient of the positions it filled. Raises on a leaf
    that requires grad, as PyTorch does.
    """
    basic, adv = _parse(self, key)
    value = _value_operand(self, value)
    arr = self._data
    if not getattr(arr.flags, "writeable", True):
        raise RuntimeError(
            "unsupported operation: some elements of the written-to tensor refer to a single "
            "memory location (it was made by expand or broadcast_to). Please clone() the tensor "
            "before performing the operation."
        )
    v_is_tensor = isinstance(value, Tensor)
    tracked = modes.grad_enabled and (self.requires_grad or (v_is_tensor and value.requires_grad))
    if not tracked:
        try:
            _write(arr, basic, adv, value._data if v_is_tensor else value)
        except ValueError:
            raise _write_error(self, basic, adv, value) from None
        bump_version(self)
        return
    if self.requires_grad and self.grad_fn is None:
        raise RuntimeError(
            "a leaf Variable that requires grad is being used in an in-place operation "
            f"(__setitem__ on a tensor of shape {list(arr.shape)}); write into a clone, or "
            "under chainrule.no_grad()."
        )
    # ``shadow`` stands for self before the write: same memory, self's old history. IndexPut
    # writes into that memory and self takes the new history.
    shadow = Tensor._make(arr, self.requires_grad, self.grad_fn, self._output_nr)
    try:
        result = IndexPut.apply(shadow, value, basic=basic, adv=adv, inplace=True)
    except ValueError:
        raise _write_error(self, basic, adv, value) from None
    self.grad_fn = result.grad_fn
    self._output_nr = result._output_nr
    self.requires_grad = True
    bump_version(self)


# ---- gather / scatter ------------------------------------------------------------------------


def _index_array(index, op: str):
    arr = index._data if isinstance(index, Tensor) else backend.asarray(index)
    if arr.dtype.kind not in "iu":
        raise RuntimeError(
            f"{op}(): Expected dtype int64 for index (got {backend.from_np(arr.dtype).name})"
        )
    return arr


def _coords(index, dim: int, xp) -> tuple:
    """The advanced key that picks ``index`` along ``dim`` and the matching position elsewhere:
    ``out[i][j][k] = a[i][index[i][j][k]][k]`` for ``dim=1``."""
    nd = index.ndim
    key = []
    for d in range(nd):
        if d == dim:
            key.append(index)
        else:
            shape = [1] * nd
            shape[d] = index.shape[d]
            key.append(xp.arange(index.shape[d]).reshape(shape))
    return tuple(key)


def _check_gather_shapes(op: str, input: Tensor, idx, dim: int, src: Tensor | None = None):
    shape = input._data.shape
    if idx.ndim != len(shape):
        raise RuntimeError(
            f"{op}(): Index tensor must have the same number of dimensions as input tensor "
            f"(index shape {list(idx.shape)}, input shape {list(shape)})"
        )
    for k in range(len(shape)):
        if k != dim and idx.shape[k] > shape[k]:
            raise RuntimeError(
                f"{op}(): Size does not match at dimension {k} expected index {list(idx.shape)} "
                f"to be no larger than self {list(shape)} apart from dimension {dim}"
            )
        if src is not None and idx.shape[k] > src._data.shape[k]:
            raise RuntimeError(
                f"{op}(): Expected index {list(idx.shape)} to be no larger than src "
                f"{list(src._data.shape)} at dimension {k}"
            )
    # PyTorch raises RuntimeError here (IndexError for ``t[idx]``)
    _check_range(idx, shape[dim], dim, allow_negative=False, error=RuntimeError)


def _scalar_case(fn, input, dim, index, *rest):
    """0-d inputs are indexed as 1-element vectors (PyTorch allows that)."""
    out = fn(reshape(input, 1), dim, reshape(Tensor._make(index), 1), *rest)
    return reshape(out, ())


def gather(input, dim: int, index, *, sparse_grad: bool = False):
    """``out[i][j] = input[i][index[i][j]]`` along ``dim`` (shown for ``dim=1``).

    ``index`` has ``input``'s rank and is no larger than ``input`` outside ``dim``. The gradient
    adds up at repeated indices.

    >>> import chainrule as cr
    >>> cr.tensor([[1, 2], [3, 4]]).gather(1, cr.tensor([[0, 0], [1, 0]]))
    tensor([[1, 1],
            [4, 3]])
    """
    idx = _index_array(index, "gather")
    if input._data.ndim == 0 and idx.ndim == 0:
        return _scalar_case(gather, input, dim, idx)
    d = wrap_dim(dim, input._data.ndim, "gather")
    _check_gather_shapes("gather", input, idx, d)
    return AdvIndex.apply(input, key=_coords(idx, d, backend.array_module(input._data)))


def _src_part(src: Tensor, idx) -> Tensor:
    """The leading ``idx.shape`` block of ``src`` (scatter reads no more of it)."""
    if src._data.shape == idx.shape:
        return src
    return Slice.apply(src, key=tuple(slice(0, s) for s in idx.shape) + (Ellipsis,))


def scatter(input, dim: int, index, src=None, *, value=None, reduce: str | None = None):
    """A copy of ``input`` with ``src`` (a tensor or a number) written at ``index`` along ``dim``.

    ``out[i][index[i][j]] = src[i][j]`` for ``dim=1``. ``reduce='add'`` adds instead (as
    :func:`scatter_add`). Where ``index`` repeats a position, which write wins is unspecified.
    """
    if src is None:
        src = value
    if reduce is not None:
        if reduce != "add":
            raise NotImplementedError(f"scatter: reduce={reduce!r} is not supported (only 'add')")
        if not isinstance(src, Tensor):
            src = Tensor._make(backend.array_module(input._data).full(index.shape, src))
        return scatter_add(input, dim, index, src)
    idx = _index_array(index, "scatter")
    if input._data.ndim == 0 and idx.ndim == 0:
        src0 = reshape(src, 1) if isinstance(src, Tensor) else src
        return _scalar_case(scatter, input, dim, idx, src0)
    d = wrap_dim(dim, input._data.ndim, "scatter")
    xp = backend.array_module(input._data)
    if isinstance(src, Tensor):
        _check_gather_shapes("scatter", input, idx, d, src)
        v = _src_part(_value_operand(input, src), idx)
    else:
        _check_gather_shapes("scatter", input, idx, d)
        v = src
    return IndexPut.apply(input, v, adv=_coords(idx, d, xp))


def scatter_add(input, dim: int, index, src):
    """A copy of ``input`` with ``src`` added at ``index`` along ``dim``; repeats add up."""
    idx = _index_array(index, "scatter_add")
    if input._data.ndim == 0 and idx.ndim == 0:
        return _scalar_case(scatter_add, input, dim, idx, reshape(src, 1))
    d = wrap_dim(dim, input._data.ndim, "scatter_add")
    _check_gather_shapes("scatter_add", input, idx, d, src)
    xp = backend.array_module(input._data)
    v = _src_part(_value_operand(input, src), idx)
    return input + IndexAccumulate.apply(v, key=_coords(idx, d, xp), shape=input._data.shape)


# ---- index_select and friends ----------------------------------------------------------------


def _dim_key(input: Tensor, dim: int, index, op: str) -> tuple:
    """``(dim, key)`` picking the entries ``index`` (a vector) along ``dim``."""
    idx = _index_array(index, op)
    if idx.ndim > 1:
        raise IndexError(f"{op}(): Index is supposed to be a vector (got shape {list(idx.shape)})")
    nd = input._data.ndim
    d = wrap_dim(dim, nd, op)
    size = input._data.shape[d] if nd else 1
    _check_range(idx, size, d)
    xp = backend.array_module(input._data)
    if backend.array_module(idx) is not xp:
        idx = xp.asarray(idx)
    return d, (slice(None),) * d + (idx.reshape(-1),)


def index_select(input, dim: int, index):
    """The entries ``index`` (a vector) of dimension ``dim``; repeated entries add gradients."""
    if input._data.ndim == 0:
        return reshape(index_select(reshape(input, 1), dim, index), ())
    _, key = _dim_key(input, dim, index, "index_select")
    return AdvIndex.apply(input, key=key)


def index_add(input, dim: int, index, source, *, alpha=1):
    """A copy of ``input`` with ``alpha * source[i]`` added to entry ``index[i]`` of ``dim``."""
    d, key = _dim_key(input, dim, index, "index_add")
    n = key[-1].shape[0]
    source = _value_operand(input, source)
    expected = list(input._data.shape)
    if expected:
        expected[d] = n
    if list(source._data.shape) != expected:
        raise RuntimeError(
            f"index_add_(): source of shape {list(source._data.shape)} does not match the "
            f"destination slice shape {expected} ({n} indices along dimension {d} of a tensor of "
            f"shape {list(input._data.shape)})"
        )
    if alpha != 1:
        source = source * alpha
    if input._data.ndim == 0:
        return input + reshape(source, ())
    return input + IndexAccumulate.apply(source, key=key, shape=input._data.shape)


def index_fill(input, dim: int, index, value):
    """A copy of ``input`` with the entries ``index`` of dimension ``dim`` set to ``value``."""
    _, key = _dim_key(input, dim, index, "index_fill")
    value = _fill_value(input, value, "index_fill_")
    return IndexPut.apply(input, value, adv=key)


def _fill_value(input: Tensor, value, op: str):
    if isinstance(value, Tensor):
        if value._data.ndim != 0:
            raise RuntimeError(
                f"{op} only supports a 0-dimensional value tensor, but got tensor with "
                f"{value._data.ndim} dimension(s)."
            )
        return cast(value, input.dtype)
    return value


def masked_fill(input, mask, value):
    """``input`` with ``value`` where the bool ``mask`` (broadcast) is True.

    ``value`` is a number or a 0-d tensor (which receives the gradient of the filled
    positions).
    """
    m = mask._data if isinstance(mask, Tensor) else backend.asarray(mask)
    if m.dtype.kind != "b":
        raise RuntimeError(
            "masked_fill_ only supports boolean masks, but got mask with dtype "
            f"{backend.from_np(m.dtype).name}"
        )
    value = _fill_value(input, value, "masked_fill_")
    if not isinstance(value, Tensor):
        xp = backend.array_module(input._data)
        value = Tensor._make(xp.asarray(value).astype(input._data.dtype))
    return where(Tensor._make(m), value, input)


def masked_select(input, mask):
    """The elements of ``input`` where ``mask`` is True, as a 1-d tensor (both broadcast)."""
    m = mask._data if isinstance(mask, Tensor) else backend.asarray(mask)
    if m.dtype.kind != "b":
        raise RuntimeError(
            f"masked_select: expected BoolTensor for mask (got {backend.from_np(m.dtype).name})"
        )
    xp = backend.array_module(input._data)
    shape = backend.np.broadcast_shapes(input._data.shape, m.shape)
    return getitem(broadcast_to(input, shape), Tensor._make(xp.broadcast_to(m, shape)))


def take(input, index):
    """The elements of the flattened ``input`` at ``index`` (result has ``index``'s shape)."""
    idx = _index_array(index, "take")
    flat = reshape(input, -1)
    _check_range(idx, flat._data.shape[0], 0)
    return AdvIndex.apply(flat, key=(idx,))


def take_along_dim(input, indices, dim: int | None = None):
    """``gather`` after broadcasting ``input`` and ``indices`` against each other outside
    ``dim``; with ``dim=None`` both are flattened first. Negative indices count from the end."""
    idx = _index_array(indices, "take_along_dim")
    if dim is None:
        input = reshape(input, -1)
        idx = idx.reshape(-1)
        d = 0
    else:
        if input._data.ndim != idx.ndim:
            raise RuntimeError(
                "take_along_dim(): input and indices should have the same number of dimensions, "
                f"but got {input._data.ndim} dimensions for input, and {idx.ndim} dimensions for "
                "indices"
            )
        d = wrap_dim(dim, input._data.ndim, "take_along_dim")
        xp = backend.array_module(input._data)
        in_shape, ix_shape = list(input._data.shape), list(idx.shape)
        in_shape[d] = ix_shape[d] = 1
        common = list(backend.np.broadcast_shapes(tuple(in_shape), tuple(ix_shape)))
        in_target, ix_target = list(common), list(common)
        in_target[d], ix_target[d] = input._data.shape[d], idx.shape[d]
        input = broadcast_to(input, in_target)
        idx = xp.broadcast_to(idx, tuple(ix_target))
    size = input._data.shape[d]
    _check_range(idx, size, d)
    if idx.size and int(idx.min()) < 0:
        idx = idx % size
    return gather(input, d, Tensor._make(idx))


def nonzero(input, *, as_tuple: bool = False):
    """Positions of the nonzero elements: an ``(n, ndim)`` int64 tensor, or one vector per
    dimension with ``as_tuple=True`` (the form advanced indexing takes)."""
    arr = input._data
    xp = backend.array_module(arr)
    if arr.ndim == 0:
        n = 1 if bool(arr) else 0
        if as_tuple:
            return (Tensor._make(xp.zeros(n, dtype=_INT64)),)
        return Tensor._make(xp.zeros((n, 0), dtype=_INT64))
    if as_tuple:
        return tuple(Tensor._make(p.astype(_INT64, copy=False)) for p in xp.nonzero(arr))
    return Tensor._make(xp.argwhere(arr).astype(_INT64, copy=False))


def argwhere(input):
    """``nonzero(input)``: the ``(n, ndim)`` positions of the nonzero elements."""
    return nonzero(input)


# ---- in-place forms --------------------------------------------------------------------------


def _inplace_form(fn, name: str):
    def method(self, *args, **kwargs):
        return inplace(self, lambda t, *a: fn(t, *a, **kwargs), name, *args)

    method.__name__ = name
    method.__doc__ = f"In-place :func:`{fn.__name__}`; returns ``self``."
    return method


# Tensor methods (bound in ops/__init__.py)
METHODS = {
    "__getitem__": getitem,
    "__setitem__": setitem,
    "gather": gather,
    "scatter": scatter,
    "scatter_add": scatter_add,
    "index_select": index_select,
    "index_add": index_add,
    "index_fill": index_fill,
    "masked_fill": masked_fill,
    "masked_select": masked_select,
    "take": take,
    "take_along_dim": take_along_dim,
    "nonzero": nonzero,
    "argwhere": argwhere,
    "scatter_": _inplace_form(scatter, "scatter_"),
    "scatter_add_": _inplace_form(scatter_add, "scatter_add_"),
    "index_add_": _inplace_form(index_add, "index_add_"),
    "index_fill_": _inplace_form(index_fill, "index_fill_"),
    "masked_fill_": _inplace_form(masked_fill, "masked_fill_"),
}
