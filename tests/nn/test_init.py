"""``nn.init`` and the default initialisation of every layer, against PyTorch's distributions
(the generators differ, so the statistics of large tensors are compared, not the numbers)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import init

torch = pytest.importorskip("torch")


def _stats_match(a, b, name=""):
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if b.std() == 0:  # a constant initialisation: must be identical
        np.testing.assert_array_equal(a, b, err_msg=name)
        return
    n = min(a.size, b.size)
    slack = 4 / math.sqrt(n)  # sampling error of the statistics shrinks like 1/sqrt(n)
    np.testing.assert_allclose(a.std(), b.std(), rtol=max(0.03, slack), err_msg=f"{name} std")
    assert abs(a.mean() - b.mean()) < max(0.05, slack) * b.std(), f"{name} mean"
    # same support: a uniform's bound is reached, a normal has its tails
    np.testing.assert_allclose(np.abs(a).max(), np.abs(b).max(), rtol=0.25, err_msg=f"{name} max")
    if n >= 2000:  # same shape of distribution (uniform vs normal): the fourth moment
        ka = np.mean(((a - a.mean()) / a.std()) ** 4)
        kb = np.mean(((b - b.mean()) / b.std()) ** 4)
        assert abs(ka - kb) < 0.3, f"{name} kurtosis {ka} vs {kb}"


LAYERS = {
    "Linear": lambda nn: nn.Linear(800, 300),
    "Linear-small-fan": lambda nn: nn.Linear(3, 4000),
    "Bilinear": lambda nn: nn.Bilinear(60, 40, 50),
    "Conv1d": lambda nn: nn.Conv1d(32, 64, 5),
    "Conv2d": lambda nn: nn.Conv2d(32, 64, 3),
    "Conv2d-groups": lambda nn: nn.Conv2d(32, 64, 3, groups=4),
    "ConvTranspose2d": lambda nn: nn.ConvTranspose2d(64, 32, 3),
    "BatchNorm2d": lambda nn: nn.BatchNorm2d(16),
    "LayerNorm": lambda nn: nn.LayerNorm(16),
    "GroupNorm": lambda nn: nn.GroupNorm(4, 16),
    "RMSNorm": lambda nn: nn.RMSNorm(16),
    "Embedding": lambda nn: nn.Embedding(2000, 64, padding_idx=3),
    "PReLU": lambda nn: nn.PReLU(8),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_default_initialisation_matches_torch(name):
    torch.manual_seed(0)
    cr.manual_seed(0)
    t_mod = LAYERS[name](torch.nn)
    c_mod = LAYERS[name](cr.nn)
    t_params = dict(t_mod.named_parameters())
    for pname, p in c_mod.named_parameters():
        assert p.dtype == cr.float32 and p.requires_grad
        _stats_match(p.detach(), t_params[pname].detach().numpy(), f"{name}.{pname}")
    t_buffers = dict(t_mod.named_buffers())
    for bname, b in c_mod.named_buffers():
        np.testing.assert_array_equal(np.asarray(b), t_buffers[bname].numpy())


def test_linear_and_conv_bounds():
    lin = cr.nn.Linear(400, 1000)
    bound = 1 / math.sqrt(400)
    w = np.asarray(lin.weight.detach())
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert np.abs(np.asarray(lin.bias.detach())).max() <= bound
    conv = cr.nn.Conv2d(16, 64, 5)
    bound = 1 / math.sqrt(16 * 25)
    assert np.abs(np.asarray(conv.weight.detach())).max() <= bound
    assert np.abs(np.asarray(conv.bias.detach())).max() <= bound


def test_layers_accept_dtype():
    lin = cr.nn.Linear(3, 2, dtype=cr.float64)
    assert lin.weight.dtype == cr.float64 and lin.bias.dtype == cr.float64
    assert cr.nn.Conv2d(1, 2, 3, dtype=cr.float64).weight.dtype == cr.float64


FUNCTIONS = [
    ("uniform_", dict(a=-0.3, b=0.7)),
    ("normal_", dict(mean=0.5, std=2.0)),
    ("xavier_uniform_", dict()),
    ("xavier_uniform_", dict(gain=2.0)),
    ("xavier_normal_", dict(gain=0.5)),
    ("kaiming_uniform_", dict()),
    ("kaiming_uniform_", dict(a=math.sqrt(5))),
    ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu")),
    ("kaiming_normal_", dict()),
    ("kaiming_normal_", dict(a=0.2, mode="fan_out", nonlinearity="leaky_relu")),
    ("kaiming_normal_", dict(nonlinearity="tanh")),
    ("trunc_normal_", dict()),
    ("trunc_normal_", dict(mean=1.0, std=0.5, a=0.5, b=1.2)),
]


@pytest.mark.parametrize("fn,kw", FUNCTIONS, ids=[f"{f}-{k}" for f, k in FUNCTIONS])
def test_init_functions_match_torch(fn, kw):
    shape = (300, 40, 3)
    c = cr.empty(shape)
    t = torch.empty(shape)
    assert getattr(init, fn)(c, **kw) is c
    getattr(torch.nn.init, fn)(t, **kw)
    _stats_match(c, t.numpy(), fn)


def test_trunc_normal_respects_bounds():
    t = init.trunc_normal_(cr.empty(10000), mean=0.0, std=1.0, a=-0.5, b=2.5)
    values = np.asarray(t)
    assert values.min() >= -0.5 and values.max() <= 2.5
    far = init.trunc_normal_(cr.empty(1000), mean=0.0, std=1.0, a=4.0, b=5.0)
    assert np.asarray(far).min() >= 4.0


@pytest.mark.parametrize("shape", [(30, 50), (50, 30), (8, 4, 3, 3)])
def test_orthogonal(shape):
    w = init.orthogonal_(cr.empty(shape), gain=2.0)
    m = np.asarray(w, dtype=np.float64).reshape(shape[0], -1)
    small = min(m.shape)
    gram = m @ m.T if m.shape[0] == small else m.T @ m
    np.testing.assert_allclose(gram, 4.0 * np.eye(small), atol=1e-4)


def test_constant_inits_and_eye_and_dirac():
    assert np.asarray(init.constant_(cr.empty(3), 2.5)).tolist() == [2.5, 2.5, 2.5]
    assert np.asarray(init.zeros_(cr.ones(2))).tolist() == [0.0, 0.0]
    assert np.asarray(init.ones_(cr.zeros(2))).tolist() == [1.0, 1.0]
    np.testing.assert_array_equal(
        np.asarray(init.eye_(cr.empty(3, 4))), torch.nn.init.eye_(torch.empty(3, 4)).numpy()
    )
    np.testing.assert_array_equal(
        np.asarray(init.dirac_(cr.empty(6, 4, 3, 3), groups=2)),
        torch.nn.init.dirac_(torch.empty(6, 4, 3, 3), 2).numpy(),
    )


@pytest.mark.parametrize(
    "args",
    [
        ("linear",),
        ("conv2d",),
        ("sigmoid",),
        ("tanh",),
        ("relu",),
        ("leaky_relu",),
        ("leaky_relu", 0.2),
        ("selu",),
    ],
)
def test_calculate_gain(args):
    assert init.calculate_gain(*args) == pytest.approx(torch.nn.init.calculate_gain(*args))


def test_calculate_gain_rejects_unknown():
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swishy")


@pytest.mark.parametrize("shape", [(5, 3), (4, 6, 3, 2), (7, 2, 5)])
def test_fan_in_and_fan_out(shape):
    assert init._calculate_fan_in_and_fan_out(cr.empty(shape)) == (
        torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    )
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(cr.empty(3))


def test_manual_seed_makes_initialisation_reproducible():
    cr.manual_seed(7)
    a = cr.nn.Linear(5, 5).weight.detach().clone()
    cr.manual_seed(7)
    b = cr.nn.Linear(5, 5).weight.detach()
    assert cr.equal(a, b)
    g = cr.Generator().manual_seed(1)
    c = init.normal_(cr.empty(4), generator=g)
    d = init.normal_(cr.empty(4), generator=cr.Generator().manual_seed(1))
    assert cr.equal(c, d)


def test_init_records_no_graph():
    p = cr.nn.Parameter(cr.zeros(3))
    init.normal_(p)
    assert p.grad_fn is None and p.is_leaf and p.requires_grad
