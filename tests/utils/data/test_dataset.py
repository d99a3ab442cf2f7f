"""Datasets, random_split and samplers (against torch.utils.data where it defines the answer)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.utils.data import (
    BatchSampler,
    ChainDataset,
    ConcatDataset,
    IterableDataset,
    RandomSampler,
    SequentialSampler,
    StackDataset,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    random_split,
)


def test_random_split_counts_match_torch():
    torch = pytest.importorskip("torch")
    for n, lengths in [(10, [0.3, 0.3, 0.4]), (11, [0.5, 0.5]), (7, [0.1, 0.2, 0.7]), (5, [3, 2])]:
        ours = random_split(range(n), lengths, generator=cr.Generator().manual_seed(0))
        theirs = torch.utils.data.random_split(
            range(n), lengths, generator=torch.Generator().manual_seed(0)
        )
        assert [len(s) for s in ours] == [len(s) for s in theirs]


def test_random_split_is_a_partition_and_reproducible():
    ds = list(range(20))
    parts = random_split(ds, [0.5, 0.25, 0.25], generator=cr.Generator().manual_seed(4))
    items = [x for p in parts for x in p]
    assert sorted(items) == ds and items != ds
    again = random_split(ds, [10, 5, 5], generator=cr.Generator().manual_seed(4))
    assert [list(p) for p in again] == [list(p) for p in parts]
    cr.manual_seed(1)
    a = [list(p) for p in random_split(ds, [10, 10])]
    cr.manual_seed(1)
    assert a == [list(p) for p in random_split(ds, [10, 10])]
    assert all(isinstance(p, Subset) for p in parts)


def test_random_split_errors():
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(5), [2, 2])
    with pytest.raises(ValueError, match="Fraction at index 1 is not between 0 and 1"):
        random_split(range(5), [0.5, 1.5, -1.0])
    with pytest.warns(UserWarning, match="Length of split at index 1 is 0"):
        random_split(range(1), [0.5, 0.5])


def test_subset_concat_stack_chain():
    s = Subset(list("abcdef"), [5, 1])
    assert (len(s), s[0], s[1]) == (2, "f", "b")
    c = ConcatDataset([[1, 2], [3, 4, 5]])
    assert len(c) == 5 and [c[i] for i in range(-5, 5)] == [1, 2, 3, 4, 5] * 2
    with pytest.raises(IndexError):
        c[5]
    assert len(TensorDataset(cr.zeros(2)) + TensorDataset(cr.zeros(3))) == 5
    st = StackDataset(a=[1, 2], b=["x", "y"])
    assert st[1] == {"a": 2, "b": "y"}

    class Count(IterableDataset):
        def __init__(self, n):
            self.n = n

        def __iter__(self):
            return iter(range(self.n))

    assert list(Count(2) + Count(3)) == [0, 1, 0, 1, 2]
    assert isinstance(Count(1) + Count(1), ChainDataset)


def test_tensor_dataset_views_and_numpy_inputs():
    x = np.arange(6.0).reshape(3, 2)
    ds = TensorDataset(x, cr.tensor([1, 2, 3]))
    row, label = ds[-1]
    assert row.tolist() == [4.0, 5.0] and label.item() == 3
    rows, labels = ds[1:]
    assert rows.shape == (2, 2) and labels.tolist() == [2, 3]


def test_samplers_match_torch():
    torch = pytest.importorskip("torch")
    tud = torch.utils.data
    assert list(SequentialSampler(range(4))) == list(tud.SequentialSampler(range(4)))
    for bs in (1, 3, 4, 10):
        for drop in (False, True):
            ours = BatchSampler(SequentialSampler(range(10)), bs, drop)
            theirs = tud.BatchSampler(tud.SequentialSampler(range(10)), bs, drop)
            assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_random_sampler():
    g = cr.Generator().manual_seed(0)
    s = RandomSampler(range(6), generator=g)
    assert sorted(s) == list(range(6)) and len(s) == 6
    s = RandomSampler(range(4), num_samples=10, generator=g)
    drawn = list(s)
    assert len(s) == len(drawn) == 10
    assert all(sorted(drawn[i : i + 4]) == [0, 1, 2, 3] for i in (0, 4))
    r = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=g))
    assert len(r) == 50 and set(r) <= {0, 1, 2} and len(set(r)) == 3
    with pytest.raises(ValueError, match="num_samples should be a positive integer"):
        RandomSampler(range(3), num_samples=0)
    with pytest.raises(TypeError, match="replacement should be a boolean"):
        RandomSampler(range(3), replacement=1)
    a = list(RandomSampler(range(8), generator=cr.Generator().manual_seed(2)))
    assert a == list(RandomSampler(range(8), generator=cr.Generator().manual_seed(2)))


def test_subset_and_weighted_samplers():
    idx = [10, 20, 30, 40]
    s = SubsetRandomSampler(idx, generator=cr.Generator().manual_seed(0))
    assert sorted(s) == idx and len(s) == 4
    w = WeightedRandomSampler([0.0, 3.0, 1.0], 200, generator=cr.Generator().manual_seed(0))
    drawn = list(w)
    assert len(drawn) == 200 and 0 not in drawn and drawn.count(1) > drawn.count(2)
    no_repeat = list(WeightedRandomSampler([1, 1, 1], 3, replacement=False))
    assert sorted(no_repeat) == [0, 1, 2]
    with pytest.raises(RuntimeError, match="without replacement"):
        WeightedRandomSampler([1.0, 0.0], 2, replacement=False)
