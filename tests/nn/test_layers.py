"""Every layer against PyTorch: PyTorch's weights loaded into chainrule's layer (same
state_dict keys), then outputs, input gradients, parameter gradients and buffers compared in
float64 across option combinations."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops.nn_kernels import ConvGeometry
from tests.nn._compare import run_both, twin

torch = pytest.importorskip("torch")

rng = np.random.default_rng(0)


def _x(*shape):
    return rng.standard_normal(shape)


def _check(make, *inputs, train=True, grad_inputs=True, rtol=1e-9):
    c_mod, t_mod = twin(make, torch)
    c_mod.train(train)
    t_mod.train(train)
    return run_both(c_mod, t_mod, torch, inputs, grad_inputs=grad_inputs, rtol=rtol)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4), (4,)])
def test_linear(bias, shape):
    _check(lambda nn: nn.Linear(4, 3, bias=bias), _x(*shape))


@pytest.mark.parametrize("bias", [True, False])
def test_bilinear(bias):
    _check(lambda nn: nn.Bilinear(3, 4, 2, bias=bias), _x(5, 3), _x(5, 4))


def test_identity():
    _check(lambda nn: nn.Identity(3, foo=1), _x(2, 3))


CONV2D = [
    dict(),
    dict(stride=2),
    dict(padding=1),
    dict(padding=(1, 2), stride=(2, 1)),
    dict(padding="same"),
    dict(padding="same", dilation=2),
    dict(padding="valid"),
    dict(dilation=(2, 1), padding=1),
    dict(groups=2),
    dict(groups=4, stride=2, padding=1),
    dict(bias=False),
    dict(padding=1, padding_mode="reflect"),
    dict(padding=2, padding_mode="replicate"),
    dict(padding=(1, 2), padding_mode="circular"),
    dict(padding="same", padding_mode="reflect"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("layout", ["batch-first", "batch-last"])
@pytest.mark.parametrize("kw", CONV2D, ids=[str(k) for k in CONV2D])
def test_conv2d(kw, layout, monkeypatch):
    # both im2col layouts (chosen by output width) are exercised on small inputs
    monkeypatch.setattr(ConvGeometry, "batch_last_below", 0 if layout == "batch-first" else 999)
    kernel = (3, 2) if "same" not in str(kw.get("padding")) else (3, 4)
    _check(lambda nn: nn.Conv2d(4, 8, kernel, **kw), _x(2, 4, 7, 6))


def test_conv2d_unbatched():
    _check(lambda nn: nn.Conv2d(2, 3, 3, padding=1), _x(2, 5, 5))


CONV1D = [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=3), dict(groups=2)]


@pytest.mark.parametrize("kw", CONV1D, ids=[str(k) for k in CONV1D])
def test_conv1d(kw):
    _check(lambda nn: nn.Conv1d(4, 2, 3, **kw), _x(3, 4, 9))


def test_conv3d():
    _check(lambda nn: nn.Conv3d(2, 3, 2, stride=(1, 2, 1), padding=1), _x(2, 2, 3, 4, 3))


CONVT = [
    dict(),
    dict(stride=2),
    dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 3), output_padding=(1, 2), groups=2),
    dict(dilation=2, stride=3, padding=2, output_padding=2),
    dict(bias=False, padding=1),
]


@pytest.mark.parametrize("kw", CONVT, ids=[str(k) for k in CONVT])
def test_conv_transpose2d(kw):
    _check(lambda nn: nn.ConvTranspose2d(4, 6, (3, 2), **kw), _x(2, 4, 4, 5))


def test_conv_transpose2d_output_size():
    c_mod, t_mod = twin(lambda nn: nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1), torch)
    x = _x(1, 2, 4, 4)
    c_out = c_mod(cr.tensor(x), output_size=(8, 8))
    t_out = t_mod(torch.tensor(x), output_size=(8, 8))
    np.testing.assert_allclose(np.asarray(c_out.detach()), t_out.detach().numpy(), atol=1e-12)


def test_conv_transpose1d():
    _check(
        lambda nn: nn.ConvTranspose1d(2, 4, 3, stride=2, padding=1, output_padding=1), _x(2, 2, 5)
    )


POOL = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=2, stride=1, dilation=2),
    dict(kernel_size=(2, 3), dilation=(2, 1), padding=1),
]


@pytest.mark.parametrize("kw", POOL, ids=[str(k) for k in POOL])
def test_max_pool2d(kw):
    _check(lambda nn: nn.MaxPool2d(**kw), _x(2, 3, 9, 8))


def test_max_pool2d_ties_after_relu():
    # many equal (zero) values per window: the gradient must go to the same element as in torch
    x = np.maximum(_x(2, 3, 8, 8), 0).round(1)
    _check(lambda nn: nn.Sequential(nn.ReLU(), nn.MaxPool2d(2)), x)
    _check(lambda nn: nn.MaxPool2d(3, 1, 1), x)


@pytest.mark.parametrize("kw", POOL[:5], ids=[str(k) for k in POOL[:5]])
def test_max_pool2d_return_indices(kw):
    x = _x(2, 3, 9, 8)
    c_out, c_idx = cr.nn.MaxPool2d(return_indices=True, **kw)(cr.tensor(x))
    t_out, t_idx = torch.nn.MaxPool2d(return_indices=True, **kw)(torch.tensor(x))
    assert np.array_equal(np.asarray(c_idx), t_idx.numpy())
    assert c_idx.dtype == cr.int64


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3),
        dict(kernel_size=4, stride=2, padding=2),
        dict(kernel_size=3, stride=2, ceil_mode=True),
    ],
)
def test_max_pool1d(kw):
    _check(lambda nn: nn.MaxPool1d(**kw), _x(2, 3, 11))


AVG = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, count_include_pad=False),
    dict(kernel_size=(3, 2), stride=2, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True),
    dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    dict(kernel_size=2, divisor_override=3),
]


@pytest.mark.parametrize("kw", AVG, ids=[str(k) for k in AVG])
def test_avg_pool2d(kw):
    _check(lambda nn: nn.AvgPool2d(**kw), _x(2, 3, 9, 8))


@pytest.mark.parametrize(
    "kw",
    [
        dict(kernel_size=3),
        dict(kernel_size=3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    ],
)
def test_avg_pool1d(kw):
    _check(lambda nn: nn.AvgPool1d(**kw), _x(2, 3, 10))


@pytest.mark.parametrize("size", [1, (3, 2), (None, 4), (5, 7), 4])
def test_adaptive_avg_pool2d(size):
    _check(lambda nn: nn.AdaptiveAvgPool2d(size), _x(2, 3, 7, 9))


def test_adaptive_avg_pool1d():
    _check(lambda nn: nn.AdaptiveAvgPool1d(4), _x(2, 3, 10))


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(momentum=None),
        dict(momentum=0.3, eps=1e-3),
        dict(affine=False),
        dict(track_running_stats=False),
        dict(affine=False, track_running_stats=False),
    ],
    ids=str,
)
def test_batch_norm2d(kw, train):
    c_mod, t_mod = twin(lambda nn: nn.BatchNorm2d(3, **kw), torch)
    c_mod.train(train)
    t_mod.train(train)
    if kw.get("track_running_stats", True):  # non-trivial running statistics to start from
        for c_b, t_b in zip(c_mod.buffers(), t_mod.buffers()):
            if t_b.dtype == torch.float64:
                values = rng.uniform(0.5, 1.5, tuple(t_b.shape))
                t_b.copy_(torch.tensor(values))
                c_b.copy_(cr.tensor(values))
    for step in range(3):  # running statistics (and momentum=None averaging) over steps
        run_both(c_mod, t_mod, torch, [_x(4, 3, 5, 2) * 2 + 1], seed=step)


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5)])
def test_batch_norm1d(shape):
    c_mod, t_mod = twin(lambda nn: nn.BatchNorm1d(3), torch)
    run_both(c_mod, t_mod, torch, [_x(*shape)])
    c_mod.eval()
    t_mod.eval()
    run_both(c_mod, t_mod, torch, [_x(*shape)])


def test_batch_norm_checks():
    with pytest.raises(ValueError, match="expected 4D input"):
        cr.nn.BatchNorm2d(3)(cr.zeros(2, 3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        cr.nn.BatchNorm1d(3)(cr.zeros(1, 3))


@pytest.mark.parametrize(
    "kw", [dict(), dict(elementwise_affine=False), dict(bias=False), dict(eps=1e-2)], ids=str
)
@pytest.mark.parametrize("shape", [4, (3, 4)])
def test_layer_norm(kw, shape):
    _check(lambda nn: nn.LayerNorm(shape, **kw), _x(2, 3, 4))


@pytest.mark.parametrize("kw", [dict(), dict(affine=False), dict(eps=1e-3)], ids=str)
def test_group_norm(kw):
    _check(lambda nn: nn.GroupNorm(2, 4, **kw), _x(3, 4, 5))
    _check(lambda nn: nn.GroupNorm(4, 4, **kw), _x(2, 4, 3, 2))


@pytest.mark.parametrize("kw", [dict(), dict(eps=1e-3), dict(elementwise_affine=False)], ids=str)
def test_rms_norm(kw):
    _check(lambda nn: nn.RMSNorm((3, 4), **kw), _x(2, 3, 4))


def test_instance_norm2d():
    _check(lambda nn: nn.InstanceNorm2d(3, affine=True), _x(2, 3, 4, 5))


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize(
    "cls,shape", [("InstanceNorm1d", (4, 3, 6)), ("InstanceNorm2d", (2, 3, 4, 5))]
)
def test_instance_norm_tracking_running_stats(cls, shape, affine, momentum):
    def make(nn):
        return getattr(nn, cls)(3, affine=affine, momentum=momentum, track_running_stats=True)

    c_mod, t_mod = twin(make, torch)
    # training: each batch moves the running statistics (compared as buffers), and again
    for seed in (1, 2):
        run_both(c_mod, t_mod, torch, [_x(*shape) * 3 + 1], seed=seed)
    assert [n for n, _ in c_mod.named_buffers()] == [n for n, _ in t_mod.named_buffers()]
    assert float(np.asarray(c_mod.running_var).std()) > 0 or momentum is None
    # evaluation normalises with them, batched and unbatched
    c_mod.eval()
    t_mod.eval()
    run_both(c_mod, t_mod, torch, [_x(*shape)])
    run_both(c_mod, t_mod, torch, [_x(*shape[1:])])


@pytest.mark.parametrize(
    "kw",
    [
        dict(),
        dict(padding_idx=2),
        dict(padding_idx=-1),
        dict(scale_grad_by_freq=True),
        dict(max_norm=1.0),
    ],
    ids=str,
)
def test_embedding(kw):
    idx = np.array([[0, 2, 4], [2, 2, 9], [4, 0, 1]])
    _check(lambda nn: nn.Embedding(10, 3, **kw), idx)


def test_embedding_padding_row_initialised_to_zero_and_never_updated():
    emb = cr.nn.Embedding(5, 3, padding_idx=1)
    assert not np.asarray(emb.weight.detach())[1].any()
    emb(cr.tensor([1, 1, 2])).sum().backward()
    assert not np.asarray(emb.weight.grad)[1].any()
    assert np.asarray(emb.weight.grad)[2].all()


def test_embedding_from_pretrained():
    table = cr.tensor([[1.0, 2.0], [3.0, 4.0]])
    emb = cr.nn.Embedding.from_pretrained(table)
    assert not emb.weight.requires_grad
    assert emb(cr.tensor([1])).tolist() == [[3.0, 4.0]]


@pytest.mark.parametrize(
    "make",
    [
        lambda nn: nn.Flatten(),
        lambda nn: nn.Flatten(0, 1),
        lambda nn: nn.Unflatten(1, (4, 6)),
    ],
)
def test_flatten(make):
    _check(make, _x(2, 24, 3))


ACTIVATIONS = [
    lambda nn: nn.ReLU(),
    lambda nn: nn.ReLU6(),
    lambda nn: nn.LeakyReLU(),
    lambda nn: nn.LeakyReLU(0.2),
    lambda nn: nn.ELU(),
    lambda nn: nn.ELU(0.5),
    lambda nn: nn.SELU(),
    lambda nn: nn.CELU(0.7),
    lambda nn: nn.GELU(),
    lambda nn: nn.GELU("tanh"),
    lambda nn: nn.SiLU(),
    lambda nn: nn.Mish(),
    lambda nn: nn.Sigmoid(),
    lambda nn: nn.Tanh(),
    lambda nn: nn.Softmax(dim=1),
    lambda nn: nn.Softmin(dim=-1),
    lambda nn: nn.LogSoftmax(dim=1),
    lambda nn: nn.Softplus(),
    lambda nn: nn.Softplus(beta=2, threshold=3),
    lambda nn: nn.Softsign(),
    lambda nn: nn.Hardtanh(),
    lambda nn: nn.Hardtanh(-2.0, 0.5),
    lambda nn: nn.Hardsigmoid(),
    lambda nn: nn.Hardswish(),
    lambda nn: nn.LogSigmoid(),
    lambda nn: nn.GLU(dim=1),
    lambda nn: nn.PReLU(),
    lambda nn: nn.PReLU(4),
    lambda nn: nn.Threshold(0.1, -2.0),
    lambda nn: nn.Tanhshrink(),
    lambda nn: nn.Softshrink(0.3),
    lambda nn: nn.Hardshrink(0.3),
]


@pytest.mark.parametrize("i", range(len(ACTIVATIONS)))
def test_activation(i):
    x = _x(3, 4, 5) * 3
    name = type(ACTIVATIONS[i](cr.nn)).__name__
    # PyTorch computes the constants of these two in float32 even for float64 tensors: CELU's
    # exp(x / alpha) then differs by |x / alpha| * 2e-8 relatively (up to ~5e-7 here)
    rtol = 1e-6 if name in ("CELU", "Hardsigmoid") else 1e-9
    _check(ACTIVATIONS[i], x, rtol=rtol)


@pytest.mark.parametrize(
    "make",
    [
        lambda nn: nn.ReLU(inplace=True),
        lambda nn: nn.LeakyReLU(0.1, inplace=True),
        lambda nn: nn.ELU(inplace=True),
        lambda nn: nn.Hardtanh(inplace=True),
        lambda nn: nn.SiLU(inplace=True),
    ],
)
def test_inplace_activation_modifies_its_input(make):
    x = _x(2, 3)
    c_x = cr.tensor(x, requires_grad=True) * 1
    t_x = torch.tensor(x, requires_grad=True) * 1
    c_out = make(cr.nn)(c_x)
    t_out = make(torch.nn)(t_x)
    np.testing.assert_allclose(np.asarray(c_x.detach()), t_x.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(np.asarray(c_out.detach()), t_out.detach().numpy(), atol=1e-12)


def test_activation_extremes_are_finite():
    x = cr.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=cr.float64, requires_grad=True)
    for f in (
        cr.nn.functional.softplus,
        cr.nn.functional.logsigmoid,
        cr.nn.functional.elu,
        cr.nn.functional.mish,
        cr.nn.functional.selu,
        cr.nn.functional.silu,
    ):
        out = f(x)
        (g,) = cr.autograd.grad(out.sum(), x)
        assert np.isfinite(np.asarray(out.detach())).all(), f
        assert np.isfinite(np.asarray(g)).all(), f


def test_dropout_train_eval_and_scaling():
    cr.manual_seed(0)
    drop = cr.nn.Dropout(0.25)
    x = cr.ones(20000, requires_grad=True)
    y = drop(x)
    values = set(np.unique(np.asarray(y.detach())).tolist())
    assert values <= {0.0, float(np.float32(1.0 / 0.75))}
    assert abs(float((y == 0).float().mean()) - 0.25) < 0.02
    y.sum().backward()
    np.testing.assert_array_equal(np.asarray(x.grad), np.asarray(y.detach()))
    drop.eval()
    assert drop(x) is x


def test_dropout_is_reproducible_with_manual_seed():
    cr.manual_seed(3)
    a = cr.nn.functional.dropout(cr.ones(100))
    cr.manual_seed(3)
    b = cr.nn.functional.dropout(cr.ones(100))
    assert cr.equal(a, b)
    c = cr.nn.functional.dropout(cr.ones(100))
    assert not cr.equal(a, c)


def test_dropout2d_zeroes_whole_channels():
    cr.manual_seed(0)
    y = np.asarray(cr.nn.Dropout2d(0.5)(cr.ones(4, 8, 3, 3)))
    per_channel = y.reshape(4, 8, -1)
    assert ((per_channel == 0).all(-1) | (per_channel == 2).all(-1)).all()


def test_dropout_checks_p():
    with pytest.raises(ValueError, match="between 0 and 1"):
        cr.nn.Dropout(1.5)
    assert not np.asarray(cr.nn.functional.dropout(cr.ones(5), p=1.0)).any()


@pytest.mark.parametrize(
    "make",
    [
        lambda nn: nn.ZeroPad2d((1, 2, 0, 1)),
        lambda nn: nn.ConstantPad1d((2, 1), 3.5),
        lambda nn: nn.ReflectionPad2d(2),
        lambda nn: nn.ReplicationPad1d((1, 3)),
        lambda nn: nn.ReflectionPad1d((3, 1)),
        lambda nn: nn.ReplicationPad2d((1, 0, 2, 1)),
        lambda nn: nn.CircularPad2d(1),
    ],
)
def test_padding_layers(make):
    _check(make, _x(2, 3, 4, 5)[:, 0] if "1d" in repr(make(cr.nn)).lower() else _x(2, 3, 4, 5))


@pytest.mark.parametrize(
    "kw",
    [
        dict(scale_factor=2),
        dict(size=(5, 7)),
        dict(scale_factor=1.7, mode="nearest"),
        dict(size=(5, 3), mode="nearest-exact"),
        dict(scale_factor=2, mode="bilinear"),
        dict(size=(7, 5), mode="bilinear", align_corners=True),
        dict(size=(3, 2), mode="bilinear"),
        dict(scale_factor=(1.5, 0.5), mode="bilinear", recompute_scale_factor=True),
    ],
    ids=str,
)
def test_upsample(kw):
    _check(lambda nn: nn.Upsample(**kw), _x(2, 3, 4, 5))


def test_unfold_fold_layers():
    _check(lambda nn: nn.Unfold((2, 3), dilation=(2, 1), padding=1, stride=(1, 2)), _x(2, 3, 5, 6))
    _check(lambda nn: nn.Fold((5, 6), (2, 3), padding=1, stride=2), _x(2, 18, 9))


def test_distances():
    _check(lambda nn: nn.CosineSimilarity(dim=1), _x(4, 5), _x(4, 5))
    _check(lambda nn: nn.PairwiseDistance(), _x(4, 5), _x(4, 5))


def test_sequential_model_matches_torch():
    def make(nn):
        return nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(4, 4, 3, groups=2),
            nn.Flatten(),
            nn.Linear(16, 3),
            nn.LogSoftmax(dim=1),
        )

    _check(make, _x(3, 2, 8, 8))


@pytest.mark.parametrize("layout", ["batch-first", "batch-last"])
def test_conv_outputs_survive_later_calls(layout, monkeypatch):
    # outputs must never share memory with the kernels' reused scratch arrays (batch of one
    # and a single channel make the transposed results contiguous views)
    monkeypatch.setattr(ConvGeometry, "batch_last_below", 0 if layout == "batch-first" else 999)
    conv = cr.nn.Conv2d(1, 1, 3, padding=1)
    x = cr.tensor(_x(1, 1, 300, 300).astype(np.float32), requires_grad=True)
    first = conv(x)
    kept = np.asarray(first.detach()).copy()
    first.sum().backward()
    grad = np.asarray(x.grad).copy()
    for _ in range(2):
        conv(cr.tensor(_x(1, 1, 300, 300).astype(np.float32), requires_grad=True)).sum().backward()
    np.testing.assert_array_equal(np.asarray(first.detach()), kept)
    np.testing.assert_array_equal(np.asarray(x.grad), grad)
    cols = cr.nn.functional.unfold(x.detach(), 3, padding=1)
    kept = np.asarray(cols).copy()
    cr.nn.functional.unfold(cr.tensor(_x(1, 1, 300, 300).astype(np.float32)), 3, padding=1)
    np.testing.assert_array_equal(np.asarray(cols), kept)
