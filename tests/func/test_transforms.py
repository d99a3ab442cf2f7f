"""``chainrule.func`` against ``torch.func``: the same function, the same numbers."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule import func

torch = pytest.importorskip("torch")
tfunc = pytest.importorskip("torch.func")

RNG = np.random.default_rng(0)


def arr(*shape):
    return RNG.standard_normal(shape)


def both(*arrays):
    """The same float64 data as chainrule and torch tensors."""
    return [cr.tensor(a) for a in arrays], [torch.tensor(a) for a in arrays]


def assert_same(ours, theirs, rtol=1e-10, atol=1e-12):
    """Compare nested tuples/lists/dicts of tensors leaf by leaf."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and list(ours) == list(theirs)
        for k in theirs:
            assert_same(ours[k], theirs[k], rtol, atol)
    elif isinstance(theirs, (tuple, list)):
        assert isinstance(ours, (tuple, list)) and len(ours) == len(theirs), (ours, theirs)
        for o, t in zip(ours, theirs):
            assert_same(o, t, rtol, atol)
    elif isinstance(theirs, torch.Tensor):
        assert isinstance(ours, cr.Tensor), type(ours)
        assert tuple(ours.shape) == tuple(theirs.shape), (ours.shape, theirs.shape)
        np.testing.assert_allclose(
            ours.detach().numpy(), theirs.detach().numpy(), rtol=rtol, atol=atol
        )
    else:
        assert ours == theirs


def f_scalar(m, x):
    return (m.sin(x) * x.exp()).sum()


def f_vector(m, x):
    return m.tanh(x) * x.sum()


def f_two(m, x, w):
    return ((x @ w).tanh() ** 2).sum()


# ---- grad and grad_and_value -----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_grad(shape):
    (x,), (tx,) = both(arr(*shape))
    assert_same(
        func.grad(lambda t: f_scalar(cr, t))(x), tfunc.grad(lambda t: f_scalar(torch, t))(tx)
    )


@pytest.mark.parametrize("argnums", [0, 1, (0, 1), (1, 0), -1])
def test_grad_argnums(argnums):
    (x, w), (tx, tw) = both(arr(2, 3), arr(3, 4))
    ours = func.grad(lambda a, b: f_two(cr, a, b), argnums=argnums)(x, w)
    theirs = tfunc.grad(lambda a, b: f_two(torch, a, b), argnums=argnums)(tx, tw)
    assert_same(ours, theirs)


def test_grad_has_aux_and_grad_and_value():
    (x,), (tx,) = both(arr(4))

    def make(m):
        def f(t):
            y = (t * t).sum()
            return y, {"double": t * 2, "value": y}

        return f

    assert_same(func.grad(make(cr), has_aux=True)(x), tfunc.grad(make(torch), has_aux=True)(tx))
    assert_same(
        func.grad_and_value(make(cr), has_aux=True)(x),
        tfunc.grad_and_value(make(torch), has_aux=True)(tx),
    )
    assert_same(
        func.grad_and_value(lambda t: f_scalar(cr, t))(x),
        tfunc.grad_and_value(lambda t: f_scalar(torch, t))(tx),
    )


def test_grad_of_a_dict_of_parameters():
    (w, b, x), (tw, tb, tx) = both(arr(3, 2), arr(2), arr(5, 3))

    def loss(m):
        return lambda p, inp: ((inp @ p["w"] + p["b"]).sigmoid() ** 2).mean()

    ours = func.grad(loss(cr))({"w": w, "b": b}, x)
    theirs = tfunc.grad(loss(torch))({"w": tw, "b": tb}, tx)
    assert_same(ours, theirs)


def test_nested_grad_gives_higher_derivatives():
    (x,), (tx,) = both(np.array(0.7))
    g3 = func.grad(func.grad(func.grad(lambda t: t.sin() * t**4)))
    t3 = tfunc.grad(tfunc.grad(tfunc.grad(lambda t: t.sin() * t**4)))
    assert_same(g3(x), t3(tx))


def test_grad_of_an_unused_argument_is_zero():
    (x, w), (tx, tw) = both(arr(3), arr(2))
    assert_same(
        func.grad(lambda a, b: (a * 2).sum(), argnums=(0, 1))(x, w),
        tfunc.grad(lambda a, b: (a * 2).sum(), argnums=(0, 1))(tx, tw),
    )


