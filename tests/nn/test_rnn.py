"""Recurrent layers against PyTorch, the fused kernels against the unfused ops, and training."""

from __future__ import annotations

import time

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.ops import sequence_kernels as sk

torch = pytest.importorskip("torch")

# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def _copy_weights(ours, theirs) -> None:
    ours.load_state_dict({k: cr.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})


def _np(t) -> np.ndarray:
    if isinstance(t, np.ndarray):
        return t
    return np.asarray(t.detach()) if isinstance(t, cr.Tensor) else t.detach().numpy()


def _close(a, b, tol=1e-10, what=""):
    np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol, err_msg=what)


def _flatten(out) -> list:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def _pair(torch_cls, cr_cls, *args, **kwargs):
    theirs = torch_cls(*args, **kwargs).double()
    ours = cr_cls(*args, **kwargs).double()
    _copy_weights(ours, theirs)
    return ours, theirs


def _compare_run(ours, theirs, x: np.ndarray, states: list | None, tol=1e-10):
    """Forward and backward through both layers; compare outputs and every gradient."""
    tx = torch.tensor(x, requires_grad=True)
    cx = cr.tensor(x, requires_grad=True)
    t_states = c_states = None
    if states is not None:
        t_states = [torch.tensor(s, requires_grad=True) for s in states]
        c_states = [cr.tensor(s, requires_grad=True) for s in states]
    wrap = (
        (lambda s: tuple(s))
        if isinstance(theirs, (torch.nn.LSTM, torch.nn.LSTMCell))
        else (lambda s: s[0])
    )
    t_out = _flatten(theirs(tx) if states is None else theirs(tx, wrap(t_states)))
    c_out = _flatten(ours(cx) if states is None else ours(cx, wrap(c_states)))
    assert len(t_out) == len(c_out)
    for i, (c, t) in enumerate(zip(c_out, t_out)):
        assert tuple(c.shape) == tuple(t.shape), f"output {i}"
        _close(c, t, tol, f"output {i}")
    rng = np.random.default_rng(1)
    seeds = [rng.standard_normal(tuple(t.shape)) for t in t_out]
    t_loss = sum((t * torch.tensor(s)).sum() for t, s in zip(t_out, seeds))
    c_loss = sum((c * cr.tensor(s)).sum() for c, s in zip(c_out, seeds))
    t_loss.backward()
    c_loss.backward()
    _close(cx.grad, tx.grad, tol, "input gradient")
    for c, t in zip(c_states or [], t_states or []):
        _close(c.grad, t.grad, tol, "initial state gradient")
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, t_params[name].grad, tol, f"gradient of {name}")


# ---------------------------------------------------------------------------------------------
# the layers against PyTorch
# ---------------------------------------------------------------------------------------------

LAYERS = [
    ("LSTM", torch.nn.LSTM, {}),
    ("GRU", torch.nn.GRU, {}),
    ("RNN", torch.nn.RNN, {}),
    ("RNN", torch.nn.RNN, {"nonlinearity": "relu"}),
]


@pytest.mark.parametrize(
    "name,torch_cls,extra", LAYERS, ids=["lstm", "gru", "rnn-tanh", "rnn-relu"]
)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("with_state", [False, True])
def test_layer_matches_torch(
    name, torch_cls, extra, num_layers, bidirectional, batch_first, with_state
):
    kw = dict(num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, **extra)
    ours, theirs = _pair(torch_cls, getattr(nn, name), 3, 4, **kw)
    rng = np.random.default_rng(0)
    T, B = 5, 2
    x = rng.standard_normal((B, T, 3) if batch_first else (T, B, 3))
    states = None
    if with_state:
        shape = (num_layers * (2 if bidirectional else 1), B, 4)
        states = [rng.standard_normal(shape) for _ in range(2 if name == "LSTM" else 1)]
    _compare_run(ours, theirs, x, states)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_lstm_projections_match_torch(bidirectional):
    ours, theirs = _pair(
        torch.nn.LSTM, nn.LSTM, 3, 5, num_layers=2, proj_size=2, bidirectional=bidirectional
    )
    rng = np.random.default_rng(0)
    d = 2 if bidirectional else 1
    states = [rng.standard_normal((2 * d, 3, 2)), rng.standard_normal((2 * d, 3, 5))]
    _compare_run(ours, theirs, rng.standard_normal((4, 3, 3)), states)


