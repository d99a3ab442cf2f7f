"""Every op in the table: finite differences (1st and 2nd order) and PyTorch as an oracle."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

import chainrule as cr
from chainrule import ops
from tests.ops.op_table import Arg, all_rows

ROWS = all_rows()
CASES = [(row, i) for row in ROWS for i in range(len(row.cases))]
IDS = [row.ids()[i] for row, i in CASES]
GRAD_CASES = [(r, i) for r, i in CASES if r.grad]
GRAD_IDS = [r.ids()[i] for r, i in GRAD_CASES]
SECOND = [(r, i) for r, i in GRAD_CASES if r.second_order]
SECOND_IDS = [r.ids()[i] for r, i in SECOND]


def _arrays(row, i, dtype):
    case = row.cases[i]
    rng = np.random.default_rng(zlib.crc32(f"{row.name}{i}{row.ids()[i]}".encode()))
    return [a.make(rng, dtype) if isinstance(a, Arg) else a for a in case.args]


def _cr_inputs(row, i, dtype=np.float64):
    case = row.cases[i]
    out = []
    for spec, arr in zip(case.args, _arrays(row, i, dtype)):
        if isinstance(spec, Arg):
            t = cr.from_numpy(arr)  # keeps non-contiguous views non-contiguous
            if spec.differentiable and arr.dtype.kind == "f":
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(arr)
    return out


def _outputs(result):
    if isinstance(result, (tuple, list)):
        return [r for r in result if isinstance(r, cr.Tensor)]
    return [result]


def _call(row, i, module, inputs):
    return row.fn(module, *inputs, **row.cases[i].kwargs)


@pytest.mark.parametrize("row,i", GRAD_CASES, ids=GRAD_IDS)
def test_gradcheck(row, i):
    inputs = _cr_inputs(row, i)
    if not any(isinstance(t, cr.Tensor) and t.requires_grad for t in inputs):
        pytest.skip("no differentiable input")
    if all(t.numel() == 0 for t in inputs if isinstance(t, cr.Tensor) and t.requires_grad):
        # empty inputs: the gradient exists and has the input's shape
        out = _outputs(_call(row, i, cr, inputs))
        diff = [t for t in inputs if isinstance(t, cr.Tensor) and t.requires_grad]
        live = [o for o in out if o.requires_grad]
        grads = cr.autograd.grad(live, diff, [cr.ones_like(o) for o in live], allow_unused=True)
        for t, g in zip(diff, grads):
            assert g is None or g.shape == t.shape
        return
    assert cr.autograd.gradcheck(lambda *xs: _call(row, i, cr, xs), inputs)


def _second_order_inputs(row, i) -> tuple:
    """The row's inputs and the differentiable ones among them (skips when there are none)."""
    inputs = _cr_inputs(row, i)
    diff = [t for t in inputs if isinstance(t, cr.Tensor) and t.requires_grad]
    if not diff or all(t.numel() == 0 for t in diff):
        pytest.skip("no differentiable, non-empty input")
    return inputs, diff


@pytest.mark.parametrize("row,i", SECOND, ids=SECOND_IDS)
def test_gradgradcheck(row, i):
    inputs, _ = _second_order_inputs(row, i)
    assert cr.autograd.gradgradcheck(lambda *xs: _call(row, i, cr, xs), inputs)


@pytest.mark.parametrize("row,i", SECOND, ids=SECOND_IDS)
def test_differentiable_backward_gives_the_plain_values(row, i):
    # fused nodes have two backward paths: array code, and chainrule ops when the backward
    # must be recorded (create_graph). gradgradcheck differentiates the second one but cannot
    # see a wrong value in it (the derivative of a constant term is zero): compare the two.
    inputs, diff = _second_order_inputs(row, i)
    rng = np.random.default_rng(7)
    results = []
    for create_graph in (False, True):
        out = [o for o in _outputs(_call(row, i, cr, inputs)) if o.requires_grad]
        seeds = [cr.tensor(rng.standard_normal(tuple(o.shape))) for o in out]
        rng = np.random.default_rng(7)
        grads = cr.autograd.grad(out, diff, seeds, create_graph=create_graph, allow_unused=True)
        results.append(grads)
    for plain, recorded in zip(*results):
        if plain is None or recorded is None:
            assert plain is None and recorded is None
            continue
        np.testing.assert_allclose(
            np.asarray(recorded.detach()), np.asarray(plain), rtol=1e-10, atol=1e-12
        )