def test_results_are_plain_tensors_unless_something_outside_is_tracked():
    x = cr.tensor(arr(3))
    g = func.grad(lambda t: f_scalar(cr, t))(x)
    assert not g.requires_grad and g.grad_fn is None
    # a closure over a tensor tracked by an outer computation keeps the connection
    w = cr.tensor(arr(3), requires_grad=True)
    g = func.grad(lambda t: (t * t * w).sum())(x)  # 2 t w
    assert g.requires_grad
    g.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * x.numpy())


def test_grad_of_an_input_tracked_outside_is_differentiable():
    x = cr.tensor(arr(3), requires_grad=True)
    g = func.grad(lambda t: (t**3).sum())(x)  # 3 t²
    g.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 6 * x.detach().numpy())


def test_grad_under_no_grad_still_works():
    (x,), (tx,) = both(arr(3))
    with cr.no_grad():
        g = func.grad(lambda t: f_scalar(cr, t))(x)
    assert_same(g, tfunc.grad(lambda t: f_scalar(torch, t))(tx))


def test_grad_errors():
    x = cr.tensor(arr(3))
    with pytest.raises(RuntimeError, match="scalar Tensor"):
        func.grad(lambda t: t * 2)(x)
    with pytest.raises(RuntimeError, match="argnums=2"):
        func.grad(lambda t: t.sum(), argnums=2)(x)
    with pytest.raises(RuntimeError, match="floating point"):
        func.grad(lambda t: t.sum())(cr.tensor([1, 2]))
    with pytest.raises(RuntimeError, match="tuple"):
        func.grad(lambda t: t.sum(), has_aux=True)(x)


# ---- vjp and jvp -----------------------------------------------------------------------------


def test_vjp_single_and_multiple_outputs():
    (x, w, v), (tx, tw, tv) = both(arr(2, 3), arr(3, 4), arr(2, 4))
    out, fn = func.vjp(lambda a, b: (a @ b).sin(), x, w)
    tout, tfn = tfunc.vjp(lambda a, b: (a @ b).sin(), tx, tw)
    assert_same(out, tout)
    assert_same(fn(v), tfn(tv))
    assert_same(fn(v * 2), tfn(tv * 2))  # vjp_fn can be called again

    (c1, c2), (t1, t2) = both(arr(3), np.array(1.5))
    out, fn = func.vjp(lambda a: (a.exp(), a.sum() ** 2), x[0])
    tout, tfn = tfunc.vjp(lambda a: (a.exp(), a.sum() ** 2), tx[0])
    assert_same(out, tout)
    assert_same(fn((c1, c2)), tfn((t1, t2)))


def test_vjp_has_aux():
    (x, v), (tx, tv) = both(arr(3), arr(3))
    out, fn, aux = func.vjp(lambda a: (a.cos(), a.sum()), x, has_aux=True)
    tout, tfn, taux = tfunc.vjp(lambda a: (a.cos(), a.sum()), tx, has_aux=True)
    assert_same((out, aux, fn(v)), (tout, taux, tfn(tv)))


def test_vjp_cotangent_shape_is_checked():
    _, fn = func.vjp(lambda a: a * 2, cr.ones(3))
    with pytest.raises(RuntimeError, match="shape"):
        fn(cr.ones(4))


@pytest.mark.parametrize("name", ["vector", "matmul", "reduction"])
def test_jvp(name):
    fns = {
        "vector": lambda m, a, b: f_vector(m, a) * b.sum(),
        "matmul": lambda m, a, b: (a.reshape(2, 2) @ b.reshape(2, 2)).exp(),
        "reduction": lambda m, a, b: (a * b).sum(),
    }
    (x, w, u, v), (tx, tw, tu, tv) = both(arr(4), arr(4), arr(4), arr(4))
    ours = func.jvp(lambda a, b: fns[name](cr, a, b), (x, w), (u, v))
    theirs = tfunc.jvp(lambda a, b: fns[name](torch, a, b), (tx, tw), (tu, tv))
    assert_same(ours, theirs)


def test_jvp_tuple_output_and_has_aux():
    (x, u), (tx, tu) = both(arr(3), arr(3))
    ours = func.jvp(lambda a: ((a.sin(), a * a), a.sum()), (x,), (u,), has_aux=True)
    theirs = tfunc.jvp(lambda a: ((a.sin(), a * a), a.sum()), (tx,), (tu,), has_aux=True)
    assert_same(ours, theirs)


