"""``nn.functional`` pieces not covered through the layers: padding, one-hot, normalize,
error messages, second derivatives through conv/pool, and in-place forms."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional
rng = np.random.default_rng(0)


def _same(c, t, atol=1e-12):
    np.testing.assert_allclose(np.asarray(c.detach()), t.detach().numpy(), atol=atol)


@pytest.mark.parametrize(
    "pad,mode",
    [
        ((1, 2), "constant"),
        ((1, 2, 3, 0), "constant"),
        ((-1, 2, 0, -2), "constant"),
        ((2, 1, 1, 2), "reflect"),
        ((3, 3), "reflect"),
        ((2, 0, 1, 3), "replicate"),
        ((1, 2, 2, 1), "circular"),
    ],
)
def test_pad_matches_torch(pad, mode):
    x = rng.standard_normal((2, 3, 4, 5))
    if len(pad) == 2 and mode != "constant":
        x = x[:, 0]  # torch's reflect/replicate/circular want (N, C, L) for a 2-tuple
    kw = {"value": 1.5} if mode == "constant" else {}
    c = cr.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    c_out = F.pad(c, pad, mode=mode, **kw)
    t_out = TF.pad(t, pad, mode=mode, **kw)
    _same(c_out, t_out)
    g = rng.standard_normal(tuple(t_out.shape))
    c_out.backward(cr.tensor(g))
    t_out.backward(torch.tensor(g))
    _same(c.grad, t.grad)


def test_pad_errors():
    with pytest.raises(ValueError, match="divisible by 2"):
        F.pad(cr.zeros(2, 2), (1,))
    with pytest.raises(RuntimeError, match="less than the corresponding input dimension"):
        F.pad(cr.zeros(1, 2, 3), (3, 0), mode="reflect")


def test_one_hot():
    t = cr.tensor([[0, 2], [1, 3]])
    out = F.one_hot(t)
    assert out.dtype == cr.int64
    np.testing.assert_array_equal(np.asarray(out), TF.one_hot(torch.tensor([[0, 2], [1, 3]])))
    assert F.one_hot(cr.tensor([1]), num_classes=5).tolist() == [[0, 1, 0, 0, 0]]
    with pytest.raises(RuntimeError, match="smaller than num_classes"):
        F.one_hot(cr.tensor([3]), 2)
    with pytest.raises(RuntimeError, match="non-negative"):
        F.one_hot(cr.tensor([-1]))


@pytest.mark.parametrize("p,dim", [(2.0, 1), (1.0, -1), (3.0, 0)])
def test_normalize(p, dim):
    x = rng.standard_normal((3, 4))
    x[0] = 0.0  # a zero row: divided by eps, finite gradient
    c = cr.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    c_out, t_out = F.normalize(c, p, dim), TF.normalize(t, p, dim)
    _same(c_out, t_out)
    c_out.sum().backward()
    t_out.sum().backward()
    _same(c.grad, t.grad, atol=1e-9)


def test_embedding_functional_and_errors():
    w = cr.tensor(rng.standard_normal((5, 2)), requires_grad=True)
    out = F.embedding(cr.tensor([[4, 0]]), w)
    assert out.shape == (1, 2, 2)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(cr.tensor([5]), w)
    with pytest.raises(RuntimeError, match="Long, Int"):
        F.embedding(cr.tensor([1.0]), w)


def test_linear_errors_are_clear():
    with pytest.raises(RuntimeError, match=r"cannot be multiplied \(2x3 and 4x5\)"):
        F.linear(cr.zeros(2, 3), cr.zeros(5, 4))
    with pytest.raises(RuntimeError, match="same dtype"):
        F.linear(cr.zeros(2, 3), cr.zeros(5, 3, dtype=cr.float64))


def test_conv_errors_are_clear():
    with pytest.raises(RuntimeError, match=r"to have 3 channels, but got 2 channels"):
        F.conv2d(cr.zeros(1, 2, 5, 5), cr.zeros(4, 3, 3, 3))
    with pytest.raises(RuntimeError, match="Kernel size can't be greater than actual input"):
        F.conv2d(cr.zeros(1, 1, 2, 2), cr.zeros(1, 1, 3, 3))
    with pytest.raises(RuntimeError, match="Expected 3D .unbatched. or 4D .batched. input"):
        F.conv2d(cr.zeros(5, 5), cr.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="not supported for strided"):
        F.conv2d(cr.zeros(1, 1, 5, 5), cr.zeros(1, 1, 3, 3), stride=2, padding="same")
    with pytest.raises(RuntimeError, match="should be the same"):
        F.conv2d(cr.zeros(1, 1, 5, 5), cr.zeros(1, 1, 3, 3, dtype=cr.float64))
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool2d(cr.zeros(1, 1, 5, 5), 2, padding=2)


def test_conv_and_pool_second_derivatives():
    x = cr.tensor(rng.standard_normal((1, 2, 5, 5)), requires_grad=True)
    w = cr.tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)

    def f(x, w):
        y = F.conv2d(x, w, padding=1, stride=2)
        return F.max_pool2d(F.avg_pool2d(y * y, 2, 1), 2, 1)

    assert cr.autograd.gradgradcheck(f, (x, w))


def test_double_backward_matches_torch():
    x = rng.standard_normal((2, 2, 6, 6))
    w = rng.standard_normal((3, 2, 3, 3))
    grads = []
    for lib, fn in ((cr, F), (torch, TF)):
        xt = lib.tensor(x, requires_grad=True)
        wt = lib.tensor(w, requires_grad=True)
        y = fn.conv2d(xt, wt, stride=2, padding=1)
        (gx,) = lib.autograd.grad(y.pow(2).sum(), xt, create_graph=True)
        (gw,) = lib.autograd.grad(gx.pow(2).sum(), wt)
        grads.append(gw)
    _same(grads[0], grads[1], atol=1e-9)


def test_max_pool_propagates_nan():
    x = cr.tensor([[[[1.0, float("nan")], [0.0, 2.0]]]])
    assert np.isnan(F.max_pool2d(x, 2).item())


def test_softmax_implicit_dim_warns_like_torch():
    with pytest.warns(UserWarning, match="Implicit dimension"):
        F.softmax(cr.zeros(2, 3))


def test_gelu_rejects_unknown_approximation():
    with pytest.raises(RuntimeError, match="approximate"):
        F.gelu(cr.zeros(1), approximate="fast")


def test_relu_inplace_function():
    x = cr.tensor([-1.0, 2.0])
    y = F.relu(x, inplace=True)
    assert y is x and x.tolist() == [0.0, 2.0]
    assert F.relu_(cr.tensor([-3.0])).tolist() == [0.0]


def test_dropout_inplace():
    cr.manual_seed(0)
    x = cr.ones(100)
    y = F.dropout(x, 0.5, inplace=True)
    assert y is x and set(np.unique(np.asarray(x)).tolist()) <= {0.0, 2.0}


@pytest.mark.parametrize(
    "kw",
    [
        dict(size=7, mode="linear"),
        dict(scale_factor=0.5, mode="linear", align_corners=True),
        dict(scale_factor=3),
    ],
    ids=str,
)
def test_interpolate_1d(kw):
    x = rng.standard_normal((2, 3, 6))
    c = cr.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    c_out, t_out = F.interpolate(c, **kw), TF.interpolate(t, **kw)
    _same(c_out, t_out)
    c_out.sum().backward()
    t_out.sum().backward()
    _same(c.grad, t.grad)


def test_interpolate_argument_errors():
    with pytest.raises(ValueError, match="only one of size or scale_factor"):
        F.interpolate(cr.zeros(1, 1, 4, 4))
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(cr.zeros(1, 1, 4, 4), size=2, align_corners=True)


def test_glu_and_cosine_similarity():
    x = rng.standard_normal((3, 4))
    _same(F.glu(cr.tensor(x)), TF.glu(torch.tensor(x)))
    y = rng.standard_normal((3, 4))
    _same(
        F.cosine_similarity(cr.tensor(x), cr.tensor(y)),
        TF.cosine_similarity(torch.tensor(x), torch.tensor(y)),
    )


@pytest.mark.parametrize(
    "kw",
    [
        dict(size=(3, 5, 4), mode="trilinear"),
        dict(scale_factor=2, mode="trilinear", align_corners=True),
        dict(size=(2, 6, 3)),
        dict(size=(4, 4, 4), mode="area"),
    ],
    ids=str,
)
def test_interpolate_3d(kw):
    x = rng.standard_normal((1, 2, 4, 3, 5))
    c = cr.tensor(x, requires_grad=True)
    t = torch.tensor(x, requires_grad=True)
    if kw.get("mode") == "area":
        with pytest.raises(NotImplementedError):
            F.interpolate(c, **kw)
        return
    c_out, t_out = F.interpolate(c, **kw), TF.interpolate(t, **kw)
    _same(c_out, t_out)
    g = rng.standard_normal(tuple(t_out.shape))
    c_out.backward(cr.tensor(g))
    t_out.backward(torch.tensor(g))
    _same(c.grad, t.grad)