@pytest.mark.parametrize(
    "name,torch_cls,extra", LAYERS, ids=["lstm", "gru", "rnn-tanh", "rnn-relu"]
)
def test_layer_without_bias_and_unbatched(name, torch_cls, extra):
    ours, theirs = _pair(torch_cls, getattr(nn, name), 3, 4, bias=False, num_layers=2, **extra)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    rng = np.random.default_rng(3)
    states = [rng.standard_normal((2, 4)) for _ in range(2 if name == "LSTM" else 1)]
    _compare_run(ours, theirs, rng.standard_normal((6, 3)), None)
    ours.zero_grad()
    theirs.zero_grad()
    _compare_run(ours, theirs, rng.standard_normal((6, 3)), states)


CELLS = [
    (torch.nn.LSTMCell, "LSTMCell", {}),
    (torch.nn.GRUCell, "GRUCell", {}),
    (torch.nn.RNNCell, "RNNCell", {}),
    (torch.nn.RNNCell, "RNNCell", {"nonlinearity": "relu"}),
]


@pytest.mark.parametrize("torch_cls,name,extra", CELLS, ids=["lstm", "gru", "rnn-tanh", "rnn-relu"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("with_state", [True, False])
def test_cell_matches_torch(torch_cls, name, extra, bias, batched, with_state):
    ours, theirs = _pair(torch_cls, getattr(nn, name), 3, 4, bias=bias, **extra)
    rng = np.random.default_rng(0)
    lead = (2,) if batched else ()
    states = None
    if with_state:
        states = [rng.standard_normal((*lead, 4)) for _ in range(2 if name == "LSTMCell" else 1)]
    _compare_run(ours, theirs, rng.standard_normal((*lead, 3)), states)


def test_parameter_names_shapes_and_init_follow_pytorch():
    ours = nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)
    theirs = torch.nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for (n, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert tuple(p.shape) == tuple(q.shape), n
    bound = 1 / np.sqrt(20)
    values = np.concatenate([np.asarray(p.detach()).ravel() for p in ours.parameters()])
    assert np.abs(values).max() <= bound
    # uniform on [-b, b]: mean 0 and variance b^2 / 3
    assert abs(values.mean()) < 0.05 * bound
    assert abs(values.var() - bound**2 / 3) < 0.1 * bound**2
    assert "weight_hr_l1_reverse" in dict(ours.named_parameters())
    cell = nn.GRUCell(3, 4, bias=False)
    assert [n for n, _ in cell.named_parameters()] == ["weight_ih", "weight_hh"]
    assert cell.bias_ih is None


def test_repr_matches_pytorch():
    cases = [
        (nn.LSTM, torch.nn.LSTM, (3, 4), dict(proj_size=2, num_layers=2, batch_first=True)),
        (nn.RNN, torch.nn.RNN, (3, 4), dict(nonlinearity="relu", bias=False, bidirectional=True)),
        (nn.GRU, torch.nn.GRU, (3, 4), dict(dropout=0.5, num_layers=3)),
        (nn.RNNCell, torch.nn.RNNCell, (3, 4), dict(nonlinearity="relu", bias=False)),
        (nn.LSTMCell, torch.nn.LSTMCell, (3, 4), {}),
    ]
    for ours, theirs, args, kw in cases:
        assert repr(ours(*args, **kw)) == repr(theirs(*args, **kw))


def test_float32_layers_match_torch():
    ours, theirs = _pair(torch.nn.LSTM, nn.LSTM, 8, 16, batch_first=True)
    ours.float()
    theirs.float()
    x = np.random.default_rng(0).standard_normal((4, 7, 8)).astype(np.float32)
    out, (h, c) = ours(cr.tensor(x))
    t_out, (t_h, t_c) = theirs(torch.tensor(x))
    assert out.dtype == cr.float32
    _close(out, t_out, 1e-5)
    _close(c, t_c, 1e-5)


def test_dropout_between_layers_only_in_training():
    ours = nn.GRU(3, 4, num_layers=2, dropout=0.5)
    plain = nn.GRU(3, 4, num_layers=2)
    plain.load_state_dict(ours.state_dict())
    x = cr.randn(5, 2, 3)
    ours.eval()
    _close(ours(x)[0], plain(x)[0], 0.0)
    ours.train()
    first = ours(x)[0]
    assert not np.allclose(_np(first), _np(plain(x)[0]))
    first.sum().backward()
    assert ours.weight_ih_l0.grad is not None
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.LSTM(3, 4, dropout=0.2)


def test_errors_are_pytorch_like():
    lstm = nn.LSTM(3, 4)
    with pytest.raises(RuntimeError, match="input.size\\(-1\\) must be equal to input_size"):
        lstm(cr.zeros(5, 2, 7))
    with pytest.raises(ValueError, match="Expected input to be 2D or 3D, got 4D"):
        lstm(cr.zeros(5, 2, 3, 1))
    with pytest.raises(RuntimeError, match="Expected hidden\\[0\\] size \\(1, 2, 4\\)"):
        lstm(cr.zeros(5, 2, 3), (cr.zeros(2, 2, 4), cr.zeros(1, 2, 4)))
    with pytest.raises(RuntimeError, match="Expected hidden size \\(1, 2, 4\\), got \\[1, 3, 4\\]"):
        nn.GRU(3, 4)(cr.zeros(5, 2, 3), cr.zeros(1, 3, 4))
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.GRU(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'gelu'"):
        nn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(RuntimeError, match="same dtype"):
        nn.LSTM(3, 4)(cr.zeros(5, 2, 3, dtype=cr.float64))


# ---------------------------------------------------------------------------------------------
# the fused kernels: one node per layer-direction, BPTT equal to the unfused ops
# ---------------------------------------------------------------------------------------------


def _inputs(rng, shapes, dtype=np.float64):
    return [cr.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", ["lstm", "lstm-proj", "gru", "tanh", "relu"])
def test_fused_backward_equals_unfused_ops(kind, reverse, batch_first):
    rng = np.random.default_rng(0)
    T, B, I, H = 6, 3, 4, 5
    x_shape = (B, T, I) if batch_first else (T, B, I)
    if kind.startswith("lstm"):
        P = 2 if kind == "lstm-proj" else H
        tensors = _inputs(
            rng,
            [x_shape, (B, P), (B, H), (4 * H, I), (4 * H, P), (4 * H,), (4 * H,)]
            + ([(P, H)] if kind == "lstm-proj" else []),
        )
        if kind == "lstm":
            tensors.append(None)
        fused = sk.LSTMSequence.apply(*tensors, reverse=reverse, batch_first=batch_first)
        unfused = sk._lstm_forward_ops(*tensors, reverse, batch_first)
    elif kind == "gru":
        tensors = _inputs(rng, [x_shape, (B, H), (3 * H, I), (3 * H, H), (3 * H,), (3 * H,)])
        fused = sk.GRUSequence.apply(*tensors, reverse=reverse, batch_first=batch_first)
        unfused = sk._gru_forward_ops(*tensors, reverse, batch_first)
    else:
        tensors = _inputs(rng, [x_shape, (B, H), (H, I), (H, H), (H,), (H,)])
        fused = sk.RNNSequence.apply(
            *tensors, nonlinearity=kind, reverse=reverse, batch_first=batch_first
        )
        unfused = sk._rnn_forward_ops(*tensors, kind, reverse, batch_first)
    # the whole sequence is one node
    assert all(type(o.grad_fn).__name__.endswith("Sequence") for o in fused)
    diff = [t for t in tensors if t is not None]
    seeds = [cr.tensor(rng.standard_normal(tuple(o.shape))) for o in fused]
    g_fused = cr.autograd.grad(list(fused), diff, seeds)
    g_unfused = cr.autograd.grad(list(unfused), diff, seeds)
    for a, b in zip(fused, unfused):
        _close(a, b, 1e-12)
    for i, (a, b) in enumerate(zip(g_fused, g_unfused)):
        _close(a, b, 1e-12, f"gradient {i}")


def test_double_backward_through_lstm_module_matches_torch():
    ours, theirs = _pair(torch.nn.LSTM, nn.LSTM, 2, 3, bidirectional=True, batch_first=True)
    x = np.random.default_rng(0).standard_normal((2, 4, 2))
    results = []
    for fw, m in ((cr, ours), (torch, theirs)):
        xt = fw.tensor(x, requires_grad=True)
        out, _ = m(xt)
        (gx,) = fw.autograd.grad(out.tanh().sum(), xt, create_graph=True)
        w = m.weight_hh_l0_reverse
        (gw,) = fw.autograd.grad((gx * gx).sum(), w)
        results.append((gx, gw))
    _close(results[0][0], results[1][0], 1e-10)
    _close(results[0][1], results[1][1], 1e-10)


def test_thousand_step_sequence_trains_in_one_node():
    lstm = nn.LSTM(4, 8, batch_first=True)
    x = cr.randn(2, 1000, 4)
    out, (h, c) = lstm(x)
    loss = out.pow(2).mean() + h.sum()
    # the graph is a handful of nodes, whatever the length
    seen, stack = set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(n for n, _ in node.next_functions)
    assert len(seen) < 30
    node = out.grad_fn
    assert node.gates is not None
    loss.backward()
    grad = np.asarray(lstm.weight_hh_l0.grad)
    assert grad.shape == (32, 8) and np.isfinite(grad).all() and np.abs(grad).sum() > 0
    # the kernel's own arrays are released with the saved tensors, right after the backward
    assert node.gates is None and node.cells is None


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_reused_scratch_memory_never_leaks_into_results(cls):
    # the kernels recycle their scratch arrays between calls: results handed out by one call
    # must survive the next calls unchanged
    layer = cls(3, 8, batch_first=True).double()
    x = cr.randn(4, 20, 3, dtype=cr.float64, requires_grad=True)
    out, _ = layer(x)
    out.pow(2).sum().backward()
    kept_out, kept_grad = _np(out).copy(), np.asarray(x.grad).copy()
    first_out, first_grad = out, x.grad
    for _ in range(3):
        x.grad = None
        again, _ = layer(x)
        again.pow(2).sum().backward()
        _close(again, kept_out, 0)
        _close(x.grad, kept_grad, 0)
    _close(first_out, kept_out, 0)
    _close(first_grad, kept_grad, 0)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
@pytest.mark.parametrize("batch_first", [False, True])
def test_second_backward_with_retain_graph_gives_the_same_gradients(cls, batch_first):
    # the LSTM turns its saved activations into BPTT factors in place on the first backward;
    # a second backward through the kept graph must find the same values
    layer = cls(3, 6, batch_first=batch_first).double()
    x = cr.randn(4, 5, 3, dtype=cr.float64, requires_grad=True)
    out, _ = layer(x)
    loss = out.pow(2).sum()
    loss.backward(retain_graph=True)
    first = [np.asarray(p.grad).copy() for p in layer.parameters()] + [np.asarray(x.grad).copy()]
    loss.backward()
    second = [np.asarray(p.grad) for p in layer.parameters()] + [np.asarray(x.grad)]
    for a, b in zip(first, second):
        _close(b, 2 * a, 1e-12)


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU, nn.RNN])
def test_training_steps_reuse_scratch_memory(cls):
    # every array a kernel takes from the scratch pool goes back after the backward: after the
    # first step, the pool holds the same arrays and traced memory stays flat
    import tracemalloc

    layer = cls(8, 64, batch_first=True, num_layers=2)  # arrays large enough to be pooled
    opt = cr.optim.Adam(layer.parameters())
    x = cr.randn(16, 40, 8)

    def step():
        opt.zero_grad()
        out, _ = layer(x)
        out.pow(2).mean().backward()
        opt.step()

    step()
    pooled = sk._POOL.bytes
    assert pooled > 0
    tracemalloc.start()
    try:
        step()
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(10):
            step()
        growth = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert sk._POOL.bytes == pooled
    assert growth < 64 * 1024


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("steps", [63, 64])
def test_lstm_at_power_of_two_strides_matches_torch(batch_first, steps):
    # T + 1 = 64 columns would put rows of the hidden-major arrays 4 KiB multiples apart; the
    # kernel pads them (_columns). Results must not depend on that.
    ours, theirs = _pair(torch.nn.LSTM, nn.LSTM, 3, 4, batch_first=batch_first)
    shape = (32, steps, 3) if batch_first else (steps, 32, 3)
    x = np.random.default_rng(0).standard_normal(shape)
    _compare_run(ours, theirs, x, None)
    assert sk._columns(64, 32, 4) == 65 and sk._columns(65, 32, 4) == 65


# ---------------------------------------------------------------------------------------------
# training: a character model learns a generated text
# ---------------------------------------------------------------------------------------------


def _text(n: int, rng) -> str:
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"]
    return " ".join(words[i] for i in rng.integers(0, len(words), n))


class CharModel(nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, 16)
        self.lstm = nn.LSTM(16, 64, batch_first=True)
        self.head = nn.Linear(64, vocab)

    def forward(self, tokens):
        out, _ = self.lstm(self.embed(tokens))
        return self.head(out)


def test_character_model_learns_generated_text():
    cr.manual_seed(0)
    rng = np.random.default_rng(0)
    text = _text(3000, rng)
    chars = sorted(set(text))
    ids = np.array([chars.index(ch) for ch in text])
    model = CharModel(len(chars))
    opt = cr.optim.Adam(model.parameters(), lr=0.01)
    seq, batch = 32, 16
    start = time.perf_counter()
    losses = []
    for _ in range(100):
        starts = rng.integers(0, len(ids) - seq - 1, batch)
        window = np.stack([ids[s : s + seq + 1] for s in starts])
        x, y = cr.tensor(window[:, :-1]), cr.tensor(window[:, 1:])
        logits = model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # Uniform guessing costs log(13) = 2.56 nats. Inside a word the next letter is known; only
    # the choice of the next word (log 9 = 2.2 nats per 3.7 characters) is left: 0.6 nats.
    assert losses[0] > 2.3
    assert np.mean(losses[-10:]) < 0.8, losses[-10:]
    assert time.perf_counter() - start < 30
