"""Fetching batches, in the main process or in a DataLoader worker process.

A *fetcher* turns what the sampler yields (an index, or a list of indices for one batch) into a
collated batch. With ``num_workers > 0`` each worker process runs :func:`worker_loop`: it takes
``(task number, indices)`` from its own queue, fetches, and sends ``(task number, batch)`` back
on its own pipe; the main process puts the batches back in task order.
"""

from __future__ import annotations

import os
import queue
import random
import traceback
from collections.abc import Callable
from typing import Any

from chainrule.backend import default_generator
from chainrule.tensor import Tensor
from chainrule.utils.data.dataset import batch_fetcher

__all__ = ["WorkerInfo", "get_worker_info"]

_POLL_S = 1.0  # how often a waiting worker checks that the main process is still alive


class WorkerInfo:
    """What a worker process knows about itself: ``id``, ``num_workers``, ``seed`` and its
    copy of the ``dataset``. Read it with :func:`get_worker_info`."""

    __slots__ = ("id", "num_workers", "seed", "dataset")

    def __init__(self, id: int, num_workers: int, seed: int, dataset: Any):  # noqa: A002
        self.id = id
        self.num_workers = num_workers
        self.seed = seed
        self.dataset = dataset

    def __repr__(self) -> str:
        return (
            f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
            f"dataset={type(self.dataset).__name__})"
        )


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker process, its :class:`WorkerInfo`; ``None`` in the main
    process. An :class:`IterableDataset` uses it to give each worker its own share:

    >>> class Numbers(IterableDataset):  # doctest: +SKIP
    ...     def __iter__(self):
    ...         info = get_worker_info()
    ...         start, step = (0, 1) if info is None else (info.id, info.num_workers)
    ...         return iter(range(start, 100, step))
    """
    return _worker_info


# ---------------------------------------------------------------------------------------------
# fetchers
# ---------------------------------------------------------------------------------------------


class MapFetcher:
    """Batches from a map-style dataset: ``dataset[i]`` per index, then ``collate_fn``."""

    def __init__(self, dataset, auto_collation: bool, collate_fn: Callable, fast: bool):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        # one gather per tensor instead of one row at a time (equal to collating the rows)
        self.fast = batch_fetcher(dataset) if (fast and auto_collation) else None

    def fetch(self, index):
        if self.fast is not None:
            return self.fast(index)
        if not self.auto_collation:
            return self.collate_fn(self.dataset[index])
        many = getattr(self.dataset, "__getitems__", None)
        samples = many(index) if many is not None else [self.dataset[i] for i in index]
        return self.collate_fn(samples)


class IterableFetcher:
    """Batches from an iterable dataset: the next ``len(index)`` samples of its stream."""

    def __init__(self, dataset, auto_collation: bool, collate_fn: Callable, drop_last: bool):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate_fn = collate_fn
        self.drop_last = drop_last
        self._it = None
        self._ended = False

    def fetch(self, index):
        if self._ended:
            raise StopIteration
        if self._it is None:
            self._it = iter(self.dataset)
        if not self.auto_collation:
            try:
                return self.collate_fn(next(self._it))
            except StopIteration:
                self._ended = True
                raise
        samples = []
        for _ in index:
            try:
                samples.append(next(self._it))
            except StopIteration:
                self._ended = True
                break
        if not samples or (self.drop_last and len(samples) < len(index)):
            raise StopIteration
        return self.collate_fn(samples)


def make_fetcher(iterable: bool, dataset, auto_collation, collate_fn, drop_last, fast):
    if iterable:
        return IterableFetcher(dataset, auto_collation, collate_fn, drop_last)
    return MapFetcher(dataset, auto_collation, collate_fn, fast)


# ---------------------------------------------------------------------------------------------
# what travels between processes
# ---------------------------------------------------------------------------------------------


class Exhausted:
    """A worker's answer once its share of an iterable dataset has run out."""

    __slots__ = ()


class WorkerFailure:
    """An exception raised in a worker, carried to the main process and raised there."""

    def __init__(self, worker_id: int, exc: BaseException):
        self.worker_id = worker_id
        self.type_name = type(exc).__name__
        self.exc_type = type(exc)
        self.text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))

    def reraise(self):
        message = (
            f"Caught {self.type_name} in DataLoader worker process {self.worker_id}.\n"
            f"Original {self.text}"
        )
        try:
            err = self.exc_type(message)
        except Exception:  # noqa: BLE001 - types whose constructor takes other arguments
            err = RuntimeError(message)
        raise err


class _ShippedTensor:
    """A tensor on its way out of a worker: only its array crosses the pipe."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array


def pack(obj):
    """Replace tensors by their arrays for the trip to the main process."""
    if isinstance(obj, Tensor):
        return _ShippedTensor(obj._data)
    if type(obj) in (list, tuple):
        return type(obj)(pack(x) for x in obj)
    if type(obj) is dict:
        return {k: pack(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(pack(x) for x in obj))
    return obj


def unpack(obj):
    """Undo :func:`pack` in the main process."""
    if type(obj) is _ShippedTensor:
        return Tensor._make(obj.array)
    if type(obj) in (list, tuple):
        return type(obj)(unpack(x) for x in obj)
    if type(obj) is dict:
        return {k: unpack(v) for k, v in obj.items()}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(unpack(x) for x in obj))
    return obj


# ---------------------------------------------------------------------------------------------
# the worker process
# ---------------------------------------------------------------------------------------------


def worker_loop(
    iterable: bool,
    dataset,
    index_queue,
    conn,
    stop,
    auto_collation: bool,
    collate_fn: Callable,
    drop_last: bool,
    fast: bool,
    seed: int,
    init_fn: Callable | None,
    worker_id: int,
    num_workers: int,
    parent_pid: int,
) -> None:
    """The body of one worker process: runs until it receives ``None``, ``stop`` is set, or
    the main process dies."""
    global _worker_info
    try:
        # every worker draws its own random numbers (augmentation must differ between workers)
        random.seed(seed)
        default_generator.manual_seed(seed)
        _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
        failure = None
        fetcher = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = make_fetcher(iterable, dataset, auto_collation, collate_fn, drop_last, fast)
        except Exception as exc:  # noqa: BLE001 - reported to the main process
            failure = WorkerFailure(worker_id, exc)
        while True:
            try:
                task = index_queue.get(timeout=_POLL_S)
            except queue.Empty:
                # stop quietly when told to, or when the main process is gone
                if stop.is_set() or os.getppid() != parent_pid:
                    return
                continue
            if task is None or stop.is_set():
                return
            if task == "reset":  # a new epoch for persistent workers over an iterable dataset
                if failure is None:
                    fetcher = make_fetcher(
                        iterable, dataset, auto_collation, collate_fn, drop_last, fast
                    )
                continue
            number, index = task
            if failure is not None:
                result = failure
            else:
                try:
                    result = pack(fetcher.fetch(index))
                except StopIteration:
                    result = Exhausted()
                except Exception as exc:  # noqa: BLE001 - reported to the main process
                    result = WorkerFailure(worker_id, exc)
            try:
                conn.send((number, result))
            except (BrokenPipeError, ConnectionResetError, EOFError):
                return  # the main process stopped listening
            except Exception as exc:  # noqa: BLE001 - e.g. a sample that cannot be pickled
                conn.send((number, WorkerFailure(worker_id, exc)))
            del result
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the main one handles it
        pass
    finally:
        conn.close()
