"""``Module``: registration, iteration order, state_dict, modes, conversion, hooks, repr."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")


def _block_class(m, lib):
    """A module using every kind of registration, for framework ``lib`` (``nn`` is ``m``)."""

    class Block(m.Module):
        def __init__(self):
            super().__init__()
            self.scale = m.Parameter(lib.ones(3))
            self.fc = m.Linear(3, 4)
            self.register_buffer("steps", lib.zeros(1))
            self.register_buffer("scratch", lib.zeros(2), persistent=False)
            self.inner = m.Sequential(m.Linear(4, 4), m.BatchNorm1d(4))

        def forward(self, x):
            return self.inner(self.fc(x * self.scale))

    return Block


def _pair():
    return _block_class(nn, cr)(), _block_class(torch.nn, torch)()


def test_names_and_order_match_torch():
    c, t = _pair()
    for method in ("named_parameters", "named_buffers", "named_modules", "named_children"):
        assert [n for n, _ in getattr(c, method)()] == [n for n, _ in getattr(t, method)()]
    assert list(c.state_dict()) == list(t.state_dict())
    assert "scratch" not in c.state_dict()
    assert len(list(c.parameters())) == len(list(t.parameters()))
    assert len(list(c.modules())) == len(list(t.modules()))


def test_nested_state_dict_keys_match_torch():
    def make(m):
        return m.Sequential(
            m.Conv2d(1, 4, 3),
            m.BatchNorm2d(4),
            m.ReLU(),
            m.Sequential(m.Linear(2, 2), m.BatchNorm1d(2, affine=False)),
        )

    c_keys = list(make(nn).state_dict())
    assert c_keys == list(make(torch.nn).state_dict())
    assert "1.num_batches_tracked" in c_keys and "3.1.running_var" in c_keys


def test_shared_parameters_are_listed_once():
    lin = nn.Linear(2, 2)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert len(list(model.named_parameters(remove_duplicate=False))) == 4


def test_registration_rules():
    m = nn.Module()
    m.w = nn.Parameter(cr.zeros(2))
    assert dict(m.named_parameters())["w"] is m.w
    with pytest.raises(TypeError, match="Parameter or None"):
        m.w = cr.zeros(2)
    m.w = None
    assert list(m.parameters()) == []
    m.register_buffer("b", cr.ones(1))
    with pytest.raises(TypeError, match="buffer"):
        m.b = 3
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("training", cr.ones(1))
    with pytest.raises(KeyError, match="contain"):
        m.register_parameter("a.b", None)
    with pytest.raises(TypeError, match="chainrule.nn.Parameter or None required"):
        m.register_parameter("p", cr.zeros(1))
    m.child = nn.Linear(1, 1)
    assert "child" in dict(m.named_children())
    del m.child
    assert "child" not in dict(m.named_children())
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        m.missing
    m.extra = nn.Buffer(cr.zeros(2), persistent=False)
    assert "extra" in dict(m.named_buffers()) and "extra" not in m.state_dict()


def test_assignment_before_init_is_an_error():
    class Bad(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(cr.zeros(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Bad()


def test_missing_forward():
    with pytest.raises(NotImplementedError, match='missing the required "forward"'):
        nn.Module()(1)


def test_load_state_dict_from_torch_numpy_and_chainrule():
    c, t = _pair()
    c.load_state_dict(t.state_dict())  # torch tensors
    for (name, p), tp in zip(c.state_dict().items(), t.state_dict().values()):
        np.testing.assert_array_equal(np.asarray(p), tp.numpy(), err_msg=name)
    arrays = {k: np.asarray(v) + 1 for k, v in c.state_dict().items()}
    weight = c.fc.weight
    result = c.load_state_dict(arrays)  # NumPy arrays; parameters keep their identity
    assert c.fc.weight is weight
    np.testing.assert_array_equal(np.asarray(c.fc.weight.detach()), arrays["fc.weight"])
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    c2, _ = _pair()
    c2.load_state_dict(c.state_dict())  # chainrule tensors
    np.testing.assert_array_equal(np.asarray(c2.scale.detach()), np.asarray(c.scale.detach()))
    assert c2.inner[1].num_batches_tracked.dtype == cr.int64


def test_load_state_dict_errors_name_the_keys():
    c, t = _pair()
    state = dict(t.state_dict())
    del state["fc.bias"]
    state["fc.extra"] = torch.zeros(1)
    state["inner.0.weight"] = torch.zeros(3, 3)
    with pytest.raises(RuntimeError) as err:
        c.load_state_dict(state)
    msg = str(err.value)
    assert "Error(s) in loading state_dict for Block" in msg
    assert 'Missing key(s) in state_dict: "fc.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "fc.extra"' in msg
    assert "size mismatch for inner.0.weight" in msg and "[3, 3]" in msg and "[4, 4]" in msg
    del state["inner.0.weight"]
    state["inner.0.weight"] = t.state_dict()["inner.0.weight"]
    result = c.load_state_dict(state, strict=False)
    assert result.missing_keys == ["fc.bias"]
    assert result.unexpected_keys == ["fc.extra"]


def test_train_eval_propagate():
    c, _ = _pair()
    assert c.training and c.inner[1].training
    assert c.eval() is c
    assert not c.training and not c.inner[1].training
    c.train()
    assert all(m.training for m in c.modules())
    with pytest.raises(ValueError, match="boolean"):
        c.train("yes")


def test_zero_grad_and_requires_grad():
    lin = nn.Linear(3, 2)
    lin(cr.ones(1, 3)).sum().backward()
    assert lin.weight.grad is not None
    lin.zero_grad(set_to_none=False)
    assert not np.asarray(lin.weight.grad).any()
    lin.zero_grad()
    assert lin.weight.grad is None
    lin.requires_grad_(False)
    assert not any(p.requires_grad for p in lin.parameters())
    out = lin(cr.ones(1, 3))
    assert not out.requires_grad


def test_to_dtype_keeps_parameters_and_integer_buffers():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    weight = model[0].weight
    model.to(cr.float64)
    assert model[0].weight is weight and weight.dtype == cr.float64
    assert model[1].running_mean.dtype == cr.float64
    assert model[1].num_batches_tracked.dtype == cr.int64
    model.float()
    assert weight.dtype == cr.float32
    model.double()
    assert model(cr.ones(3, 2, dtype=cr.float64)).dtype == cr.float64
    with pytest.raises(TypeError, match="floating point"):
        model.to(cr.int64)


def test_apply_visits_children_first():
    model = nn.Sequential(nn.Linear(1, 1), nn.Sequential(nn.ReLU()))
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Sequential", "Sequential"]

    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)

    model.apply(init)
    assert model[0].weight.item() == 0.5


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    calls = []
    h1 = lin.register_forward_pre_hook(lambda m, args: (args[0] * 0,))
    h2 = lin.register_forward_hook(lambda m, args, out: calls.append(args[0].sum().item()))
    h3 = lin.register_forward_hook(lambda m, args, out: out + 100)
    out = lin(cr.ones(1, 2))
    assert calls == [0.0]
    np.testing.assert_allclose(np.asarray(out.detach())[0], np.asarray(lin.bias.detach()) + 100)
    for h in (h1, h2, h3):
        h.remove()
    assert lin(cr.zeros(1, 2)).tolist() == lin.bias.detach().unsqueeze(0).tolist()
    order = []
    lin.register_forward_hook(lambda m, a, o: order.append("second"))
    lin.register_forward_hook(lambda m, a, o: order.append("first"), prepend=True)
    lin(cr.zeros(1, 2))
    assert order == ["first", "second"]


def test_forward_hooks_with_kwargs():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True)
    seen = {}
    m.register_forward_hook(lambda mod, args, kwargs, out: seen.update(kwargs), with_kwargs=True)
    assert m(cr.ones(1)).item() == 3.0
    assert seen == {"factor": 3.0}


def test_full_backward_hook_matches_torch():
    def make(m):
        return m.Sequential(m.Linear(3, 4), m.Tanh(), m.Linear(4, 2))

    torch.manual_seed(0)
    t_mod = make(torch.nn).double()
    c_mod = make(nn).double()
    c_mod.load_state_dict(t_mod.state_dict())
    records = {"c": [], "t": []}
    for key, mod in (("c", c_mod), ("t", t_mod)):
        for layer in mod:
            layer.register_full_backward_hook(
                lambda m, gi, go, key=key: records[key].append((type(m).__name__, gi, go))
            )
    x = np.random.default_rng(0).standard_normal((5, 3))
    c_mod(cr.tensor(x, requires_grad=True)).pow(2).sum().backward()
    t_mod(torch.tensor(x, requires_grad=True)).pow(2).sum().backward()
    assert [r[0] for r in records["c"]] == [r[0] for r in records["t"]]
    for (_, c_gi, c_go), (_, t_gi, t_go) in zip(records["c"], records["t"]):
        assert len(c_gi) == len(t_gi) and len(c_go) == len(t_go)
        for a, b in zip(c_gi + c_go, t_gi + t_go):
            np.testing.assert_allclose(np.asarray(a), b.numpy(), atol=1e-12)


def test_full_backward_hook_can_replace_grad_input():
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda m, gi, go: (gi[0] * 0,))
    x = cr.ones(1, 2, requires_grad=True)
    lin(x).sum().backward()
    assert not np.asarray(x.grad).any()
    assert lin.weight.grad is not None and np.asarray(lin.weight.grad).any()


def test_full_backward_hook_when_input_needs_no_grad():
    lin = nn.Linear(2, 2)
    seen = []
    lin.register_full_backward_hook(lambda m, gi, go: seen.append((gi, go)))
    lin(cr.ones(1, 2)).sum().backward()
    ((gi, go),) = seen
    assert gi == (None,) and go[0].shape == (1, 2)


def test_backward_pre_hook_replaces_grad_output():
    lin = nn.Linear(2, 2)
    lin.register_full_backward_pre_hook(lambda m, go: (go[0] * 0,))
    lin(cr.ones(1, 2)).sum().backward()
    assert not np.asarray(lin.weight.grad).any()


def test_repr_matches_torch():
    def lenet(m):
        return m.Sequential(
            m.Conv2d(1, 6, 5, padding=2),
            m.ReLU(),
            m.MaxPool2d(2),
            m.Conv2d(6, 16, 5),
            m.ReLU(),
            m.AvgPool2d(2),
            m.Flatten(),
            m.Sequential(m.Linear(400, 120), m.BatchNorm1d(120), m.Dropout(0.1)),
            m.Linear(120, 10),
        )

    def misc(m):
        return m.ModuleDict(
            {
                "emb": m.Embedding(10, 3, padding_idx=0),
                "convs": m.ModuleList(
                    [m.Conv2d(2, 2, 3, bias=False) for _ in range(3)] + [m.Identity()]
                ),
                "norms": m.ModuleList([m.LayerNorm(4), m.GroupNorm(2, 4), m.RMSNorm(4)]),
                "act": m.Sequential(m.GELU("tanh"), m.LeakyReLU(0.2), m.Softplus(), m.ELU()),
                "up": m.ConvTranspose2d(4, 2, 3, stride=2, padding=1, output_padding=1),
                "bil": m.Bilinear(2, 3, 4),
                "loss": m.CrossEntropyLoss(label_smoothing=0.1),
                "pool": m.AdaptiveAvgPool2d((1, 1)),
            }
        )

    assert repr(lenet(nn)) == repr(lenet(torch.nn))
    assert repr(misc(nn)) == repr(misc(torch.nn))
    assert repr(nn.Linear(784, 512)) == "Linear(in_features=784, out_features=512, bias=True)"


def test_extra_repr_and_custom_module_repr():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(2, 2))

        def extra_repr(self):
            return "custom=1"

    assert repr(Net()) == (
        "Net(\n  custom=1\n  (body): Sequential(\n    (0): Linear(in_features=2, "
        "out_features=2, bias=True)\n  )\n)"
    )


def test_deepcopy_gives_independent_parameters():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    clone = copy.deepcopy(model)
    assert clone[0].weight is not model[0].weight
    assert isinstance(clone[0].weight, nn.Parameter) and clone[0].weight.requires_grad
    with cr.no_grad():
        clone[0].weight.fill_(0.0)
    assert np.asarray(model[0].weight.detach()).any()
    assert list(clone.state_dict()) == list(model.state_dict())


def test_get_submodule_parameter_buffer():
    c, _ = _pair()
    assert c.get_submodule("inner.1") is c.inner[1]
    assert c.get_parameter("fc.weight") is c.fc.weight
    assert c.get_buffer("inner.1.running_mean") is c.inner[1].running_mean
    with pytest.raises(AttributeError):
        c.get_submodule("inner.7")
