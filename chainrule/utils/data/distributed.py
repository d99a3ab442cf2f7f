"""``DistributedSampler``: each of ``num_replicas`` processes visits its own share of a dataset.

The shares are interleaved (replica ``r`` takes positions ``r, r + R, r + 2R, ...`` of the
epoch's order) and equal in size: without ``drop_last`` the order is padded by repeating its
beginning, with ``drop_last`` the tail that does not divide evenly is left out. Every replica
must use the same ``seed`` and call :meth:`~DistributedSampler.set_epoch` with the same epoch so
that they shuffle identically.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from chainrule.backend import Generator
from chainrule.utils.data.dataset import Dataset
from chainrule.utils.data.sampler import Sampler

__all__ = ["DistributedSampler"]


def _process_group() -> tuple[int, int]:
    """``(world size, rank)`` of the initialised process group, or a clear error."""
    try:
        from chainrule import distributed
    except ImportError:
        distributed = None
    ready = distributed is not None and getattr(distributed, "is_initialized", lambda: False)()
    if not ready:
        raise RuntimeError(
            "DistributedSampler: num_replicas and rank were not given and no process group is "
            "initialised; call chainrule.distributed.init_process_group() first or pass "
            "num_replicas= and rank="
        )
    return distributed.get_world_size(), distributed.get_rank()


class DistributedSampler(Sampler):
    """The indices of ``dataset`` that replica ``rank`` of ``num_replicas`` visits.

    ``len(sampler)`` is the same on every replica: ``ceil(len(dataset) / num_replicas)``, or
    ``floor`` with ``drop_last=True``. With ``shuffle`` (the default) the order is a
    permutation seeded by ``seed + epoch``.

    >>> [list(DistributedSampler(range(5), num_replicas=2, rank=r, shuffle=False))
    ...  for r in (0, 1)]
    [[0, 2, 4], [1, 3, 0]]
    """

    def __init__(
        self,
        dataset: Dataset,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ):
        if num_replicas is None or rank is None:
            world, my_rank = _process_group()
            num_replicas = world if num_replicas is None else num_replicas
            rank = my_rank if rank is None else rank
        if num_replicas < 1:
            raise ValueError(f"num_replicas should be a positive integer, got {num_replicas}")
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        self.shuffle = shuffle
        self.seed = seed
        n = len(dataset)
        if drop_last and n % num_replicas:
            # the largest equal share that needs no padding
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            order = Generator().manual_seed(self.seed + self.epoch).permutation(n).tolist()
        else:
            order = list(range(n))
        if self.drop_last:
            order = order[: self.total_size]
        elif order:
            missing = self.total_size - len(order)
            repeats = math.ceil(missing / len(order))
            order += (order * repeats)[:missing]
        return iter(order[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (call it at the start of each epoch, on every replica): with
        ``shuffle`` each epoch visits a different order."""
        self.epoch = epoch
