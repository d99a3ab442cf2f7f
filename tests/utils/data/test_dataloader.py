"""DataLoader: batching, collation, shuffling and worker processes, checked against PyTorch."""

from __future__ import annotations

import collections
import os
import time

import numpy as np
import pytest

import chainrule as cr
from chainrule.utils import data as cdata
from chainrule.utils.data import (
    DataLoader,
    Dataset,
    IterableDataset,
    TensorDataset,
    default_collate,
    get_worker_info,
    random_split,
)
from tests.utils.data.compare import assert_batches_equal

Point = collections.namedtuple("Point", "x y")


def sample_sets():
    """Datasets (plain lists) whose samples exercise every collation rule."""
    rng = np.random.default_rng(0)
    return {
        "tuples": [
            (rng.standard_normal(3).astype(np.float32), i % 3, float(i) / 2, f"s{i}")
            for i in range(7)
        ],
        "dicts": [
            {"img": rng.integers(0, 255, (2, 2)).astype(np.uint8), "y": i, "meta": [i, -i]}
            for i in range(7)
        ],
        "namedtuples": [Point(np.float64(i), np.int32(2 * i)) for i in range(7)],
        "arrays": [rng.standard_normal((2, 3)) for _ in range(7)],
        "bools": [bool(i % 2) for i in range(7)],
        "nested_lists": [[[i, i + 1], [float(i)]] for i in range(7)],
    }


@pytest.mark.parametrize("name", list(sample_sets()))
@pytest.mark.parametrize("batch_size, drop_last", [(1, False), (3, False), (3, True), (7, True)])
def test_batches_match_torch(name, batch_size, drop_last):
    torch = pytest.importorskip("torch")
    ds = sample_sets()[name]
    ours = DataLoader(ds, batch_size=batch_size, drop_last=drop_last)
    theirs = torch.utils.data.DataLoader(ds, batch_size=batch_size, drop_last=drop_last)
    assert len(ours) == len(theirs)
    assert_batches_equal(ours, theirs)


@pytest.mark.parametrize("name", list(sample_sets()))
def test_no_auto_batching_matches_torch(name):
    torch = pytest.importorskip("torch")
    ds = sample_sets()[name]
    ours = DataLoader(ds, batch_size=None)
    theirs = torch.utils.data.DataLoader(ds, batch_size=None)
    assert len(ours) == len(theirs) == len(ds)
    assert_batches_equal(ours, theirs)


def test_tensor_samples_stack_like_torch():
    torch = pytest.importorskip("torch")
    x = np.arange(24, dtype=np.float32).reshape(6, 4)
    y = np.arange(6)
    ours = DataLoader(TensorDataset(cr.tensor(x), cr.tensor(y)), batch_size=4)
    theirs = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.tensor(x), torch.tensor(y)), batch_size=4
    )
    assert_batches_equal(ours, theirs)


def test_collate_errors_match_torch():
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([None, None])
    with pytest.raises(TypeError, match="default_collate: batch must contain"):
        default_collate([np.array(["a"]), np.array(["b"])])
    with pytest.raises(RuntimeError, match="each element in list of batch should be of equal"):
        default_collate([[1, 2], [3]])
    with pytest.raises(RuntimeError, match=r"stack expects each tensor to be equal size.*\[2\]"):
        default_collate([cr.zeros(3), cr.zeros(2)])


def test_collate_keeps_mapping_types():
    batch = default_collate([collections.OrderedDict(a=1.0), collections.OrderedDict(a=2.0)])
    assert type(batch) is collections.OrderedDict
    assert batch["a"].dtype == cr.float64


