"""Shape/movement semantics the op table cannot express: views, copies, errors, promotion."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.reshape(4, 3),
        lambda x: x.transpose(0, 1),
        lambda x: x.unsqueeze(0).squeeze(0),
        lambda x: x.narrow(1, 1, 2),
        lambda x: x.select(0, 2),
        lambda x: x.flatten(),
        lambda x: x.unflatten(1, (2, 2)),
        lambda x: x.movedim(0, 1),
        lambda x: x.split([1, 2])[1],
        lambda x: x.chunk(2, dim=1)[0],
        lambda x: x.unbind(1)[3],
    ],
)
def test_views_share_memory_and_version_counter(make):
    x = cr.arange(12.0).reshape(3, 4)
    v = make(x)
    assert np.shares_memory(v.numpy(), x.numpy())
    before = x._version
    v.mul_(2)
    assert x._version == before + 1 == v._version


@pytest.mark.parametrize(
    "make",
    [
        lambda x: x.flip(0),
        lambda x: x.roll(1, 0),
        lambda x: x.clone(),
        lambda x: x.repeat(2, 1),
        lambda x: cr.cat([x, x]),
        lambda x: cr.stack([x]),
        lambda x: x.tril(),
        lambda x: x.t().contiguous(),
    ],
)
def test_copies_do_not_share_memory(make):
    x = cr.arange(12.0).reshape(3, 4)
    y = make(x)
    assert not np.shares_memory(y.numpy(), x.numpy())
    y.add_(1)
    assert x._version == 0


def test_contiguous_returns_self_when_already_contiguous():
    x = cr.zeros(2, 3)
    assert x.contiguous() is x and x.is_contiguous()
    t = x.t()
    assert not t.is_contiguous() and t.contiguous().is_contiguous()


def test_cat_mismatch_names_op_dimension_and_shapes():
    with pytest.raises(RuntimeError, match=r"cat\(\).*dimension 0.*\[2, 3\] and \[2, 4\]"):
        cr.cat([cr.zeros(2, 3), cr.zeros(2, 4)])
    with pytest.raises(RuntimeError, match=r"same number of dimensions: got 2 and 3"):
        cr.cat([cr.zeros(2, 3), cr.zeros(2, 3, 1)])
    with pytest.raises(RuntimeError, match="non-empty list"):
        cr.cat([])
    with pytest.raises(RuntimeError, match="zero-dimensional tensor"):
        cr.cat([cr.tensor(1.0), cr.tensor(2.0)])
    with pytest.raises(IndexError, match="cat: Dimension out of range"):
        cr.cat([cr.zeros(2)], dim=1)


def test_stack_and_split_errors_name_shapes():
    with pytest.raises(RuntimeError, match=r"\[2, 3\] at entry 0 and \[2, 4\] at entry 1"):
        cr.stack([cr.zeros(2, 3), cr.zeros(2, 4)])
    with pytest.raises(RuntimeError, match=r"sum exactly to 5.*\[2, 2\]"):
        cr.split(cr.zeros(5), [2, 2])
    with pytest.raises(RuntimeError, match="greater than 0"):
        cr.chunk(cr.zeros(5), 0)


def test_reshape_invalid_size_names_shape_and_size():
    with pytest.raises(
        RuntimeError, match=r"reshape: shape '\[5, 3\]' is invalid for input of size 12"
    ):
        cr.zeros(3, 4).reshape(5, 3)
    with pytest.raises(RuntimeError, match="only one dimension can be inferred"):
        cr.zeros(3, 4).reshape(-1, -1)
    with pytest.raises(RuntimeError, match=r"unflatten.*\[3, -1\].*dim 1 \(4\)"):
        cr.zeros(3, 4).unflatten(1, (3, -1))


def test_other_argument_errors():
    x = cr.zeros(3, 4)
    with pytest.raises(RuntimeError, match="start_dim cannot come after end_dim"):
        x.flatten(1, 0)
    with pytest.raises(RuntimeError, match="repeat dims can not be smaller"):
        x.repeat(2)
    with pytest.raises(RuntimeError, match="shifts and dimensions must align"):
        x.roll((1, 2), 0)
    with pytest.raises(RuntimeError, match="appears multiple times"):
        x.flip((0, 0))
    with pytest.raises(RuntimeError, match="at least 2 dimensions"):
        cr.tril(cr.zeros(3))
    with pytest.raises(RuntimeError, match=r"exceeds dimension size \(4\)"):
        x.narrow(1, 2, 3)
    with pytest.raises(IndexError, match="index 5 out of range"):
        x.select(1, 5)


@pytest.mark.parametrize(
    "dtypes,expected",
    [
        ((cr.int64, cr.float32), cr.float32),
        ((cr.bool, cr.int64), cr.int64),
        ((cr.float32, cr.float64), cr.float64),
        ((cr.int32, cr.int64), cr.int64),
    ],
)
def test_cat_and_stack_promote_dtypes(dtypes, expected):
    parts = [cr.ones(2, dtype=d) for d in dtypes]
    assert cr.cat(parts).dtype == expected
    assert cr.stack(parts).dtype == expected


def test_cat_skips_legacy_empty_vectors_and_gives_them_empty_gradients():
    a = cr.ones(2, 3, requires_grad=True)
    e = cr.zeros(0, requires_grad=True)
    out = cr.cat([a, e, a])
    assert out.shape == (4, 3)
    out.sum().backward()
    assert e.grad.shape == (0,) and a.grad.tolist() == [[2.0] * 3] * 2


def test_unused_split_outputs_get_zero_gradient_like_pytorch():
    torch = pytest.importorskip("torch")
    arr = np.arange(10.0).reshape(5, 2)
    c = cr.tensor(arr, requires_grad=True)
    t = torch.tensor(arr, requires_grad=True)
    (c.split(2)[1] * 3).sum().backward()
    (t.split(2)[1] * 3).sum().backward()
    np.testing.assert_array_equal(c.grad.numpy(), t.grad.numpy())
    c.grad = t.grad = None
    a, b, _ = c.unbind(0)[:3]
    ta, tb, _ = t.unbind(0)[:3]
    (a * b).sum().backward()
    (ta * tb).sum().backward()
    np.testing.assert_array_equal(c.grad.numpy(), t.grad.numpy())


def test_split_second_order_through_cat():
    x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a, b = x.split([1, 2])
    y = (cr.cat([b, a]) ** 3).sum()
    (g,) = cr.autograd.grad(y, x, create_graph=True)
    (gg,) = cr.autograd.grad(g.sum(), x)
    assert g.tolist() == [3.0, 12.0, 27.0] and gg.tolist() == [6.0, 12.0, 18.0]


def test_iteration_unbinds_the_first_dimension():
    x = cr.arange(6.0).reshape(3, 2)
    rows = list(x)
    assert len(rows) == 3 and rows[2].tolist() == [4.0, 5.0]


def test_in_place_tril_and_triu():
    x = cr.ones(3, 3)
    x.tril_()
    assert x.tolist() == [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    x.triu_(1)
    assert x.sum().item() == 0


def test_squeeze_leaves_other_dimensions_alone():
    x = cr.zeros(1, 2, 1)
    assert x.squeeze(1).shape == (1, 2, 1)
    assert x.squeeze((0, 2)).shape == (2,)
    assert cr.tensor(1.0).squeeze(0).shape == ()
    assert cr.tensor(1.0).flatten().shape == (1,)


def test_flip_and_tile_accept_several_ints_like_tensor_methods():
    x = cr.arange(6).reshape(2, 3)
    assert x.flip(0, 1).tolist() == [[5, 4, 3], [2, 1, 0]]
    assert x.flip([1]).tolist() == [[2, 1, 0], [5, 4, 3]]
    assert x.tile(1, 2).shape == (2, 6) and cr.tile(x, (2,)).shape == (2, 6)
