"""erf without SciPy, and the fused GELU kernel built on the same fitted approximation.

Accuracy is measured against the standard library (``math.erf``, ``math.erfc``) on dense grids;
extreme inputs (infinities, NaN, signed zeros, huge values) are compared with PyTorch, with
NumPy's floating-point warnings turned into errors.
"""

from __future__ import annotations

import math
import sys
import warnings

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F
from chainrule import nn
from chainrule.ops.nn_kernels import Gelu

FLOATS = [np.float64, np.float32]


def _erf_grid() -> np.ndarray:
    tiny = np.geomspace(1e-300, 1e-2, 2000)
    switch = np.nextafter(1.0, [0.0, 2.0, -np.inf])  # both sides of the branch switch at 1
    special = [0.0, 5e-324, 1e-45, 1.0, 3.9, 4.0, 4.1, 5.9, 6.0, 6.5, 27.0, 1e10, 1e300]
    half = np.concatenate([tiny, switch, special])
    return np.concatenate([np.linspace(-7.0, 7.0, 200_001), half, -half])


def _ulps(got: np.ndarray, ref: np.ndarray, dtype) -> np.ndarray:
    """|got - ref| in units of the spacing of ``ref`` rounded to ``dtype``."""
    spacing = np.abs(np.spacing(ref.astype(dtype))).astype(np.float64)
    return np.abs(got.astype(np.float64) - ref) / spacing


