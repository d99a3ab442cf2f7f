"""Custom ``autograd.Function``: forward/backward, ctx features, double backward, torch parity."""

from __future__ import annotations

import gc
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule.autograd import Function


def leaf(values, dtype=cr.float64):
    return cr.tensor(values, dtype=dtype, requires_grad=True)


class Cube(Function):
    @staticmethod
    def forward(ctx, x, scale=1.0):
        ctx.save_for_backward(x)
        ctx.scale = scale  # an arbitrary attribute
        return x * x * x * scale

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x * ctx.scale, None


def test_forward_backward_and_grad_fn_name():
    x = leaf([1.0, -2.0])
    y = Cube.apply(x, 2.0)
    np.testing.assert_array_equal(y.detach().numpy(), [2.0, -16.0])
    assert y.requires_grad and y.grad_fn.name == "CubeBackward"
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 24.0])
    x.grad = None
    Cube.apply(x, scale=2.0).sum().backward()  # keyword arguments are never differentiated
    np.testing.assert_array_equal(x.grad.numpy(), [6.0, 24.0])


def test_forward_runs_with_grad_disabled():
    seen = {}

    class Probe(Function):
        @staticmethod
        def forward(ctx, x):
            seen["enabled"] = cr.is_grad_enabled()
            y = x * 2
            seen["inner_requires_grad"] = y.requires_grad
            return y

        @staticmethod
        def backward(ctx, g):
            return g * 2

    Probe.apply(leaf([1.0]))
    assert seen == {"enabled": False, "inner_requires_grad": False}


def test_gradcheck_and_double_backward():
    x = leaf([0.3, -1.2, 2.0])
    assert cr.autograd.gradcheck(lambda t: Cube.apply(t, 0.5), (x,))
    assert cr.autograd.gradgradcheck(lambda t: Cube.apply(t, 0.5), (x,))
    (g,) = cr.autograd.grad(Cube.apply(x).sum(), x, create_graph=True)
    (h,) = cr.autograd.grad(g.sum(), x)
    np.testing.assert_allclose(h.numpy(), 6 * x.detach().numpy())


def test_needs_input_grad():
    seen = []

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b, k):
            ctx.save_for_backward(a, b)
            return a * b * k

        @staticmethod
        def backward(ctx, g):
            seen.append(ctx.needs_input_grad)
            a, b = ctx.saved_tensors
            ga = g * b if ctx.needs_input_grad[0] else None
            gb = g * a if ctx.needs_input_grad[1] else None
            return ga, gb, None

    a = leaf([2.0])
    b = cr.tensor([3.0], dtype=cr.float64)
    Mul.apply(a, b, 1.0).sum().backward()
    assert seen == [(True, False, False)]
    assert a.grad.item() == 3.0


def test_mark_non_differentiable_and_multiple_outputs():
    class SortWithIndex(Function):
        @staticmethod
        def forward(ctx, x):
            order = np.argsort(x.detach().numpy())
            idx = cr.tensor(order)
            values = cr.tensor(x.detach().numpy()[order])
            ctx.mark_non_differentiable(idx)
            ctx.order = order
            return values, idx

        @staticmethod
        def backward(ctx, g_values, g_idx):
            assert float(g_idx.abs().sum()) == 0.0  # materialized zeros for the index output
            out = np.zeros_like(g_values.numpy())
            out[ctx.order] = g_values.numpy()
            return cr.tensor(out)

    x = leaf([3.0, 1.0, 2.0])
    values, idx = SortWithIndex.apply(x)
    assert values.requires_grad and not idx.requires_grad
    assert idx.tolist() == [1, 2, 0]
    (values * cr.tensor([1.0, 10.0, 100.0], dtype=cr.float64)).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [100.0, 1.0, 10.0])


def test_only_one_output_used_gets_zeros_for_the_other():
    class Split(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            return ga * 2 + gb * 3

    x = leaf([1.0])
    a, _ = Split.apply(x)
    a.sum().backward()
    assert x.grad.item() == 2.0


def test_set_materialize_grads_false_gives_none():
    seen = []

    class Split(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.set_materialize_grads(False)
            return x * 2, x * 3

        @staticmethod
        def backward(ctx, ga, gb):
            seen.append((ga is None, gb is None))
            g = 0
            if ga is not None:
                g = g + ga * 2
            if gb is not None:
                g = g + gb * 3
            return g

    x = leaf([1.0])
    _, b = Split.apply(x)
    b.sum().backward()
    assert seen == [(True, False)]
    assert x.grad.item() == 3.0


def test_saved_tensors_are_checked_against_in_place_changes():
    x = leaf([1.0, 2.0])
    h = x * 1
    y = Cube.apply(h)
    h.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_saved_output_and_in_place_change_of_it():
    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            out = x.exp()
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, g):
            (out,) = ctx.saved_tensors
            return g * out

    x = leaf([0.0, 1.0])
    y = Exp.apply(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.0, 1.0]))
    y2 = Exp.apply(x)
    with cr.no_grad():
        y2.add_(1)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y2.sum().backward()


def test_saved_output_double_backward():
    class Exp(Function):
        @staticmethod
        def forward(ctx, x):
            out = x.exp()
            ctx.save_for_backward(out)
            return out

        @staticmethod
        def backward(ctx, g):
            (out,) = ctx.saved_tensors
            return g * out

    x = leaf([0.5])
    (g,) = cr.autograd.grad(Exp.apply(x).sum(), x, create_graph=True)
    (h,) = cr.autograd.grad(g.sum(), x)
    assert h.item() == pytest.approx(np.exp(0.5))


def test_saved_tensors_are_freed_after_backward():
    x = leaf([1.0])
    y = Cube.apply(x)
    y.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        _ = y.grad_fn.saved_tensors