class Indexed(Dataset):
    """Sample ``i`` is ``i`` (so batches show the order the sampler chose)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def _order(loader):
    return [int(v) for batch in loader for v in batch.tolist()]


def test_shuffle_is_a_permutation_and_reproducible():
    ds = Indexed(50)
    cr.manual_seed(0)
    first = _order(DataLoader(ds, batch_size=8, shuffle=True))
    second_epoch = _order(DataLoader(ds, batch_size=8, shuffle=True))
    cr.manual_seed(0)
    again = _order(DataLoader(ds, batch_size=8, shuffle=True))
    assert sorted(first) == list(range(50))
    assert first != list(range(50))
    assert again == first
    assert second_epoch != first  # each epoch draws a new order

    gen_order = _order(
        DataLoader(ds, batch_size=8, shuffle=True, generator=cr.Generator().manual_seed(3))
    )
    assert gen_order == _order(
        DataLoader(ds, batch_size=8, shuffle=True, generator=cr.Generator().manual_seed(3))
    )
    assert sorted(gen_order) == list(range(50))


def test_each_epoch_of_one_loader_is_a_new_permutation():
    loader = DataLoader(
        Indexed(30), batch_size=7, shuffle=True, generator=cr.Generator().manual_seed(1)
    )
    a, b = _order(loader), _order(loader)
    assert sorted(a) == sorted(b) == list(range(30)) and a != b


def test_len_and_drop_last():
    assert len(DataLoader(Indexed(10), batch_size=3)) == 4
    assert len(DataLoader(Indexed(10), batch_size=3, drop_last=True)) == 3
    assert [len(b) for b in DataLoader(Indexed(10), batch_size=3, drop_last=True)] == [3, 3, 3]
    assert len(DataLoader(Indexed(10), batch_size=None)) == 10


def test_argument_errors():
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(Indexed(3), sampler=cdata.SequentialSampler(range(3)), shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(Indexed(3), batch_size=2, batch_sampler=[[0, 1]])
    with pytest.raises(ValueError, match="num_workers option should be non-negative"):
        DataLoader(Indexed(3), num_workers=-1)
    with pytest.raises(ValueError, match="persistent_workers option needs num_workers > 0"):
        DataLoader(Indexed(3), persistent_workers=True)
    with pytest.raises(ValueError, match="prefetch_factor"):
        DataLoader(Indexed(3), prefetch_factor=2)
    with pytest.raises(ValueError, match="expected unspecified shuffle option"):
        DataLoader(Stream(4), shuffle=True)
    with pytest.raises(ValueError, match="positive integer"):
        DataLoader(Indexed(3), batch_size=0)


def test_batch_sampler_and_sampler_arguments():
    loader = DataLoader(Indexed(6), batch_sampler=[[5, 0], [2]])
    assert [b.tolist() for b in loader] == [[5, 0], [2]]
    loader = DataLoader(Indexed(6), sampler=[4, 3, 2], batch_size=2)
    assert [b.tolist() for b in loader] == [[4, 3], [2]]


# ---- TensorDataset fast path ----------------------------------------------------------------


def _xy(n=37):
    x = cr.tensor(np.arange(n * 3, dtype=np.float32).reshape(n, 3))
    y = cr.tensor(np.arange(n) % 4)
    return TensorDataset(x, y)


def _slow(batch):
    return default_collate(batch)  # not ``default_collate`` itself: forces per-sample collation


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("drop_last", [False, True])
def test_fast_path_equals_per_sample_collation(shuffle, drop_last):
    ds = _xy()
    kw = dict(batch_size=5, shuffle=shuffle, drop_last=drop_last)
    fast = DataLoader(ds, generator=cr.Generator().manual_seed(0), **kw)
    slow = DataLoader(ds, generator=cr.Generator().manual_seed(0), collate_fn=_slow, **kw)
    assert_batches_equal(fast, slow)
    train, _ = random_split(ds, [30, 7], generator=cr.Generator().manual_seed(1))
    fast = DataLoader(train, generator=cr.Generator().manual_seed(0), **kw)
    slow = DataLoader(train, generator=cr.Generator().manual_seed(0), collate_fn=_slow, **kw)
    assert_batches_equal(fast, slow)


def test_fast_path_reads_no_single_samples(monkeypatch):
    calls = []
    original = TensorDataset.__getitem__

    def counting(self, i):
        calls.append(i)
        return original(self, i)

    monkeypatch.setattr(TensorDataset, "__getitem__", counting)
    batches = list(DataLoader(_xy(), batch_size=8))
    assert len(batches) == 5 and calls == []
    list(DataLoader(_xy(), batch_size=8, collate_fn=_slow))
    assert len(calls) == 37


def test_tensor_dataset_basics():
    ds = _xy(5)
    x, y = ds[2]
    assert x.tolist() == [6.0, 7.0, 8.0] and y.item() == 2 and y.ndim == 0
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(cr.zeros(3), cr.zeros(4))


# ---- worker processes -----------------------------------------------------------------------


class Slowish(Dataset):
    """Worker 0 is slow, so results arrive out of order unless the loader reorders them."""

    def __len__(self):
        return 24

    def __getitem__(self, i):
        info = get_worker_info()
        if info is not None and info.id == 0:
            time.sleep(0.002)
        return {"i": i, "x": np.full(2, i, dtype=np.float32)}


@pytest.mark.parametrize("shuffle", [False, True])
def test_workers_preserve_order(shuffle):
    kw = dict(batch_size=3, shuffle=shuffle)
    ref = list(DataLoader(Slowish(), generator=cr.Generator().manual_seed(5), **kw))
    got = list(DataLoader(Slowish(), num_workers=2, generator=cr.Generator().manual_seed(5), **kw))
    assert_batches_equal(got, ref)
    fast = list(DataLoader(_xy(), batch_size=4, num_workers=2))
    assert_batches_equal(fast, DataLoader(_xy(), batch_size=4))


class WhoAmI(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        info = get_worker_info()
        return (os.getpid(), info.id, info.num_workers, info.seed, _INIT.get("ran", -1))


_INIT: dict = {}


def _init(worker_id):
    _INIT["ran"] = worker_id


def test_worker_info_and_init_fn():
    assert get_worker_info() is None
    rows = [
        tuple(int(v) for v in sample)
        for batch in DataLoader(WhoAmI(), batch_size=None, num_workers=2, worker_init_fn=_init)
        for sample in [batch]
    ]
    pids = {r[0] for r in rows}
    assert len(pids) == 2 and os.getpid() not in pids
    for pid, wid, n, seed, ran in rows:
        assert n == 2 and ran == wid
    seeds = {r[1]: r[3] for r in rows}
    assert seeds[1] == seeds[0] + 1  # base seed + worker id


def test_persistent_workers_are_reused():
    loader = DataLoader(WhoAmI(), batch_size=None, num_workers=2, persistent_workers=True)
    first = {int(s[0]) for s in loader}
    second = {int(s[0]) for s in loader}
    assert first == second and len(first) == 2
    it = iter(loader)
    next(it)  # leave an epoch early: the next epoch must still be complete
    assert len(list(loader)) == 8


class Broken(Dataset):
    def __len__(self):
        return 6

    def __getitem__(self, i):
        if i == 4:
            raise KeyError("sample 4 is missing")
        return i


def test_worker_errors_are_raised_in_the_main_process():
    with pytest.raises(KeyError, match="in DataLoader worker process"):
        list(DataLoader(Broken(), batch_size=2, num_workers=2))


class Sleepy(Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        time.sleep(0.6)
        return i


def test_timeout():
    with pytest.raises(RuntimeError, match="DataLoader timed out after 0.2 seconds"):
        next(iter(DataLoader(Sleepy(), num_workers=1, timeout=0.2)))


# ---- iterable datasets ----------------------------------------------------------------------


class Stream(IterableDataset):
    """0 .. n-1, split between workers by ``get_worker_info`` (with the given module's)."""

    def __init__(self, n, info=get_worker_info):
        self.n = n
        self.info = info

    def __iter__(self):
        info = self.info()
        if info is None:
            return iter(range(self.n))
        return iter(range(info.id, self.n, info.num_workers))

    def __len__(self):
        return self.n


@pytest.mark.parametrize("num_workers", [0, 2])
@pytest.mark.parametrize("batch_size, drop_last", [(None, False), (4, False), (4, True)])
def test_iterable_dataset_matches_torch(num_workers, batch_size, drop_last):
    torch = pytest.importorskip("torch")
    ours = DataLoader(
        Stream(11), batch_size=batch_size, drop_last=drop_last, num_workers=num_workers
    )

    class TorchStream(torch.utils.data.IterableDataset):
        __init__ = Stream.__init__
        __iter__ = Stream.__iter__
        __len__ = Stream.__len__

    theirs = torch.utils.data.DataLoader(
        TorchStream(11, torch.utils.data.get_worker_info),
        batch_size=batch_size,
        drop_last=drop_last,
        num_workers=num_workers,
    )
    assert len(ours) == len(theirs)
    assert_batches_equal(ours, theirs)


def test_iterable_dataset_persistent_workers_restart_each_epoch():
    loader = DataLoader(Stream(9), batch_size=2, num_workers=2, persistent_workers=True)
    first = [b.tolist() for b in loader]
    second = [b.tolist() for b in loader]
    assert first == second and len(first) == 5  # worker 0: 0,2,4,6,8; worker 1: 1,3,5,7
    assert sorted(v for b in loader for v in b.tolist()) == list(range(9))


class Dies(Dataset):
    def __len__(self):
        return 4

    def __getitem__(self, i):
        if get_worker_info() is not None:
            os._exit(3)
        return i


def test_a_dead_worker_is_reported():
    with pytest.raises(RuntimeError, match=r"DataLoader worker \(pid \d+\) exited unexpectedly"):
        list(DataLoader(Dies(), num_workers=1))


@pytest.mark.parametrize("collate_fn", [None, _slow])
def test_gradients_flow_from_batches_to_dataset_tensors(collate_fn):
    x = cr.tensor(np.arange(12.0).reshape(6, 2), requires_grad=True)
    loader = DataLoader(TensorDataset(x, cr.arange(6)), batch_size=4, collate_fn=collate_fn)
    for xb, _ in loader:
        (xb * xb).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 2 * x.detach().numpy())
