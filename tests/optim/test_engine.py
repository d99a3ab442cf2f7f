"""The optimiser engine keeps a group's layout between steps: it must notice every change that
makes the layout stale (new arrays, replaced parameters or state, gradients that come and go)
and still follow PyTorch step for step."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule import backend
from chainrule.optim import _engine
from tests.optim.common import (
    assert_same,
    gradient_sequence,
    initial_arrays,
    set_grads,
    twin_params,
)

torch = pytest.importorskip("torch")


def _layout(opt):
    (lay,) = [v for k, v in opt._plans.items() if k[0] == "layout"]
    return lay


def _pair(name, **opts):
    ours, theirs = twin_params(initial_arrays())
    return (
        ours,
        theirs,
        getattr(cr.optim, name)(ours, **opts),
        getattr(torch.optim, name)(theirs, **opts),
    )


def _steps(ours, theirs, opt, ref, grads, skip=()):
    for g in grads:
        set_grads(ours, g, "chainrule", skip)
        set_grads(theirs, g, "torch", skip)
        opt.step()
        ref.step()
    assert_same(ours, theirs)


def test_layout_is_kept_while_gradients_are_new_arrays_each_step():
    ours, theirs, opt, ref = _pair("SGD", lr=0.05, momentum=0.9)
    grads = gradient_sequence(6)
    _steps(ours, theirs, opt, ref, grads[:3])
    lay = _layout(opt)
    _steps(ours, theirs, opt, ref, grads[3:])  # fresh gradient tensors at every step
    assert _layout(opt) is lay


@pytest.mark.parametrize("which", [0, 3], ids=["bucketed", "alone"])
def test_replaced_parameter_arrays_are_updated(which):
    ours, theirs, opt, ref = _pair("SGD", lr=0.05, momentum=0.9, nesterov=True)
    grads = gradient_sequence(8)
    _steps(ours, theirs, opt, ref, grads[:3])
    new = np.random.default_rng(5).standard_normal(tuple(theirs[which].shape))
    ours[which].data = cr.tensor(new.copy(), dtype=cr.float64)
    theirs[which].data = torch.tensor(new.copy(), dtype=torch.float64)
    _steps(ours, theirs, opt, ref, grads[3:])
    # non-contiguous arrays too
    ours[which].data = cr.tensor(new.T.copy(), dtype=cr.float64).T
    theirs[which].data = torch.tensor(new.T.copy(), dtype=torch.float64).T
    _steps(ours, theirs, opt, ref, grads[:4])


@pytest.mark.parametrize("which", [0, 3], ids=["bucketed", "alone"])
def test_replaced_or_edited_state_is_used(which):
    ours, theirs, opt, ref = _pair("Adam", lr=0.01)
    grads = gradient_sequence(12)
    _steps(ours, theirs, opt, ref, grads[:3])
    # only the step count of one parameter changed in place (a bucket's members then differ)
    opt.state[ours[which]]["step"].fill_(7.0)
    ref.state[theirs[which]]["step"].fill_(7.0)
    _steps(ours, theirs, opt, ref, grads[9:])
    # a new tensor for one state entry, an in-place edit of another, a changed step count
    for params, state, make in ((ours, opt.state, cr.zeros_like), (theirs, ref.state, None)):
        p = params[which]
        st = state[p]
        st["exp_avg"] = make(p) if make else torch.zeros_like(p)
        st["exp_avg_sq"].mul_(0.5)
        st["step"].fill_(7.0)
    _steps(ours, theirs, opt, ref, grads[3:6])
    # a whole new state dict for the parameter
    for params, opt_ in ((ours, opt), (theirs, ref)):
        opt_.state[params[which]] = {}
    _steps(ours, theirs, opt, ref, grads[6:])


def test_parameters_with_and_without_gradients_and_changed_groups():
    ours, theirs, opt, ref = _pair("SGD", lr=0.05, momentum=0.9)
    grads = gradient_sequence(12)
    _steps(ours, theirs, opt, ref, grads[:2])
    _steps(ours, theirs, opt, ref, grads[2:3], skip=(3,))
    _steps(ours, theirs, opt, ref, grads[3:4], skip=(1, 3))
    _steps(ours, theirs, opt, ref, grads[4:6])
    # momentum switched off and back on: the buffers are kept, as in PyTorch
    for o in (opt, ref):
        o.param_groups[0]["momentum"] = 0
    _steps(ours, theirs, opt, ref, grads[6:8])
    for o in (opt, ref):
        o.param_groups[0]["momentum"] = 0.5
    _steps(ours, theirs, opt, ref, grads[8:10])
    # a parameter added to the group's list in place
    extra = np.random.default_rng(6).standard_normal((4, 4))
    ours.append(cr.nn.Parameter(cr.tensor(extra.copy(), dtype=cr.float64)))
    theirs.append(torch.nn.Parameter(torch.tensor(extra.copy(), dtype=torch.float64)))
    opt.param_groups[0]["params"].append(ours[-1])
    ref.param_groups[0]["params"].append(theirs[-1])
    more = [g + [np.full((4, 4), 0.1 * i)] for i, g in enumerate(grads[10:])]
    _steps(ours, theirs, opt, ref, more)


def test_wrong_gradient_shape_is_caught_after_the_layout_is_kept():
    ours, theirs, opt, ref = _pair("SGD", lr=0.05, momentum=0.9)
    _steps(ours, theirs, opt, ref, gradient_sequence(3))
    ours[3].grad = cr.zeros(130 * 130, dtype=cr.float64)
    with pytest.raises(RuntimeError, match=r"shape \[130, 130\] has shape \[16900\]"):
        opt.step()


def test_thread_count_follows_chainrule_then_the_engine_override(monkeypatch):
    monkeypatch.setattr(_engine, "NUM_THREADS", None)
    monkeypatch.setattr(backend, "_threads_override", 3)  # as set_num_threads(3) leaves it
    assert _engine.num_threads() == 3
    monkeypatch.setattr(_engine, "NUM_THREADS", 1)
    assert _engine.num_threads() == 1


def test_threads_change_between_steps_and_errors_in_workers_propagate(monkeypatch):
    monkeypatch.setattr(_engine, "CHUNK", 1000)
    monkeypatch.setattr(_engine, "PARALLEL_MIN_NUMEL", 0)
    monkeypatch.setattr(_engine, "NUM_THREADS", 1)
    ours, theirs, opt, ref = _pair("Adam", lr=0.01, amsgrad=True)
    grads = gradient_sequence(9)
    _steps(ours, theirs, opt, ref, grads[:2])
    assert len(_layout(opt).segments) == 1
    monkeypatch.setattr(_engine, "NUM_THREADS", 3)
    _steps(ours, theirs, opt, ref, grads[2:4])
    assert len(_layout(opt).segments) == 3

    calls = []
    update = type(opt)._update

    def failing(self, group, xp, p, g, s, sc, tmp):
        calls.append(p.size)
        if len(calls) == 5:  # one call in a worker thread, the others go on
            raise FloatingPointError("boom")
        update(self, group, xp, p, g, s, sc, tmp)

    monkeypatch.setattr(type(opt), "_update", failing)
    set_grads(ours, grads[4], "chainrule")
    with pytest.raises(FloatingPointError, match="boom"):
        opt.step()
    monkeypatch.setattr(type(opt), "_update", update)
    # the step that failed half-way left the parameters half-updated: start both afresh
    for a, b in zip(ours, theirs):
        a.data = cr.tensor(b.detach().numpy().copy())
        opt.state[a] = {k: cr.tensor(v.numpy().copy()) for k, v in ref.state[b].items()}
    _steps(ours, theirs, opt, ref, grads[5:])


def test_buffers_the_engine_allocates_start_on_a_cache_line():
    for shape, dtype in (((3, 5), np.float32), (7, np.float64), ((), np.float32)):
        arr = _engine.empty(np, shape, dtype)
        assert arr.shape == (shape if isinstance(shape, tuple) else (shape,))
        assert arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.writeable
        assert arr.ctypes.data % backend.ALIGN == 0
    ours, theirs, opt, ref = _pair("SGD", lr=0.05, momentum=0.9)
    _steps(ours, theirs, opt, ref, gradient_sequence(2))
    for p in ours:
        assert opt.state[p]["momentum_buffer"]._data.ctypes.data % backend.ALIGN == 0 or (
            p.numel() <= _engine.FLAT_MAX_NUMEL  # a slice of a bucket's (aligned) buffer
        )
    scratch = _layout(opt).scratch.values()
    assert all(b.ctypes.data % backend.ALIGN == 0 for bufs in scratch for b in bufs)


def test_threads_let_nan_and_inf_through_silently(monkeypatch):
    monkeypatch.setattr(_engine, "CHUNK", 1000)
    monkeypatch.setattr(_engine, "PARALLEL_MIN_NUMEL", 0)
    monkeypatch.setattr(_engine, "NUM_THREADS", 3)
    ours, theirs, opt, ref = _pair("Adam", lr=0.01)
    grads = gradient_sequence(2)
    grads[0][3][100:110, 5] = np.inf  # in the part of the big parameter a worker updates
    grads[0][3][120, 7] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a floating-point warning in a worker would raise
        for g in grads:
            set_grads(ours, g, "chainrule")
            set_grads(theirs, g, "torch")
            opt.step()
            ref.step()
    a, b = ours[3].detach().numpy(), theirs[3].detach().numpy()
    assert np.isnan(a[100, 5]) and np.array_equal(np.isnan(a), np.isnan(b))