def test_jvp_of_a_constant_output_is_zero():
    (x, u), (tx, tu) = both(arr(3), arr(3))
    assert_same(
        func.jvp(lambda a: cr.ones(2, dtype=cr.float64), (x,), (u,)),
        tfunc.jvp(lambda a: torch.ones(2, dtype=torch.float64), (tx,), (tu,)),
    )


def test_jvp_tangent_shape_is_checked():
    with pytest.raises(RuntimeError, match="same shape"):
        func.jvp(lambda a: a * 2, (cr.ones(3),), (cr.ones(2),))


# ---- Jacobians and Hessians ------------------------------------------------------------------


@pytest.mark.parametrize("jac", ["jacrev", "jacfwd"])
@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
def test_jacobian_shapes_and_values(jac, shape):
    (x,), (tx,) = both(arr(*shape))
    ours = getattr(func, jac)(lambda t: f_vector(cr, t))(x)
    theirs = getattr(tfunc, jac)(lambda t: f_vector(torch, t))(tx)
    assert_same(ours, theirs)


@pytest.mark.parametrize("jac", ["jacrev", "jacfwd"])
def test_jacobian_argnums_tuple_outputs_and_aux(jac):
    (x, w), (tx, tw) = both(arr(2, 3), arr(3))

    def make(m):
        return lambda a, b: (((a @ b).sin(), (a * a).sum()), b.sum())

    ours = getattr(func, jac)(make(cr), argnums=(0, 1), has_aux=True)(x, w)
    theirs = getattr(tfunc, jac)(make(torch), argnums=(0, 1), has_aux=True)(tx, tw)
    assert_same(ours, theirs)


def test_jacobian_of_a_scalar_function_is_its_gradient():
    (x,), (tx,) = both(arr(4))
    assert_same(
        func.jacrev(lambda t: f_scalar(cr, t))(x), tfunc.grad(lambda t: f_scalar(torch, t))(tx)
    )
    assert_same(
        func.jacfwd(lambda t: f_scalar(cr, t))(x), tfunc.grad(lambda t: f_scalar(torch, t))(tx)
    )


@pytest.mark.parametrize("shape", [(), (3,), (2, 2)])
def test_hessian(shape):
    (x,), (tx,) = both(arr(*shape))
    assert_same(
        func.hessian(lambda t: f_scalar(cr, t))(x), tfunc.hessian(lambda t: f_scalar(torch, t))(tx)
    )


def test_hessian_argnums_and_composed_jacobians():
    (x, w), (tx, tw) = both(arr(2, 3), arr(3, 2))
    assert_same(
        func.hessian(lambda a, b: f_two(cr, a, b), argnums=1)(x, w),
        tfunc.hessian(lambda a, b: f_two(torch, a, b), argnums=1)(tx, tw),
    )
    assert_same(
        func.jacfwd(func.jacrev(lambda t: f_vector(cr, t)))(x[0]),
        tfunc.jacfwd(tfunc.jacrev(lambda t: f_vector(torch, t)))(tx[0]),
    )


# ---- vmap ------------------------------------------------------------------------------------


def test_vmap_elementwise_matmul_reduction():
    (x, w, y), (tx, tw, ty) = both(arr(5, 3), arr(5, 3, 2), arr(5, 3))
    assert_same(func.vmap(lambda a: a.sin() * 2)(x), tfunc.vmap(lambda a: a.sin() * 2)(tx))
    assert_same(func.vmap(lambda a, b: a @ b)(x, w), tfunc.vmap(lambda a, b: a @ b)(tx, tw))
    assert_same(
        func.vmap(lambda a, b: (a * b).sum() / a.sum())(x, y),
        tfunc.vmap(lambda a, b: (a * b).sum() / a.sum())(tx, ty),
    )


def test_vmap_in_dims_out_dims_and_kwargs():
    (x, m, w), (tx, tm, tw) = both(arr(3, 4), arr(2, 3), arr(4, 2))
    assert_same(
        func.vmap(lambda a, b: a @ b, in_dims=(1, None))(x.T, w),
        tfunc.vmap(lambda a, b: a @ b, in_dims=(1, None))(tx.T, tw),
    )
    assert_same(
        func.vmap(lambda a, b: a @ b, in_dims=(0, None))(x, w),
        tfunc.vmap(lambda a, b: a @ b, in_dims=(0, None))(tx, tw),
    )
    assert_same(
        func.vmap(lambda a: a.exp(), in_dims=1, out_dims=1)(m),
        tfunc.vmap(lambda a: a.exp(), in_dims=1, out_dims=1)(tm),
    )
    assert_same(
        func.vmap(lambda a, scale=1.0: a.sum() * scale)(x, scale=3.0),
        tfunc.vmap(lambda a, scale=1.0: a.sum() * scale)(tx, scale=3.0),
    )


