"""Attention and Transformer layers against PyTorch with copied weights, and a tiny GPT."""

from __future__ import annotations

import time

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

torch = pytest.importorskip("torch")

TOL = 1e-10


def _np(t) -> np.ndarray:
    return np.asarray(t.detach()) if isinstance(t, cr.Tensor) else t.detach().numpy()


def _close(a, b, tol=TOL, what=""):
    np.testing.assert_allclose(_np(a), _np(b), rtol=tol, atol=tol, err_msg=what)


def _pair(torch_cls, cr_cls, *args, **kwargs):
    theirs = torch_cls(*args, **kwargs).double()
    ours = cr_cls(*args, **kwargs).double()
    ours.load_state_dict({k: cr.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    return ours, theirs


def _both(value, requires_grad=False):
    """The same array as a torch tensor and a chainrule tensor (None stays None)."""
    if value is None:
        return None, None
    return (
        torch.tensor(value, requires_grad=requires_grad and value.dtype.kind == "f"),
        cr.tensor(value, requires_grad=requires_grad and value.dtype.kind == "f"),
    )


def _check_grads(ours, theirs, c_out, t_out, c_in, t_in):
    rng = np.random.default_rng(5)
    pairs = [(c, t) for c, t in zip(c_out, t_out) if t is not None and t.requires_grad]
    seeds = [rng.standard_normal(tuple(t.shape)) for _, t in pairs]
    sum((t * torch.tensor(s)).sum() for (_, t), s in zip(pairs, seeds)).backward()
    sum((c * cr.tensor(s)).sum() for (c, _), s in zip(pairs, seeds)).backward()
    for i, (c, t) in enumerate(zip(c_in, t_in)):
        if t is not None and t.requires_grad:
            _close(c.grad, t.grad, TOL, f"gradient of input {i}")
    t_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        _close(p.grad, t_params[name].grad, TOL, f"gradient of {name}")


# ---------------------------------------------------------------------------------------------
# MultiheadAttention
# ---------------------------------------------------------------------------------------------

MHA_CASES = {
    "self": dict(),
    "self-batch_first": dict(batch_first=True),
    "cross-kdim-vdim": dict(kdim=3, vdim=5, cross=True),
    "cross-same-dim": dict(cross=True, batch_first=True),
    "key-padding-bool": dict(kpm="bool"),
    "key-padding-float": dict(kpm="float", batch_first=True),
    "attn-mask-bool-2d": dict(mask="bool2"),
    "attn-mask-float-3d": dict(mask="float3", batch_first=True),
    "both-masks": dict(mask="bool2", kpm="bool"),
    "causal-hint": dict(mask="causal", is_causal=True, need_weights=False),
    "causal-hint-with-weights": dict(mask="causal", is_causal=True),
    "per-head-weights": dict(average_attn_weights=False),
    "no-weights": dict(need_weights=False, kpm="bool"),
    "no-bias": dict(bias=False),
    "bias-kv-zero-attn": dict(add_bias_kv=True, add_zero_attn=True, kpm="bool", mask="bool2"),
    "unbatched": dict(unbatched=True, mask="float2"),
    "unbatched-kpm": dict(unbatched=True, kpm="bool", need_weights=False),
}


@pytest.mark.parametrize("case", list(MHA_CASES), ids=list(MHA_CASES))
def test_multihead_attention_matches_torch(case):
    opts = dict(MHA_CASES[case])
    cross = opts.pop("cross", False)
    unbatched = opts.pop("unbatched", False)
    kpm_kind, mask_kind = opts.pop("kpm", None), opts.pop("mask", None)
    call = {
        k: opts.pop(k) for k in ("need_weights", "average_attn_weights", "is_causal") if k in opts
    }
    E, H, N, L = 6, 2, 2, 4
    S = 5 if cross else L
    ours, theirs = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, E, H, **opts)
    rng = np.random.default_rng(0)
    bf = opts.get("batch_first", False)

    def shape(length, dim):
        if unbatched:
            return (length, dim)
        return (N, length, dim) if bf else (length, N, dim)

    q = rng.standard_normal(shape(L, E))
    k = rng.standard_normal(shape(S, opts.get("kdim", E)))
    v = rng.standard_normal(shape(S, opts.get("vdim", E)))
    kpm = None
    if kpm_kind is not None:
        kpm = rng.random((S,) if unbatched else (N, S)) < 0.3
        kpm[..., 0] = False  # at least one visible key per sequence
        if kpm_kind == "float":
            kpm = np.where(kpm, -1e9, rng.standard_normal(kpm.shape))
    mask = None
    if mask_kind == "bool2":
        mask = rng.random((L, S)) < 0.3
        mask[:, 1] = False
    elif mask_kind == "float3":
        mask = rng.standard_normal((N * H, L, S))
    elif mask_kind == "float2":
        mask = rng.standard_normal((L, S))
    elif mask_kind == "causal":
        mask = np.triu(np.full((L, S), -np.inf), 1)
    tq, cq = _both(q, True)
    if cross:
        (tk, ck), (tv, cv) = _both(k, True), _both(v, True)
    else:
        tk, ck, tv, cv = tq, cq, tq, cq
    t_kpm, c_kpm = _both(kpm)
    t_mask, c_mask = _both(mask)
    t_out = theirs(tq, tk, tv, key_padding_mask=t_kpm, attn_mask=t_mask, **call)
    c_out = ours(cq, ck, cv, key_padding_mask=c_kpm, attn_mask=c_mask, **call)
    _close(c_out[0], t_out[0], TOL, "output")
    if t_out[1] is None:
        assert c_out[1] is None
    else:
        _close(c_out[1], t_out[1], TOL, "weights")
    _check_grads(ours, theirs, c_out, t_out, [cq, ck, cv], [tq, tk, tv])


def test_multihead_attention_parameters_and_repr_follow_pytorch():
    for kw in ({}, {"kdim": 3, "vdim": 5}, {"bias": False, "add_bias_kv": True}):
        ours, theirs = nn.MultiheadAttention(8, 2, **kw), torch.nn.MultiheadAttention(8, 2, **kw)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        for (n, p), (_, t) in zip(ours.named_parameters(), theirs.named_parameters()):
            assert tuple(p.shape) == tuple(t.shape), n
        assert repr(ours) == repr(theirs)
    mha = nn.MultiheadAttention(64, 4)
    bound = np.sqrt(6 / (64 + 3 * 64))  # xavier_uniform_ on the (3E, E) in_proj_weight
    w = np.asarray(mha.in_proj_weight.detach())
    assert np.abs(w).max() <= bound and w.std() > 0.5 * bound / np.sqrt(3)
    assert not np.asarray(mha.in_proj_bias.detach()).any()
    assert not np.asarray(mha.out_proj.bias.detach()).any()


def test_multihead_attention_errors():
    with pytest.raises(AssertionError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(6, 4)
    mha = nn.MultiheadAttention(4, 2)
    x = cr.randn(3, 2, 4)
    with pytest.raises(RuntimeError, match="Need attn_mask if specifying the is_causal hint"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(RuntimeError, match="The shape of the attn_mask is \\(2, 2\\)"):
        mha(x, x, x, attn_mask=cr.zeros(2, 2))
    with pytest.raises(AssertionError, match="expecting embedding dimension of 4"):
        mha(cr.randn(3, 2, 5), x, x)


def test_multihead_attention_double_backward_matches_torch():
    ours, theirs = _pair(torch.nn.MultiheadAttention, nn.MultiheadAttention, 4, 2)
    x = np.random.default_rng(0).standard_normal((3, 2, 4))
    results = []
    for fw, m in ((cr, ours), (torch, theirs)):
        xt = fw.tensor(x, requires_grad=True)
        # (with need_weights, since PyTorch's fused CPU attention has no double backward)
        out, w = m(xt, xt, xt)
        (gx,) = fw.autograd.grad((out * out).sum() + (w * w).sum(), xt, create_graph=True)
        (gw,) = fw.autograd.grad((gx * gx).sum(), m.in_proj_weight)
        results.append((gx, gw))
    _close(results[0][0], results[1][0])
    _close(results[0][1], results[1][1])


def test_sdpa_dropout():
    cr.manual_seed(0)
    q = cr.randn(2, 2, 6, 4)
    plain = F.scaled_dot_product_attention(q, q, q)
    dropped = F.scaled_dot_product_attention(q, q, q, dropout_p=0.5)
    assert not np.allclose(_np(plain), _np(dropped))
    assert not _np(F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)).any()
    # the expected value of the dropped weights is the weights themselves
    runs = [_np(F.scaled_dot_product_attention(q, q, q, dropout_p=0.3)) for _ in range(400)]
    np.testing.assert_allclose(np.mean(runs, 0), _np(plain), atol=0.2)


def test_sdpa_fully_masked_rows_give_zeros_like_torch():
    rng = np.random.default_rng(0)
    q = rng.standard_normal((1, 3, 2))
    mask = np.ones((3, 3), bool)
    mask[1] = False
    tq, cq = _both(q, True)
    t_out = torch.nn.functional.scaled_dot_product_attention(
        tq, tq, tq, attn_mask=torch.tensor(mask)
    )
    c_out = F.scaled_dot_product_attention(cq, cq, cq, attn_mask=cr.tensor(mask))
    _close(c_out, t_out)
    t_out.sum().backward()
    c_out.sum().backward()
    _close(cq.grad, tq.grad)


# ---------------------------------------------------------------------------------------------
# Transformer layers
# ---------------------------------------------------------------------------------------------


def _gelu_callable(x):
    return x.tanh() * x


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu", "callable"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_torch(norm_first, activation, batch_first):
    act = _gelu_callable if activation == "callable" else activation
    kw = dict(dropout=0.0, norm_first=norm_first, batch_first=batch_first, activation=act)
    ours, theirs = _pair(
        torch.nn.TransformerEncoderLayer, nn.TransformerEncoderLayer, 6, 2, 10, **kw
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 6) if batch_first else (5, 2, 6))
    mask = np.triu(np.full((5, 5), -np.inf), 1)
    kpm = np.array([[0.0] * 5, [0, 0, 0, -np.inf, -np.inf]])
    (tx, cx), (tm, cm), (tk, ck) = _both(x, True), _both(mask), _both(kpm)
    for t_kw, c_kw in [
        ({}, {}),
        ({"src_mask": tm, "is_causal": True}, {"src_mask": cm, "is_causal": True}),
        ({"src_key_padding_mask": tk}, {"src_key_padding_mask": ck}),
    ]:
        _close(ours(cx, **c_kw), theirs(tx, **t_kw))
    t_out, c_out = (
        theirs(tx, src_mask=tm, src_key_padding_mask=tk),
        ours(cx, src_mask=cm, src_key_padding_mask=ck),
    )
    _close(c_out, t_out)
    _check_grads(ours, theirs, [c_out], [t_out], [cx], [tx])


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_decoder_layer_matches_torch(norm_first, batch_first):
    kw = dict(dropout=0.0, norm_first=norm_first, batch_first=batch_first, activation="gelu")
    ours, theirs = _pair(
        torch.nn.TransformerDecoderLayer, nn.TransformerDecoderLayer, 6, 3, 8, **kw
    )
    rng = np.random.default_rng(1)
    tgt = rng.standard_normal((2, 4, 6) if batch_first else (4, 2, 6))
    mem = rng.standard_normal((2, 5, 6) if batch_first else (5, 2, 6))
    tgt_mask = np.triu(np.ones((4, 4), bool), 1)
    mem_kpm = np.array([[False] * 5, [False, False, True, True, True]])
    (tt, ct), (tm, cm) = _both(tgt, True), _both(mem, True)
    (ttm, ctm), (tkp, ckp) = _both(tgt_mask), _both(mem_kpm)
    t_out = theirs(tt, tm, tgt_mask=ttm, memory_key_padding_mask=tkp, tgt_is_causal=True)
    c_out = ours(ct, cm, tgt_mask=ctm, memory_key_padding_mask=ckp, tgt_is_causal=True)
    _close(c_out, t_out)
    _check_grads(ours, theirs, [c_out], [t_out], [ct, cm], [tt, tm])


def test_stacks_and_full_transformer_match_torch():
    kw = dict(dropout=0.0, batch_first=True, norm_first=True)
    enc_layer = nn.TransformerEncoderLayer(6, 2, 8, **kw)
    ours = nn.TransformerEncoder(enc_layer, 2, norm=nn.LayerNorm(6)).double()
    theirs = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(6, 2, 8, **kw),
        2,
        norm=torch.nn.LayerNorm(6),
        enable_nested_tensor=False,
    ).double()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    ours.load_state_dict({k: cr.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    # the clones are independent copies
    assert ours.layers[0].linear1.weight is not ours.layers[1].linear1.weight
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 5, 6))
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    c_mask = nn.Transformer.generate_square_subsequent_mask(5, dtype=cr.float64)
    _close(c_mask, mask, 0)
    (tx, cx) = _both(x, True)
    t_out, c_out = theirs(tx, mask=mask), ours(cx, mask=c_mask)  # causal mask detected
    _close(c_out, t_out)
    _check_grads(ours, theirs, [c_out], [t_out], [cx], [tx])

    ours, theirs = _pair(
        torch.nn.Transformer, nn.Transformer, 6, 2, 1, 2, 8, dropout=0.0, batch_first=True
    )
    assert repr(ours) == repr(theirs)
    src, tgt = rng.standard_normal((2, 5, 6)), rng.standard_normal((2, 3, 6))
    (ts, cs), (tt, ct) = _both(src, True), _both(tgt, True)
    t_mask = torch.nn.Transformer.generate_square_subsequent_mask(3, dtype=torch.float64)
    c_mask = nn.Transformer.generate_square_subsequent_mask(3, dtype=cr.float64)
    t_out, c_out = theirs(ts, tt, tgt_mask=t_mask), ours(cs, ct, tgt_mask=c_mask)
    _close(c_out, t_out)
    _check_grads(ours, theirs, [c_out], [t_out], [cs, ct], [ts, tt])


