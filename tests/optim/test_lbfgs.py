"""L-BFGS minimises the Rosenbrock function through the same iterates as PyTorch's."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.optim import lbfgs
from chainrule.optim.lbfgs import cubic_minimizer

torch = pytest.importorskip("torch")


def rosenbrock(x):
    """The extended Rosenbrock function (written with ops both frameworks share)."""
    a, b = x[:-1], x[1:]
    one_minus = 1 - a
    gap = b - a * a
    return (one_minus * one_minus).sum() + 100 * (gap * gap).sum()


def _run(framework, start, steps, **opts):
    m = cr if framework == "chainrule" else torch
    x = (cr.nn.Parameter if m is cr else torch.nn.Parameter)(m.tensor(start, dtype=m.float64))
    opt = m.optim.LBFGS([x], **opts)

    def closure():
        opt.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    iterates, losses = [], []
    for _ in range(steps):
        losses.append(float(opt.step(closure).detach()))
        iterates.append(x.detach().numpy().copy())
    state = opt.state[x]
    return np.array(iterates), losses, state["func_evals"], state["n_iter"], opt


@pytest.mark.parametrize(
    "opts",
    [
        {},
        {"line_search_fn": "strong_wolfe"},
        {"max_iter": 4, "history_size": 3},
        {"max_iter": 5, "history_size": 3, "line_search_fn": "strong_wolfe"},
        {"lr": 0.5, "max_iter": 7, "max_eval": 9, "tolerance_change": 1e-12},
        {"lr": 0.8, "tolerance_grad": 1e-3, "line_search_fn": "strong_wolfe"},
    ],
)
@pytest.mark.parametrize("start", [[-1.5, 2.0], [-1.2, 1.0, -0.5, 0.8, 1.7]])
def test_rosenbrock_iterates_match_torch(opts, start, monkeypatch):
    """With PyTorch's inner product and scaled add (whose rounding differs between
    libraries) every iterate, loss and evaluation count is the same."""
    monkeypatch.setattr(
        lbfgs, "dot", lambda a, b: torch.from_numpy(a).dot(torch.from_numpy(b)).item()
    )
    monkeypatch.setattr(
        lbfgs,
        "add_scaled_",
        lambda y, x, alpha: torch.from_numpy(y).add_(torch.from_numpy(x), alpha=alpha),
    )
    ours, our_losses, our_evals, our_iters, _ = _run("chainrule", start, 6, **opts)
    ref, ref_losses, ref_evals, ref_iters, _ = _run("torch", start, 6, **opts)
    np.testing.assert_allclose(ours, ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(our_losses, ref_losses, rtol=1e-13, atol=1e-15)
    assert (our_evals, our_iters) == (ref_evals, ref_iters)


@pytest.mark.parametrize("line_search_fn", [None, "strong_wolfe"])
def test_rosenbrock_minimised_like_torch(line_search_fn):
    """With NumPy's own inner product, rounding differences grow along the curved valley, but
    both runs end at the minimum, and the early iterates agree closely."""
    opts = {"line_search_fn": line_search_fn}
    ours, our_losses, *_ = _run("chainrule", [-1.5, 2.0], 10, **opts)
    ref, ref_losses, *_ = _run("torch", [-1.5, 2.0], 10, **opts)
    np.testing.assert_allclose(ours[:2], ref[:2], rtol=1e-6)
    np.testing.assert_allclose(ours[-1], [1.0, 1.0], atol=1e-4)
    np.testing.assert_allclose(ours[-1], ref[-1], atol=1e-4)
    assert our_losses[-1] < 1e-9 and ref_losses[-1] < 1e-9


def test_state_dict_resume_continues_identically():
    start = [-1.2, 1.0, -0.5, 0.8]
    opts = {"max_iter": 3, "history_size": 4, "line_search_fn": "strong_wolfe"}
    full, *_ = _run("chainrule", start, 6, **opts)
    first, _, _, _, opt = _run("chainrule", start, 3, **opts)
    x = cr.nn.Parameter(cr.tensor(first[-1], dtype=cr.float64))
    opt2 = cr.optim.LBFGS([x], **opts)
    opt2.load_state_dict(opt.state_dict())

    def closure():
        opt2.zero_grad()
        loss = rosenbrock(x)
        loss.backward()
        return loss

    for i in range(3):
        opt2.step(closure)
        np.testing.assert_array_equal(x.detach().numpy(), full[3 + i])


def test_cubic_minimizer():
    # f(x) = (x - 1)^2 through x=0 and x=3: the cubic is the parabola, minimum at 1
    assert cubic_minimizer(0.0, 1.0, -2.0, 3.0, 4.0, 4.0) == pytest.approx(1.0)
    # bounds clip the result
    assert cubic_minimizer(0.0, 1.0, -2.0, 3.0, 4.0, 4.0, bounds=(2.0, 5.0)) == 2.0


def test_errors():
    x = cr.nn.Parameter(cr.zeros(2))
    with pytest.raises(ValueError, match="parameter groups"):
        cr.optim.LBFGS([{"params": [x]}, {"params": [cr.nn.Parameter(cr.zeros(1))]}])
    opt = cr.optim.LBFGS([x], line_search_fn="wolfe")
    with pytest.raises(RuntimeError, match="only 'strong_wolfe' is supported"):
        opt.step(lambda: (x * x).sum())
