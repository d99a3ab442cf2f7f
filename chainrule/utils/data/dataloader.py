"""``DataLoader``: batches from a dataset, in order or shuffled, in this process or in workers.

The loader asks its batch sampler for the indices of each batch, reads those samples and
collates them. With ``num_workers > 0`` the reading happens in worker processes (forked where
the platform allows); batches still arrive in the sampler's order.
"""

from __future__ import annotations

import itertools
import multiprocessing
import multiprocessing.connection
import os
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any

from chainrule.backend import Generator, default_generator
from chainrule.utils.data import _worker
from chainrule.utils.data.collate import default_collate, default_convert
from chainrule.utils.data.dataset import Dataset, IterableDataset
from chainrule.utils.data.sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]

_POLL_S = 1.0  # how often the main process checks on its workers while waiting
_JOIN_S = 5.0  # how long shutdown waits for a worker before terminating it


class _InfiniteConstantSampler(Sampler):
    """The "sampler" of an iterable dataset: the dataset decides what comes next."""

    def __iter__(self):
        return itertools.repeat(None)


def _default_context():
    # fork starts workers fast and needs no pickling of the dataset; macOS and Windows use
    # their default (spawn), where datasets and functions must be importable
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


class DataLoader:
    """Iterate over a dataset in batches.

    ``DataLoader(dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
    num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
    worker_init_fn=None, generator=None, persistent_workers=False, prefetch_factor=None)``
    has PyTorch's arguments and meaning:

    * ``shuffle=True`` visits a new random permutation each epoch, drawn from ``generator`` (or
      chainrule's default generator, so ``chainrule.manual_seed`` makes it reproducible);
    * ``collate_fn`` (default :func:`default_collate`) builds a batch from a list of samples;
      ``batch_size=None`` turns batching off (samples pass through :func:`default_convert`);
    * ``num_workers > 0`` reads batches in that many worker processes, ``prefetch_factor``
      batches ahead per worker (default 2); batches arrive in order; ``worker_init_fn(id)``
      runs first in each worker and :func:`get_worker_info` tells a worker who it is;
      ``persistent_workers`` keeps them between epochs; ``timeout`` (seconds, 0 = wait
      forever) bounds the wait for one batch;
    * ``pin_memory`` is accepted and has no effect (NumPy arrays need no pinning).

    Over a :class:`TensorDataset` (or a :class:`Subset` of one) with the default collation,
    each batch is gathered with one index per tensor instead of sample by sample.

    >>> import chainrule as cr
    >>> from chainrule.utils.data import TensorDataset
    >>> ds = TensorDataset(cr.arange(10.0).reshape(5, 2), cr.arange(5))
    >>> loader = DataLoader(ds, batch_size=2)
    >>> len(loader)
    3
    >>> x, y = next(iter(loader)); y
    tensor([0, 1])
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | None = None,
        batch_sampler: Sampler | None = None,
        num_workers: int = 0,
        collate_fn: Callable | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context=None,
        generator: Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ):
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                "num_workers option should be non-negative; use num_workers=0 to disable "
                "multiprocessing."
            )
        if timeout < 0:
            raise ValueError("timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "prefetch_factor option could only be specified in multiprocessing. Let "
                "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
            )
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 1:
            raise ValueError("prefetch_factor option should be a positive integer")
        if persistent_workers and num_workers == 0:
            raise ValueError("persistent_workers option needs num_workers > 0")

        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            for name, value in (
                ("shuffle", shuffle),
                ("sampler", sampler),
                ("batch_sampler", batch_sampler),
            ):
                if value not in (None, False):
                    raise ValueError(
                        f"DataLoader with IterableDataset: expected unspecified {name} option, "
                        f"but got {name}={value!r}"
                    )
        elif sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")

        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size = None
            drop_last = False
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually exclusive with "
                "drop_last"
            )

        if sampler is None:
            if self._iterable:
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.prefetch_factor = prefetch_factor
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._iterator: _MultiProcessIter | None = None

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self):
        return self.batch_sampler if self._auto_collation else self.sampler

    def _fetcher_args(self) -> tuple:
        fast = self.collate_fn is default_collate
        return (
            self._iterable,
            self.dataset,
            self._auto_collation,
            self.collate_fn,
            self.drop_last,
            fast,
        )

    def __iter__(self) -> Iterator:
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if not self.persistent_workers:
            return _MultiProcessIter(self)
        if self._iterator is None or self._iterator._closed:  # first epoch, or workers lost
            self._iterator = _MultiProcessIter(self)
        else:
            self._iterator._reset(self, first=False)
        return self._iterator

    def __len__(self) -> int:
        if self._iterable:
            n = len(self.dataset)  # TypeError when the stream has no length, as in PyTorch
            if self.batch_size is not None:
                n = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
            return n
        return len(self._index_sampler)

    def __repr__(self) -> str:
        return (
            f"DataLoader(dataset={type(self.dataset).__name__}, batch_size={self.batch_size}, "
            f"num_workers={self.num_workers})"
        )


def _draw_seed(loader: DataLoader) -> int:
    gen = loader.generator if loader.generator is not None else default_generator
    return int(gen.integers(0, 2**62, ()))


class _BaseIter:
    def __init__(self, loader: DataLoader):
        # a weak reference: a persistent loader holds its iterator, and a cycle would leave the
        # workers' shutdown to the garbage collector
        self._loader_ref = weakref.ref(loader)
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        # one draw per epoch whatever the worker count, so shuffling (drawn next, from the
        # same generator) is the same with and without workers; it seeds the workers
        self._base_seed = _draw_seed(loader)
        self._start(loader)
        self._reset(loader, first=True)

    def _start(self, loader: DataLoader) -> None:
        pass

    def _reset(self, loader: DataLoader, first: bool) -> None:
        if not first:
            self._base_seed = _draw_seed(loader)
        self._sampler_iter = iter(loader._index_sampler)

    def __iter__(self):
        return self

    def __len__(self) -> int:
        loader = self._loader_ref()
        if loader is None:
            raise TypeError("the DataLoader of this iterator no longer exists")
        return len(loader)


class _SingleProcessIter(_BaseIter):
    def __init__(self, loader: DataLoader):
        super().__init__(loader)
        self._fetcher = _worker.make_fetcher(*loader._fetcher_args())

    def __next__(self) -> Any:
        index = next(self._sampler_iter)
        return self._fetcher.fetch(index)


class _MultiProcessIter(_BaseIter):
    """Workers fetch batches; tasks go out round-robin and results come back in task order.

    At most ``prefetch_factor * num_workers`` tasks are outstanding. Each worker answers every
    task it is given (a batch, an :class:`Exhausted` marker for an iterable dataset that ran
    out, or a failure), so the main process always knows what to wait for.
    """

    _closed = True  # until the workers exist, there is nothing to shut down

    def _start(self, loader: DataLoader) -> None:
        ctx = loader.multiprocessing_context
        if isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        ctx = ctx or _default_context()
        n = loader.num_workers
        iterable, dataset, *fetch_rest = loader._fetcher_args()
        self._workers = []
        self._queues = []
        self._conns = []
        # set at shutdown: a worker that misses its ``None`` (or is mid-task) still stops
        self._stop = ctx.Event()
        self._closed = False
        for wid in range(n):
            q = ctx.Queue()
            q.cancel_join_thread()  # never block interpreter exit on undelivered tasks
            reader, writer = ctx.Pipe(duplex=False)
            p = ctx.Process(
                target=_worker.worker_loop,
                args=(
                    iterable,
                    dataset,
                    q,
                    writer,
                    self._stop,
                    *fetch_rest,
                    self._base_seed + wid,
                    loader.worker_init_fn,
                    wid,
                    n,
                    os.getpid(),
                ),
                daemon=True,
            )
            p.start()
            # close our copy of the write end before the next fork, so that a dead worker's
            # pipe reports end-of-file instead of waiting forever
            writer.close()
            self._workers.append(p)
            self._queues.append(q)
            self._conns.append(reader)

    def _reset(self, loader: DataLoader, first: bool) -> None:
        if not first:
            self._drain()
            if loader._iterable:
                for q in self._queues:
                    q.put("reset")
        super()._reset(loader, first)
        self._sent = self._received = 0
        self._owner: dict[int, int] = {}  # task number -> worker
        self._done: dict[int, Any] = {}  # results that arrived ahead of their turn
        self._active = [True] * len(self._workers)
        self._turn = itertools.cycle(range(len(self._workers)))
        for _ in range(loader.prefetch_factor * len(self._workers)):
            if not self._put_task():
                break

    def _put_task(self) -> bool:
        if not any(self._active):
            return False
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return False
        wid = next(self._turn)
        while not self._active[wid]:
            wid = next(self._turn)
        self._queues[wid].put((self._sent, index))
        self._owner[self._sent] = wid
        self._sent += 1
        return True

    def __next__(self) -> Any:
        while True:
            if self._received == self._sent and not self._put_task():
                if not self._persistent:
                    self._shutdown()
                raise StopIteration
            number = self._received
            if number not in self._done:
                got, result = self._receive()
                self._done[got] = result
                continue
            result = self._done.pop(number)
            wid = self._owner.pop(number)
            self._received += 1
            if isinstance(result, _worker.Exhausted):
                self._active[wid] = False
                continue
            self._put_task()  # keep the pipeline full
            if isinstance(result, _worker.WorkerFailure):
                result.reraise()
            return _worker.unpack(result)

    def _receive(self) -> tuple[int, Any]:
        timeout = self._timeout
        deadline = time.monotonic() + timeout if timeout > 0 else None
        while True:
            wait = (
                _POLL_S if deadline is None else max(0.0, min(_POLL_S, deadline - time.monotonic()))
            )
            ready = multiprocessing.connection.wait(self._conns, timeout=wait)
            for conn in ready:
                try:
                    return conn.recv()
                except (EOFError, OSError):
                    worker = self._workers[self._conns.index(conn)]
                    worker.join(timeout=_POLL_S)
                    self._shutdown()
                    raise RuntimeError(
                        f"DataLoader worker (pid {worker.pid}) exited unexpectedly with exit "
                        f"code {worker.exitcode}"
                    ) from None
            if deadline is not None and time.monotonic() >= deadline:
                raise RuntimeError(f"DataLoader timed out after {timeout} seconds")

    def _drain(self) -> None:
        """Collect (and drop) what is still in flight from an epoch left early."""
        while self._received < self._sent:
            if self._received not in self._done:
                got, result = self._receive()
                self._done[got] = result
                continue
            self._done.pop(self._received)
            self._received += 1

    def _shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        for q in self._queues:
            try:
                q.put(None)
            except (OSError, ValueError):
                pass
        # closing our read ends unblocks a worker stuck sending a batch nobody will read
        for conn in self._conns:
            conn.close()
        for p in self._workers:
            p.join(timeout=_JOIN_S)
            if p.is_alive():
                p.terminate()
                p.join()
        for q in self._queues:
            q.close()

    def __del__(self):
        try:
            self._shutdown()
        except Exception:  # noqa: BLE001 - at interpreter exit the modules may be half gone
            pass
