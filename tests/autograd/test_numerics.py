"""Extreme inputs: values and gradients equal PyTorch's, finite where PyTorch's are, and NumPy
never warns (overflow, invalid value, divide by zero) along the way."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr

torch = pytest.importorskip("torch")

BIG = [20.0, 88.0, 89.0, 300.0, 350.0, 400.0, 1e20, float("inf")]
POINTS = [0.0, 0.5, float("nan")] + BIG + [-v for v in BIG]


def softplus_composite(m, x):
    """log(1 + e^x) written so that nothing overflows: relu(x) + log1p(e^-|x|)."""
    return m.relu(x) + m.log1p(m.exp(-m.abs(x)))


FUNCTIONS = {
    "exp": lambda m, x: m.exp(x),
    "log": lambda m, x: m.log(x),
    "sigmoid": lambda m, x: m.sigmoid(x),
    "tanh": lambda m, x: m.tanh(x),
    "softplus": softplus_composite,
}


def _run(m, fn, data, dtype):
    x = m.tensor(data, dtype=dtype, requires_grad=True)
    y = fn(m, x)
    y.sum().backward()
    return y.detach().numpy().astype(np.float64), x.grad.numpy().astype(np.float64)


def _compare(ours: np.ndarray, theirs: np.ndarray, what: str):
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs), err_msg=what)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=what)
    inf = np.isinf(theirs)
    np.testing.assert_array_equal(ours[inf], theirs[inf], err_msg=what)  # same sign of inf
    finite = np.isfinite(theirs)
    torch.testing.assert_close(
        torch.from_numpy(ours[finite]), torch.from_numpy(theirs[finite]), msg=what
    )


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_values_and_gradients_match_torch_at_extremes(name, dtype_name):
    fn = FUNCTIONS[name]
    data = np.array(POINTS, dtype=dtype_name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = _run(cr, fn, data, getattr(cr, dtype_name))
    theirs = _run(torch, fn, data, getattr(torch, dtype_name))
    _compare(ours[0], theirs[0], f"{name} values ({dtype_name})")
    _compare(ours[1], theirs[1], f"{name} gradients ({dtype_name})")


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_softplus_composite_is_finite_and_matches_torch_softplus(dtype_name):
    data = np.array([v for v in POINTS if np.isfinite(v)], dtype=dtype_name)
    x = cr.tensor(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = softplus_composite(cr, x).numpy()
    assert np.isfinite(ours).all()
    expected = torch.nn.functional.softplus(torch.from_numpy(data)).numpy()
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_sigmoid_and_tanh_gradients_are_finite_everywhere_finite(dtype_name):
    data = np.array([v for v in POINTS if not np.isnan(v)], dtype=dtype_name)
    for fn in (cr.sigmoid, cr.tanh):
        x = cr.tensor(data, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fn(x).sum().backward()
        assert np.isfinite(x.grad.numpy()).all()
        assert (x.grad.numpy() >= 0).all()


def test_second_derivatives_at_extremes_have_no_warnings():
    data = np.array([-400.0, -89.0, -20.0, 0.5, 20.0, 89.0, 400.0])
    for name in ("sigmoid", "tanh", "softplus"):
        x = cr.tensor(data, requires_grad=True)
        t = torch.tensor(data, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            (g,) = cr.autograd.grad(FUNCTIONS[name](cr, x).sum(), x, create_graph=True)
            (h,) = cr.autograd.grad(g.sum(), x)
        (gt,) = torch.autograd.grad(FUNCTIONS[name](torch, t).sum(), t, create_graph=True)
        (ht,) = torch.autograd.grad(gt.sum(), t)
        _compare(h.numpy(), ht.numpy(), f"{name} second derivative")
