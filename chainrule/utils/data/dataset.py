"""Datasets: indexable collections of samples (map-style) and streams of samples (iterable).

A map-style :class:`Dataset` answers ``len(ds)`` and ``ds[i]``; a :class:`DataLoader` picks the
indices (in order, shuffled, or per replica) and collates the samples into batches. An
:class:`IterableDataset` yields samples itself, for data that arrives as a stream.
"""

from __future__ import annotations

import bisect
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from chainrule import backend
from chainrule.backend import Generator, default_generator
from chainrule.tensor import Tensor, modes

__all__ = [
    "Dataset",
    "IterableDataset",
    "TensorDataset",
    "StackDataset",
    "ConcatDataset",
    "ChainDataset",
    "Subset",
    "random_split",
]


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__(index)`` and usually ``__len__``.

    ``a + b`` concatenates two datasets.

    >>> class Squares(Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, i):
    ...         return i * i
    >>> [Squares()[i] for i in range(4)]
    [0, 1, 4, 9]
    """

    def __getitem__(self, index) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset that is a stream: subclasses define ``__iter__``.

    With ``num_workers > 0`` every worker process iterates its own copy, so split the stream
    between workers with :func:`get_worker_info` (otherwise each sample arrives once per
    worker).

    >>> class Count(IterableDataset):
    ...     def __iter__(self):
    ...         return iter(range(3))
    >>> list(Count())
    [0, 1, 2]
    """

    def __iter__(self) -> Iterator:
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other: Dataset) -> ChainDataset:
        return ChainDataset([self, other])


def _take_rows(t: Tensor, index) -> Tensor:
    """``t[index]`` for one dataset tensor.

    Without a recorded graph this indexes the array directly (no op dispatch: it is the inner
    loop of every epoch); a tensor that requires grad goes through the differentiable op.
    """
    if t.requires_grad and modes.grad_enabled:
        return t[index]
    if isinstance(index, Tensor):
        index = index._data
    data = t._data
    # ``[index, ...]`` keeps a 0-d array (not a NumPy scalar) for an integer index
    out = Tensor._make(data[index, ...])
    if backend.is_array(index) or isinstance(index, (list, tuple)):
        return out  # advanced indexing copies
    out._vc = t._vc  # a basic index is a view of the dataset tensor, as in PyTorch
    return out


class TensorDataset(Dataset):
    """Samples are rows of tensors that share their first dimension: ``ds[i]`` is
    ``(t0[i], t1[i], ...)``.

    A :class:`DataLoader` over a ``TensorDataset`` with the default collation takes each batch
    by indexing every tensor once, instead of collating the rows one by one.

    >>> import chainrule as cr
    >>> ds = TensorDataset(cr.arange(6).reshape(3, 2), cr.tensor([0, 1, 0]))
    >>> len(ds), ds[1]
    (3, (tensor([2, 3]), tensor(1)))
    """

    def __init__(self, *tensors: Tensor):
        converted = []
        for t in tensors:
            if backend.is_array(t):
                t = Tensor._make(t)
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"TensorDataset: expected tensors, got {type(t).__name__} at position "
                    f"{len(converted)}"
                )
            if t.ndim == 0:
                raise ValueError("TensorDataset: tensors need a first (sample) dimension")
            converted.append(t)
        sizes = [t.shape[0] for t in converted]
        if len(set(sizes)) > 1:
            raise ValueError(f"Size mismatch between tensors: first dimensions are {sizes}")
        self.tensors = tuple(converted)

    def __getitem__(self, index):
        return tuple(_take_rows(t, index) for t in self.tensors)

    def __len__(self) -> int:
        return self.tensors[0].shape[0] if self.tensors else 0

    def _fetch_batch(self, indices) -> list:
        """A whole batch, as the default collation would build it: one gather per tensor."""
        rows = _index_array(indices)
        return [_take_rows(t, _on_device(rows, t)) for t in self.tensors]

    def __repr__(self) -> str:
        shapes = ", ".join(str(list(t.shape)) for t in self.tensors)
        return f"TensorDataset({len(self)} samples; tensors {shapes})"


def _index_array(indices):
    if isinstance(indices, Tensor):
        return backend.to_numpy(indices._data).astype(backend.int64.np, copy=False)
    return backend.np.asarray(indices, dtype=backend.int64.np)


def _on_device(rows, t: Tensor):
    if t.requires_grad and modes.grad_enabled:
        return Tensor._make(rows)
    xp = backend.array_module(t._data)
    return rows if xp is backend.np else xp.asarray(rows)


