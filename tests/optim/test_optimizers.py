"""Every optimiser follows PyTorch's trajectory step for step, and saves/resumes like it."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import chainrule as cr
from tests.optim.common import (
    assert_same,
    gradient_sequence,
    initial_arrays,
    set_grads,
    twin_params,
)

torch = pytest.importorskip("torch")

# (optimiser, options): option combinations PyTorch accepts, covering every flag
CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "momentum": 0.8, "weight_decay": 0.01, "maximize": True}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.1, "nesterov": True, "momentum": 0.5}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("Adam", {"lr": 0.02, "betas": (0.3, 0.9), "eps": 1e-6, "maximize": True, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.2, "amsgrad": True, "maximize": True}),
    ("RMSprop", {}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.9}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True, "weight_decay": 0.1}),
    ("RMSprop", {"lr": 0.01, "alpha": 0.3, "maximize": True}),
    ("Adagrad", {}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "initial_accumulator_value": 0.5}),
    ("Adagrad", {"lr": 0.1, "weight_decay": 0.1, "eps": 1e-6, "maximize": True}),
    ("Adadelta", {}),
    ("Adadelta", {"lr": 0.5, "rho": 0.6, "eps": 1e-4, "weight_decay": 0.1}),
    ("Adadelta", {"maximize": True}),
    ("Adamax", {}),
    ("Adamax", {"lr": 0.01, "betas": (0.8, 0.95), "weight_decay": 0.1, "maximize": True}),
    ("NAdam", {}),
    ("NAdam", {"lr": 0.01, "momentum_decay": 0.01, "weight_decay": 0.1}),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("NAdam", {"lr": 0.01, "betas": (0.6, 0.99), "maximize": True}),
]
IDS = [
    f"{name}-{'-'.join(f'{k}={v}' for k, v in opts.items()) or 'defaults'}" for name, opts in CASES
]
STEPS = 25
SHAPES_T = [(200, 100), (3, 4), (5, 2)]  # stored transposed below


def _make(name, ours, theirs, opts):
    return getattr(cr.optim, name)(ours, **opts), getattr(torch.optim, name)(theirs, **opts)


@pytest.mark.parametrize("skips", [False, True], ids=["all-grads", "some-missing"])
@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_trajectory_matches_torch(name, opts, skips):
    ours, theirs = twin_params(initial_arrays())
    opt, ref = _make(name, ours, theirs, opts)
    for step, grads in enumerate(gradient_sequence(STEPS)):
        # parameter 1 misses some steps: it is skipped, and its step count falls behind
        skip = (1,) if skips and step in (4, 5, 11) else ()
        set_grads(ours, grads, "chainrule", skip)
        set_grads(theirs, grads, "torch", skip)
        opt.step()
        ref.step()
        assert_same(ours, theirs, where=f"after step {step + 1}")


@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_chunked_and_threaded_updates_match_torch(name, opts, monkeypatch):
    """Long arrays are cut into chunks shared among threads: same numbers."""
    from chainrule.optim import _engine

    monkeypatch.setattr(_engine, "CHUNK", 1000)
    monkeypatch.setattr(_engine, "PARALLEL_MIN_NUMEL", 0)
    monkeypatch.setattr(_engine, "NUM_THREADS", 3)
    ours, theirs = twin_params(initial_arrays())
    opt, ref = _make(name, ours, theirs, opts)
    for step, grads in enumerate(gradient_sequence(8)):
        skip = (1,) if step == 3 else ()
        set_grads(ours, grads, "chainrule", skip)
        set_grads(theirs, grads, "torch", skip)
        opt.step()
        ref.step()
        assert_same(ours, theirs, where=f"after step {step + 1}")
    _assert_same_structure(opt.state_dict(), ref.state_dict())


@pytest.mark.parametrize("name,opts", CASES, ids=IDS)
def test_state_dict_resume_matches_torch(name, opts):
    """Save mid-training, load into a fresh optimiser over copies: same continuation (also
    when the state dict comes from PyTorch)."""
    arrays = initial_arrays()
    ours, theirs = twin_params(arrays)
    opt, ref = _make(name, ours, theirs, opts)
    grads = gradient_sequence(2 * 10)
    for g in grads[:10]:
        set_grads(ours, g, "chainrule")
        set_grads(theirs, g, "torch")
        opt.step()
        ref.step()
    sd, ref_sd = opt.state_dict(), ref.state_dict()
    _assert_same_structure(sd, ref_sd)

    resumed = [cr.nn.Parameter(p.detach().clone()) for p in ours]
    opt2 = getattr(cr.optim, name)(resumed, lr=123.0)  # options come back from the state dict
    opt2.load_state_dict(sd)
    from_torch = [cr.nn.Parameter(p.detach().clone()) for p in ours]
    opt3 = getattr(cr.optim, name)(from_torch)
    opt3.load_state_dict(ref_sd)
    assert opt2.param_groups[0]["lr"] == opts.get("lr", opt.defaults["lr"])
    for g in grads[10:]:
        for params, o in ((ours, opt), (resumed, opt2), (from_torch, opt3)):
            set_grads(params, g, "chainrule")
            o.step()
        set_grads(theirs, g, "torch")
        ref.step()
        assert_same(ours, theirs)
        assert_same(resumed, theirs)
        assert_same(from_torch, theirs)


def _assert_same_structure(sd, ref_sd):
    assert set(sd) == {"state", "param_groups"}
    assert sorted(sd["state"]) == sorted(ref_sd["state"])
    for k, v in sd["state"].items():
        assert sorted(v) == sorted(ref_sd["state"][k]), f"state names of parameter {k}"
        for name, value in v.items():
            theirs = ref_sd["state"][k][name]
            if isinstance(theirs, torch.Tensor):
                assert isinstance(value, cr.Tensor), name
                assert tuple(value.shape) == tuple(theirs.shape), name
                np.testing.assert_allclose(value.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)
    assert len(sd["param_groups"]) == len(ref_sd["param_groups"])
    for ours, theirs in zip(sd["param_groups"], ref_sd["param_groups"]):
        assert sorted(ours) == sorted(theirs)
        assert ours["params"] == theirs["params"]


@pytest.mark.parametrize(
    "name,group_opts",
    [
        ("SGD", ({"lr": 0.01, "momentum": 0.9}, {"lr": 0.1, "nesterov": True, "momentum": 0.5})),
        ("Adam", ({"lr": 0.01, "amsgrad": True}, {"betas": (0.5, 0.9), "weight_decay": 0.1})),
        ("RMSprop", ({"centered": True}, {"momentum": 0.9, "lr": 0.001})),
        ("Adagrad", ({"lr_decay": 0.1}, {"initial_accumulator_value": 1.0})),
        ("NAdam", ({"momentum_decay": 0.01}, {"decoupled_weight_decay": True, "weight_decay": 1})),
    ],
)
def test_parameter_groups_with_their_own_options(name, group_opts):
    ours, theirs = twin_params(initial_arrays())
    a, b = group_opts

    def groups(params):
        return [{"params": params[:2], **a}, {"params": params[2:], **b}]

    opt = getattr(cr.optim, name)(groups(ours), lr=0.02)
    ref = getattr(torch.optim, name)(groups(theirs), lr=0.02)
    for grads in gradient_sequence(20):
        set_grads(ours, grads, "chainrule")
        set_grads(theirs, grads, "torch")
        opt.step()
        ref.step()
    assert_same(ours, theirs)
    _assert_same_structure(opt.state_dict(), ref.state_dict())


def test_add_param_group_later_and_named_params():
    ours, theirs = twin_params(initial_arrays())
    opt = cr.optim.Adam([("w0", ours[0]), ("w1", ours[1])], lr=0.01)
    ref = torch.optim.Adam([("w0", theirs[0]), ("w1", theirs[1])], lr=0.01)
    grads = gradient_sequence(12)
    for step, g in enumerate(grads):
        if step == 5:
            opt.add_param_group({"params": [("w2", ours[2]), ("w3", ours[3])], "lr": 0.1})
            ref.add_param_group({"params": [("w2", theirs[2]), ("w3", theirs[3])], "lr": 0.1})
        set_grads(ours, g, "chainrule")
        set_grads(theirs, g, "torch")
        opt.step()
        ref.step()
    assert_same(ours, theirs)
    sd = opt.state_dict()
    _assert_same_structure(sd, ref.state_dict())
    assert sd["param_groups"][1]["param_names"] == ["w2", "w3"]


def test_step_counts_are_per_parameter_and_float32_tensors():
    ours, _ = twin_params(initial_arrays())
    opt = cr.optim.Adam(ours)
    for step, grads in enumerate(gradient_sequence(6)):
        set_grads(ours, grads, "chainrule", skip=(0,) if step < 2 else ())
        opt.step()
    steps = [opt.state[p]["step"] for p in ours]
    assert all(isinstance(s, cr.Tensor) and s.dtype == cr.float32 for s in steps)
    assert [s.item() for s in steps] == [4.0, 6.0, 6.0, 6.0]


def test_parameters_without_gradients_are_untouched():
    ours, _ = twin_params(initial_arrays())
    before = [p.detach().clone() for p in ours]
    opt = cr.optim.SGD(ours, lr=0.1, momentum=0.9, weight_decay=0.1)
    set_grads(ours, gradient_sequence(1)[0], "chainrule", skip=(0, 3))
    opt.step()
    assert np.array_equal(ours[0].detach().numpy(), before[0].numpy())
    assert np.array_equal(ours[3].detach().numpy(), before[3].numpy())
    assert not np.array_equal(ours[1].detach().numpy(), before[1].numpy())
    assert ours[0] not in opt.state and ours[3] not in opt.state


def test_sgd_without_momentum_keeps_no_state():
    ours, theirs = twin_params(initial_arrays())
    opt, ref = _make("SGD", ours, theirs, {"lr": 0.1})
    set_grads(ours, gradient_sequence(1)[0], "chainrule")
    set_grads(theirs, gradient_sequence(1)[0], "torch")
    opt.step()
    ref.step()
    assert opt.state_dict()["state"] == {} == ref.state_dict()["state"]


@pytest.mark.parametrize(
    "name", ["SGD", "Adam", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam"]
)
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_and_inf_gradients_propagate_like_torch(name, bad):
    opts = {"lr": 0.1, "momentum": 0.9} if name in ("SGD", "RMSprop") else {"lr": 0.1}
    ours, theirs = twin_params(initial_arrays())
    opt, ref = _make(name, ours, theirs, opts)
    grads = gradient_sequence(2)
    grads[0][0][1, 2] = bad
    grads[0][3][7, 7] = bad
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no floating-point warnings either
        for g in grads:
            set_grads(ours, g, "chainrule")
            set_grads(theirs, g, "torch")
            opt.step()
            ref.step()
    for a, b in zip(ours, theirs):
        a, b = a.detach().numpy(), b.detach().numpy()
        assert np.array_equal(np.isnan(a), np.isnan(b))
        assert np.array_equal(np.isinf(a), np.isinf(b))
        np.testing.assert_allclose(a[np.isfinite(a)], b[np.isfinite(b)], rtol=1e-10)
    assert not np.isfinite(ours[0].detach().numpy()[1, 2])


def test_flat_and_one_by_one_updates_agree():
    """Many small parameters (one flat buffer) give the same numbers as big ones (alone)."""
    from chainrule.optim import _engine as base

    arrays = initial_arrays(shapes=[(7,)] * 40)
    grads = gradient_sequence(8, shapes=[(7,)] * 40)
    results = []
    for limit in (base.FLAT_MAX_NUMEL, 0):
        params = [cr.nn.Parameter(cr.tensor(a, dtype=cr.float64)) for a in arrays]
        opt = cr.optim.NAdam(params, lr=0.01, weight_decay=0.1)
        old, base.FLAT_MAX_NUMEL = base.FLAT_MAX_NUMEL, limit
        try:
            for step, g in enumerate(grads):
                set_grads(params, g, "chainrule", skip=(3,) if step == 2 else ())
                opt.step()
        finally:
            base.FLAT_MAX_NUMEL = old
        results.append([p.detach().numpy().copy() for p in params])
        # with the flat path, state tensors view one buffer (also after parameter 3 fell a
        # step behind the others, which then form a bucket of their own)
        base_of = [opt.state[p]["exp_avg"]._data.base for p in params]
        if limit:
            assert base_of[0] is not None and all(b is base_of[0] for b in base_of[4:])
            assert base_of[3] is not base_of[0]
        else:
            assert all(b is None for b in base_of)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


def test_state_dict_survives_chainrule_save_format_types():
    """The state dict holds only tensors, numbers, strings, lists and dicts (saveable)."""
    ours, _ = twin_params(initial_arrays())
    opt = cr.optim.Adam(ours, amsgrad=True)
    set_grads(ours, gradient_sequence(1)[0], "chainrule")
    opt.step()

    def check(v):
        if isinstance(v, dict):
            for x in v.values():
                check(x)
        elif isinstance(v, (list, tuple)):
            for x in v:
                check(x)
        else:
            assert v is None or isinstance(v, (cr.Tensor, int, float, str, bool)), type(v)

    check(opt.state_dict())


def test_step_records_no_history_and_bumps_versions():
    ours, _ = twin_params(initial_arrays())
    opt = cr.optim.Adam(ours, lr=0.1)
    x = cr.tensor(np.ones((4, 3)), dtype=cr.float64)
    loss = (x @ ours[0]).sum()  # saves ours[0] for backward
    loss.backward(retain_graph=True)
    for p in ours[1:]:
        p.grad = cr.zeros_like(p)
    version = ours[0]._version
    opt.step()
    assert ours[0].grad_fn is None and ours[0].is_leaf
    assert ours[0]._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_zero_grad():
    ours, _ = twin_params(initial_arrays())
    opt = cr.optim.SGD(ours, lr=0.1)
    set_grads(ours, gradient_sequence(1)[0], "chainrule")
    grad = ours[0].grad
    opt.zero_grad(set_to_none=False)
    assert ours[0].grad is grad and not grad.numpy().any()
    opt.zero_grad()
    assert all(p.grad is None for p in ours)


def test_step_hooks_and_closure():
    ours, _ = twin_params(initial_arrays())
    opt = cr.optim.SGD(ours, lr=0.1)
    calls = []
    h1 = opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    h2 = opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))

    def closure():
        calls.append("closure")
        assert cr.is_grad_enabled()
        opt.zero_grad()
        loss = (ours[0] * ours[0]).sum()
        loss.backward()
        return loss

    with cr.no_grad():
        loss = opt.step(closure)
    assert calls == ["pre", "closure", "post"]
    assert isinstance(loss, cr.Tensor)
    h1.remove()
    h2.remove()
    opt.step()
    assert calls == ["pre", "closure", "post"]


def test_errors_match_torch():
    p = cr.nn.Parameter(cr.zeros(2))
    with pytest.raises(ValueError, match="Invalid learning rate"):
        cr.optim.Adam([p], lr=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1"):
        cr.optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov momentum requires"):
        cr.optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="empty parameter list"):
        cr.optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        cr.optim.SGD(p, lr=0.1)
    with pytest.raises(TypeError, match="ordered collections"):
        cr.optim.SGD([{"params": {p}}], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        cr.optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(ValueError, match="non-leaf"):
        cr.optim.SGD([p * 2], lr=0.1)
    opt = cr.optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="different number of parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    p.grad = cr.zeros(3)
    with pytest.raises(RuntimeError, match=r"shape \[3\]"):
        opt.step()


def test_repr_lists_group_options():
    opt = cr.optim.SGD([cr.nn.Parameter(cr.zeros(1))], lr=0.5, momentum=0.9)
    text = repr(opt)
    assert text.startswith("SGD (\nParameter Group 0\n")
    assert "    lr: 0.5\n" in text and "    momentum: 0.9\n" in text and text.endswith(")")


def test_non_contiguous_parameters_and_float32():
    """Transposed (non-contiguous) parameters, float32: still PyTorch's numbers."""
    arrays = [np.random.default_rng(3).standard_normal(s).astype(np.float32) for s in SHAPES_T]
    ours = [cr.nn.Parameter(cr.tensor(a).T) for a in arrays] + [cr.nn.Parameter(cr.ones(4))]
    theirs = [torch.nn.Parameter(torch.tensor(a).T) for a in arrays]
    theirs.append(torch.nn.Parameter(torch.ones(4)))
    assert not ours[0]._data.flags.c_contiguous
    opt = cr.optim.Adam(ours, lr=0.01, weight_decay=0.1)
    ref = torch.optim.Adam(theirs, lr=0.01, weight_decay=0.1)
    rng = np.random.default_rng(4)
    for _ in range(10):
        grads = [rng.standard_normal(tuple(p.shape)).astype(np.float32) for p in theirs]
        for p, q, g in zip(ours, theirs, grads):
            p.grad = cr.tensor(g)
            q.grad = torch.tensor(g)
        opt.step()
        ref.step()
    assert_same(ours, theirs, rtol=2e-5, atol=1e-6)
    assert all(opt.state[p]["exp_avg"].dtype == cr.float32 for p in ours)
