"""Every loss against PyTorch (values and gradients, each reduction and option), error
messages, and numerical stability at extreme inputs."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.nn.functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional

REDUCTIONS = ["mean", "sum", "none"]
rng = np.random.default_rng(0)


def _compare(c_fn, t_fn, args, grad_args=(0,), rtol=1e-9, atol=1e-12, seed=0):
    """Call both with the same float64 arrays/ints; compare values and gradients."""
    c_args, t_args = [], []
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            req = i in grad_args and a.dtype.kind == "f"
            c_args.append(cr.tensor(a, requires_grad=req))
            t_args.append(torch.tensor(a, requires_grad=req))
        else:
            c_args.append(a)
            t_args.append(a)
    c_out = c_fn(*c_args)
    t_out = t_fn(*t_args)
    np.testing.assert_allclose(np.asarray(c_out.detach()), t_out.detach().numpy(), rtol, atol)
    assert tuple(c_out.shape) == tuple(t_out.shape)
    g = np.random.default_rng(seed).standard_normal(tuple(t_out.shape))
    c_diff = [x for x in c_args if isinstance(x, cr.Tensor) and x.requires_grad]
    t_diff = [x for x in t_args if isinstance(x, torch.Tensor) and x.requires_grad]
    c_grads = cr.autograd.grad(c_out, c_diff, cr.tensor(g))
    t_grads = torch.autograd.grad(t_out, t_diff, torch.tensor(g))
    for k, (a, b) in enumerate(zip(c_grads, t_grads)):
        np.testing.assert_allclose(np.asarray(a), b.numpy(), rtol, atol, err_msg=f"grad {k}")


def _pair(module_name, **kw):
    return getattr(cr.nn, module_name)(**kw), getattr(torch.nn, module_name)(**kw)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "name,kw",
    [
        ("MSELoss", {}),
        ("L1Loss", {}),
        ("SmoothL1Loss", {}),
        ("SmoothL1Loss", {"beta": 0.5}),
        ("SmoothL1Loss", {"beta": 0.0}),
        ("HuberLoss", {}),
        ("HuberLoss", {"delta": 0.3}),
        ("SoftMarginLoss", {}),
    ],
)
def test_regression_losses(name, kw, reduction):
    c, t = _pair(name, reduction=reduction, **kw)
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    # PyTorch's soft margin loss is not differentiable in its target
    _compare(c, t, (x, y), grad_args=(0,) if name == "SoftMarginLoss" else (0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("fn", ["mse_loss", "l1_loss", "huber_loss"])
def test_weighted_regression_losses(fn, reduction):
    x, y, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.uniform(0, 2, (3, 4))
    _compare(
        lambda a, b, c: getattr(F, fn)(a, b, reduction=reduction, weight=c),
        lambda a, b, c: getattr(TF, fn)(a, b, reduction=reduction, weight=c),
        (x, y, w),
        grad_args=(0, 1),
    )


CE_CASES = [
    dict(),
    dict(ignore_index=2),
    dict(label_smoothing=0.2),
    dict(weight=True),
    dict(weight=True, ignore_index=1),
    dict(weight=True, label_smoothing=0.1),
    dict(weight=True, label_smoothing=0.3, ignore_index=0),
    dict(ignore_index=0, label_smoothing=0.1),
]


def _ce_kwargs(kw, n_classes):
    kw = dict(kw)
    if kw.pop("weight", False):
        w = rng.uniform(0.2, 2.0, n_classes)
        return kw, {"weight": cr.tensor(w)}, {"weight": torch.tensor(w)}
    return kw, {}, {}


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", CE_CASES, ids=str)
@pytest.mark.parametrize("shape", [(6, 4), (3, 4, 2, 3), (4,)], ids=["NC", "NCd1d2", "C"])
def test_cross_entropy_class_indices(kw, reduction, shape):
    n_classes = shape[0] if len(shape) == 1 else shape[1]
    target_shape = () if len(shape) == 1 else (shape[0], *shape[2:])
    logits = rng.standard_normal(shape) * 2
    target = rng.integers(0, n_classes, target_shape)
    if target.ndim and kw.get("ignore_index") is not None:
        target.flat[0] = kw["ignore_index"]  # at least one ignored entry
    kw, c_w, t_w = _ce_kwargs(kw, n_classes)
    c = cr.nn.CrossEntropyLoss(reduction=reduction, **kw, **c_w)
    t = torch.nn.CrossEntropyLoss(reduction=reduction, **kw, **t_w)
    _compare(c, t, (logits, target))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "kw",
    [dict(), dict(label_smoothing=0.15), dict(weight=True), dict(weight=True, label_smoothing=0.2)],
    ids=str,
)
@pytest.mark.parametrize("shape", [(5, 3), (2, 3, 4)])
def test_cross_entropy_probabilities(kw, reduction, shape):
    logits = rng.standard_normal(shape)
    probs = rng.dirichlet(np.ones(3), size=(shape[0], *shape[2:]))
    probs = np.moveaxis(probs, -1, 1)
    kw, c_w, t_w = _ce_kwargs(kw, 3)
    c = cr.nn.CrossEntropyLoss(reduction=reduction, **kw, **c_w)
    t = torch.nn.CrossEntropyLoss(reduction=reduction, **kw, **t_w)
    _compare(c, t, (logits, probs), grad_args=(0, 1))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize(
    "kw",
    [dict(), dict(ignore_index=1), dict(weight=True), dict(weight=True, ignore_index=0)],
    ids=str,
)
def test_nll_loss(kw, reduction):
    logp = np.log(rng.dirichlet(np.ones(4), size=6))
    target = rng.integers(0, 4, 6)
    target[0] = 1
    kw, c_w, t_w = _ce_kwargs(kw, 4)
    c = cr.nn.NLLLoss(reduction=reduction, **kw, **c_w)
    t = torch.nn.NLLLoss(reduction=reduction, **kw, **t_w)
    _compare(c, t, (logp, target))


def test_nll_loss_all_ignored_mean_is_nan_like_torch():
    logp = np.log(np.full((2, 3), 1 / 3))
    target = np.array([1, 1])
    c = F.nll_loss(cr.tensor(logp), cr.tensor(target), ignore_index=1)
    t = TF.nll_loss(torch.tensor(logp), torch.tensor(target), ignore_index=1)
    assert np.isnan(c.item()) and np.isnan(t.item())


def test_class_index_out_of_range_is_a_clear_error():
    logits = cr.zeros(3, 4)
    with pytest.raises(IndexError, match=r"Target 4 is out of bounds.*4 classes"):
        F.cross_entropy(logits, cr.tensor([0, 4, 1]))
    with pytest.raises(IndexError, match="Target -1 is out of bounds"):
        F.nll_loss(logits, cr.tensor([0, -1, 1]))
    # the ignore index itself may lie outside the class range
    F.cross_entropy(logits, cr.tensor([0, -100, 1]))


def test_cross_entropy_checks_target_shape():
    with pytest.raises(ValueError, match="expected target of size"):
        F.cross_entropy(cr.zeros(3, 4), cr.tensor([0, 1]))


@pytest.mark.parametrize("dtype", [cr.float32, cr.float64])
def test_cross_entropy_extreme_logits_are_finite(dtype):
    logits = cr.tensor([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4]], dtype=dtype, requires_grad=True)
    target = cr.tensor([1, 2])
    loss = F.cross_entropy(logits, target, label_smoothing=0.1)
    loss.backward()
    assert np.isfinite(loss.item())
    assert np.isfinite(np.asarray(logits.grad)).all()
    t_logits = torch.tensor(np.asarray(logits.detach()), requires_grad=True)
    t_loss = TF.cross_entropy(t_logits, torch.tensor([1, 2]), label_smoothing=0.1)
    t_loss.backward()
    np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(logits.grad), t_logits.grad.numpy(), atol=1e-6)


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_bce(reduction, weighted):
    p = rng.uniform(0.01, 0.99, (4, 3))
    y = rng.uniform(0, 1, (4, 3))
    w = rng.uniform(0.5, 2, (4, 3)) if weighted else None
    c = cr.nn.BCELoss(weight=None if w is None else cr.tensor(w), reduction=reduction)
    t = torch.nn.BCELoss(weight=None if w is None else torch.tensor(w), reduction=reduction)
    _compare(c, t, (p, y), grad_args=(0, 1))


def test_bce_saturated_probabilities_clamp_the_log():
    p = np.array([0.0, 1.0, 1e-30, 1 - 1e-16, 0.5])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0])
    # PyTorch's 1e-12 floor on x(1 - x) is a float32 constant: relative 4e-9 from float64's
    _compare(
        lambda a, b: F.binary_cross_entropy(a, b, reduction="none"),
        lambda a, b: TF.binary_cross_entropy(a, b, reduction="none"),
        (p, y),
        rtol=1e-7,
    )
    out = F.binary_cross_entropy(cr.tensor(p), cr.tensor(y), reduction="none")
    assert out.tolist()[:2] == [100.0, 100.0]


def test_bce_rejects_values_outside_0_1():
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(cr.tensor([1.5]), cr.tensor([1.0]))
    with pytest.raises(ValueError, match="target size"):
        F.binary_cross_entropy(cr.tensor([0.5, 0.5]), cr.tensor([1.0]))


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", ["plain", "weight", "pos_weight", "both"])
def test_bce_with_logits(reduction, options):
    x = rng.standard_normal((4, 3)) * 3
    y = rng.uniform(0, 1, (4, 3))
    kw_c, kw_t = {}, {}
    if options in ("weight", "both"):
        w = rng.uniform(0.5, 2, (4, 3))
        kw_c["weight"], kw_t["weight"] = cr.tensor(w), torch.tensor(w)
    if options in ("pos_weight", "both"):
        pw = rng.uniform(0.5, 3, 3)
        kw_c["pos_weight"], kw_t["pos_weight"] = cr.tensor(pw), torch.tensor(pw)
    c = cr.nn.BCEWithLogitsLoss(reduction=reduction, **kw_c)
    t = torch.nn.BCEWithLogitsLoss(reduction=reduction, **kw_t)
    _compare(c, t, (x, y), grad_args=(0, 1))


@pytest.mark.parametrize("dtype", [cr.float32, cr.float64])
def test_bce_with_logits_never_overflows(dtype):
    x = cr.tensor([-1e4, -100.0, 0.0, 100.0, 1e4], dtype=dtype, requires_grad=True)
    y = cr.tensor([1.0, 0.0, 0.5, 1.0, 0.0], dtype=dtype)
    loss = F.binary_cross_entropy_with_logits(
        x, y, reduction="none", pos_weight=cr.tensor([2.0], dtype=dtype)
    )
    loss.sum().backward()
    assert np.isfinite(np.asarray(loss.detach())).all()
    assert np.isfinite(np.asarray(x.grad)).all()
    t_x = torch.tensor(np.asarray(x.detach()), requires_grad=True)
    t_loss = TF.binary_cross_entropy_with_logits(
        t_x,
        torch.tensor(np.asarray(y)),
        reduction="none",
        pos_weight=torch.tensor([2.0], dtype=t_x.dtype),
    )
    t_loss.sum().backward()
    np.testing.assert_allclose(
        np.asarray(loss.detach()), t_loss.detach().numpy(), rtol=1e-6, atol=1e-30
    )
    np.testing.assert_allclose(np.asarray(x.grad), t_x.grad.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
def test_kl_div(reduction, log_target):
    x = np.log(rng.dirichlet(np.ones(4), size=3))
    y = rng.dirichlet(np.ones(4), size=3)
    y[0, 0] = 0.0  # zero target probability contributes nothing
    if log_target:
        y = np.log(y + 1e-3)
    c = cr.nn.KLDivLoss(reduction=reduction, log_target=log_target)
    t = torch.nn.KLDivLoss(reduction=reduction, log_target=log_target)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _compare(c, t, (x, y), grad_args=(0,))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_margin_and_embedding_losses(reduction):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    sign = np.where(rng.random(5) < 0.5, -1.0, 1.0)
    _compare(
        cr.nn.CosineEmbeddingLoss(0.2, reduction=reduction),
        torch.nn.CosineEmbeddingLoss(0.2, reduction=reduction),
        (a, b, sign),
        (0, 1),
    )
    _compare(
        cr.nn.MarginRankingLoss(0.1, reduction=reduction),
        torch.nn.MarginRankingLoss(0.1, reduction=reduction),
        (a[:, 0], b[:, 0], sign),
        (0, 1),
    )
    _compare(
        cr.nn.HingeEmbeddingLoss(0.5, reduction=reduction),
        torch.nn.HingeEmbeddingLoss(0.5, reduction=reduction),
        (a[:, 0], sign),
        (0,),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kw", [dict(), dict(log_input=False), dict(full=True)], ids=str)
def test_poisson_nll(kw, reduction):
    x = rng.uniform(0.1, 2, (4, 3))
    y = rng.integers(0, 5, (4, 3)).astype(float)
    _compare(
        cr.nn.PoissonNLLLoss(reduction=reduction, **kw),
        torch.nn.PoissonNLLLoss(reduction=reduction, **kw),
        (x, y),
        (0,),
    )


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("full", [False, True])
def test_gaussian_nll(full, reduction):
    x, y = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    var = rng.uniform(0.1, 2, (4, 3))
    _compare(
        cr.nn.GaussianNLLLoss(full=full, reduction=reduction),
        torch.nn.GaussianNLLLoss(full=full, reduction=reduction),
        (x, y, var),
        (0, 2),
    )


def test_invalid_reduction():
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.mse_loss(cr.zeros(2), cr.zeros(2), reduction="avg")


def test_legacy_size_average_and_reduce():
    x, y = cr.tensor([1.0, 3.0]), cr.tensor([0.0, 0.0])
    assert F.mse_loss(x, y, size_average=False).item() == 10.0
    assert F.mse_loss(x, y, reduce=False).tolist() == [1.0, 9.0]
    assert cr.nn.MSELoss(size_average=False).reduction == "sum"


def test_loss_weights_are_buffers():
    loss = cr.nn.CrossEntropyLoss(weight=cr.ones(3))
    assert list(loss.state_dict()) == ["weight"]
    loss.double()
    assert loss.weight.dtype == cr.float64
