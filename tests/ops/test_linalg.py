"""Linear algebra beyond the op table: einsum against PyTorch, linalg edge cases, errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

# (equation, operand shapes)
EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 2)]),
    ("ij,jk", [(3, 4), (4, 2)]),
    ("ij->ji", [(2, 3)]),
    ("ij", [(2, 3)]),
    ("ji", [(2, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("ii->", [(4, 4)]),
    ("iii->i", [(2, 2, 2)]),
    ("iji->j", [(3, 2, 3)]),
    ("bii->b", [(2, 3, 3)]),
    ("ij->", [(3, 4)]),
    ("i,i->", [(5,), (5,)]),
    ("i,i->i", [(5,), (5,)]),
    ("i,j->ij", [(2,), (3,)]),
    ("i,j", [(2,), (3,)]),
    ("j,i", [(2,), (3,)]),
    ("ij,ij->", [(2, 3), (2, 3)]),
    ("ij,kj->ik", [(2, 3), (4, 3)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ijk,jl->ikl", [(2, 3, 4), (3, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("ij,jk,ki->", [(2, 3), (3, 4), (4, 2)]),
    ("i,ij,j->", [(3,), (3, 4), (4,)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (4, 5)]),
    ("...ij,...jk", [(2, 1, 3, 4), (5, 4, 2)]),
    ("...i,...i->...", [(2, 3, 4), (3, 4)]),
    ("i...->...", [(3, 2, 4)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("...->", [(2, 3)]),
    ("b...,b...->b", [(2, 3, 4), (2, 3, 4)]),
    ("i,->i", [(3,), ()]),
    (",->", [(), ()]),
    ("ij,j->ij", [(3, 1), (4,)]),
    ("ij,ij->ij", [(1, 4), (3, 1)]),
    ("Ab,bA", [(2, 3), (3, 2)]),
    ("bA,a", [(2, 3), (3,)]),
    ("aB,Ba->", [(2, 3), (3, 2)]),
    (" i j , j k -> i k ", [(2, 3), (3, 2)]),
    ("ij,jk->ik", [(0, 3), (3, 2)]),
]


def _operands(module, shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [
        module.tensor(rng.standard_normal(s), dtype=module.float64, requires_grad=True)
        for s in shapes
    ]


@pytest.mark.parametrize("equation,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_matches_torch_with_first_and_second_derivatives(equation, shapes):
    torch = pytest.importorskip("torch")
    results = []
    for m in (cr, torch):
        xs = _operands(m, shapes)
        out = m.einsum(equation, *xs)
        seed = m.tensor(np.linspace(-1.0, 2.0, out.numel()).reshape(tuple(out.shape)))
        seed = seed.to(m.float64)
        grads = m.autograd.grad(out, xs, seed, create_graph=True)
        # second order: differentiate a function of the first gradients again
        total = sum((g * g).sum() for g in grads)
        second = m.autograd.grad(total, xs, allow_unused=True) if total.requires_grad else None
        results.append((out, grads, second))
    (c_out, c_grads, c_second), (t_out, t_grads, t_second) = results
    assert tuple(c_out.shape) == tuple(t_out.shape)
    np.testing.assert_allclose(c_out.detach().numpy(), t_out.detach().numpy(), rtol=1e-12)
    for cg, tg in zip(c_grads, t_grads):
        np.testing.assert_allclose(cg.detach().numpy(), tg.detach().numpy(), rtol=1e-12)
    if t_second is not None:
        for cg, tg in zip(c_second, t_second):
            expected = np.zeros(()) if tg is None else tg.numpy()
            actual = np.zeros(()) if cg is None else cg.numpy()
            np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12)


def test_einsum_forms():
    a, b = cr.randn(2, 3), cr.randn(3, 4)
    ref = (a @ b).numpy()
    np.testing.assert_allclose(cr.einsum("ij,jk->ik", [a, b]).numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(cr.einsum(a, [0, 1], b, [1, 2], [0, 2]).numpy(), ref, rtol=1e-6)
    np.testing.assert_allclose(cr.einsum(a, [0, 1], b, [1, 2]).numpy(), ref, rtol=1e-6)
    x = cr.randn(2, 3, 4)
    np.testing.assert_allclose(
        cr.einsum(x, [Ellipsis, 1], [Ellipsis]).numpy(), x.sum(-1).numpy(), rtol=1e-6
    )
    assert cr.einsum("ii", cr.eye(3)).item() == 3.0


def test_einsum_gradcheck_through_repeated_and_summed_labels():
    x = cr.randn(3, 3, 2, dtype=cr.float64, requires_grad=True)
    y = cr.randn(2, 4, dtype=cr.float64, requires_grad=True)
    fn = lambda a, b: cr.einsum("iij,jk->k", a, b)  # noqa: E731
    assert cr.autograd.gradcheck(fn, (x, y))
    assert cr.autograd.gradgradcheck(fn, (x, y))


@pytest.mark.parametrize(
    "equation,shapes,message",
    [
        ("ij,jk->ik", [(2, 3)], r"einsum\(\).*2 operand subscript\(s\) but 1 operand"),
        ("ij,jk->ik", [(2, 3), (4, 2)], r"einsum\(\).*'j' has size 3 and 4.*\[2, 3\], \[4, 2\]"),
        ("ijk->i", [(2, 3)], r"subscripts 'ijk' of operand 0 name 3 dimension\(s\).*\[2, 3\]"),
        ("ij->ii", [(2, 2)], r"output subscript 'i' appears more than once"),
        ("ij->k", [(2, 2)], r"output subscript 'k' does not appear"),
        ("i1->i", [(2, 2)], r"invalid subscript '1'"),
        ("ii->i", [(2, 3)], r"'i' is repeated for operand 0 but the sizes don't match, 2 != 3"),
        ("ij->i->j", [(2, 2)], r"more than one '->'"),
    ],
)
def test_einsum_errors(equation, shapes, message):
    with pytest.raises(RuntimeError, match=message):
        cr.einsum(equation, *[cr.ones(s) for s in shapes])


def test_einsum_rejects_mixed_dtypes():
    with pytest.raises(RuntimeError, match="einsum.*same dtype.*float32, float64"):
        cr.einsum("i,i->", cr.ones(2), cr.ones(2, dtype=cr.float64))


# ---- dot, outer, tensordot ------------------------------------------------------------------


def test_dot_outer_errors():
    with pytest.raises(RuntimeError, match=r"dot: 1D tensors expected, but got 2D and 1D"):
        cr.dot(cr.ones(2, 2), cr.ones(2))
    with pytest.raises(RuntimeError, match=r"dot: inconsistent tensor size.*3 and 4"):
        cr.dot(cr.ones(3), cr.ones(4))
    with pytest.raises(RuntimeError, match="dot: expected both vectors to have same dtype"):
        cr.dot(cr.ones(3), cr.ones(3, dtype=cr.float64))
    with pytest.raises(RuntimeError, match=r"outer: Expected 1-D argument self, but got 2-D"):
        cr.outer(cr.ones(2, 2), cr.ones(2))
    with pytest.raises(RuntimeError, match=r"tensordot: contracted dimensions need to match"):
        cr.tensordot(cr.ones(2, 3), cr.ones(4, 2), dims=1)


# ---- chainrule.linalg -----------------------------------------------------------------------


def _spd(n, batch=(), seed=0):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((*batch, n, n))
    return m @ np.swapaxes(m, -1, -2) + n * np.eye(n)


def test_linalg_namespace():
    for name in ("norm", "vector_norm", "matrix_norm", "inv", "det", "solve", "cholesky"):
        assert callable(getattr(cr.linalg, name)), name
    assert cr.linalg.det is cr.det and cr.linalg.inv is cr.inverse


def test_det_gradient_is_det_times_inverse_transpose():
    a = _spd(3, (2,))
    x = cr.tensor(a, requires_grad=True)
    cr.linalg.det(x).sum().backward()
    expected = np.linalg.det(a)[:, None, None] * np.swapaxes(np.linalg.inv(a), -1, -2)
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-10)


def test_det_of_singular_matrix_has_torchs_gradient():
    torch = pytest.importorskip("torch")
    for data in ([[1.0, 2.0], [2.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]):
        grads = []
        for m in (cr, torch):
            x = m.tensor(data, dtype=m.float64, requires_grad=True)
            out = m.linalg.det(x)
            out.backward()
            assert out.item() == 0.0
            grads.append(x.grad.numpy())
        np.testing.assert_array_equal(grads[0], grads[1])


def test_slogdet_and_logdet():
    a = np.array([[0.0, 2.0], [3.0, 1.0]])  # det = -6
    sign, logabs = cr.linalg.slogdet(cr.tensor(a))
    assert sign.item() == -1.0
    np.testing.assert_allclose(logabs.item(), np.log(6.0))
    assert np.isnan(cr.logdet(cr.tensor(a)).item())
    assert cr.logdet(cr.zeros(2, 2)).item() == -np.inf
    out = cr.linalg.slogdet(cr.tensor(a))
    assert out.sign is out[0] and out.logabsdet is out[1]


@pytest.mark.parametrize(
    "a_shape,b_shape,out_shape",
    [
        ((3, 3), (3,), (3,)),
        ((3, 3), (3, 2), (3, 2)),
        ((2, 3, 3), (2, 3), (2, 3)),
        ((2, 3, 3), (3,), (2, 3)),
        ((2, 3, 3), (3, 4), (2, 3, 4)),
        ((3, 3), (5, 3, 1), (5, 3, 1)),
        ((4, 1, 3, 3), (2, 3, 2), (4, 2, 3, 2)),
    ],
)
def test_solve_shapes_match_torch(a_shape, b_shape, out_shape):
    torch = pytest.importorskip("torch")
    a = _spd(3, a_shape[:-2])
    b = np.random.default_rng(1).standard_normal(b_shape)
    grads = []
    for m in (cr, torch):
        ta, tb = (m.tensor(v, dtype=m.float64, requires_grad=True) for v in (a, b))
        x = m.linalg.solve(ta, tb)
        assert tuple(x.shape) == out_shape
        (x * x).sum().backward()
        grads.append((x.detach().numpy(), ta.grad.numpy(), tb.grad.numpy()))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


def test_cholesky_gradient_matches_torch_without_symmetrising():
    torch = pytest.importorskip("torch")
    a = _spd(4, (2,))
    seed = np.random.default_rng(3).standard_normal(a.shape)
    grads = []
    for m in (cr, torch):
        x = m.tensor(a, dtype=m.float64, requires_grad=True)
        L = m.linalg.cholesky(x)
        np.testing.assert_allclose((L @ L.mT).detach().numpy(), a, rtol=1e-12)
        (g,) = m.autograd.grad(L, x, m.tensor(seed), create_graph=True)
        (gg,) = m.autograd.grad((g * g).sum(), x)
        grads.append((L.detach().numpy(), g.detach().numpy(), gg.numpy()))
    for ours, theirs in zip(*grads):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)


def test_svd_reconstructs_and_orders_singular_values():
    a = np.random.default_rng(0).standard_normal((2, 4, 3))
    u, s, vh = cr.linalg.svd(cr.tensor(a), full_matrices=False)
    np.testing.assert_allclose(((u * s.reshape(2, 1, 3)) @ vh).numpy(), a, rtol=1e-6, atol=1e-6)
    assert (np.diff(s.numpy(), axis=-1) <= 0).all()
    assert cr.linalg.svd(cr.tensor(a)).U.shape == (2, 4, 4)


@pytest.mark.parametrize(
    "call",
    [
        lambda m, a: m.linalg.norm(a),
        lambda m, a: m.linalg.norm(a, ord=2),
        lambda m, a: m.linalg.norm(a, ord="nuc"),
        lambda m, a: m.linalg.norm(a, ord=-1),
        lambda m, a: m.linalg.norm(a, dim=0),
        lambda m, a: m.linalg.norm(a, ord=float("inf"), dim=1, keepdim=True),
        lambda m, a: m.linalg.matrix_norm(a, ord=-2),
        lambda m, a: m.norm(a, p="nuc"),
        lambda m, a: m.norm(a, p=3, dim=(0, 1)),
    ],
)
def test_norm_values_match_torch(call):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(5).standard_normal((3, 4))
    ours = call(cr, cr.tensor(a)).numpy()
    theirs = call(torch, torch.tensor(a)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-10)


# ---- errors ---------------------------------------------------------------------------------


def test_linalg_errors_name_the_op_and_shapes():
    singular = cr.tensor([[1.0, 2.0], [2.0, 4.0]])
    with pytest.raises(RuntimeError, match=r"linalg.inv:.*singular.*\[2, 2\] float32"):
        cr.linalg.inv(singular)
    with pytest.raises(RuntimeError, match=r"linalg.solve:.*singular.*\[2, 2\] float32"):
        cr.linalg.solve(singular, cr.ones(2))
    with pytest.raises(RuntimeError, match=r"linalg.cholesky:.*not positive-definite.*\[2, 2\]"):
        cr.linalg.cholesky(cr.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(
        RuntimeError,
        match=r"linalg.inv: A must be batches of square matrices, "
        r"but they are 2 by 3 matrices",
    ):
        cr.linalg.inv(cr.ones(2, 3))
    with pytest.raises(RuntimeError, match=r"linalg.det:.*at least 2 dimensions.*\[3\]"):
        cr.linalg.det(cr.ones(3))
    with pytest.raises(RuntimeError, match=r"linalg.solve: Incompatible shapes.*\(3x3 and 2\)"):
        cr.linalg.solve(cr.eye(3), cr.ones(2))
    with pytest.raises(RuntimeError, match=r"linalg.inv: Expected a floating point.*int64"):
        cr.linalg.inv(cr.tensor([[1, 0], [0, 1]]))
    with pytest.raises(RuntimeError, match=r"linalg.norm: If dim is not specified but ord is.*3D"):
        cr.linalg.norm(cr.ones(2, 2, 2), ord=2)
    with pytest.raises(RuntimeError, match=r"matrix_norm: Order 3 not supported"):
        cr.linalg.matrix_norm(cr.ones(2, 2), ord=3)