def _torch_inputs(torch, row, i, dtype):
    out = []
    for spec, arr in zip(row.cases[i].args, _arrays(row, i, dtype)):
        if isinstance(spec, Arg):
            t = torch.from_numpy(np.array(arr))  # torch refuses negative strides: copy
            if spec.differentiable and arr.dtype.kind == "f":
                t.requires_grad_(True)
            out.append(t)
        else:
            out.append(arr)
    return out


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "row,i", [(r, i) for r, i in CASES if r.torch], ids=[r.ids()[i] for r, i in CASES if r.torch]
)
def test_against_torch(row, i, dtype):
    torch = pytest.importorskip("torch")
    c_in = _cr_inputs(row, i, dtype)
    t_in = _torch_inputs(torch, row, i, dtype)
    c_out = _outputs(_call(row, i, cr, c_in))
    t_res = _call(row, i, torch, t_in)
    t_out = list(t_res) if isinstance(t_res, (tuple, list)) else [t_res]
    t_out = [t for t in t_out if isinstance(t, torch.Tensor)]
    assert len(c_out) == len(t_out)
    rtol, atol = (1e-10, 1e-12) if dtype == np.float64 else (row.rtol32, row.atol32)
    for c, t in zip(c_out, t_out):
        assert tuple(c.shape) == tuple(t.shape), f"shape {tuple(c.shape)} vs {tuple(t.shape)}"
        assert str(c.dtype).split(".")[-1] == str(t.dtype).split(".")[-1], (c.dtype, t.dtype)
        np.testing.assert_allclose(
            np.asarray(c.detach()), t.detach().numpy(), rtol=rtol, atol=atol, equal_nan=True
        )
    if not row.grad:
        return
    c_diff = [x for x in c_in if isinstance(x, cr.Tensor) and x.requires_grad]
    t_diff = [x for x in t_in if isinstance(x, torch.Tensor) and x.requires_grad]
    pairs = [(c, t) for c, t in zip(c_out, t_out) if c.requires_grad]
    if not pairs or not c_diff:
        return
    rng = np.random.default_rng(7)
    seeds = [rng.standard_normal(tuple(c.shape)).astype(dtype) for c, _ in pairs]
    c_grads = cr.autograd.grad(
        [c for c, _ in pairs], c_diff, [cr.tensor(s) for s in seeds], allow_unused=True
    )
    t_grads = torch.autograd.grad(
        [t for _, t in pairs], t_diff, [torch.from_numpy(s) for s in seeds], allow_unused=True
    )
    for k, (cg, tg) in enumerate(zip(c_grads, t_grads)):
        if tg is None:
            assert cg is None or not np.asarray(cg).any(), f"input {k}: torch has no gradient"
            continue
        assert cg is not None, f"input {k}: chainrule has no gradient"
        assert tuple(cg.shape) == tuple(tg.shape)
        np.testing.assert_allclose(
            np.asarray(cg),
            tg.numpy(),
            rtol=rtol * 10,
            atol=atol * 10,
            err_msg=f"gradient of input {k}",
        )


def test_every_public_op_has_a_row():
    covered = {row.name for row in ROWS}
    missing = []
    for family in ops.FAMILIES:
        # an alias (``clip`` for ``clamp``) is covered by the row of the function it names
        covered_objects = {id(getattr(family, n)) for n in covered if hasattr(family, n)}
        for name in family.__all__:
            if name not in covered and id(getattr(family, name)) not in covered_objects:
                missing.append(f"{family.__name__}.{name}")
    assert not missing, f"ops without a row in the op table: {missing}"
