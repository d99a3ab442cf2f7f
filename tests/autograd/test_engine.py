"""Engine semantics: accumulation, graph freeing, seeds, hooks, grad modes, autograd.grad."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def leaf(values, dtype=cr.float64):
    return cr.tensor(values, dtype=dtype, requires_grad=True)


# ---- accumulation and retain_graph -----------------------------------------------------------


@pytest.mark.parametrize("k", [1, 2, 5])
def test_k_backward_calls_with_retain_graph_give_k_times_the_gradient(k):
    x = leaf([0.5, -1.0, 2.0])
    y = (x.exp() * x.sin()).sum()  # saves tensors: needs retain_graph
    for _ in range(k):
        y.backward(retain_graph=True)
    one = np.exp(x.detach().numpy()) * (np.sin(x.detach().numpy()) + np.cos(x.detach().numpy()))
    np.testing.assert_allclose(x.grad.numpy(), k * one, rtol=1e-12)


def test_second_backward_through_a_freed_graph_raises_pytorchs_message():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="Trying to backward through the graph a second time"):
        y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_graph_of_ops_that_save_nothing_can_be_backpropagated_twice():
    x = leaf([1.0, 2.0])
    y = (x + x + 3.0).sum()  # Add and Sum save nothing: nothing is freed
    y.backward()
    y.backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 4.0])


def test_retain_graph_then_free():
    x = leaf([3.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()  # frees now
    assert x.grad.item() == 12.0
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_gradients_accumulate_across_graphs_and_zeroing_resets():
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [5.0, 7.0])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_diamond_graph_sums_both_paths():
    x = leaf([2.0])
    a = x * 3
    y = (a * a + a).sum()  # dy/dx = (2a + 1) * 3
    y.backward()
    assert x.grad.item() == (2 * 6 + 1) * 3


def test_the_same_input_twice():
    x = leaf([2.0, -1.0])
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, -2.0])


# ---- seeds -----------------------------------------------------------------------------------


def test_non_scalar_backward_without_a_gradient_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(
        RuntimeError, match="grad can be implicitly created only for scalar outputs"
    ):
        (x * 2).backward()


def test_gradient_of_the_wrong_shape_names_both_shapes():
    x = leaf([1.0, 2.0, 3.0])
    y = x * 2
    with pytest.raises(RuntimeError, match=r"shape.*\[2\].*\[3\]"):
        y.backward(cr.ones(2, dtype=cr.float64))


def test_explicit_gradient_weights_the_outputs():
    x = leaf([1.0, 2.0, 3.0])
    (x * x).backward(cr.tensor([1.0, 0.0, -1.0], dtype=cr.float64))
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 0.0, -6.0])


def test_backward_on_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.ones(2).sum().backward()


def test_one_element_non_scalar_output_needs_no_gradient():
    x = leaf([2.0])
    (x * x).backward()  # shape [1]: implicit seed allowed, as in PyTorch
    assert x.grad.item() == 4.0


# ---- hooks and retain_grad -------------------------------------------------------------------


def test_leaf_hook_sees_and_replaces_the_gradient():
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.numpy().copy()))
    x.register_hook(lambda g: g * 10)
    (x * 3).sum().backward()
    np.testing.assert_array_equal(seen[0], [3.0, 3.0])
    np.testing.assert_array_equal(x.grad.numpy(), [30.0, 30.0])


def test_non_leaf_hook_replaces_what_flows_on():
    x = leaf([1.0, 2.0])
    h = x * 2
    h.register_hook(lambda g: g * 0 + 1)  # replace the incoming gradient by ones
    (h * h).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])  # 1 * dh/dx


def test_hook_handle_remove():
    x = leaf([1.0])
    handle = x.register_hook(lambda g: g * 100)
    handle.remove()
    handle.remove()  # idempotent
    (x * 2).sum().backward()
    assert x.grad.item() == 2.0


def test_hooks_run_in_registration_order():
    x = leaf([1.0])
    order = []
    x.register_hook(lambda g: order.append("first"))
    x.register_hook(lambda g: order.append("second"))
    (x * 2).sum().backward()
    assert order == ["first", "second"]


def test_register_hook_on_a_tensor_that_does_not_require_grad_raises():
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        cr.ones(2).register_hook(lambda g: g)


def test_retain_grad_keeps_non_leaf_gradients():
    x = leaf([1.0, 2.0])
    h = x * 3
    h.retain_grad()
    assert h.retains_grad
    y = (h * h).sum()
    y.backward()
    np.testing.assert_array_equal(h.grad.numpy(), [6.0, 12.0])
    assert (x * 2).grad is None  # not retained: no grad kept


def test_retain_grad_sees_the_hooked_gradient_even_if_registered_first():
    x = leaf([1.0])
    h = x * 1
    h.retain_grad()
    h.register_hook(lambda g: g * 5)
    h.sum().backward()
    assert h.grad.item() == 5.0  # PyTorch: retain_grad runs after the other hooks
    assert x.grad.item() == 5.0


# ---- grad modes ------------------------------------------------------------------------------


def _records() -> bool:
    return (leaf([1.0]) * 2).requires_grad


def test_no_grad_enable_grad_as_context_managers():
    with cr.no_grad():
        assert not _records()
        assert not cr.is_grad_enabled()
        with cr.enable_grad():
            assert _records()
        assert not _records()
    assert _records()


def test_no_grad_enable_grad_as_decorators():
    @cr.no_grad()
    def off():
        return _records()

    @cr.enable_grad()
    def on():
        return _records()

    assert off() is False
    with cr.no_grad():
        assert on() is True
    assert cr.is_grad_enabled()


def test_set_grad_enabled_as_call_context_and_decorator():
    cr.set_grad_enabled(False)
    try:
        assert not _records()
    finally:
        cr.set_grad_enabled(True)
    assert _records()
    with cr.set_grad_enabled(False):
        assert not _records()
    assert _records()

    @cr.set_grad_enabled(False)
    def off():
        return _records()

    assert cr.is_grad_enabled()  # decorating does not switch the mode now
    assert off() is False
    assert _records()


def test_inference_mode_as_context_manager_and_decorator():
    with cr.inference_mode():
        assert not _records()
        assert cr.is_inference_mode_enabled()
    assert not cr.is_inference_mode_enabled()
    with cr.inference_mode(False):
        assert _records()

    @cr.inference_mode()
    def infer():
        return _records()

    assert infer() is False
    assert _records()


def test_modes_are_restored_after_an_exception():
    with pytest.raises(ValueError):
        with cr.no_grad():
            raise ValueError
    assert cr.is_grad_enabled()


# ---- autograd.grad ---------------------------------------------------------------------------


def test_grad_returns_gradients_without_touching_dot_grad():
    x = leaf([1.0, 2.0])
    (g,) = cr.autograd.grad((x * x).sum(), x)
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])
    assert x.grad is None


def test_grad_allow_unused():
    x, z = leaf([1.0]), leaf([5.0])
    y = (x * 2).sum()
    with pytest.raises(RuntimeError, match="allow_unused=True"):
        cr.autograd.grad(y, [x, z], retain_graph=True)
    gx, gz = cr.autograd.grad(y, [x, z], allow_unused=True)
    assert gx.item() == 2.0 and gz is None


def test_grad_materialize_grads_gives_zeros():
    x, z = leaf([1.0]), leaf([5.0, 6.0])
    _, gz = cr.autograd.grad((x * 2).sum(), [x, z], materialize_grads=True)
    np.testing.assert_array_equal(gz.numpy(), [0.0, 0.0])


@pytest.mark.parametrize("x0", [-1.5, 0.5, 2.0])
def test_third_derivative_of_x_to_the_fourth(x0):
    x = leaf(x0)
    y = x**4
    (d1,) = cr.autograd.grad(y, x, create_graph=True)
    (d2,) = cr.autograd.grad(d1, x, create_graph=True)
    (d3,) = cr.autograd.grad(d2, x, create_graph=True)
    (d4,) = cr.autograd.grad(d3, x)
    assert d1.item() == pytest.approx(4 * x0**3)
    assert d2.item() == pytest.approx(12 * x0**2)
    assert d3.item() == pytest.approx(24 * x0)
    assert d4.item() == pytest.approx(24)


def test_higher_order_of_a_composite():
    x = leaf([0.3, -0.7])
    y = (x.sin() * x.exp()).sum()
    (g,) = cr.autograd.grad(y, x, create_graph=True)
    (h,) = cr.autograd.grad(g.sum(), x)
    xs = x.detach().numpy()
    # d²/dx² sin(x) e^x = 2 cos(x) e^x
    np.testing.assert_allclose(h.numpy(), 2 * np.cos(xs) * np.exp(xs), rtol=1e-12)


def test_create_graph_backward_accumulates_a_differentiable_grad():
    x = leaf([2.0])
    (x**3).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (g2,) = cr.autograd.grad(x.grad.sum(), x)
    assert g2.item() == 12.0


def test_grad_with_respect_to_a_non_leaf():
    x = leaf([1.0, 2.0])
    h = x * 2
    y = (h * h).sum()
    (gh,) = cr.autograd.grad(y, h)
    np.testing.assert_array_equal(gh.numpy(), [4.0, 8.0])


def test_grad_of_an_input_that_does_not_require_grad_raises():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        cr.autograd.grad((x * 2).sum(), cr.ones(1))


def test_grad_outputs_and_several_outputs():
    x = leaf([1.0, 2.0])
    a, b = x * 2, x * x
    gx = cr.autograd.grad(
        [a, b], x, [cr.ones(2, dtype=cr.float64), cr.tensor([1.0, -1.0], dtype=cr.float64)]
    )[0]
    np.testing.assert_array_equal(gx.numpy(), [2 + 2, 2 - 4])


# ---- backward(inputs=...) --------------------------------------------------------------------


def test_backward_inputs_restricts_accumulation():
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    (x * w).sum().backward(inputs=[w])
    assert x.grad is None
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0])
    (x * w).sum().backward(inputs=x)
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(w.grad.numpy(), [1.0, 2.0])


def test_backward_inputs_empty_raises():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="cannot be empty"):
        (x * 2).sum().backward(inputs=[])


def test_autograd_backward_function_with_several_roots():
    x = leaf([1.0, 2.0])
    cr.autograd.backward([(x * 2).sum(), (x * x).sum()])
    np.testing.assert_array_equal(x.grad.numpy(), [4.0, 6.0])


# ---- graph bookkeeping -----------------------------------------------------------------------


def test_leaf_and_grad_fn_bookkeeping():
    x = leaf([1.0])
    y = x * 2
    assert x.is_leaf and x.grad_fn is None
    assert not y.is_leaf and y.grad_fn.name == "MulBackward0"
    node, _ = y.grad_fn.next_functions[0]
    assert type(node).__name__ == "AccumulateGrad" and node.variable is x
    assert y.detach().grad_fn is None and not y.detach().requires_grad


def test_requires_grad_on_integer_tensors_raises():
    with pytest.raises(RuntimeError, match="floating point"):
        cr.tensor([1, 2]).requires_grad_()


def test_float32_gradients_stay_float32():
    x = leaf([1.0, 2.0], dtype=cr.float32)
    (x.double() * 2).sum().backward()
    assert x.grad.dtype == cr.float32


# --- .grad takes the engine's gradient without a copy only when nothing else shares it -------


def test_grads_of_two_leaves_fed_by_one_tensor_are_independent():
    x = cr.ones(3, requires_grad=True)
    y = cr.ones(3, requires_grad=True)
    (x + y).sum().backward()  # Add hands the same gradient tensor to both inputs
    x.grad += 5
    assert y.grad.tolist() == [1.0, 1.0, 1.0]
    assert not np.shares_memory(x.grad.numpy(), y.grad.numpy())


def test_a_hook_that_keeps_the_gradient_keeps_its_own_copy():
    w = cr.ones(2, 2, requires_grad=True)
    kept = []
    w.register_hook(lambda g: kept.append(g))
    (w * 3).sum().backward()
    w.grad.zero_()
    assert kept[0].tolist() == [[3.0, 3.0], [3.0, 3.0]]


def test_retained_grad_and_leaf_grad_do_not_alias():
    w = cr.ones(3, requires_grad=True)
    h = w * 1  # an op whose gradient for w is the incoming gradient itself
    h.retain_grad()
    (h * 2).sum().backward()
    w.grad.mul_(10)
    assert h.grad.tolist() == [2.0, 2.0, 2.0]


def test_weight_used_transposed_gets_a_contiguous_grad_without_copy():
    w = cr.randn(5, 4, requires_grad=True)
    x = cr.randn(8, 4)
    (x @ w.T).sum().backward()
    assert w.grad.numpy().flags.c_contiguous
    np.testing.assert_allclose(w.grad.numpy(), np.ones((8, 5)).T @ x.numpy(), rtol=1e-5)


def test_user_gradient_given_to_backward_of_a_leaf_is_copied():
    w = cr.zeros(3, requires_grad=True)
    g = cr.ones(3)
    w.backward(g)
    w.grad += 1
    assert g.tolist() == [1.0, 1.0, 1.0]
