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

Working all that out is Python bookkeeping that would cost a sizeable part of a step over a
small model, so it is done once and kept as a group's ``Layout``: the runs, their chunks with
their array views, and the scratch buffers. Each step only checks, with C-level loops over
the parameters, that nothing the layout depends on changed (the parameters, their arrays,
which ones have gradients, the state tensors, the gradients' shapes, the settings below); if
anything did, the layout is built again. Gradients are read afresh at every step (training
makes new gradient arrays at each step), and so are scalar state values such as ``step``.
"""

from __future__ import annotations

import os
import threading
from itertools import compress, repeat
from operator import attrgetter, is_, is_not, itemgetter, setitem

from chainrule import backend
from chainrule.tensor import Tensor, modes, user_frame

CHUNK = 1 << 18  # elements per call of the update rule on long arrays
FLAT_MAX_NUMEL = 16384  # parameters up to this size are bucketed
# below this many elements in a step, threads don't pay off (for a rule of typical cost: an
# optimiser's ``_parallel_weight`` scales the elements, SGD's cheap rule counts half)
PARALLEL_MIN_NUMEL = 1 << 18
NUM_THREADS: int | None = None  # None: chainrule.get_num_threads()


def num_threads() -> int:
    """Threads an optimiser step may use on the CPU (``NUM_THREADS`` overrides)."""
    if NUM_THREADS is not None:
        return max(1, int(NUM_THREADS))
    return backend.get_num_threads()


empty = backend.aligned_empty  # arrays this module allocates start on a cache line


def _owner(arr):
    """The array that owns ``arr``'s memory (what ``.base`` of any view of it is)."""
    return arr if arr.base is None else arr.base


_data_of = attrgetter("_data")
_grad_of = attrgetter("grad")
_vc_of = attrgetter("_vc")
_base_of = attrgetter("base")
_shape_of = attrgetter("shape")


def bump(p: Tensor, anomaly: bool) -> None:
    """Record the in-place change of a parameter (a backward that saved it will raise)."""
    vc = p._vc
    vc[0] += 1
    if anomaly:
        vc[1] = user_frame()


# ---------------------------------------------------------------------------------------------
# worker threads
# ---------------------------------------------------------------------------------------------


class _Worker:
    """A thread that runs one task at a time, handed over through two locks (a lock handoff
    costs a fraction of an executor's submit-and-wait, which matters at every step)."""

    __slots__ = ("go", "done", "task", "error")

    def __init__(self) -> None:
        self.go = threading.Lock()
        self.go.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.task = None
        self.error: BaseException | None = None
        threading.Thread(target=self._loop, name="chainrule-optim", daemon=True).start()

    def _loop(self) -> None:
        # error state is per thread: NaN/Inf propagate silently here too, as in the caller
        with backend.errstate(all="ignore"):
            while True:
                self.go.acquire()
                fn, args = self.task
                self.task = None
                try:
                    fn(*args)
                except BaseException as exc:  # handed to the caller, which re-raises it
                    self.error = exc
                self.done.release()

    def start(self, fn, *args) -> None:
        self.task = (fn, args)
        self.go.release()

    def wait(self) -> BaseException | None:
        """Wait for the task to end; the exception it raised, if any."""
        self.done.acquire()
        exc, self.error = self.error, None
        return exc


_workers: list[_Worker] = []
_workers_pid = 0


def _get_workers(n: int) -> list[_Worker]:
    global _workers, _workers_pid
    pid = os.getpid()
    if _workers_pid != pid:  # a forked child inherits the objects but not their threads
        _workers, _workers_pid = [], pid
    while len(_workers) < n:
        _workers.append(_Worker())
    return _workers[:n]


# ---------------------------------------------------------------------------------------------
# runs
# ---------------------------------------------------------------------------------------------


class Run:
    """One call site of the update rule: flat arrays, refreshed from the tensors by ``load``
    at each step and written back by ``finish``."""

    __slots__ = ("xp", "p", "g", "s", "scal", "sc0", "sc", "new", "size")

    def assembled(self, name: str):
        """A state array the rule created, put together from its chunks."""
        parts = self.new[name]
        if len(parts) == 1:
            return parts[0][2]
        out = empty(self.xp, self.size, parts[0][2].dtype)
        for lo, hi, arr in parts:
            out[lo:hi] = arr
        return out


class SingleRun(Run):
    """A run over one parameter's own arrays (its state tensors are updated in place)."""

    __slots__ = ("param", "state", "shape", "gi", "target", "work")

    def __init__(self, opt, p: Tensor, state: dict, gi: int):
        scalar_names = opt._scalar_names
        arr = p._data
        xp = self.xp = backend.array_module(arr)
        self.s, self.scal = {}, {}
        for name, value in state.items():
            if isinstance(value, Tensor):
                if name in scalar_names:
                    self.scal[name] = value._data
                else:
                    if not value._data.flags.c_contiguous:  # flat views must share its memory
                        value._data = xp.ascontiguousarray(value._data)
                    self.s[name] = value._data.reshape(-1)
        self.param, self.state, self.shape, self.gi = p, state, arr.shape, gi
        self.target = self.work = None
        if not arr.flags.c_contiguous:  # updated in a contiguous copy, then copied back
            self.target, self.work = arr, empty(xp, arr.shape, arr.dtype)
            arr = self.work
        self.p = arr.reshape(-1)
        self.size = self.p.size
        self.g = None
        self.sc0 = self.sc = {}
        self.new: dict[str, list] = {}

    def load(self, gdatas: list) -> None:
        g = gdatas[self.gi]
        if g.dtype != self.p.dtype or not g.flags.c_contiguous:
            g = self.xp.ascontiguousarray(g, dtype=self.p.dtype)
        self.g = g.reshape(-1)
        if self.work is not None:
            self.work[...] = self.target
        if self.scal:
            self.sc0 = {name: a[()] for name, a in self.scal.items()}

    def finish(self) -> bool:
        """Write back what the rule changed; True when it created state."""
        for name, value in self.sc.items():
            self.scal[name][...] = value
        if self.work is not None:
            self.target[...] = self.work
        bump(self.param, modes.anomaly)
        if not self.new:
            return False
        for name in self.new:
            self.state[name] = Tensor._make(self.assembled(name).reshape(self.shape))
        return True


class BucketRun(Run):
    """A run over a bucket's flat buffers; when done, the parameters get their new values."""

    __slots__ = ("bucket", "params", "pdatas", "states", "gget")

    def __init__(self, opt, bucket: Bucket, params: list, states: list, gidx: list):
        scalar_names = opt._scalar_names
        self.xp = backend.array_module(bucket.p_flat)
        self.bucket, self.params, self.states = bucket, params, states
        self.pdatas = [p._data for p in params]
        self.gget = itemgetter(*gidx)  # this bucket's gradients out of the group's list
        arrays = bucket.arrays
        self.s = {name: a for name, a in arrays.items() if name not in scalar_names}
        self.scal = {name: a for name, a in arrays.items() if name in scalar_names}
        self.p, self.g, self.size = bucket.p_flat, bucket.g_flat, bucket.total
        self.sc0 = self.sc = {}
        self.new = {}

    def load(self, gdatas: list) -> None:
        xp, bucket = self.xp, self.bucket
        if xp is backend.np:
            xp.concatenate(self.pdatas, axis=None, out=bucket.p_flat)
            xp.concatenate(self.gget(gdatas), axis=None, out=bucket.g_flat)
        else:
            xp.concatenate([a.reshape(-1) for a in self.pdatas], out=bucket.p_flat)
            xp.concatenate([a.reshape(-1) for a in self.gget(gdatas)], out=bucket.g_flat)
        if self.scal:
            self.sc0 = {name: a[0] for name, a in self.scal.items()}

    def finish(self) -> bool:
        for name, value in self.sc.items():
            self.scal[name][...] = value
        created = bool(self.new)
        if created:
            for name in self.new:
                self.bucket.adopt(name, self.assembled(name), self.states)
        list(map(setitem, self.pdatas, repeat(Ellipsis), self.bucket.p_views))
        if modes.anomaly:
            for p in self.params:
                bump(p, True)
        else:
            for vc in map(_vc_of, self.params):
                vc[0] += 1
        return created


# ---------------------------------------------------------------------------------------------
# buckets of small parameters
# ---------------------------------------------------------------------------------------------


class Bucket:
    """Small parameters of one group and dtype updated together through flat buffers."""

    __slots__ = ("sizes", "shapes", "total", "arrays", "p_flat", "g_flat", "p_views")

    def __init__(self, xp, params: list, dtype):
        self.sizes = [p._data.size for p in params]
        self.shapes = [p._data.shape for p in params]
        self.total = sum(self.sizes)
        self.arrays: dict = {}
        self.p_flat = empty(xp, self.total, dtype)
        self.g_flat = empty(xp, self.total, dtype)
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
        (checked with C-level loops)."""
        arrays = self.arrays
        if set(map(len, states)) != {len(arrays)}:
            return False
        try:
            for name, flat in arrays.items():
                views = map(_data_of, map(itemgetter(name), states))
                if not all(map(is_, map(_base_of, views), repeat(_owner(flat)))):
                    return False
        except (KeyError, AttributeError):
            return False
        return True

    def agrees(self, scalar_names: tuple) -> bool:
        """True while the members' scalar state (``step`` ...) is one value."""
        for name in scalar_names:
            flat = self.arrays.get(name)
            if flat is not None and not bool((flat == flat[0]).all()):
                return False
        return True


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
        for i, (_, state) in enumerate(items):
            names = tuple(n for n, v in state.items() if isinstance(v, Tensor))
            scalars = tuple(state[n]._data[()].item() if n in names else None for n in scalar_names)
            classes.setdefault((names, scalars, len(state) == len(names)), []).append(i)
        self.parts: list = []
        for (names, _, plain), indices in classes.items():
            if len(indices) == 1 or not plain:
                self.parts.append((None, indices))
                continue
            params = [items[i][0] for i in indices]
            states = [items[i][1] for i in indices]
            xp = backend.array_module(params[0]._data)
            bucket = Bucket(xp, params, dtype)
            for name in names:
                arrays = [state[name]._data for state in states]
                if name in scalar_names:
                    flat = backend.np.stack([a.reshape(()) for a in arrays])
                else:
                    flat = empty(xp, bucket.total, xp.result_type(*arrays))
                    xp.concatenate([a.reshape(-1) for a in arrays], out=flat)
                bucket.adopt(name, flat, states)
            self.parts.append((bucket, indices))

    def valid(self, items: list, scalar_names: tuple) -> bool:
        """True while every bucket still has its parameters' shapes, owns their state, and
        their scalar state still agrees."""
        for bucket, indices in self.parts:
            if bucket is None:
                continue
            if [items[i][0]._data.shape for i in indices] != bucket.shapes:
                return False
            if not bucket.owns([items[i][1] for i in indices]):
                return False
            if not bucket.agrees(scalar_names):
                return False
        return True


# ---------------------------------------------------------------------------------------------
# a group's layout
# ---------------------------------------------------------------------------------------------


class Layout:
    """Everything a step of one group needs that does not change from step to step.

    ``segments`` holds, per thread, the calls of the rule: ``(run, lo, hi, p, s, tmp)`` with
    ``hi = 0`` for a call over the whole run, ``p`` and ``s`` the views the call updates and
    ``tmp`` its scratch (None: allocated at each call, on an unchunked backend).
    """

    __slots__ = (
        "group",
        "config",
        "params",
        "has",
        "datas",
        "state_of",
        "state_keys",
        "state_values",
        "states",
        "lens",
        "names",
        "shapes",
        "runs",
        "buckets",
        "segments",
        "scratch",
        "reusable",
    )

    def valid(self, group: dict, config: tuple, params: list, has: tuple) -> bool:
        """True while the group, the settings, the parameter list and which parameters have
        gradients are the ones laid out."""
        return (
            self.group is group
            and self.config == config
            and self.has == has
            and len(params) == len(self.params)
            and all(map(is_, params, self.params))
        )

    def holds(self, datas: list, state_of: dict | None, scalar_names: tuple) -> bool:
        """True while the parameters' arrays and state tensors are the ones laid out.

        ``state_of`` (the optimiser's ``state``, None when the rule keeps none) is compared
        entry by entry, in order, with what it held: that needs no hashing of parameters.
        """
        if not all(map(is_, datas, self.datas)):
            return False
        if state_of is not None:
            if (
                state_of is not self.state_of
                or len(state_of) != len(self.state_keys)
                or not all(map(is_, state_of, self.state_keys))
                or not all(map(is_, state_of.values(), self.state_values))
            ):
                return False
            states = self.states
            if list(map(len, states)) != self.lens:
                return False
            try:
                for name, arrays in self.names:
                    if not all(map(is_, map(_data_of, map(itemgetter(name), states)), arrays)):
                        return False
            except (KeyError, AttributeError):  # an entry is no longer a tensor
                return False
        for bucket in self.buckets:
            if not bucket.agrees(scalar_names):
                return False
        return True


def _check_grad_shapes(opt, params: list, grads: list) -> None:
    for p, g in zip(params, grads):
        if g._data.shape != p._data.shape:
            raise RuntimeError(
                f"{type(opt).__name__}.step: the gradient of a parameter of shape "
                f"{list(p._data.shape)} has shape {list(g._data.shape)}"
            )


def _build(opt, group: dict, config: tuple, params: list, has: tuple, live: list, old):
    """Lay out a step over the parameters ``live`` (those of ``params`` with a gradient)."""
    stateless = config[-1]
    scalar_names = opt._scalar_names
    state_of = opt.state
    states = []
    for p in live:
        if stateless:  # like PyTorch, keep no (empty) state entry for the parameter
            state = {}
        else:
            state = state_of[p]
            if not state:
                opt._init_state(p, state, group)
        states.append(state)
    runs: list = []
    buckets: list = []
    small: dict[tuple, list[int]] = {}
    for i, p in enumerate(live):
        arr = p._data
        if arr.size <= FLAT_MAX_NUMEL:
            small.setdefault((arr.dtype, type(arr)), []).append(i)
        else:
            runs.append(SingleRun(opt, p, states[i], i))
    for key, indices in small.items():
        if len(indices) == 1:
            i = indices[0]
            runs.append(SingleRun(opt, live[i], states[i], i))
            continue
        items = [(live[i], states[i]) for i in indices]
        ids = tuple(id(p) for p, _ in items)
        pkey = (id(group), *key)
        plan = opt._plans.get(pkey)
        if plan is None or plan.ids != ids or not plan.valid(items, scalar_names):
            plan = opt._plans[pkey] = Plan(ids, items, scalar_names, key[0])
        for bucket, part in plan.parts:
            if bucket is None:
                runs.extend(
                    SingleRun(opt, live[indices[j]], states[indices[j]], indices[j]) for j in part
                )
            else:
                gidx = [indices[j] for j in part]
                members = [live[i] for i in gidx]
                runs.append(BucketRun(opt, bucket, members, [states[i] for i in gidx], gidx))
                buckets.append(bucket)
    lay = Layout()
    lay.group, lay.config, lay.params, lay.has = group, config, list(params), has
    lay.datas = [p._data for p in live]
    lay.shapes = [a.shape for a in lay.datas]
    lay.runs, lay.buckets = runs, buckets
    lay.states = None if stateless else states
    lay.state_of = None if stateless else state_of
    lay.state_keys = list(state_of)
    lay.state_values = list(state_of.values())
    lay.lens = [len(s) for s in states]
    # every tensor entry of every state, by name, when all states have the same entries
    # (otherwise the layout is used for this step only)
    keys = [tuple(n for n, v in s.items() if isinstance(v, Tensor)) for s in states]
    lay.reusable = stateless or len(set(keys)) <= 1
    lay.names = []
    if not stateless and keys and lay.reusable:
        lay.names = [(n, [s[n]._data for s in states]) for n in keys[0]]
    _lay_out_segments(opt, lay, config, old)
    return lay


def _lay_out_segments(opt, lay: Layout, config: tuple, old) -> None:
    """Cut the runs into chunks, share them among threads, give each its scratch views."""
    runs = lay.runs
    lay.segments, lay.scratch = [], {}
    if not runs:
        return
    numpy_only = all(r.xp is backend.np for r in runs)
    total = sum(r.size for r in runs)
    chunk, parallel_min, threads = config[0], config[2], config[3]
    if not numpy_only:
        threads, chunk = 1, max(r.size for r in runs)
    elif total * getattr(opt, "_parallel_weight", 1.0) < parallel_min:
        threads = 1
    per = -(-total // threads)
    cuts: list[list] = [[] for _ in range(threads)]
    seg, room = 0, per
    for run in runs:
        lo = 0
        while lo < run.size:
            take = min(run.size - lo, room, chunk)
            cuts[seg].append((run, lo, lo + take))
            lo += take
            room -= take
            if room == 0:
                seg, room = min(seg + 1, threads - 1), per
    n_tmp = opt._n_tmp
    old_scratch = old.scratch if old is not None else {}
    for k, cut in enumerate(c for c in cuts if c):
        need: dict[tuple, int] = {}
        for run, lo, hi in cut:
            if run.xp is backend.np:
                key = (k, run.p.dtype)
                need[key] = max(need.get(key, 0), hi - lo)
        for key, n in need.items():
            bufs = old_scratch.get(key)
            if bufs is None or len(bufs) < n_tmp or bufs[0].size < n:
                bufs = [empty(backend.np, n, key[1]) for _ in range(n_tmp)]
            lay.scratch[key] = bufs
        calls = []
        for run, lo, hi in cut:
            n = hi - lo
            tmp = None
            if run.xp is backend.np:
                bufs = lay.scratch[(k, run.p.dtype)]
                tmp = [b if b.size == n else b[:n] for b in bufs[:n_tmp]]
            if lo == 0 and hi == run.size:
                calls.append((run, 0, 0, run.p, run.s, tmp))
            else:
                s = {name: a[lo:hi] for name, a in run.s.items()}
                calls.append((run, lo, hi, run.p[lo:hi], s, tmp))
        lay.segments.append(calls)


# ---------------------------------------------------------------------------------------------
# the step
# ---------------------------------------------------------------------------------------------


def step_group(opt, group: dict) -> None:
    """Update every parameter of ``group`` that has a gradient."""
    params = group["params"]
    grads = list(map(_grad_of, params))
    has = tuple(map(is_not, grads, repeat(None)))
    if all(has):
        live = params
    else:
        live = list(compress(params, has))
        grads = list(compress(grads, has))
    if not live:
        return
    stateless = opt._stateless(group)
    config = (CHUNK, FLAT_MAX_NUMEL, PARALLEL_MIN_NUMEL, num_threads(), stateless)
    plans = opt._plans
    key = ("layout", id(group))
    lay = plans.get(key)
    gdatas = list(map(_data_of, grads))
    if (
        lay is None
        or not lay.valid(group, config, params, has)
        or not lay.holds(
            list(map(_data_of, live)), None if stateless else opt.state, opt._scalar_names
        )
        or list(map(_shape_of, gdatas)) != lay.shapes
    ):
        _check_grad_shapes(opt, live, grads)
        lay = _build(opt, group, config, params, has, live, lay)
        plans[key] = lay
    try:
        created = _execute(opt, group, lay, gdatas)
    except BaseException:
        lay.group = None  # half done: lay out afresh next time (reusing the scratch)
        raise
    if created or not lay.reusable:
        lay.group = None


def _execute(opt, group: dict, lay: Layout, gdatas: list) -> bool:
    """Run the update rule over the layout; True when it created state."""
    runs = lay.runs
    for run in runs:
        run.load(gdatas)
    segments = lay.segments
    if len(segments) == 1:
        _work(opt, group, segments[0])
    elif segments:
        workers = _get_workers(len(segments) - 1)
        for worker, calls in zip(workers, segments[1:]):
            worker.start(_work, opt, group, calls)
        try:
            _work(opt, group, segments[0])
        finally:
            errors = [worker.wait() for worker in workers]  # every worker, even on an error
        for exc in errors:
            if exc is not None:
                raise exc
    created = False
    for run in runs:
        if run.finish():
            created = True
    return created


def _work(opt, group: dict, calls: list) -> None:
    update = opt._update
    n_tmp = opt._n_tmp
    for run, lo, hi, p, s, tmp in calls:
        xp = run.xp
        if hi:
            g = run.g[lo:hi]
        else:
            g = run.g
        if tmp is None:
            tmp = [xp.empty(p.size, dtype=p.dtype) for _ in range(n_tmp)]
        sc = dict(run.sc0)
        ss = dict(s)
        update(group, xp, p, g, ss, sc, tmp)
        run.sc = sc  # every chunk computes the same new scalar state
        if len(ss) != len(s):
            for name, arr in ss.items():
                if name not in s:
                    run.new.setdefault(name, []).append((lo, hi or run.size, arr))
