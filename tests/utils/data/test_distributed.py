"""DistributedSampler: the same index sets as torch's, for every replica."""

from __future__ import annotations

import pytest

from chainrule.utils.data import DataLoader, DistributedSampler

COMBOS = [
    (n, replicas, drop_last)
    for n in (1, 5, 7, 10, 12)
    for replicas in (1, 2, 3, 4)
    for drop_last in (False, True)
    if not (drop_last and n < replicas)
]


@pytest.mark.parametrize("n, replicas, drop_last", COMBOS)
def test_index_sets_match_torch(n, replicas, drop_last):
    torch = pytest.importorskip("torch")
    for rank in range(replicas):
        ours = DistributedSampler(
            range(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last
        )
        theirs = torch.utils.data.DistributedSampler(
            range(n), num_replicas=replicas, rank=rank, shuffle=False, drop_last=drop_last
        )
        assert list(ours) == list(theirs), (n, replicas, rank, drop_last)
        assert len(ours) == len(theirs)


def test_shuffle_covers_dataset_and_agrees_across_replicas():
    n, replicas = 23, 4
    samplers = [DistributedSampler(range(n), replicas, r, seed=7) for r in range(replicas)]
    shares = [list(s) for s in samplers]
    assert len({len(s) for s in shares}) == 1
    assert set().union(*map(set, shares)) == set(range(n))
    again = [list(DistributedSampler(range(n), replicas, r, seed=7)) for r in range(replicas)]
    assert again == shares
    for s in samplers:
        s.set_epoch(1)
    assert [list(s) for s in samplers] != shares
    assert set().union(*(set(s) for s in samplers)) == set(range(n))


def test_drop_last_shares_are_disjoint():
    shares = [set(DistributedSampler(range(10), 3, r, drop_last=True)) for r in range(3)]
    assert all(len(s) == 3 for s in shares)
    assert len(set().union(*shares)) == 9


def test_errors_and_loader_use():
    with pytest.raises(
        ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"
    ):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(RuntimeError, match="pass num_replicas= and rank="):
        DistributedSampler(range(4))
    loader = DataLoader(list(range(8)), batch_size=2, sampler=DistributedSampler(range(8), 2, 1))
    assert len(loader) == 2
    assert sorted(v for b in loader for v in b.tolist()) == sorted(loader.sampler)
