"""``nn.utils``: gradient clipping and parameter/vector conversion, against PyTorch."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import utils

torch = pytest.importorskip("torch")


def _params(seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) * scale for s in [(3, 4), (4,), (2, 2)]]
    c = [cr.nn.Parameter(cr.tensor(a)) for a in arrays]
    t = [torch.nn.Parameter(torch.tensor(a)) for a in arrays]
    grads = [rng.standard_normal(s) * scale for s in [(3, 4), (4,), (2, 2)]]
    for p, q, g in zip(c, t, grads):
        p.grad = cr.tensor(g)
        q.grad = torch.tensor(g)
    return c, t


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    c, t = _params()
    c_total = utils.clip_grad_norm_(c, max_norm, norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(t, max_norm, norm_type)
    assert isinstance(c_total, cr.Tensor)
    np.testing.assert_allclose(c_total.item(), t_total.item(), rtol=1e-12)
    for p, q in zip(c, t):
        np.testing.assert_allclose(np.asarray(p.grad), q.grad.numpy(), rtol=1e-12)


def test_clip_grad_norm_nonfinite():
    c, _ = _params()
    c[0].grad._data[0, 0] = np.inf
    with pytest.raises(RuntimeError, match="non-finite"):
        utils.clip_grad_norm_(c, 1.0, error_if_nonfinite=True)
    assert math.isinf(utils.clip_grad_norm_(c, 1.0).item())


def test_clip_grad_norm_single_tensor_and_no_grads():
    p = cr.nn.Parameter(cr.zeros(2))
    assert utils.clip_grad_norm_(p, 1.0).item() == 0.0
    p.grad = cr.tensor([3.0, 4.0])
    assert utils.clip_grad_norm_(p, 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(np.asarray(p.grad), [0.6, 0.8], rtol=1e-5)


def test_clip_grad_value_matches_torch():
    c, t = _params(scale=3.0)
    utils.clip_grad_value_(c, 1.5)
    torch.nn.utils.clip_grad_value_(t, 1.5)
    for p, q in zip(c, t):
        np.testing.assert_array_equal(np.asarray(p.grad), q.grad.numpy())


def test_parameters_to_vector_and_back():
    c, t = _params()
    vec = utils.parameters_to_vector(c)
    np.testing.assert_array_equal(
        np.asarray(vec.detach()), torch.nn.utils.parameters_to_vector(t).detach().numpy()
    )
    assert vec.requires_grad  # differentiable, as in PyTorch
    utils.vector_to_parameters(cr.arange(vec.numel(), dtype=cr.float64), c)
    assert c[0].shape == (3, 4) and c[1].tolist() == [12.0, 13.0, 14.0, 15.0]
    with pytest.raises(TypeError, match="expected chainrule.Tensor"):
        utils.vector_to_parameters([1.0], c)
