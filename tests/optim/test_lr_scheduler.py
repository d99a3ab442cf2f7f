"""Every learning-rate schedule gives PyTorch's rates (and momenta) step for step."""

from __future__ import annotations

import math
import warnings

import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

STEPS = 50


def _optimizers(kind="SGD", groups=2):
    """A chainrule and a PyTorch optimiser with ``groups`` parameter groups of different lr."""
    out = []
    for m in (cr, torch):
        params = [
            (cr.nn.Parameter if m is cr else torch.nn.Parameter)(m.zeros(2)) for _ in range(groups)
        ]
        specs = [{"params": [p], "lr": 0.1 * (i + 1)} for i, p in enumerate(params)]
        if kind == "SGD":
            out.append(m.optim.SGD(specs, lr=0.1, momentum=0.9))
        else:
            out.append(getattr(m.optim, kind)(specs, lr=0.1))
    return out


def _lambda(epoch):
    return 0.95**epoch


class _Warmup:
    """A callable object (its attributes are saved in LambdaLR's state dict)."""

    def __init__(self, n):
        self.n = n

    def __call__(self, epoch):
        return min(1.0, (epoch + 1) / self.n)


# name -> builder(lr_scheduler module, optimizer) -> list of schedulers to step
SCHEDULES = {
    "StepLR": lambda S, o: [S.StepLR(o, step_size=7, gamma=0.5)],
    "MultiStepLR": lambda S, o: [S.MultiStepLR(o, milestones=[5, 12, 12, 30], gamma=0.3)],
    "ExponentialLR": lambda S, o: [S.ExponentialLR(o, gamma=0.93)],
    "CosineAnnealingLR": lambda S, o: [S.CosineAnnealingLR(o, T_max=12, eta_min=0.001)],
    "CosineAnnealingLR-no-floor": lambda S, o: [S.CosineAnnealingLR(o, T_max=20)],
    "LinearLR": lambda S, o: [S.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=9)],
    "LinearLR-decay": lambda S, o: [
        S.LinearLR(o, start_factor=1.0, end_factor=0.0, total_iters=40)
    ],
    "ConstantLR": lambda S, o: [S.ConstantLR(o, factor=0.25, total_iters=6)],
    "LambdaLR": lambda S, o: [S.LambdaLR(o, _lambda)],
    "LambdaLR-per-group": lambda S, o: [S.LambdaLR(o, [_lambda, _Warmup(10)])],
    "MultiplicativeLR": lambda S, o: [S.MultiplicativeLR(o, lambda e: 0.97)],
    "PolynomialLR": lambda S, o: [S.PolynomialLR(o, total_iters=30, power=2.0)],
    "OneCycleLR-cos": lambda S, o: [S.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=STEPS)],
    "OneCycleLR-linear-3phase": lambda S, o: [
        S.OneCycleLR(
            o,
            max_lr=0.8,
            epochs=5,
            steps_per_epoch=10,
            anneal_strategy="linear",
            three_phase=True,
            pct_start=0.25,
            div_factor=10.0,
            final_div_factor=100.0,
        )
    ],
    "OneCycleLR-no-momentum": lambda S, o: [
        S.OneCycleLR(o, max_lr=0.3, total_steps=STEPS, cycle_momentum=False, pct_start=0.4)
    ],
    "two-chained": lambda S, o: [
        S.StepLR(o, step_size=5, gamma=0.5),
        S.CosineAnnealingLR(o, T_max=15),
    ],
    "ChainedScheduler": lambda S, o: [
        S.ChainedScheduler([S.ConstantLR(o, factor=0.5, total_iters=4), S.ExponentialLR(o, 0.9)])
    ],
    "SequentialLR": lambda S, o: [
        S.SequentialLR(
            o,
            [S.LinearLR(o, start_factor=0.1, total_iters=5), S.CosineAnnealingLR(o, T_max=20)],
            milestones=[5],
        )
    ],
    "SequentialLR-three": lambda S, o: [
        S.SequentialLR(
            o,
            [
                S.ConstantLR(o, factor=0.5, total_iters=3),
                S.ExponentialLR(o, gamma=0.9),
                S.StepLR(o, step_size=4, gamma=0.5),
            ],
            milestones=[6, 20],
        )
    ],
}


def _groups_snapshot(opt):
    return [
        (float(g["lr"]), g.get("momentum"), tuple(g["betas"]) if "betas" in g else None)
        for g in opt.param_groups
    ]


def _assert_close_lists(ours, theirs, where):
    assert len(ours) == len(theirs), where
    for a, b in zip(ours, theirs):
        if isinstance(a, tuple):
            _assert_close_lists(a, b, where)
        elif a is None or b is None:
            assert a is b, where
        else:
            assert math.isclose(float(a), float(b), rel_tol=1e-13, abs_tol=1e-16), (where, a, b)