class StackDataset(Dataset):
    """Zip datasets of equal length: ``ds[i]`` is a tuple (positional) or a dict (keywords).

    >>> ds = StackDataset([1, 2], ["a", "b"])
    >>> ds[1]
    (2, 'b')
    """

    def __init__(self, *args: Dataset, **kwargs: Dataset):
        if args and kwargs:
            raise ValueError("StackDataset takes datasets positionally or by keyword, not both")
        parts = args or tuple(kwargs.values())
        if not parts:
            raise ValueError("StackDataset needs at least one dataset")
        lengths = {len(p) for p in parts}
        if len(lengths) > 1:
            raise ValueError(f"Size mismatch between datasets: lengths {sorted(lengths)}")
        self._length = lengths.pop()
        self.datasets = kwargs if kwargs else args

    def __getitem__(self, index):
        if isinstance(self.datasets, dict):
            return {k: ds[index] for k, ds in self.datasets.items()}
        return tuple(ds[index] for ds in self.datasets)

    def __len__(self) -> int:
        return self._length


class ConcatDataset(Dataset):
    """Several map-style datasets one after the other.

    >>> ds = ConcatDataset([[1, 2], [3]])
    >>> len(ds), ds[2], ds[-1]
    (3, 3, 3)
    """

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset (use ChainDataset)")
        self.cumulative_sizes = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int):
        n = len(self)
        if index < 0:
            if -index > n:
                raise ValueError("absolute value of index should not exceed dataset length")
            index += n
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which >= len(self.datasets):
            raise IndexError(f"index {index} is out of range for a dataset of length {n}")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


class ChainDataset(IterableDataset):
    """Iterable datasets one after the other (the streaming form of :class:`ConcatDataset`)."""

    def __init__(self, datasets: Iterable[Dataset]):
        self.datasets = list(datasets)

    def __iter__(self):
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> s = Subset(["a", "b", "c", "d"], [3, 0])
    >>> len(s), s[0], s[1]
    (2, 'd', 'a')
    """

    def __init__(self, dataset: Dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, index):
        if isinstance(index, list):
            return self.dataset[[self.indices[i] for i in index]]
        return self.dataset[self.indices[index]]

    def __getitems__(self, indices: list) -> list:
        inner = getattr(self.dataset, "__getitems__", None)
        mapped = [self.indices[i] for i in indices]
        if inner is not None:
            return inner(mapped)
        return [self.dataset[i] for i in mapped]

    def __len__(self) -> int:
        return len(self.indices)


def batch_fetcher(dataset):
    """A function ``indices -> collated batch`` that skips per-sample collation, or None.

    Defined for :class:`TensorDataset` (one gather per tensor) and for :class:`Subset` chains
    over one; the result equals ``default_collate([dataset[i] for i in indices])``.
    """
    # a subclass that overrides how one sample is read (a transform, say) loses the fast path
    kind = type(dataset)
    if isinstance(dataset, TensorDataset) and kind.__getitem__ is TensorDataset.__getitem__:
        return dataset._fetch_batch
    if isinstance(dataset, Subset) and kind.__getitem__ is Subset.__getitem__:
        inner = batch_fetcher(dataset.dataset)
        if inner is not None:
            ind = dataset.indices
            return lambda indices: inner([ind[int(i)] for i in indices])
    return None


def random_split(
    dataset: Dataset,
    lengths: Sequence[int | float],
    generator: Generator | None = default_generator,
) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given lengths.

    ``lengths`` are sample counts summing to ``len(dataset)``, or fractions summing to 1 (each
    split gets ``floor(fraction * len)`` samples and the remainder goes one by one to the
    first splits). The permutation comes from ``generator`` (chainrule's default one unless
    given), so ``chainrule.manual_seed`` makes the split reproducible.

    >>> import chainrule as cr
    >>> train, test = random_split(range(10), [0.8, 0.2], generator=cr.Generator().manual_seed(0))
    >>> len(train), len(test), sorted(list(train) + list(test)) == list(range(10))
    (8, 2, True)
    """
    n = len(dataset)
    lengths = list(lengths)
    total = sum(lengths)
    fractions = math.isclose(total, 1) and total <= 1
    if fractions or any(isinstance(x, float) for x in lengths):
        for i, frac in enumerate(lengths):
            if not 0 <= frac <= 1:
                raise ValueError(f"Fraction at index {i} is not between 0 and 1")
        if not math.isclose(total, 1):
            raise ValueError(f"Fractions passed to random_split must sum to 1, got {total}")
        counts = [int(math.floor(n * frac)) for frac in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(
                    f"Length of split at index {i} is 0. This might result in an empty dataset.",
                    stacklevel=2,
                )
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(
            f"Sum of input lengths ({sum(lengths)}) does not equal the length of the input "
            f"dataset ({n})!"
        )
    perm = (generator or default_generator).permutation(n).tolist()
    out = []
    start = 0
    for length in lengths:
        out.append(Subset(dataset, perm[start : start + length]))
        start += length
    return out
