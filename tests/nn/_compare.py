"""Helpers for checking chainrule layers against PyTorch's (float64, tight tolerances)."""

from __future__ import annotations

import numpy as np

import chainrule as cr

RTOL = 1e-9
ATOL = 1e-11


def assert_close(a, b, rtol=RTOL, atol=ATOL, what=""):
    """Compare a chainrule tensor (or array) with a torch tensor (or array)."""
    a = np.asarray(a.detach() if isinstance(a, cr.Tensor) else a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    assert a.shape == b.shape, f"{what}: shape {a.shape} vs {b.shape}"
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, err_msg=what)


def twin(make, torch, seed: int = 0):
    """``make(nn)`` built in PyTorch (seeded) and chainrule, with PyTorch's weights loaded
    into chainrule's (the state_dict keys must match exactly), both in float64."""
    torch.manual_seed(seed)
    t_mod = make(torch.nn).double()
    c_mod = make(cr.nn).double()
    assert list(c_mod.state_dict()) == list(t_mod.state_dict())
    c_mod.load_state_dict(t_mod.state_dict())
    return c_mod, t_mod


def run_both(c_mod, t_mod, torch, inputs, *, seed: int = 1, grad_inputs=True, rtol=RTOL):
    """Forward both modules on the same float64 inputs, backward a random seed gradient and
    compare outputs, input gradients, parameter gradients and buffers."""
    rng = np.random.default_rng(seed)
    c_in, t_in = [], []
    for x in inputs:
        if isinstance(x, np.ndarray) and x.dtype.kind == "f":
            c_in.append(cr.tensor(x, requires_grad=grad_inputs))
            t_in.append(torch.tensor(x, requires_grad=grad_inputs))
        elif isinstance(x, np.ndarray):
            c_in.append(cr.tensor(x))
            t_in.append(torch.tensor(x))
        else:
            c_in.append(x)
            t_in.append(x)
    c_out = c_mod(*c_in)
    t_out = t_mod(*t_in)
    assert_close(c_out, t_out, rtol=rtol, what="output")
    g = rng.standard_normal(tuple(t_out.shape))
    c_out.backward(cr.tensor(g))
    t_out.backward(torch.tensor(g))
    for i, (c, t) in enumerate(zip(c_in, t_in)):
        if isinstance(c, cr.Tensor) and c.requires_grad:
            assert_close(c.grad, t.grad, rtol=rtol, what=f"grad of input {i}")
    t_params = dict(t_mod.named_parameters())
    for name, p in c_mod.named_parameters():
        tp = t_params[name]
        if tp.grad is None:
            assert p.grad is None or not np.asarray(p.grad).any(), name
        else:
            assert_close(p.grad, tp.grad, rtol=rtol, what=f"grad of {name}")
    t_buffers = dict(t_mod.named_buffers())
    for name, b in c_mod.named_buffers():
        assert_close(b, t_buffers[name], rtol=rtol, what=f"buffer {name}")
    return c_out, t_out
