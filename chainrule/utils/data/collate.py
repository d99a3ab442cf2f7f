"""Turning a list of samples into one batch (``default_collate``) and arrays into tensors
(``default_convert``), with PyTorch's rules.

Collation recurses through the structure of the first sample: tensors and arrays are stacked
along a new first dimension, Python floats become a float64 tensor and ints an int64 tensor,
strings stay a list, dicts are collated key by key, tuples and lists are transposed (a batch
of ``(x, y)`` pairs becomes ``[xs, ys]``) and namedtuples keep their type.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from chainrule import backend, ops
from chainrule.tensor import Tensor, modes

__all__ = ["default_collate", "default_convert"]

_COLLATE_ERROR = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)


def _is_text_dtype(dt) -> bool:
    return dt.kind in "USO"


def _is_namedtuple(x) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _array_tensor(arr) -> Tensor:
    backend.from_np(arr.dtype)  # a clear error for dtypes chainrule has no tensor type for
    return Tensor._make(arr)


def _stack(tensors: list) -> Tensor:
    """Stack same-shaped tensors along a new first dimension (a copy, like ``torch.stack``)."""
    shape = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 "
                f"and {list(t._data.shape)} at entry {i}"
            )
    if modes.grad_enabled and any(t.requires_grad for t in tensors):
        return ops.stack(tensors, 0)  # keep the graph: the samples' history flows into the batch
    arrays = [t._data for t in tensors]
    first = arrays[0].dtype
    if any(a.dtype != first for a in arrays):
        target = backend.from_np(first)
        for a in arrays:
            target = backend.promote_types(target, backend.from_np(a.dtype))
        arrays = [a.astype(target.np, copy=False) for a in arrays]
    return Tensor._make(backend.array_module(arrays[0]).stack(arrays))


def _rebuild_mapping(elem: Mapping, items: dict) -> Mapping:
    """A mapping of ``elem``'s type holding ``items`` (a plain dict when that is impossible)."""
    if type(elem) is dict:
        return items
    if isinstance(elem, MutableMapping):
        try:  # a copy keeps constructor state such as a defaultdict's factory
            clone = copy.copy(elem)
            clone.clear()
            clone.update(items)
            return clone
        except Exception:  # noqa: BLE001 - odd mapping types fall back to dict
            pass
    try:
        return type(elem)(items)
    except TypeError:
        return items


def default_collate(batch: list) -> Any:
    """Collate a list of samples into a batch, with PyTorch's rules.

    >>> import chainrule as cr
    >>> default_collate([(cr.tensor([1.0, 2.0]), 0), (cr.tensor([3.0, 4.0]), 1)])
    [tensor([[1., 2.],
            [3., 4.]]), tensor([0, 1])]
    >>> default_collate([{"x": 1.5, "name": "a"}, {"x": 2.5, "name": "b"}])
    {'x': tensor([1.5000, 2.5000], dtype=chainrule.float64), 'name': ['a', 'b']}
    """
    elem = batch[0]
    if isinstance(elem, Tensor):
        return _stack(batch)
    if backend.is_array(elem):
        if _is_text_dtype(elem.dtype):
            raise TypeError(_COLLATE_ERROR.format(elem.dtype))
        return _stack([_array_tensor(a) for a in batch])
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, backend.np.generic):  # NumPy scalars keep their dtype
        if _is_text_dtype(elem.dtype):
            raise TypeError(_COLLATE_ERROR.format(elem.dtype))
        return _array_tensor(backend.np.asarray(batch))
    if isinstance(elem, float):
        return Tensor._make(backend.np.asarray(batch, dtype=backend.float64.np))
    if isinstance(elem, int):  # ``tensor(batch)``: int64, or bool for an all-bool batch
        return Tensor._make(backend.asarray(batch))
    if isinstance(elem, Mapping):
        return _rebuild_mapping(elem, {k: default_collate([d[k] for d in batch]) for k in elem})
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(s) for s in zip(*batch)))
    if isinstance(elem, Sequence):
        size = len(elem)
        if any(len(s) != size for s in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        columns = [default_collate(s) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return columns  # a batch of tuples collates to a list, as in PyTorch
        try:
            return type(elem)(columns)
        except TypeError:
            return columns
    raise TypeError(_COLLATE_ERROR.format(type(elem)))


def default_convert(data: Any) -> Any:
    """Turn NumPy arrays (and NumPy scalars) inside ``data`` into tensors, leaving everything
    else as it is. The DataLoader applies it per sample when automatic batching is off
    (``batch_size=None``).

    >>> import numpy as np
    >>> default_convert({"x": np.array([1, 2]), "id": 7})
    {'x': tensor([1, 2]), 'id': 7}
    """
    if isinstance(data, Tensor):
        return data
    if backend.is_array(data):
        return data if _is_text_dtype(data.dtype) else _array_tensor(data)
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, backend.np.generic):
        return data if _is_text_dtype(data.dtype) else _array_tensor(backend.np.asarray(data))
    if isinstance(data, Mapping):
        return _rebuild_mapping(data, {k: default_convert(v) for k, v in data.items()})
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, Sequence):
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data
