"""Error messages name the op and the shapes involved, in PyTorch's words."""

from __future__ import annotations

import pytest

import chainrule as cr


@pytest.mark.parametrize(
    "op, name",
    [
        (lambda a, b: a + b, "Add"),
        (lambda a, b: a - b, "Sub"),
        (lambda a, b: a * b, "Mul"),
        (lambda a, b: a / b, "Div"),
        (lambda a, b: cr.maximum(a, b), "Maximum"),
    ],
)
def test_broadcast_mismatch_names_op_and_both_shapes(op, name):
    a, b = cr.ones(3), cr.ones(4)
    with pytest.raises(RuntimeError) as info:
        op(a, b)
    msg = str(info.value)
    assert msg.startswith(
        "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 0"
    )
    assert name in msg and "[3]" in msg and "[4]" in msg


def test_broadcast_mismatch_reports_the_output_dimension():
    with pytest.raises(
        RuntimeError,
        match=r"tensor a \(3\).*tensor b \(5\) at non-singleton "
        r"dimension 2.*\[2, 1, 3\], \[4, 5\]",
    ):
        cr.ones(2, 1, 3) * cr.ones(4, 5)


def test_broadcast_mismatch_with_grad_and_as_torch_does():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError) as theirs:
        torch.ones(2, 3) + torch.ones(2)
    with pytest.raises(RuntimeError) as ours:
        cr.ones(2, 3, requires_grad=True) + cr.ones(2)
    assert str(ours.value).startswith(str(theirs.value))


def test_broadcastable_shapes_still_work():
    assert (cr.ones(2, 1, 3) * cr.ones(4, 1)).shape == (2, 4, 3)


def test_in_place_broadcast_error_names_shapes():
    x = cr.ones(3)
    with pytest.raises(RuntimeError, match=r"\[3\]"):
        x.add_(cr.ones(2, 3))
