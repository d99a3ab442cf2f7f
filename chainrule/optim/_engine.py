"""How an optimiser's update rule is run over the parameters of a group, fast.

An update rule (``Optimizer._update``) works on arrays: the parameter, its gradient, its
state arrays and scratch arrays, all of one shape. Every rule is elementwise, so it may be run
on any slicing of those arrays and give the same numbers. This module uses that freedom:

* small parameters of one dtype are *bucketed*: gathered into one flat buffer, with their
  state kept in flat buffers (each state tensor views its slice), so one call of the rule
  replaces a Python loop of a dozen tiny array operations per parameter;
* long arrays are cut into *chunks* of at most ``CHUNK`` elements, so the rule's temporaries
  live in small scratch buffers allocated once (allocating and first touching a fresh
  multi-megabyte temporary costs about as much as the arithmetic done in it);
* when there is enough work, the chunks are shared among ``num_threads()`` threads (NumPy
  releases the GIL inside its loops), like PyTorch's intra-op parallelism.

A *run* is one call site of the rule: one big parameter, or one bucket's flat buffers.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from operator import attrgetter, is_, itemgetter

from chainrule import backend
from chainrule.tensor import Tensor, modes, user_frame

CHUNK = 1 << 18  # elements per call of the update rule on long arrays
FLAT_MAX_NUMEL = 16384  # parameters up to this size are bucketed
PARALLEL_MIN_NUMEL = 1 << 18  # below this many elements in a step, threads don't pay off
NUM_THREADS: int | None = None  # None: OMP_NUM_THREADS, else the CPUs this process may use


def num_threads() -> int:
    """Threads an optimiser step may use on the CPU (``NUM_THREADS`` overrides)."""
    if NUM_THREADS is not None:
        return max(1, int(NUM_THREADS))
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return min(int(env), 8)
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - platforms without affinity
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


_data_of = attrgetter("_data")
_base_of = attrgetter("base")
_vc_of = attrgetter("_vc")
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_local = threading.local()


_pool_pid = 0


def _executor(workers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size, _pool_pid
    pid = os.getpid()
    if _pool is None or _pool_size != workers or _pool_pid != pid:
        if _pool is not None and _pool_pid == pid:
            _pool.shutdown(wait=False)
        # a forked child inherits the pool object but not its threads: it builds its own
        _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="chainrule-optim")
        _pool_size, _pool_pid = workers, pid
    return _pool


def _scratch(xp, dtype, n: int, count: int) -> list:
    """``count`` arrays of ``n`` elements, reused between calls (one set per thread)."""
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    key = (dtype, xp.__name__)
    bufs = cache.get(key)
    if bufs is None or len(bufs) < count or bufs[0].size < n:
        size = max(n, bufs[0].size if bufs else 0)
        if size > CHUNK:  # a one-off (unchunked backend): don't keep it
            return [xp.empty(n, dtype=dtype) for _ in range(count)]
        bufs = cache[key] = [xp.empty(size, dtype=dtype) for _ in range(max(count, 3))]
    return [b[:n] for b in bufs[:count]]


def bump(p: Tensor, anomaly: bool) -> None:
    """Record the in-place change of a parameter (a backward that saved it will raise)."""
    vc = p._vc
    vc[0] += 1
    if anomaly:
        vc[1] = user_frame()


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------


class Run:
    """One call site of the update rule: flat arrays plus what to do when it is done."""

    __slots__ = ("p", "g", "s", "sc0", "sc", "new", "size", "finish", "target")

    def __init__(self, p, g, s: dict, sc: dict, finish, target=None):
        self.p = p  # flat, contiguous
        self.g = g
        self.s = s  # name -> flat state array
        self.sc0 = sc  # scalar state before the step
        self.sc = sc
        self.new: dict[str, list] = {}  # state created by the rule: name -> [(lo, hi, array)]
        self.size = p.size
        self.finish = finish
        self.target = target  # a non-contiguous parameter array to copy the result back into

    def assembled(self, xp, name: str):
        """A state array the rule created, put together from its chunks."""
        parts = self.new[name]
        if len(parts) == 1:
            return parts[0][2]
        out = xp.empty(self.size, dtype=parts[0][2].dtype)
        for lo, hi, arr in parts:
            out[lo:hi] = arr
        return out


def single_run(opt, p: Tensor, g, state: dict) -> Run:
    """A run over one parameter's own arrays (its state tensors are updated in place)."""
    scalar_names = opt._scalar_names
    s, sc = {}, {}
    arr = p._data
    xp = backend.array_module(arr)
    for name, value in state.items():
        if isinstance(value, Tensor):
            if name in scalar_names:
                sc[name] = value._data[()]
            else:
                if not value._data.flags.c_contiguous:  # flat views must share its memory
                    value._data = xp.ascontiguousarray(value._data)
                s[name] = value._data.reshape(-1)
    if g.dtype != arr.dtype or not g.flags.c_contiguous:
        g = xp.ascontiguousarray(g, dtype=arr.dtype)
    target = None
    if not arr.flags.c_contiguous:
        target, arr = arr, xp.ascontiguousarray(arr)
    shape = p._data.shape

    def finish(run: Run) -> None:
        for name, value in run.sc.items():
            state[name]._data[...] = value
        for name in run.new:
            state[name] = Tensor._make(run.assembled(xp, name).reshape(shape))
        if run.target is not None:
            run.target[...] = run.p.reshape(shape)
        bump(p, modes.anomaly)

    return Run(arr.reshape(-1), g.reshape(-1), s, sc, finish, target)


