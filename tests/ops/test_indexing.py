"""Indexing semantics the op table cannot express: views, in-place writes, errors."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def _pair(shape=(3, 4), seed=0):
    torch = pytest.importorskip("torch")
    arr = np.random.default_rng(seed).standard_normal(shape)
    return cr.tensor(arr, requires_grad=True), torch.tensor(arr, requires_grad=True), torch


# ---- views and copies -----------------------------------------------------------------------


def test_basic_indexing_is_a_view_sharing_memory_and_version():
    x = cr.arange(12.0).reshape(3, 4)
    v = x[1:, ::2]
    assert np.shares_memory(v.numpy(), x.numpy())
    before = x._version
    v.add_(100)  # writes through the view
    assert x[1, 0].item() == 104.0
    assert x._version == before + 1 and v._version == x._version
    s = x[2, 3]  # every dimension indexed: still a 0-d view, not a copy
    assert s.shape == () and np.shares_memory(s.numpy(), x.numpy())


def test_advanced_indexing_copies():
    x = cr.arange(6.0)
    y = x[[0, 1]]
    y.add_(1)
    assert x.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    m = x[x > 2]
    assert not np.shares_memory(m.numpy(), x.numpy())


@pytest.mark.parametrize(
    "key",
    [
        (0, slice(None), [0, 1]),
        ([0, 1], 0, [0, 1]),
        ([0, 1], slice(None), [1, 2]),
        (slice(None), [0, 1], None, [1, 2]),
        (Ellipsis, [1, 0]),
        ([[0], [2]], [1, 3]),
        (1, Ellipsis, None),
        (True,),
        (False,),
    ],
)
def test_result_shape_and_values_follow_pytorch(key):
    torch = pytest.importorskip("torch")
    arr = np.arange(60.0).reshape(3, 4, 5)
    c = cr.tensor(arr)[key]
    t = torch.tensor(arr)[key]
    assert tuple(c.shape) == tuple(t.shape)
    np.testing.assert_array_equal(c.numpy(), t.numpy())


def test_repeated_indices_accumulate_gradients_like_pytorch():
    c, t, torch = _pair((4, 3))
    idx = [0, 2, 0, 0, 3]
    (c[idx] * cr.arange(1.0, 4.0)).sum().backward()
    (t[idx] * torch.arange(1.0, 4.0)).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy())
    assert c.grad[0, 0].item() == 3.0  # three reads of row 0
    c.grad = t.grad = None
    index = [[1, 1], [0, 0], [2, 2], [1, 1]]
    c.gather(1, cr.tensor(index)).sum().backward()
    t.gather(1, torch.tensor(index)).sum().backward()
    np.testing.assert_allclose(c.grad.numpy(), t.grad.numpy())


def test_index_arrays_from_numpy_lists_and_tensors_agree():
    x = cr.arange(10.0)
    expected = [1.0, 3.0, 3.0]
    assert x[[1, 3, 3]].tolist() == expected
    assert x[np.array([1, 3, 3])].tolist() == expected
    assert x[cr.tensor([1, 3, 3], dtype=cr.int32)].tolist() == expected
    assert x[np.int64(4)].item() == 4.0
    assert x[cr.tensor(2) : cr.tensor(4)].tolist() == [2.0, 3.0]
    assert x[np.arange(10) % 3 == 0].tolist() == [0.0, 3.0, 6.0, 9.0]


# ---- errors ---------------------------------------------------------------------------------


def test_float_index_names_the_dtype():
    x = cr.zeros(3)
    with pytest.raises(IndexError, match="long, int, byte or bool.*float32"):
        x[cr.tensor([0.0, 1.0])]
    with pytest.raises(IndexError, match="float64"):
        x[np.array([0.5])]


def test_out_of_range_indices_name_dimension_and_size():
    x = cr.zeros(3, 4)
    with pytest.raises(IndexError, match="index 5 is out of bounds for dimension 0 with size 3"):
        x[5]
    with pytest.raises(IndexError, match="index -5 is out of bounds for dimension 1 with size 4"):
        x[:, [0, -5]]
    with pytest.raises(IndexError, match="too many indices for tensor of dimension 2"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match=r"mask \[3, 3\] at index 1"):
        x[cr.ones(3, 3, dtype=cr.bool)]
    with pytest.raises(RuntimeError, match="index 4 is out of bounds for dimension 1 with size 4"):
        x.gather(1, cr.tensor([[4]]))
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]


def test_negative_slice_step_is_rejected_like_pytorch():
    with pytest.raises(ValueError, match="step must be greater than zero"):
        cr.arange(4)[::-1]


# ---- writes ---------------------------------------------------------------------------------


def test_setitem_untracked_writes_in_place_and_bumps_version():
    x = cr.zeros(3, 4)
    before = x._version
    x[1, 1:3] = 7
    x[x > 6] += 1
    x[[0, 2], -1] = cr.tensor([1.0, 2.0])
    assert x.tolist() == [[0, 0, 0, 1], [0, 8, 8, 0], [0, 0, 0, 2]]
    assert x._version == before + 3
    w = cr.ones(2, requires_grad=True)
    with cr.no_grad():
        w[0] = 5.0  # allowed without grad tracking
    assert w.tolist() == [5.0, 1.0] and w.is_leaf


def test_setitem_on_a_leaf_requiring_grad_raises():
    w = cr.ones(3, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        w[0] = 2.0
    assert w.tolist() == [1.0, 1.0, 1.0]


def test_setitem_is_differentiable_in_base_and_value():
    c, t, torch = _pair((3, 4))
    cv = cr.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    tv = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64, requires_grad=True)
    results = []
    for m, a, v in ((cr, c, cv), (torch, t, tv)):
        b = a * 2
        b[1] = v * v
        b[[0, 2], 1:3] = 0.5
        (b * m.arange(12.0, dtype=m.float64).reshape(3, 4)).sum().backward()
        results.append((a.grad.numpy(), v.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1])


def test_setitem_into_a_plain_tensor_makes_it_part_of_the_graph():
    w = cr.tensor([2.0, 3.0], requires_grad=True)
    buf = cr.zeros(4)
    buf[1:3] = w * w
    assert buf.requires_grad and not buf.is_leaf
    buf.sum().backward()
    assert w.grad.tolist() == [4.0, 6.0]


def test_setitem_after_save_raises_at_backward():
    w = cr.ones(3, requires_grad=True)
    b = w * 1
    y = b * b  # saves b
    b[0] = 5.0
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


def test_setitem_shape_mismatch_names_both_shapes():
    x = cr.zeros(3, 4)
    with pytest.raises(RuntimeError, match=r"value tensor of shape \[3\].*shape \[4\]"):
        x[0] = cr.ones(3)


def test_setitem_into_an_expanded_tensor_is_refused():
    x = cr.zeros(1, 3).expand(2, 3)
    with pytest.raises(RuntimeError, match="clone"):
        x[0, 0] = 1.0


def test_in_place_scatter_family_matches_pytorch():
    torch = pytest.importorskip("torch")
    arr = np.arange(12.0).reshape(3, 4)
    idx = [[0, 1], [2, 3], [1, 0]]
    c, t = cr.tensor(arr), torch.tensor(arr)
    c.scatter_(1, cr.tensor(idx), 9.0)
    t.scatter_(1, torch.tensor(idx), 9.0)
    c.scatter_add_(1, cr.tensor(idx), cr.ones(3, 2, dtype=cr.float64))
    t.scatter_add_(1, torch.tensor(idx), torch.ones(3, 2, dtype=torch.float64))
    c.index_fill_(0, cr.tensor([2]), -1.0)
    t.index_fill_(0, torch.tensor([2]), -1.0)
    c.index_add_(1, cr.tensor([0, 0]), cr.ones(3, 2, dtype=cr.float64), alpha=3)
    t.index_add_(1, torch.tensor([0, 0]), torch.ones(3, 2, dtype=torch.float64), alpha=3)
    c.masked_fill_(c > 10, 0.0)
    t.masked_fill_(t > 10, 0.0)
    np.testing.assert_array_equal(c.numpy(), t.numpy())


def test_masked_fill_checks_mask_and_value():
    x = cr.zeros(2, 3)
    with pytest.raises(RuntimeError, match="boolean masks"):
        x.masked_fill(cr.ones(2, 3), 1.0)
    with pytest.raises(RuntimeError, match="0-dimensional value tensor"):
        x.masked_fill(x == 0, cr.ones(3))
    assert cr.arange(3).masked_fill(cr.tensor([True, False, True]), 1.7).tolist() == [1, 1, 1]


def test_nonzero_and_single_argument_where():
    torch = pytest.importorskip("torch")
    arr = np.array([[0, 1, 0], [2, 0, 3]])
    c, t = cr.tensor(arr), torch.tensor(arr)
    np.testing.assert_array_equal(c.nonzero().numpy(), t.nonzero().numpy())
    for a, b in zip(cr.where(c), torch.where(t)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert cr.argwhere(c).dtype == cr.int64
    assert cr.nonzero(cr.tensor(3)).shape == (1, 0)
    assert cr.nonzero(cr.tensor(0), as_tuple=True)[0].shape == (0,)