def _run(name, kind, ours, theirs, steps, schedulers=None):
    ours_s, theirs_s = schedulers or (
        SCHEDULES[name](cr.optim.lr_scheduler, ours),
        SCHEDULES[name](torch.optim.lr_scheduler, theirs),
    )
    history = []
    for step in range(steps):
        ours.step()
        theirs.step()
        for s in ours_s:
            s.step()
        for s in theirs_s:
            s.step()
        for a, b in zip(ours_s, theirs_s):
            _assert_close_lists(a.get_last_lr(), b.get_last_lr(), f"{name} step {step}")
        _assert_close_lists(_groups_snapshot(ours), _groups_snapshot(theirs), f"{name} {step}")
        history.append(_groups_snapshot(ours))
    return ours_s, theirs_s, history


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_schedule_matches_torch(name):
    kind = "Adam" if name == "OneCycleLR-cos" else "SGD"  # momentum cycling: betas and SGD's
    ours, theirs = _optimizers(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the optimiser steps first: no order warning
        ours_s = SCHEDULES[name](cr.optim.lr_scheduler, ours)
        theirs_s = SCHEDULES[name](torch.optim.lr_scheduler, theirs)
        _assert_close_lists(_groups_snapshot(ours), _groups_snapshot(theirs), "initial")
        steps = STEPS if not name.startswith("OneCycleLR") else STEPS
        _run(name, kind, ours, theirs, steps, (ours_s, theirs_s))


@pytest.mark.parametrize(
    "name",
    [
        "StepLR",
        "CosineAnnealingLR",
        "OneCycleLR-cos",
        "SequentialLR",
        "two-chained",
        "LambdaLR-per-group",
    ],
)
def test_state_dict_resume(name):
    """Save the optimiser and scheduler after 20 steps, rebuild both, load: same rates."""
    kind = "Adam" if name.startswith("OneCycleLR") else "SGD"
    ours, theirs = _optimizers(kind)
    ours_s, theirs_s, _ = _run(name, kind, ours, theirs, 20)
    opt_sd = ours.state_dict()
    sched_sds = [s.state_dict() for s in ours_s]
    for ours_sd, theirs_sd in zip(sched_sds, [s.state_dict() for s in theirs_s]):
        assert sorted(ours_sd) == sorted(theirs_sd)

    fresh, _ = _optimizers(kind)  # the usual order: build both, then load both
    resumed = SCHEDULES[name](cr.optim.lr_scheduler, fresh)
    fresh.load_state_dict(opt_sd)
    for s, sd in zip(resumed, sched_sds):
        s.load_state_dict(sd)
    _assert_close_lists(_groups_snapshot(fresh), _groups_snapshot(theirs), "after load")
    _run(name, kind, fresh, theirs, STEPS - 20, (resumed, theirs_s))


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"mode": "max", "factor": 0.5, "patience": 2},
        {"threshold_mode": "abs", "threshold": 0.05, "patience": 1, "cooldown": 3},
        {"mode": "max", "threshold_mode": "abs", "min_lr": [0.01, 0.05], "patience": 0},
        {"factor": 0.5, "patience": 0, "eps": 0.02, "min_lr": 0.001},
    ],
)
def test_reduce_on_plateau_matches_torch(opts):
    ours, theirs = _optimizers()
    a = cr.optim.lr_scheduler.ReduceLROnPlateau(ours, **opts)
    b = torch.optim.lr_scheduler.ReduceLROnPlateau(theirs, **opts)
    # improves, stalls, wobbles, improves a little, stalls again
    metrics = [5.0, 4.0, 3.0] + [3.0] * 8 + [2.99, 2.9, 2.95] * 4 + [1.0, 0.5] + [0.5] * 20
    for step, metric in enumerate(metrics[:STEPS]):
        a.step(metric)
        b.step(metric)
        _assert_close_lists(a.get_last_lr(), b.get_last_lr(), f"step {step}")
    assert sorted(a.state_dict()) == sorted(b.state_dict())
    fresh, _ = _optimizers()
    c = cr.optim.lr_scheduler.ReduceLROnPlateau(fresh, **opts)
    c.load_state_dict(a.state_dict())
    fresh.load_state_dict(ours.state_dict())
    for metric in [0.5, 0.5, 0.5, 0.4, 0.5, 0.5]:
        c.step(metric)
        b.step(metric)
        _assert_close_lists(c.get_last_lr(), b.get_last_lr(), "resumed")


def test_wrong_order_warns():
    ours, _ = _optimizers()
    sched = cr.optim.lr_scheduler.StepLR(ours, step_size=2)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


def test_get_lr_outside_step_warns_and_resume_needs_initial_lr():
    ours, _ = _optimizers()
    sched = cr.optim.lr_scheduler.ExponentialLR(ours, gamma=0.5)
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    fresh, _ = _optimizers()
    with pytest.raises(KeyError, match="initial_lr"):
        cr.optim.lr_scheduler.StepLR(fresh, step_size=2, last_epoch=3)


def test_explicit_epoch_uses_closed_form_like_torch():
    ours, theirs = _optimizers()
    a = cr.optim.lr_scheduler.CosineAnnealingLR(ours, T_max=10)
    b = torch.optim.lr_scheduler.CosineAnnealingLR(theirs, T_max=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in (3, 7, 2, 15):
            ours.step()
            theirs.step()
            a.step(epoch)
            b.step(epoch)
            _assert_close_lists(a.get_last_lr(), b.get_last_lr(), f"epoch {epoch}")


def test_errors_match_torch():
    ours, _ = _optimizers()
    S = cr.optim.lr_scheduler
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        S.ReduceLROnPlateau(ours, factor=1.0)
    with pytest.raises(ValueError, match="between 0 and 1"):
        S.ConstantLR(ours, factor=2.0)
    with pytest.raises(ValueError, match="total_steps OR"):
        S.OneCycleLR(ours, max_lr=1.0)
    with pytest.raises(ValueError, match="Tried to step"):
        sched = S.OneCycleLR(ours, max_lr=1.0, total_steps=2)
        for _ in range(3):
            ours.step()
            sched.step()
    with pytest.raises(ValueError, match="number of milestone"):
        S.SequentialLR(ours, [S.StepLR(ours, 2)], milestones=[3])
    with pytest.raises(TypeError, match="is not an Optimizer"):
        S.StepLR(object(), 2)
