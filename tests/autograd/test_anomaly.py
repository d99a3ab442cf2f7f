"""Anomaly detection, debug-NaN mode and the in-place-modification error."""

from __future__ import annotations

import re

import pytest

import chainrule as cr
from chainrule.autograd import Function
from chainrule.tensor import modes

HERE = __file__.rsplit("/", 1)[-1]


def leaf(values):
    return cr.tensor(values, requires_grad=True)


def _line_of(marker: str) -> int:
    with open(__file__) as f:
        for i, line in enumerate(f, 1):
            if marker in line and "_line_of" not in line:
                return i
    raise AssertionError(marker)


# ---- switches --------------------------------------------------------------------------------


def test_set_detect_anomaly_as_call_and_context_manager():
    assert not cr.autograd.is_anomaly_enabled()
    cr.autograd.set_detect_anomaly(True)
    try:
        assert cr.autograd.is_anomaly_enabled() and modes.anomaly
    finally:
        cr.autograd.set_detect_anomaly(False)
    assert not cr.autograd.is_anomaly_enabled()
    with cr.autograd.set_detect_anomaly(True):
        assert cr.autograd.is_anomaly_enabled()
        with cr.autograd.set_detect_anomaly(False):
            assert not cr.autograd.is_anomaly_enabled()
        assert cr.autograd.is_anomaly_enabled()
    assert not cr.autograd.is_anomaly_enabled()


def test_detect_anomaly_as_context_manager_and_decorator():
    with cr.autograd.detect_anomaly():
        assert cr.autograd.is_anomaly_enabled()
        assert cr.autograd.is_anomaly_check_nan_enabled()
    with cr.autograd.detect_anomaly(check_nan=False):
        assert not cr.autograd.is_anomaly_check_nan_enabled()
    assert not cr.autograd.is_anomaly_enabled()

    @cr.autograd.detect_anomaly()
    def inside():
        return cr.autograd.is_anomaly_enabled()

    assert inside() is True and not cr.autograd.is_anomaly_enabled()

    @cr.autograd.set_detect_anomaly(True)
    def inside2():
        return cr.autograd.is_anomaly_enabled()

    assert not cr.autograd.is_anomaly_enabled()  # decorating does not switch it on now
    assert inside2() is True and not cr.autograd.is_anomaly_enabled()


def test_switches_restore_after_exceptions():
    with pytest.raises(KeyError):
        with cr.autograd.detect_anomaly():
            raise KeyError
    with pytest.raises(KeyError):
        with cr.autograd.debug_nans():
            raise KeyError
    assert not modes.anomaly and not modes.debug_nans


# ---- anomaly mode: NaN in backward -----------------------------------------------------------


def test_nan_in_backward_names_the_node_and_the_forward_line():
    x = leaf([0.0, 1.0])
    with cr.autograd.detect_anomaly():
        y = x.sqrt()  # FORWARD-SQRT
        z = (y * 0).sum()  # sqrt'(0) = inf, times 0: nan
        with pytest.raises(RuntimeError) as info:
            z.backward()
    msg = str(info.value)
    assert msg.startswith("Function 'SqrtBackward0' returned nan values in its 0th output.")
    assert f'{HERE}", line {_line_of("FORWARD-SQRT")}' in msg
    assert "y = x.sqrt()" in msg


def test_without_anomaly_mode_nan_passes_silently():
    x = leaf([0.0])
    (x.sqrt() * 0).sum().backward()
    assert x.grad.isnan().all()


def test_check_nan_false_does_not_raise():
    x = leaf([0.0])
    with cr.autograd.detect_anomaly(check_nan=False):
        (x.sqrt() * 0).sum().backward()
    assert x.grad.isnan().all()


def test_nodes_record_their_creation_stack_only_in_anomaly_mode():
    x = leaf([1.0])
    assert (x * 2).grad_fn.trace is None
    with cr.autograd.set_detect_anomaly(True):
        y = x * 2  # TRACED
    assert f"line {_line_of('TRACED')}" in y.grad_fn.trace


def test_custom_function_nan_is_reported_with_its_name():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1

        @staticmethod
        def backward(ctx, g):
            return g * float("nan")

    x = leaf([1.0])
    with cr.autograd.detect_anomaly():
        y = Bad.apply(x)  # BAD-FORWARD
        with pytest.raises(RuntimeError, match="Function 'BadBackward' returned nan") as info:
            y.sum().backward()
    assert f"line {_line_of('BAD-FORWARD')}" in str(info.value)