def test_layer_reprs_and_names_follow_pytorch():
    for args, kw in [((8, 2, 16), {}), ((8, 2), {"norm_first": True, "bias": False})]:
        for ours_cls, torch_cls in [
            (nn.TransformerEncoderLayer, torch.nn.TransformerEncoderLayer),
            (nn.TransformerDecoderLayer, torch.nn.TransformerDecoderLayer),
        ]:
            ours, theirs = ours_cls(*args, **kw), torch_cls(*args, **kw)
            assert repr(ours) == repr(theirs)
            assert list(ours.state_dict()) == list(theirs.state_dict())
    with pytest.raises(RuntimeError, match="activation should be relu/gelu, not tanh"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")


def test_dropout_in_training_only():
    layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.5, batch_first=True)
    x = cr.randn(2, 5, 8)
    layer.eval()
    _close(layer(x), layer(x), 0)
    layer.train()
    assert not np.allclose(_np(layer(x)), _np(layer(x)))


# ---------------------------------------------------------------------------------------------
# a tiny GPT learns a generated text
# ---------------------------------------------------------------------------------------------


class TinyGPT(nn.Module):
    def __init__(self, vocab: int, seq: int, d_model: int = 32):
        super().__init__()
        self.tokens = nn.Embedding(vocab, d_model)
        self.positions = nn.Embedding(seq, d_model)
        block = nn.TransformerEncoderLayer(
            d_model,
            4,
            4 * d_model,
            dropout=0.0,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(block, 2)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq))

    def forward(self, idx):
        x = self.tokens(idx) + self.positions(cr.arange(idx.shape[1]))
        x = self.blocks(x, mask=self.mask, is_causal=True)
        return self.head(self.norm(x))


def test_tiny_gpt_learns_generated_text():
    cr.manual_seed(0)
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran"]
    text = " ".join(words[i] for i in rng.integers(0, len(words), 3000))
    chars = sorted(set(text))
    ids = np.array([chars.index(ch) for ch in text])
    seq, batch = 32, 16
    model = TinyGPT(len(chars), seq)
    opt = cr.optim.AdamW(model.parameters(), lr=3e-3)
    start = time.perf_counter()
    losses = []
    for _ in range(150):
        starts = rng.integers(0, len(ids) - seq - 1, batch)
        window = np.stack([ids[s : s + seq + 1] for s in starts])
        x, y = cr.tensor(window[:, :-1]), cr.tensor(window[:, 1:])
        loss = F.cross_entropy(model(x).reshape(-1, len(chars)), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # uniform guessing: log(13) = 2.56 nats; the floor is the choice of the next word, 0.6 nats
    # (see the character model in test_rnn.py)
    assert losses[0] > 2.3
    assert np.mean(losses[-10:]) < 1.0, losses[-10:]
    assert time.perf_counter() - start < 30
