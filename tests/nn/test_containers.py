"""``Sequential``, ``ModuleList``, ``ModuleDict``, ``ParameterList``, ``ParameterDict``."""

from __future__ import annotations

from collections import OrderedDict

import pytest

import chainrule as cr
from chainrule import nn

torch = pytest.importorskip("torch")


def _three(m):
    return m.Sequential(m.Linear(2, 3), m.ReLU(), m.Linear(3, 1))


def test_sequential_indexing_slicing_len_append():
    seq = _three(nn)
    assert len(seq) == 3
    assert isinstance(seq[0], nn.Linear) and isinstance(seq[-1], nn.Linear)
    tail = seq[1:]
    assert isinstance(tail, nn.Sequential) and len(tail) == 2
    assert (
        list(tail.state_dict()) == list(_three(torch.nn)[1:].state_dict()) == ["2.weight", "2.bias"]
    )
    seq.append(nn.Sigmoid())
    assert len(seq) == 4 and isinstance(seq[3], nn.Sigmoid)
    assert seq(cr.zeros(5, 2)).shape == (5, 1)
    with pytest.raises(IndexError):
        seq[4]


def test_sequential_delete_renumbers_like_torch():
    c, t = _three(nn), _three(torch.nn)
    del c[0]
    del t[0]
    assert list(c.state_dict()) == list(t.state_dict())
    c, t = _three(nn), _three(torch.nn)
    c.insert(1, nn.Tanh())
    t.insert(1, torch.nn.Tanh())
    assert [n for n, _ in c.named_children()] == [n for n, _ in t.named_children()]
    assert isinstance(c.pop(1), nn.Tanh)
    c[1] = nn.Identity()
    assert isinstance(c[1], nn.Identity)
    c.extend([nn.ReLU()])
    assert len(c) == 4
    assert len(c + _three(nn)) == 7


def test_sequential_from_ordered_dict():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 2)), ("act", nn.ReLU())]))
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"]
    assert seq.fc is seq[0]


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(2)])
    layers.append(nn.ReLU())
    layers += [nn.Tanh()]
    layers.insert(0, nn.Identity())
    assert [type(m).__name__ for m in layers] == ["Identity", "Linear", "Linear", "ReLU", "Tanh"]
    assert list(layers.state_dict()) == ["1.weight", "1.bias", "2.weight", "2.bias"]
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    del layers[0]
    assert list(layers.state_dict())[0] == "0.weight"
    assert isinstance(layers.pop(), nn.Tanh) and len(layers) == 3
    with pytest.raises(TypeError, match="iterable"):
        nn.ModuleList().extend(nn.Linear(1, 1))


def test_module_list_repr_groups_repeats_like_torch():
    def make(m):
        return m.ModuleList([m.Linear(2, 2) for _ in range(3)] + [m.ReLU(), m.ReLU(), m.Tanh()])

    assert repr(make(nn)) == repr(make(torch.nn))
    assert repr(nn.ModuleList()) == repr(torch.nn.ModuleList()) == "ModuleList()"


def test_module_dict():
    heads = nn.ModuleDict({"a": nn.Linear(2, 2), "b": nn.ReLU()})
    heads["c"] = nn.Tanh()
    assert list(heads.keys()) == ["a", "b", "c"] and "a" in heads and len(heads) == 3
    assert list(heads) == ["a", "b", "c"]
    assert isinstance(heads.pop("b"), nn.ReLU)
    heads.update([("d", nn.Identity())])
    assert [k for k, _ in heads.items()] == ["a", "c", "d"]
    assert list(heads.state_dict()) == ["a.weight", "a.bias"]
    del heads["a"]
    heads.clear()
    assert len(heads) == 0


def test_parameter_list_and_dict():
    plist = nn.ParameterList([nn.Parameter(cr.zeros(2)), cr.ones(3)])
    assert isinstance(plist[1], nn.Parameter) and len(plist) == 2
    plist.append(cr.zeros(1))
    assert [n for n, _ in plist.named_parameters()] == ["0", "1", "2"]
    assert repr(nn.ParameterList([nn.Parameter(cr.zeros(2))])) == repr(
        torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(2))])
    ).replace("torch", "chainrule")
    pdict = nn.ParameterDict({"w": cr.ones(2)})
    pdict["b"] = nn.Parameter(cr.zeros(1))
    assert list(pdict.keys()) == ["w", "b"] and "w" in pdict
    assert [n for n, _ in pdict.named_parameters()] == ["w", "b"]


def test_containers_register_their_parameters_for_optimisation():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])
            self.heads = nn.ModuleDict({"out": nn.Linear(2, 1)})

        def forward(self, x):
            for b in self.blocks:
                x = b(x).relu()
            return self.heads["out"](x)

    net = Net()
    assert len(list(net.parameters())) == 6
    net(cr.ones(1, 2)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