def test_vmap_tuple_outputs_and_nested_structures():
    (x, y), (tx, ty) = both(arr(4, 2), arr(4))

    def make(m):
        return lambda d: (d["a"].sum(), d["a"] * d["b"])

    assert_same(func.vmap(make(cr))({"a": x, "b": y}), tfunc.vmap(make(torch))({"a": tx, "b": ty}))
    assert_same(
        func.vmap(lambda a: (a.sum(), a * 2), out_dims=(0, 1))(x),
        tfunc.vmap(lambda a: (a.sum(), a * 2), out_dims=(0, 1))(tx),
    )


def test_nested_vmap():
    (x, y), (tx, ty) = both(arr(3, 4), arr(5, 4))
    dot = lambda a, b: (a * b).sum()
    assert_same(
        func.vmap(func.vmap(dot, in_dims=(None, 0)), in_dims=(0, None))(x, y),
        tfunc.vmap(tfunc.vmap(dot, in_dims=(None, 0)), in_dims=(0, None))(tx, ty),
    )


def test_per_example_gradients_with_vmap_of_grad():
    (w, xs, ys), (tw, txs, tys) = both(arr(3), arr(6, 3), arr(6))

    def make(m):
        def loss(p, x, y):
            return ((x * p).sum().tanh() - y) ** 2

        return loss

    assert_same(
        func.vmap(func.grad(make(cr)), in_dims=(None, 0, 0))(w, xs, ys),
        tfunc.vmap(tfunc.grad(make(torch)), in_dims=(None, 0, 0))(tw, txs, tys),
    )


def test_vmap_is_differentiable():
    x = cr.tensor(arr(4, 3), requires_grad=True)
    tx = torch.tensor(x.detach().numpy(), requires_grad=True)
    func.vmap(lambda a: (a.sin() ** 2).sum())(x).sum().backward()
    tfunc.vmap(lambda a: (a.sin() ** 2).sum())(tx).sum().backward()
    assert_same(x.grad, tx.grad)


def test_jacrev_of_vmap():
    (x,), (tx,) = both(arr(3, 2))
    assert_same(
        func.jacrev(func.vmap(lambda a: a.sin().sum()))(x),
        tfunc.jacrev(tfunc.vmap(lambda a: a.sin().sum()))(tx),
    )


def test_vmap_errors():
    with pytest.raises(ValueError, match="same size in the mapped dimension"):
        func.vmap(lambda a, b: a + b)(cr.ones(3, 2), cr.ones(4, 2))
    with pytest.raises(ValueError, match="in_dim"):
        func.vmap(lambda a: a, in_dims=2)(cr.ones(3, 2))
    with pytest.raises(ValueError, match="at least one"):
        func.vmap(lambda a: a, in_dims=None)(cr.ones(3))
    with pytest.raises(ValueError, match="structure"):
        func.vmap(lambda a, b: a, in_dims=(0,))(cr.ones(3), cr.ones(3))


def test_identity_function_through_every_transform():
    (x, u), (tx, tu) = both(arr(3), arr(3))
    ident = lambda a: a
    assert_same(func.jvp(ident, (x,), (u,)), tfunc.jvp(ident, (tx,), (tu,)))
    assert_same(func.jacrev(ident)(x), tfunc.jacrev(ident)(tx))
    assert_same(func.jacfwd(ident)(x), tfunc.jacfwd(ident)(tx))
    out, fn = func.vjp(ident, x)
    assert not out.requires_grad
    assert_same(fn(u), (tu,))
    g, v = func.grad_and_value(ident)(x[0])
    assert g.item() == 1.0 and not v.requires_grad


def test_transforms_leave_no_graph_behind():
    refs = []

    def f(t):
        y = (t.sin() * t).sum()
        refs.append(weakref.ref(y.grad_fn))
        return y

    x = cr.tensor(arr(3))
    gc.disable()
    try:
        func.grad(f)(x)
        func.jacfwd(f)(x)
        func.hessian(f)(x)
        func.jvp(f, (x,), (x,))
        _, fn = func.vjp(f, x)
        fn(cr.tensor(1.0, dtype=cr.float64))
        assert refs[-1]() is not None  # vjp_fn holds its graph
        del fn
        assert all(r() is None for r in refs), [r() for r in refs]
    finally:
        gc.enable()