def test_function_saving_nothing_backpropagates_twice():
    class Double(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = leaf([1.0])
    y = Double.apply(x).sum()
    y.backward()
    y.backward()
    assert x.grad.item() == 4.0


def test_saved_intermediate_is_released_with_gc_disabled():
    refs = []

    class Keep(Function):
        @staticmethod
        def forward(ctx, x):
            tmp = x * 2
            refs.append(weakref.ref(tmp))
            ctx.save_for_backward(tmp)
            return x * 3

        @staticmethod
        def backward(ctx, g):
            (tmp,) = ctx.saved_tensors
            return g * 3

    gc.disable()
    try:
        x = leaf([1.0])
        y = Keep.apply(x)
        assert refs[0]() is not None
        y.sum().backward()
        assert refs[0]() is None
        y2 = Keep.apply(x)
        node = weakref.ref(y2.grad_fn)
        del y2  # the output and its node go, the saved output included (no cycle)
        assert node() is None and refs[1]() is None
    finally:
        gc.enable()


def test_mark_dirty_rebases_the_input():
    class AddOneInPlace(Function):
        @staticmethod
        def forward(ctx, x):
            x.add_(1)
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, g):
            return g

    a = leaf([1.0, 2.0])
    h = a * 2
    out = AddOneInPlace.apply(h)
    assert out is h and h.grad_fn.name == "AddOneInPlaceBackward"
    np.testing.assert_array_equal(h.detach().numpy(), [3.0, 5.0])
    (h * h).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [12.0, 20.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        AddOneInPlace.apply(leaf([1.0]))


def test_returning_an_input_gives_an_alias_with_history():
    class Identity(Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, g):
            return g * 5

    x = leaf([1.0])
    y = Identity.apply(x)
    assert y is not x and x.is_leaf and y.grad_fn.name == "IdentityBackward"
    y.sum().backward()
    assert x.grad.item() == 5.0


def test_wrong_number_of_gradients_raises():
    class Bad(Function):
        @staticmethod
        def forward(ctx, a, b):
            return a * b

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(RuntimeError, match="incorrect number of gradients"):
        Bad.apply(leaf([1.0]), leaf([2.0])).sum().backward()


def test_wrong_gradient_shape_raises():
    class Bad(Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2

        @staticmethod
        def backward(ctx, g):
            return cr.ones(5, dtype=cr.float64)

    with pytest.raises(RuntimeError, match=r"invalid gradient at index 0 - got \[5\]"):
        Bad.apply(leaf([1.0, 2.0])).sum().backward()


def test_save_for_backward_rejects_non_tensors():
    class Bad(Function):
        @staticmethod
        def forward(ctx, a):
            ctx.save_for_backward(3)
            return a

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TypeError, match="can only save tensors"):
        Bad.apply(leaf([1.0]))


def test_no_graph_without_grad():
    x = cr.tensor([2.0])
    y = Cube.apply(x)
    assert not y.requires_grad and y.grad_fn is None
    with cr.no_grad():
        assert not Cube.apply(leaf([2.0])).requires_grad


def test_hooks_on_function_outputs():
    x = leaf([1.0])
    y = Cube.apply(x)
    y.register_hook(lambda g: g * 10)
    y.sum().backward()
    assert x.grad.item() == 30.0


def test_setup_context_style():
    class Sin(Function):
        @staticmethod
        def forward(x):
            return x.sin()

        @staticmethod
        def setup_context(ctx, inputs, output):
            (x,) = inputs
            ctx.save_for_backward(x)

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x.cos()

    x = leaf([0.5])
    Sin.apply(x).sum().backward()
    assert x.grad.item() == pytest.approx(np.cos(0.5))


def test_once_differentiable_builds_no_graph():
    class Square(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        @cr.autograd.once_differentiable
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * 2 * x

    x = leaf([3.0])
    (g,) = cr.autograd.grad(Square.apply(x).sum(), x, create_graph=True)
    assert g.item() == 6.0 and not g.requires_grad


def test_instantiating_a_function_raises():
    with pytest.raises(RuntimeError, match="apply"):
        Cube()


def test_matches_torch_custom_function():
    torch = pytest.importorskip("torch")

    def define(base):
        class Softsign(base):
            @staticmethod
            def forward(ctx, x):
                d = 1 + x.abs()
                ctx.save_for_backward(d)
                return x / d

            @staticmethod
            def backward(ctx, g):
                (d,) = ctx.saved_tensors
                return g / (d * d)

        return Softsign

    ours, theirs = define(Function), define(torch.autograd.Function)
    data = np.array([-2.0, -0.1, 0.4, 3.0])
    x = cr.tensor(data, requires_grad=True)
    t = torch.tensor(data, requires_grad=True)
    (g,) = cr.autograd.grad(ours.apply(x).pow(3).sum(), x, create_graph=True)
    (gt,) = torch.autograd.grad(theirs.apply(t).pow(3).sum(), t, create_graph=True)
    np.testing.assert_allclose(g.detach().numpy(), gt.detach().numpy(), rtol=1e-12)
    (h,) = cr.autograd.grad(g.sum(), x)
    (ht,) = torch.autograd.grad(gt.sum(), t)
    np.testing.assert_allclose(h.numpy(), ht.numpy(), rtol=1e-10)


def test_non_tensor_outputs_pass_through_and_get_none():
    seen = []

    class WithCount(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2, 7

        @staticmethod
        def backward(ctx, g, g_count):
            seen.append(g_count)
            return g * 2

    x = leaf([1.0])
    y, count = WithCount.apply(x)
    assert count == 7
    y.sum().backward()
    assert seen == [None] and x.grad.item() == 2.0