# ---- in-place modification of a saved tensor -------------------------------------------------


def test_in_place_after_save_error_names_shape_op_and_versions():
    x = leaf([[1.0, 2.0, 3.0]])
    h = x * 2
    y = h.sin()  # Sin saves its input h
    h.add_(1)
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    msg = str(info.value)
    assert "modified by an inplace operation" in msg
    assert "float32 tensor of shape [1, 3]" in msg
    assert "SinBackward0" in msg
    assert "is at version 1; expected version 0 instead" in msg
    assert "set_detect_anomaly(True)" in msg  # the hint


def test_in_place_error_counts_every_modification():
    x = leaf([1.0])
    h = x * 2
    y = h.exp() * h  # Mul saves h
    h.mul_(2)
    h.add_(1)
    with pytest.raises(RuntimeError, match="is at version 2; expected version 0"):
        y.sum().backward()


def test_in_place_error_in_anomaly_mode_names_the_modifying_line():
    x = leaf([1.0, 2.0])
    with cr.autograd.set_detect_anomaly(True):
        h = x * 2
        y = h.cos()  # SAVING-OP
        h.mul_(3)  # THE-INPLACE-LINE
        with pytest.raises(RuntimeError) as info:
            y.sum().backward()
    msg = str(info.value)
    assert f"{HERE}:{_line_of('THE-INPLACE-LINE')}" in msg
    assert f"line {_line_of('SAVING-OP')}" in msg  # the forward call of the node
    assert "Hint" not in msg


def test_modification_outside_anomaly_mode_forgets_an_old_location():
    x = leaf([1.0])
    h = x * 2
    with cr.autograd.set_detect_anomaly(True):
        h.add_(1)
    y = h.cos()
    h.add_(1)  # not in anomaly mode: the earlier location must not be reported
    with pytest.raises(RuntimeError) as info:
        y.sum().backward()
    assert "ran at" not in str(info.value)


def test_saved_output_modified_in_place():
    x = leaf([1.0])
    y = x.exp()  # Exp saves its output
    z = y + 1  # Add saves nothing: only Exp holds y
    with cr.no_grad():
        y.add_(1)
    with pytest.raises(RuntimeError, match="output 0 of ExpBackward0"):
        z.sum().backward()


def test_in_place_on_a_leaf_requiring_grad_raises():
    x = leaf([1.0])
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        x.add_(1)


# ---- debug NaNs (forward) --------------------------------------------------------------------


def test_debug_nans_raises_at_the_first_bad_forward_op():
    x = cr.tensor([[1.0, -1.0]])
    with cr.autograd.debug_nans():
        y = x * 2
        with pytest.raises(FloatingPointError) as info:
            y.log()  # LOG-LINE
    msg = str(info.value)
    assert "Log" in msg and "NaN" in msg
    assert "[1, 2] float32" in msg
    assert f"{HERE}:{_line_of('LOG-LINE')}" in msg


def test_debug_nans_reports_inf():
    with cr.autograd.set_debug_nans(True):
        try:
            with pytest.raises(FloatingPointError, match=r"Div produced Inf"):
                cr.tensor([1.0]) / cr.tensor([0.0])
        finally:
            cr.autograd.set_debug_nans(False)
    assert not cr.autograd.is_debug_nans_enabled()
    assert cr.isinf(cr.tensor([1.0]) / cr.tensor([0.0])).all()  # off: no check


def test_debug_nans_as_decorator_and_integer_ops_are_ignored():
    @cr.autograd.debug_nans()
    def f(x):
        return (x + 1).sqrt()

    assert cr.allclose(f(cr.tensor([3.0])), cr.tensor([2.0]))
    with pytest.raises(FloatingPointError, match="Sqrt"):
        f(cr.tensor([-3.0]))
    with cr.autograd.debug_nans():
        assert (cr.tensor([1, 2]) * 3).tolist() == [3, 6]


def test_debug_nans_checks_backward_ops_too():
    x = leaf([0.0])
    y = x.sqrt().sum()
    with cr.autograd.debug_nans():
        with pytest.raises(FloatingPointError, match=re.escape("Div produced Inf")):
            y.backward()
