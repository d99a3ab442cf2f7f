"""Reductions beyond the op table: extreme inputs, ties, zeros, return types and errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import chainrule as cr

INF = math.inf
NAN = math.nan

# rows of logits at the edges of float32/float64: exp overflows past ~88.7 (float32) and
# ~709.8 (float64); inf and nan must give PyTorch's results
EXTREME_ROWS = [
    [20.0, -20.0, 0.0, 1.0],
    [88.0, -88.0, 87.5, 0.0],
    [89.0, -89.0, 88.9, 1.0],
    [300.0, -300.0, 299.0, 0.0],
    [400.0, 350.0, -400.0, 1.0],
    [1e20, -1e20, 1e20, 0.0],
    [-1e20, -1e20, -1e20, -1e20],
    [1e4, -1e4, 0.0, 1e4],
    [INF, 1.0, 0.0, -1.0],
    [-INF, 1.0, 0.0, -1.0],
    [INF, INF, 0.0, 1.0],
    [-INF, -INF, -INF, -INF],
    [INF, -INF, 0.0, 1.0],
    [NAN, 1.0, 0.0, -1.0],
]

STABLE_OPS = {
    "logsumexp": lambda m, x: m.logsumexp(x, dim=-1),
    "softmax": lambda m, x: m.softmax(x, dim=-1),
    "log_softmax": lambda m, x: m.log_softmax(x, dim=-1),
    "softmax_dim0": lambda m, x: m.softmax(x.T, dim=0),
}


def _run(module, fn, data, dtype):
    x = module.tensor(data, dtype=dtype, requires_grad=True)
    out = fn(module, x)
    seed = np.linspace(-1.0, 1.5, out.numel()).reshape(tuple(out.shape))
    (grad,) = module.autograd.grad(out, x, module.tensor(seed, dtype=dtype))
    return np.asarray(out.detach().numpy(), dtype=np.float64), np.asarray(
        grad.detach().numpy(), dtype=np.float64
    )


def _same_numbers(ours, theirs, rtol, what):
    # finite exactly where torch's are finite, NaN where torch's are NaN, zero where torch's are
    # zero, and close elsewhere
    np.testing.assert_array_equal(np.isfinite(ours), np.isfinite(theirs), err_msg=what)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=what)
    np.testing.assert_array_equal(ours == 0, theirs == 0, err_msg=what)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=0, equal_nan=True, err_msg=what)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op", sorted(STABLE_OPS))
def test_stable_ops_at_extreme_inputs_match_torch(op, dtype):
    torch = pytest.importorskip("torch")
    fn = STABLE_OPS[op]
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for row in EXTREME_ROWS:
        data = [row, [0.5, -0.25, 1.0, 2.0]]  # a second, ordinary row in the same call
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no NumPy overflow/invalid-value warnings
            ours = _run(cr, fn, data, getattr(cr, dtype))
        theirs = _run(torch, fn, data, getattr(torch, dtype))
        if op == "logsumexp":
            # chainrule's gradient is torch.softmax(x) (times the seed); torch's own rule
            # exp(x - logsumexp(x)) differs from it once logsumexp rounds (|x| ~ 1e20 in float32)
            x = torch.tensor(data, dtype=getattr(torch, dtype))
            seed = torch.tensor(np.linspace(-1.0, 1.5, 2), dtype=x.dtype).reshape(2, 1)
            theirs = (theirs[0], (torch.softmax(x, -1) * seed).numpy().astype(np.float64))
        _same_numbers(ours[0], theirs[0], rtol, f"{op} output for {row}")
        _same_numbers(ours[1], theirs[1], rtol, f"{op} gradient for {row}")


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp"])
def test_large_finite_logits_give_finite_values_and_gradients(op):
    x = cr.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], requires_grad=True)
    out = STABLE_OPS[op](cr, x)
    out.backward(cr.ones_like(out) * cr.tensor(0.5) + out.detach() * 0)
    assert np.isfinite(out.detach().numpy()).all()
    assert np.isfinite(x.grad.numpy()).all()


def test_softmax_second_derivative_at_large_logits_is_finite():
    x = cr.tensor([300.0, -300.0, 299.0], dtype=cr.float64, requires_grad=True)
    y = cr.softmax(x, 0)
    (g,) = cr.autograd.grad(
        (y * cr.tensor([1.0, 2.0, 3.0], dtype=cr.float64)).sum(), x, create_graph=True
    )
    (gg,) = cr.autograd.grad(g.pow(2).sum(), x)
    assert np.isfinite(gg.numpy()).all()


def test_softmax_dtype_argument_converts_first():
    x = cr.tensor([1.0, 2.0, 3.0], dtype=cr.float16)
    out = cr.softmax(x, 0, dtype=cr.float32)
    assert out.dtype == cr.float32
    np.testing.assert_allclose(out.sum().item(), 1.0, rtol=1e-6)


def test_softmax_rejects_integers():
    with pytest.raises(RuntimeError, match="softmax.*int64"):
        cr.softmax(cr.tensor([1, 2]), 0)


def test_logsumexp_of_integers_is_float():
    out = cr.logsumexp(cr.tensor([0, 0]), 0)
    assert out.dtype == cr.float32
    np.testing.assert_allclose(out.item(), math.log(2), rtol=1e-6)


# ---- max/min return types and ties ----------------------------------------------------------


def test_max_min_with_dim_return_named_tuples():
    x = cr.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    for fn, values, indices in (
        (cr.max, [5.0, 6.0], [1, 2]),
        (cr.min, [1.0, 2.0], [0, 1]),
    ):
        out = fn(x, dim=1)
        assert isinstance(out, tuple) and len(out) == 2
        assert out.values.tolist() == values and out.indices.tolist() == indices
        assert out[0] is out.values and out[1] is out.indices
        assert out.indices.dtype == cr.int64
        v, i = fn(x, 1, keepdim=True)
        assert v.shape == (2, 1) and i.shape == (2, 1)
    r = repr(x.max(0))
    assert r.startswith("chainrule.return_types.max(") and "values=" in r and "indices=" in r
    assert type(x.median(1)).__name__ == "median"


def test_max_of_two_tensors_is_elementwise():
    a, b = cr.tensor([1.0, 5.0]), cr.tensor([3.0, 2.0])
    assert cr.max(a, b).tolist() == [3.0, 5.0]
    assert a.min(b).tolist() == [1.0, 2.0]


TIES = [[1.0, 3.0, 3.0, 2.0], [3.0, 3.0, 3.0, 3.0], [-1.0, 7.0, -1.0, 7.0]]


@pytest.mark.parametrize(
    "name,fn",
    [
        ("max", lambda m, x: m.max(x)),
        ("min", lambda m, x: m.min(x)),
        ("amax", lambda m, x: m.amax(x, 1)),
        ("amin", lambda m, x: m.amin(x, (0, 1))),
        ("max_dim", lambda m, x: m.max(x, 1).values),
        ("min_dim", lambda m, x: m.min(x, 0).values),
        ("median", lambda m, x: m.median(x)),
        ("inf_norm", lambda m, x: m.linalg.vector_norm(x, float("inf"), dim=1)),
    ],
)
def test_tie_gradients_match_torch(name, fn):
    torch = pytest.importorskip("torch")
    ours = _run(cr, fn, TIES, cr.float64)
    theirs = _run(torch, fn, TIES, torch.float64)
    np.testing.assert_allclose(ours[0], theirs[0])
    np.testing.assert_allclose(ours[1], theirs[1], err_msg=f"{name} tie gradient")


def test_max_with_dim_indices_match_torch_on_ties():
    torch = pytest.importorskip("torch")
    x = np.array(TIES)
    for dim in (0, 1):
        assert cr.tensor(x).max(dim).indices.tolist() == torch.tensor(x).max(dim).indices.tolist()
        assert cr.tensor(x).min(dim).indices.tolist() == torch.tensor(x).min(dim).indices.tolist()
        assert cr.tensor(x).argmax(dim).tolist() == torch.tensor(x).argmax(dim).tolist()


def test_nan_propagates_through_extrema_like_torch():
    torch = pytest.importorskip("torch")
    data = [[1.0, NAN, 3.0], [2.0, 1.0, 0.5]]
    for fn in (
        lambda m, x: m.max(x),
        lambda m, x: m.amin(x, 1),
        lambda m, x: m.max(x, 1).values,
        lambda m, x: m.median(x, 1).values,
    ):
        ours = _run(cr, fn, data, cr.float64)
        theirs = _run(torch, fn, data, torch.float64)
        np.testing.assert_allclose(ours[0], theirs[0], equal_nan=True)
        np.testing.assert_allclose(ours[1], theirs[1], equal_nan=True)
    assert cr.tensor(data).argmax(1).tolist() == torch.tensor(data).argmax(1).tolist()


def test_argmax_without_dim_flattens():
    x = cr.tensor([[1.0, 9.0], [4.0, 2.0]])
    assert x.argmax().item() == 1
    assert x.argmin(keepdim=True).shape == (1, 1)


def test_median_is_the_lower_middle_value():
    assert cr.tensor([1.0, 4.0, 2.0, 3.0]).median().item() == 2.0
    out = cr.tensor([[1.0, 4.0, 2.0, 3.0]]).median(1)
    assert out.values.tolist() == [2.0] and out.indices.tolist() == [2]


# ---- prod and cumprod with zeros ------------------------------------------------------------

ZERO_CASES = [
    [2.0, 0.0, 3.0, 4.0],
    [0.0, 5.0, 0.0, 2.0],
    [0.0, 0.0, 0.0, 1.5],
    [1.5, -2.0, 0.5, 3.0],
]


@pytest.mark.parametrize("data", ZERO_CASES[:3])
@pytest.mark.parametrize(
    "fn",
    [
        lambda m, x: m.prod(x),
        lambda m, x: m.prod(x.reshape(2, 2), 1),
        lambda m, x: m.cumprod(x, 0),
    ],
)
def test_prod_gradients_with_zeros_match_torch(fn, data):
    torch = pytest.importorskip("torch")
    ours = _run(cr, fn, data, cr.float64)
    theirs = _run(torch, fn, data, torch.float64)
    np.testing.assert_allclose(ours[0], theirs[0], rtol=1e-12)
    np.testing.assert_allclose(ours[1], theirs[1], rtol=1e-12)


def test_prod_gradient_is_exact_with_underflow():
    # the product underflows to 0, so prod/x (PyTorch's rule without zeros) would give 0
    x = cr.tensor([1e-300, 1e-300, 5.0], dtype=cr.float64, requires_grad=True)
    x.prod().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5e-300, 5e-300, 0.0])


@pytest.mark.parametrize("data", ZERO_CASES[:3])
def test_prod_second_derivative_with_zeros_matches_torch(data):
    torch = pytest.importorskip("torch")
    hessians = []
    for m in (cr, torch):
        x = m.tensor(data, dtype=m.float64, requires_grad=True)
        (g,) = m.autograd.grad(m.prod(x), x, create_graph=True)
        rows = [
            m.autograd.grad(
                g[i] if m is torch else g.reshape(-1)[i : i + 1].sum(), x, retain_graph=True
            )[0]
            for i in range(len(data))
        ]
        hessians.append(np.stack([np.asarray(r.detach().numpy()) for r in rows]))
    np.testing.assert_allclose(hessians[0], hessians[1], rtol=1e-12, atol=1e-300)


def test_cumprod_gradgradcheck_with_zeros():
    x = cr.tensor(
        [[1.5, 0.0, 2.0, -1.0], [0.0, 0.7, 0.0, 1.2]], dtype=cr.float64, requires_grad=True
    )
    assert cr.autograd.gradcheck(lambda t: cr.cumprod(t, 1), (x,))
    assert cr.autograd.gradgradcheck(lambda t: cr.cumprod(t, 1), (x,))


# ---- var/std, norms, logical reductions -----------------------------------------------------


def test_var_std_arguments():
    x = cr.tensor([[1.0, 2.0, 4.0], [0.0, 1.0, 5.0]], dtype=cr.float64)
    ref = np.asarray(x)
    np.testing.assert_allclose(x.var().item(), ref.var(ddof=1))
    np.testing.assert_allclose(x.var(1, unbiased=False).numpy(), ref.var(1))
    np.testing.assert_allclose(
        x.std(0, correction=0, keepdim=True).numpy(), ref.std(0, keepdims=True)
    )
    np.testing.assert_allclose(cr.var(x, False).item(), ref.var())
    np.testing.assert_allclose(x.var(axis=1).numpy(), ref.var(1, ddof=1))
    v, mu = cr.var_mean(x, 1)
    np.testing.assert_allclose(mu.numpy(), ref.mean(1))
    with pytest.raises(RuntimeError, match="var.*int64"):
        cr.var(cr.tensor([1, 2]))


def test_var_with_no_degrees_of_freedom_warns_and_gives_nan():
    x = cr.tensor([1.0], requires_grad=True)
    with pytest.warns(UserWarning, match="degrees of freedom"):
        out = x.var()
    assert math.isnan(out.item())


def test_std_gradient_is_zero_for_constant_input():
    x = cr.ones(4, dtype=cr.float64, requires_grad=True)
    x.std().backward()
    assert x.grad.tolist() == [0.0] * 4


@pytest.mark.parametrize("p", [2, 1, 3, 0.5, 1.5, INF, -INF, -1])
def test_norm_gradient_at_zero_matches_torch(p):
    torch = pytest.importorskip("torch")
    for data in ([0.0, 0.0, 0.0], [0.0, 1.0, -2.0]):
        fn = lambda m, x: m.linalg.vector_norm(x, p)  # noqa: E731
        ours = _run(cr, fn, data, cr.float64)
        theirs = _run(torch, fn, data, torch.float64)
        np.testing.assert_allclose(ours[0], theirs[0])
        np.testing.assert_allclose(ours[1], theirs[1], err_msg=f"p={p} at {data}")


def test_norm_variants():
    x = cr.tensor([[3.0, -4.0], [0.0, 0.0]])
    assert x.norm().item() == 5.0
    assert x.norm(dim=1).tolist() == [5.0, 0.0]
    assert x.norm(p=1).item() == 7.0
    assert x.norm(p=float("inf")).item() == 4.0
    assert cr.norm(x, p=0).item() == 2.0
    with pytest.raises(RuntimeError, match="vector_norm.*int64"):
        cr.tensor([1, 2]).norm()


def test_all_any_count_nonzero():
    x = cr.tensor([[True, False], [True, True]])
    assert x.all().item() is False and x.any().item() is True
    assert x.all(dim=1).tolist() == [False, True]
    assert x.any(0, keepdim=True).shape == (1, 2)
    assert cr.all(cr.tensor([], dtype=cr.bool)).item() is True
    assert cr.tensor([1, 2], dtype=cr.uint8).all().dtype == cr.uint8
    assert cr.count_nonzero(cr.tensor([[0, 1], [2, 0]]), dim=0).tolist() == [1, 1]


def test_cumsum_gradient_is_reversed_cumsum():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x.cumsum(0).backward(cr.tensor([1.0, 10.0, 100.0]))
    assert x.grad.tolist() == [111.0, 110.0, 100.0]
    assert cr.cumsum(cr.tensor([True, True]), 0).dtype == cr.int64


def test_axis_alias_and_dim_forms():
    x = cr.arange(24.0).reshape(2, 3, 4)
    assert x.sum(axis=1).shape == (2, 4)
    assert cr.amax(x, axis=(0, 2)).tolist() == [15.0, 19.0, 23.0]
    assert x.mean((-1, 0), keepdim=True).shape == (1, 3, 1)
    assert cr.logsumexp(x, axis=0).shape == (3, 4)
    assert cr.prod(x, -1).shape == (2, 3)
    assert cr.sum(cr.tensor(2.0), 0).item() == 2.0


# ---- errors ---------------------------------------------------------------------------------


def test_reduction_errors_name_the_op():
    with pytest.raises(IndexError, match=r"sum: Dimension out of range.*got 2"):
        cr.ones(2, 3).sum(2)
    with pytest.raises(RuntimeError, match="max.*numel\\(\\) == 0"):
        cr.zeros(0).max()
    with pytest.raises(IndexError, match=r"amax\(\).*dim 0.*non-zero size.*\[0, 3\]"):
        cr.zeros(0, 3).amax(0)
    with pytest.raises(IndexError, match=r"max\(\).*dim 1"):
        cr.zeros(2, 0).max(1)
    with pytest.raises(RuntimeError, match="appears multiple times"):
        cr.ones(2, 3).sum((1, -1))
    with pytest.raises(TypeError, match="prod.*int"):
        cr.ones(2, 3).prod((0, 1))
    with pytest.raises(RuntimeError, match="mean.*int64"):
        cr.tensor([1, 2]).mean()