@pytest.mark.parametrize("dtype", FLOATS)
def test_erf_is_within_2_ulp_of_math_erf(dtype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 1e300 overflows float32 on purpose: erf(inf) = 1
        x = _erf_grid().astype(dtype)
    ref = np.array([math.erf(float(v)) for v in x])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = cr.erf(cr.tensor(x)).numpy()
    assert got.dtype == dtype
    err = _ulps(got, ref, dtype)
    worst = int(np.argmax(err))
    assert err.max() <= 2.0, f"{err.max():.2f} ulp at x = {x[worst]!r}"
    # mostly correctly rounded, not just inside the bound (measured: 0.03 and 0.15)
    assert err.mean() < (0.05 if dtype == np.float64 else 0.2)


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_erf_special_values(dtype):
    x = cr.tensor([math.inf, -math.inf, math.nan, 0.0, -0.0, 1e-30], dtype=getattr(cr, dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = cr.erf(x).to(cr.float64).numpy()
    assert y.dtype == np.float64
    assert y[0] == 1.0 and y[1] == -1.0 and np.isnan(y[2])
    assert y[3] == 0.0 and not np.signbit(y[3])
    assert y[4] == 0.0 and np.signbit(y[4])  # odd: erf(-0) = -0, as in PyTorch
    expected = 2 / math.sqrt(math.pi) * float(x[5])
    assert y[5] == pytest.approx(expected, rel=1e-2 if dtype in ("float16", "bfloat16") else 1e-7)


def test_erf_extremes_and_gradients_match_torch():
    torch = pytest.importorskip("torch")
    points = [0.0, -0.0, 0.5, -1.0, 1.0, 3.0, -6.0, 30.0, 1e20, -1e20, math.inf, -math.inf]
    points.append(math.nan)
    for dtype in ("float32", "float64"):
        x = cr.tensor(points, dtype=getattr(cr, dtype), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = cr.erf(x)
            y.sum().backward()
        xt = torch.tensor(points, dtype=getattr(torch, dtype), requires_grad=True)
        yt = torch.erf(xt)
        yt.sum().backward()
        np.testing.assert_allclose(y.detach().numpy(), yt.detach().numpy(), rtol=1e-6, atol=0)
        np.testing.assert_allclose(x.grad.numpy(), xt.grad.numpy(), rtol=1e-6, atol=1e-30)


def test_erf_and_gelu_need_no_scipy(monkeypatch):
    x = cr.tensor(np.linspace(-8.0, 8.0, 1001))
    before = [cr.erf(x).numpy(), F.gelu(x).numpy(), F.gelu(x, approximate="tanh").numpy()]
    monkeypatch.setitem(sys.modules, "scipy", None)  # ``import scipy`` now raises ImportError
    monkeypatch.setitem(sys.modules, "scipy.special", None)
    after = [cr.erf(x).numpy(), F.gelu(x).numpy(), F.gelu(x, approximate="tanh").numpy()]
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a, b)


# ---- GELU -----------------------------------------------------------------------------------

GELU_POINTS = [0.0, -0.0, 0.5, -0.5, -0.75, 3.0, -3.0, 20.0, -20.0, 40.0, -40.0, 88.0, -88.0]
GELU_POINTS += [1e20, -1e20, math.inf, -math.inf, math.nan]


def _compare(ours: np.ndarray, theirs: np.ndarray, what: str):
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=what)
    inf = np.isinf(theirs)
    np.testing.assert_array_equal(ours[inf], theirs[inf], err_msg=what)
    finite = np.isfinite(theirs)
    assert np.isfinite(ours[finite]).all(), what
    torch.testing.assert_close(
        torch.from_numpy(ours[finite]), torch.from_numpy(theirs[finite]), msg=what
    )


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gelu_extremes_match_torch(approximate, dtype):
    torch = pytest.importorskip("torch")
    x = cr.tensor(GELU_POINTS, dtype=getattr(cr, dtype), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = F.gelu(x, approximate=approximate)
        y.sum().backward()
    xt = torch.tensor(GELU_POINTS, dtype=getattr(torch, dtype), requires_grad=True)
    yt = torch.nn.functional.gelu(xt, approximate=approximate)
    yt.sum().backward()
    _compare(y.detach().numpy(), yt.detach().numpy(), f"gelu {approximate} values")
    _compare(x.grad.numpy(), xt.grad.numpy(), f"gelu {approximate} gradients")


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_second_and_third_derivatives_match_torch(approximate):
    torch = pytest.importorskip("torch")
    data = [-40.0, -6.0, -2.0, -0.75, -0.1, 0.0, 0.3, 1.0, 2.5, 7.0, 40.0]
    x = cr.tensor(data, dtype=cr.float64, requires_grad=True)
    xt = torch.tensor(data, dtype=torch.float64, requires_grad=True)
    gy = cr.tensor(np.linspace(0.5, 1.5, len(data)))  # a non-trivial upstream gradient
    gyt = torch.from_numpy(gy.numpy().copy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (g1,) = cr.autograd.grad(F.gelu(x, approximate=approximate), x, gy, create_graph=True)
        (g2,) = cr.autograd.grad(g1.sum(), x, create_graph=True)
        (g3,) = cr.autograd.grad(g2.sum(), x)
    (t1,) = torch.autograd.grad(
        torch.nn.functional.gelu(xt, approximate=approximate), xt, gyt, create_graph=True
    )
    (t2,) = torch.autograd.grad(t1.sum(), xt, create_graph=True)
    (t3,) = torch.autograd.grad(t2.sum(), xt)
    for ours, theirs, k in ((g1, t1, 1), (g2, t2, 2), (g3, t3, 3)):
        ours, theirs = ours.detach().numpy(), theirs.detach().numpy()
        assert np.isfinite(ours).all()
        # PyTorch's third derivative of the tanh form is NaN at +-40 (0 * inf inside)
        finite = np.isfinite(theirs)
        np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-9, atol=1e-12, err_msg=k)


def _gelu_reference(mp, x: float, approximate: str) -> float:
    """gelu(x) in 40-digit arithmetic, rounded to float64."""
    x = mp.mpf(x)
    if approximate == "none":
        return float(x * mp.ncdf(x))
    z = 2 * mp.sqrt(2 / mp.pi) * (x + mp.mpf(0.044715) * x**3)
    return float(x / (1 + mp.exp(-z)))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("dtype", FLOATS)
def test_gelu_relative_accuracy(approximate, dtype):
    mp = pytest.importorskip("mpmath")
    mp.mp.dps = 40
    lo = -35.0 if dtype == np.float64 else -12.0  # down to where the result underflows
    x = np.concatenate([np.linspace(lo, 9.0, 4_001), [1e-30, -1e-30]]).astype(dtype)
    ref = np.array([_gelu_reference(mp, float(v), approximate) for v in x])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = F.gelu(cr.tensor(x), approximate=approximate).numpy().astype(np.float64)
    # subnormal numbers have fewer digits: skip results whose CDF factor (below 1 / |x|
    # times the result) may be one
    normal = np.abs(ref) >= 64 * np.finfo(dtype).tiny
    eps = float(np.finfo(dtype).eps)
    rel = np.abs(got - ref)[normal] / np.abs(ref[normal])
    # the relative condition number of gelu grows like x^2 in the lower tail (like x^3 for
    # the tanh form): allow a few rounding errors of the input there, no more
    xf = x.astype(np.float64)[normal]
    cond = 1.0 + xf**2 / 2 if approximate == "none" else 1.0 + 0.2 * np.abs(xf) ** 3
    worst = int(np.argmax(rel / cond))
    assert (rel <= 4 * eps * cond).all(), f"x = {xf[worst]!r}: {rel[worst] / eps:.1f} eps"
    central = np.abs(xf) <= 3
    assert rel[central].max() <= (8 if approximate == "tanh" else 5) * eps


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_low_precision_matches_torch(dtype, approximate):
    torch = pytest.importorskip("torch")
    data = np.linspace(-5.0, 5.0, 41).tolist()
    x = cr.tensor(data, dtype=getattr(cr, dtype), requires_grad=True)
    y = F.gelu(x, approximate=approximate)
    y.sum().backward()
    xt = torch.tensor(data, dtype=getattr(torch, dtype), requires_grad=True)
    yt = torch.nn.functional.gelu(xt, approximate=approximate)
    yt.sum().backward()
    assert y.dtype == x.dtype and x.grad.dtype == x.dtype
    for ours, theirs in ((y.detach(), yt.detach()), (x.grad, xt.grad)):
        torch.testing.assert_close(torch.from_numpy(ours.to(cr.float32).numpy()), theirs.float())


def test_gelu_is_one_node_and_releases_its_arrays_after_backward():
    x = cr.randn(4, 5, requires_grad=True)
    for module in (nn.GELU(), nn.GELU("tanh")):
        y = module(x)
        assert type(y.grad_fn) is Gelu
        assert y.grad_fn.name == "GeluBackward0"
        y.sum().backward(retain_graph=True)
        first = x.grad.clone()
        assert y.grad_fn.cache is not None  # retained: a second backward needs it
        x.grad = None
        y.sum().backward()
        np.testing.assert_array_equal(x.grad.numpy(), first.numpy())
        assert y.grad_fn.cache is None  # released with the saved input
        x.grad = None
        (g,) = cr.autograd.grad(module(x).sum(), x, create_graph=True)
        assert type(g.grad_fn).__name__ == "GeluBackward" and g.grad_fn.cache is not None
        g.sum().backward()
        assert g.grad_fn.cache is None
        x.grad = None


def test_gelu_rejects_integer_input():
    with pytest.raises(RuntimeError, match="gelu: expected a floating-point input, got int64"):
        F.gelu(cr.tensor([1, 2]))