def execute(opt, group: dict, runs: list) -> None:
    """Run the update rule over every run, in chunks, on one or several threads."""
    if not runs:
        return
    xp = backend.array_module(runs[0].p)
    total = sum(r.size for r in runs)
    threads = num_threads() if xp is backend.np and total >= PARALLEL_MIN_NUMEL else 1
    chunk = CHUNK if xp is backend.np else max(r.size for r in runs)
    segments = _segments(runs, total, threads, chunk)
    if len(segments) == 1:
        _work(opt, group, xp, runs, segments[0])
    else:
        pool = _executor(len(segments) - 1)
        futures = [pool.submit(_work_quiet, opt, group, xp, runs, seg) for seg in segments[1:]]
        _work(opt, group, xp, runs, segments[0])
        for f in futures:
            f.result()
    for run in runs:
        run.finish(run)


def _segments(runs: list, total: int, parts: int, chunk: int) -> list:
    """Cut the runs into ``parts`` lists of ``(run index, lo, hi)`` of about equal size."""
    per = -(-total // parts)
    segments: list[list] = [[] for _ in range(parts)]
    seg, room = 0, per
    for i, run in enumerate(runs):
        lo = 0
        while lo < run.size:
            take = min(run.size - lo, room, chunk)
            segments[seg].append((i, lo, lo + take))
            lo += take
            room -= take
            if room == 0:
                seg, room = min(seg + 1, parts - 1), per
    return [s for s in segments if s]


def _work_quiet(opt, group, xp, runs, segment) -> None:
    # error state is per thread: NaN/Inf propagate silently here too
    with backend.errstate(all="ignore"):
        _work(opt, group, xp, runs, segment)


def _work(opt, group: dict, xp, runs: list, segment: list) -> None:
    update = opt._update
    n_tmp = opt._n_tmp
    for i, lo, hi in segment:
        run = runs[i]
        if lo == 0 and hi == run.size:
            p, g = run.p, run.g
            s = dict(run.s)
        else:
            p, g = run.p[lo:hi], run.g[lo:hi]
            s = {name: arr[lo:hi] for name, arr in run.s.items()}
        sc = dict(run.sc0)
        tmp = _scratch(xp, p.dtype, hi - lo, n_tmp)
        update(group, xp, p, g, s, sc, tmp)
        run.sc = sc  # every chunk computes the same new scalar state
        if len(s) != len(run.s):
            for name, arr in s.items():
                if name not in run.s:
                    run.new.setdefault(name, []).append((lo, hi, arr))


# ---------------------------------------------------------------------------------------------
# buckets of small parameters
# ---------------------------------------------------------------------------------------------


class Bucket:
    """Small parameters of one group and dtype updated together through flat buffers."""

    __slots__ = ("sizes", "shapes", "total", "arrays", "p_flat", "g_flat", "p_views")

    def __init__(self, xp, items: list, dtype):
        self.sizes = [p._data.size for p, _, _ in items]
        self.shapes = [p._data.shape for p, _, _ in items]
        self.total = sum(self.sizes)
        self.arrays: dict = {}
        self.p_flat = xp.empty(self.total, dtype=dtype)
        self.g_flat = xp.empty(self.total, dtype=dtype)
        self.p_views = self.views(self.p_flat)

    def views(self, flat) -> list:
        out, off = [], 0
        for n, shape in zip(self.sizes, self.shapes):
            out.append(flat[off : off + n].reshape(shape))
            off += n
        return out

    def adopt(self, name: str, flat, states: list) -> None:
        """Make ``flat`` the storage of state ``name``; each parameter's tensor views a slice."""
        self.arrays[name] = flat
        if flat.size == len(states) and flat.size != self.total:  # scalar state: one each
            views = [flat[i : i + 1].reshape(()) for i in range(len(states))]
        else:
            views = self.views(flat)
        for state, view in zip(states, views):
            t = state.get(name)
            if isinstance(t, Tensor):
                t._data = view  # the same tensor object, now backed by the flat buffer
            else:
                state[name] = Tensor._make(view)

    def owns(self, states: list) -> bool:
        """True when every state tensor of every parameter still views this bucket's buffers
        (checked with C-level loops: this runs at every step)."""
        arrays = self.arrays
        if set(map(len, states)) != {len(arrays)}:
            return False
        try:
            for name, flat in arrays.items():
                views = map(_data_of, map(itemgetter(name), states))
                if not all(map(is_, map(_base_of, views), repeat(flat))):
                    return False
        except (KeyError, AttributeError):
            return False
        return True

    def run(self, opt, items: list) -> Run:
        """A run over the flat buffers; when done, the parameters get their new values."""
        scalar_names = opt._scalar_names
        arrays = self.arrays
        xp = backend.array_module(self.p_flat)
        params = [p for p, _, _ in items]
        if xp is backend.np:
            xp.concatenate([p._data for p in params], axis=None, out=self.p_flat)
            xp.concatenate([g._data for _, g, _ in items], axis=None, out=self.g_flat)
        else:
            xp.concatenate([p._data.reshape(-1) for p in params], out=self.p_flat)
            xp.concatenate([g._data.reshape(-1) for _, g, _ in items], out=self.g_flat)
        sc = {name: arrays[name][0] for name in scalar_names if name in arrays}
        s = {name: a for name, a in arrays.items() if name not in scalar_names}

        def finish(run: Run) -> None:
            for name, value in run.sc.items():
                arrays[name][...] = value
            if run.new:
                states = [state for _, _, state in items]
                for name in run.new:
                    self.adopt(name, run.assembled(xp, name), states)
            for p, view in zip(params, self.p_views):
                p._data[...] = view
            if modes.anomaly:
                for p in params:
                    bump(p, True)
            else:
                for vc in map(_vc_of, params):
                    vc[0] += 1

        return Run(self.p_flat, self.g_flat, s, sc, finish)


class Plan:
    """How one group's small parameters of one dtype split into buckets.

    Parameters share a bucket when their state has the same entries and their scalar state
    agrees (a parameter that missed steps has a smaller ``step``, so other bias corrections).
    ``parts`` lists ``(bucket, indices)``; ``bucket`` is None for parameters updated alone.
    """

    __slots__ = ("ids", "parts")

    def __init__(self, ids: tuple, items: list, scalar_names: tuple, dtype):
        self.ids = ids
        classes: dict[tuple, list[int]] = {}
        for i, (_, _, state) in enumerate(items):
            names = tuple(n for n, v in state.items() if isinstance(v, Tensor))
            scalars = tuple(state[n]._data[()].item() if n in names else None for n in scalar_names)
            classes.setdefault((names, scalars, len(state) == len(names)), []).append(i)
        self.parts: list = []
        for (names, _, plain), indices in classes.items():
            if len(indices) == 1 or not plain:
                self.parts.append((None, indices))
                continue
            part = [items[i] for i in indices]
            states = [state for _, _, state in part]
            xp = backend.array_module(part[0][0]._data)
            bucket = Bucket(xp, part, dtype)
            for name in names:
                arrays = [state[name]._data for state in states]
                if name in scalar_names:
                    flat = backend.np.stack([a.reshape(()) for a in arrays])
                else:
                    flat = xp.concatenate([a.reshape(-1) for a in arrays])
                bucket.adopt(name, flat, states)
            self.parts.append((bucket, indices))

    def valid(self, items: list, scalar_names: tuple) -> bool:
        """True while every bucket still owns its parameters' state and their scalar state
        still agrees."""
        for bucket, indices in self.parts:
            if bucket is None:
                continue
            if not bucket.owns([items[i][2] for i in indices]):
                return False
            for name in scalar_names:
                flat = bucket.arrays.get(name)
                if flat is not None and not bool((flat == flat[0]).all()):
                    return False
        return True


def group_runs(opt, group: dict) -> list:
    """The runs that update every parameter of ``group`` that has a gradient."""
    small: dict[tuple, list] = {}
    runs = []
    state_of = opt.state
    stateless = opt._stateless(group)
    for p in group["params"]:
        g = p.grad
        if g is None:
            continue
        if stateless:  # like PyTorch, keep no (empty) state entry for the parameter
            state = {}
        else:
            state = state_of[p]
            if not state:
                opt._init_state(p, state, group)
        arr = p._data
        if g._data.shape != arr.shape:
            raise RuntimeError(
                f"{type(opt).__name__}.step: the gradient of a parameter of shape "
                f"{list(arr.shape)} has shape {list(g._data.shape)}"
            )
        if arr.size <= FLAT_MAX_NUMEL:
            small.setdefault((arr.dtype, type(arr)), []).append((p, g, state))
        else:
            runs.append(single_run(opt, p, g._data, state))
    for key, items in small.items():
        if len(items) == 1:
            p, g, state = items[0]
            runs.append(single_run(opt, p, g._data, state))
            continue
        ids = tuple(id(p) for p, _, _ in items)
        pkey = (id(group), *key)
        plan = opt._plans.get(pkey)
        if plan is None or plan.ids != ids or not plan.valid(items, opt._scalar_names):
            plan = opt._plans[pkey] = Plan(ids, items, opt._scalar_names, key[0])
        for bucket, indices in plan.parts:
            part = [items[i] for i in indices]
            if bucket is None:
                runs.extend(single_run(opt, p, g._data, state) for p, g, state in part)
            else:
                runs.append(bucket.run(opt, part))
    return runs
