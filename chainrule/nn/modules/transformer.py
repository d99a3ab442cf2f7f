"""Attention and Transformer layers: ``MultiheadAttention``, ``Transformer{Encoder,Decoder}
[Layer]`` and ``Transformer``.

Parameter names, shapes, initialisation and mask conventions are PyTorch's (``in_proj_weight``,
``out_proj.weight``, ``self_attn.in_proj_bias``, ``linear1.weight``, ``norm1.weight`` ...), so a
PyTorch ``state_dict`` loads and gives the same outputs. The attention itself is the fused
kernel of :mod:`chainrule.ops.sequence_kernels` (one node for scores, mask, softmax, dropout
and the weighted sum).

Mask conventions (PyTorch's): for ``MultiheadAttention`` and the Transformer layers a boolean
``attn_mask`` / ``key_padding_mask`` is True where attention is NOT allowed, and a float mask
is added to the scores. (``scaled_dot_product_attention`` is the other way round: True means
"may attend".)
"""

from __future__ import annotations

import copy
from collections.abc import Callable

from chainrule import backend
from chainrule.nn import functional as F
from chainrule.nn import init
from chainrule.nn.modules.container import ModuleList
from chainrule.nn.modules.dropout import Dropout
from chainrule.nn.modules.linear import Linear
from chainrule.nn.modules.module import Module
from chainrule.nn.modules.normalization import LayerNorm
from chainrule.nn.parameter import Parameter
from chainrule.ops import creation
from chainrule.ops import elementwise as ew
from chainrule.ops import movement as mv
from chainrule.ops import reduce as rd
from chainrule.ops import sequence_kernels as sk
from chainrule.tensor import Tensor

__all__ = [
    "MultiheadAttention",
    "TransformerEncoderLayer",
    "TransformerEncoder",
    "TransformerDecoderLayer",
    "TransformerDecoder",
    "Transformer",
]


class NonDynamicallyQuantizableLinear(Linear):
    """``MultiheadAttention.out_proj``: a plain :class:`Linear` (PyTorch's class name, kept so
    that the ``repr`` matches)."""


def _canonical_mask(mask: Tensor | None, name: str, dtype) -> Tensor | None:
    """A float mask to add to the scores: a boolean one becomes ``-inf`` where True."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor):
        mask = Tensor(mask)
    kind = mask._data.dtype
    if kind.kind == "b":
        xp = backend.array_module(mask._data)
        return Tensor._make(xp.where(mask._data, -xp.inf, 0.0).astype(dtype.np))
    if kind not in backend.FLOAT_NP_DTYPES:
        raise AssertionError(f"only bool and floating types of {name} are supported")
    return ew.cast(mask, dtype)


def _pad_last(mask: Tensor | None) -> Tensor | None:
    """One more (unmasked) key column, for ``add_bias_kv`` / ``add_zero_attn``."""
    if mask is None:
        return None
    zeros = creation.zeros(*mask.shape[:-1], 1, dtype=mask.dtype, device=mask.device)
    return mv.cat([mask, zeros], -1)


class MultiheadAttention(Module):
    """Multi-head attention: ``softmax(Q K^T / sqrt(d) + mask) V`` per head, then ``out_proj``.

    ``MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
    add_zero_attn=False, kdim=None, vdim=None, batch_first=False)``.
    ``forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False)`` returns ``(output, weights)``; ``weights``
    is None unless ``need_weights`` (then averaged over heads unless
    ``average_attn_weights=False``). Shapes: ``(L, N, E)`` (``(N, L, E)`` with
    ``batch_first``) or unbatched ``(L, E)``. ``is_causal`` is a hint that ``attn_mask`` is
    the causal mask (it must still be given, as in PyTorch).

    >>> import chainrule as cr
    >>> mha = cr.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = cr.randn(3, 5, 8)
    >>> out, w = mha(x, x, x)
    >>> tuple(out.shape), tuple(w.shape)
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device=None,
        dtype=None,
    ) -> None:
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be greater than 0, got embed_dim={embed_dim} and "
                f"num_heads={num_heads} instead"
            )
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        if self.head_dim * num_heads != embed_dim:
            raise AssertionError("embed_dim must be divisible by num_heads")
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(creation.empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(creation.empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(creation.empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(creation.empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(creation.empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias, **kw)
        if add_bias_kv:
            self.bias_k = Parameter(creation.empty(1, 1, embed_dim, **kw))
            self.bias_v = Parameter(creation.empty(1, 1, embed_dim, **kw))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """Xavier-uniform projections, zero projection biases (PyTorch's scheme)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
        if self.bias_v is not None:
            init.xavier_normal_(self.bias_v)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple:
        batched = self._check_shapes(query, key, value, key_padding_mask, attn_mask)
        self_attention = query is key and key is value
        q, k, v = query, key, value
        # Inputs stay in their layout ((N, len, E) when batch-first, else (len, N, E)): the
        # projections are (N * len, E) matrix products either way, and the heads are split
        # off with one permutation. An unbatched input is a batch-first batch of one.
        batch_first = self.batch_first or not batched
        if not batched:
            q, k, v = (mv.unsqueeze(t, 0) for t in (q, k, v))
            if key_padding_mask is not None:
                key_padding_mask = mv.unsqueeze(key_padding_mask, 0)
        key_padding_mask = _canonical_mask(key_padding_mask, "key_padding_mask", q.dtype)
        if is_causal and attn_mask is None:
            raise RuntimeError(
                "Need attn_mask if specifying the is_causal hint. You may use the Transformer "
                "module method `generate_square_subsequent_mask` to create this mask."
            )
        # with neither padding nor weights requested, the causal hint replaces the mask
        causal = bool(is_causal) and key_padding_mask is None and not need_weights
        attn_mask = None if causal else _canonical_mask(attn_mask, "attn_mask", q.dtype)
        lead_q = tuple(q.shape[:2])
        n = lead_q[0] if batch_first else lead_q[1]
        n_q, n_k = q.shape[1 if batch_first else 0], k.shape[1 if batch_first else 0]
        heads, head_dim = self.num_heads, self.head_dim
        qh, kh, vh = self._project(q, k, v, self_attention, batch_first)  # (N, H, len, hd)
        if self.bias_k is not None:  # one learned key/value appended to every sequence
            kh = mv.cat([kh, self._bias_heads(self.bias_k, n)], 2)
            vh = mv.cat([vh, self._bias_heads(self.bias_v, n)], 2)
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
            n_k += 1
        if self.add_zero_attn:  # one all-zero key/value appended
            zeros = creation.zeros(n, heads, 1, head_dim, dtype=q.dtype, device=q.device)
            kh, vh = mv.cat([kh, zeros], 2), mv.cat([vh, zeros], 2)
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
            n_k += 1
        mask = None
        if attn_mask is not None:  # (L, S) or (N * H, L, S)
            mask = attn_mask
            if attn_mask.dim() == 3:
                mask = mv.reshape(attn_mask, (n, heads, n_q, n_k))
        if key_padding_mask is not None:  # (N, S): the same for every head and query
            pad = mv.reshape(key_padding_mask, (n, 1, 1, n_k))
            mask = pad if mask is None else mask + pad
        dropout_p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            out, weights = sk.attention_with_weights(qh, kh, vh, mask, dropout_p)
            if average_attn_weights:
                weights = rd.mean(weights, 1)
            if not batched:
                weights = mv.squeeze(weights, 0)
        else:
            out = sk.scaled_dot_product_attention(qh, kh, vh, mask, dropout_p, causal)
        # heads back side by side in the input's layout, then the output projection (called
        # as a function, like PyTorch, so out_proj's own hooks do not run)
        out = mv.permute(out, *((0, 2, 1, 3) if batch_first else (2, 0, 1, 3)))
        out = F.linear(
            mv.reshape(out, (-1, self.embed_dim)), self.out_proj.weight, self.out_proj.bias
        )
        out = mv.reshape(out, (*lead_q, self.embed_dim))
        return (out if batched else mv.squeeze(out, 0)), weights

    def _split_heads(self, x: Tensor, lead: tuple, batch_first: bool) -> Tensor:
        """(N * len, E) rows in the input's layout -> (N, H, len, head_dim)."""
        x = mv.reshape(x, (*lead, self.num_heads, self.head_dim))
        return mv.permute(x, *((0, 2, 1, 3) if batch_first else (1, 2, 0, 3)))

    def _bias_heads(self, bias: Tensor, n: int) -> Tensor:
        """A (1, 1, E) bias as one extra key/value per sequence: (N, H, 1, head_dim)."""
        heads, head_dim = self.num_heads, self.head_dim
        return mv.expand(mv.reshape(bias, (1, heads, 1, head_dim)), n, heads, 1, head_dim)

    def _project(self, q: Tensor, k: Tensor, v: Tensor, self_attention: bool, batch_first):
        """The input projections, split into heads: one matrix product per projection (one
        for all three in self-attention)."""
        b = self.in_proj_bias

        def rows(x):
            return mv.reshape(x, (-1, x.shape[-1]))

        if self._qkv_same_embed_dim and self_attention:
            lead = tuple(q.shape[:2])
            qkv = F.linear(rows(q), self.in_proj_weight, b)
            qkv = mv.reshape(qkv, (*lead, 3, self.num_heads, self.head_dim))
            return mv.unbind(
                mv.permute(qkv, *((2, 0, 3, 1, 4) if batch_first else (2, 1, 3, 0, 4))), 0
            )
        bq, bk, bv = (None, None, None) if b is None else mv.chunk(b, 3)
        if self._qkv_same_embed_dim:
            wq, wk, wv = mv.chunk(self.in_proj_weight, 3)
        else:
            wq, wk, wv = self.q_proj_weight, self.k_proj_weight, self.v_proj_weight
        return tuple(
            self._split_heads(F.linear(rows(x), w, bias), tuple(x.shape[:2]), batch_first)
            for x, w, bias in ((q, wq, bq), (k, wk, bk), (v, wv, bv))
        )

    def _check_shapes(self, query, key, value, key_padding_mask, attn_mask) -> bool:
        nd = query.dim()
        if nd not in (2, 3):
            raise AssertionError(
                f"query should be unbatched 2D or batched 3D tensor but received {nd}-D "
                "query tensor"
            )
        batched = nd == 3
        kind = "batched (3-D)" if batched else "unbatched (2-D)"
        if key.dim() != nd or value.dim() != nd:
            raise AssertionError(
                f"For {kind} `query`, expected `key` and `value` to be {nd}-D but found "
                f"{key.dim()}-D and {value.dim()}-D tensors respectively"
            )
        if key_padding_mask is not None and key_padding_mask.dim() != nd - 1:
            raise AssertionError(
                f"For {kind} `query`, expected `key_padding_mask` to be `None` or {nd - 1}-D "
                f"but found {key_padding_mask.dim()}-D tensor instead"
            )
        if query.shape[-1] != self.embed_dim:
            raise AssertionError(
                f"was expecting embedding dimension of {self.embed_dim}, but got {query.shape[-1]}"
            )
        if key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise AssertionError(
                f"key and value feature sizes must be kdim={self.kdim} and vdim={self.vdim}, got "
                f"{key.shape[-1]} and {value.shape[-1]}"
            )
        if attn_mask is not None:
            if not batched:
                n, n_q, n_k = 1, query.shape[0], key.shape[0]
            elif self.batch_first:
                n, n_q, n_k = query.shape[0], query.shape[1], key.shape[1]
            else:
                n, n_q, n_k = query.shape[1], query.shape[0], key.shape[0]
            allowed = ((n_q, n_k), (n * self.num_heads, n_q, n_k))
            if tuple(attn_mask.shape) not in allowed:
                raise RuntimeError(
                    f"The shape of the attn_mask is {tuple(attn_mask.shape)}, but should be "
                    f"{allowed[0]} (2-D) or {allowed[1]} (3-D)."
                )
        return batched


def _activation(activation) -> Callable:
    if isinstance(activation, str):
        if activation == "relu":
            return F.relu
        if activation == "gelu":
            return F.gelu
        raise RuntimeError(f"activation should be relu/gelu, not {activation}")
    return activation


def _get_clones(module: Module, n: int) -> ModuleList:
    """``n`` independent copies of ``module`` (same initial weights, as PyTorch)."""
    return ModuleList([copy.deepcopy(module) for _ in range(n)])


def _seq_len(x: Tensor, batch_first: bool) -> int:
    if x.dim() == 2:  # unbatched
        return x.shape[0]
    return x.shape[1 if batch_first else 0]


def _square_subsequent_mask(size: int, device=None, dtype=None) -> Tensor:
    """Float ``-inf`` above the diagonal, 0 elsewhere (boolean: True above the diagonal)."""
    xp = backend.namespace_for(None if device is None else str(device))
    dt = backend.as_dtype(dtype) if dtype is not None else backend.get_default_dtype()
    upper = xp.triu(xp.ones((size, size), dtype=bool), 1)
    if dt.np.kind == "b":
        return Tensor._make(upper)
    return Tensor._make(xp.where(upper, -xp.inf, 0.0).astype(dt.np))


def _detect_is_causal_mask(mask: Tensor | None, is_causal: bool | None, size: int) -> bool:
    """``is_causal`` when given; otherwise whether ``mask`` is exactly the causal mask."""
    if is_causal is None and mask is not None:
        causal = _square_subsequent_mask(size, mask.device, mask.dtype)
        if tuple(mask.shape) != tuple(causal.shape):
            return False
        xp = backend.array_module(mask._data)
        return bool(xp.array_equal(mask._data, causal._data))
    return bool(is_causal)


class _TransformerLayer(Module):
    """The constructor and self-attention block that ``TransformerEncoderLayer`` and
    ``TransformerDecoderLayer`` share. The decoder layer (``_cross_attention = True``) also gets
    ``multihead_attn`` (attention over the encoder's output) and a third norm and dropout.
    Submodules are created in PyTorch's order, so ``state_dict`` keys, the order of
    ``parameters()`` and the random initial values all match.
    """

    _cross_attention = False

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable = F.relu,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
        )
        if self._cross_attention:
            self.multihead_attn = MultiheadAttention(
                d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, **kw
            )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, **kw)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, **kw)
        self.norm_first = norm_first
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        if self._cross_attention:
            self.norm3 = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        if self._cross_attention:
            self.dropout3 = Dropout(dropout)
        self.activation = _activation(activation)

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal) -> Tensor:
        x = self.self_attn(
            x,
            x,
            x,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            need_weights=False,
            is_causal=is_causal,
        )[0]
        return self.dropout1(x)


class TransformerEncoderLayer(_TransformerLayer):
    """Self-attention then a feed-forward block, each with a residual connection and LayerNorm.

    ``TransformerEncoderLayer(d_model, nhead, dim_feedforward=2048, dropout=0.1,
    activation=relu, layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True)``.
    ``norm_first=True`` normalises before each block (pre-LN, as in GPT); ``activation`` is
    ``'relu'``, ``'gelu'`` or a callable.

    >>> import chainrule as cr
    >>> layer = cr.nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
    >>> layer(cr.randn(3, 5, 8)).shape
    chainrule.Size([3, 5, 8])
    """

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
            x = self.norm2(x + self._ff_block(x))
        return x

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoderLayer(_TransformerLayer):
    """Self-attention, attention over the encoder's ``memory``, then a feed-forward block;
    each with a residual connection and LayerNorm (before the block with ``norm_first``).

    ``TransformerDecoderLayer(d_model, nhead, dim_feedforward=2048, dropout=0.1,
    activation=relu, layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True)``.

    >>> import chainrule as cr
    >>> layer = cr.nn.TransformerDecoderLayer(8, 2, 16, batch_first=True)
    >>> layer(cr.randn(3, 4, 8), cr.randn(3, 6, 8)).shape
    chainrule.Size([3, 4, 8])
    """

    _cross_attention = True

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(
                self.norm2(x), memory, memory_mask, memory_key_padding_mask, memory_is_causal
            )
            x = x + self._ff_block(self.norm3(x))
        else:
            x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
            x = self.norm2(
                x
                + self._mha_block(x, memory, memory_mask, memory_key_padding_mask, memory_is_causal)
            )
            x = self.norm3(x + self._ff_block(x))
        return x

    def _mha_block(self, x, mem, attn_mask, key_padding_mask, is_causal) -> Tensor:
        x = self.multihead_attn(
            x,
            mem,
            mem,
            attn_mask=attn_mask,
            key_padding_mask=key_padding_mask,
            is_causal=is_causal,
            need_weights=False,
        )[0]
        return self.dropout2(x)

    def _ff_block(self, x: Tensor) -> Tensor:
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer`` (then ``norm`` when given).

    >>> import chainrule as cr
    >>> layer = cr.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    >>> enc = cr.nn.TransformerEncoder(layer, num_layers=2)
    >>> enc(cr.randn(3, 5, 8)).shape
    chainrule.Size([3, 5, 8])
    """

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        self.layers = _get_clones(encoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm
        self.enable_nested_tensor = enable_nested_tensor  # accepted for compatibility
        self.mask_check = mask_check

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        first = self.layers[0] if len(self.layers) else None
        batch_first = first.self_attn.batch_first if first is not None else False
        is_causal = _detect_is_causal_mask(mask, is_causal, _seq_len(src, batch_first))
        output = src
        for layer in self.layers:
            output = layer(
                output,
                src_mask=mask,
                is_causal=is_causal,
                src_key_padding_mask=src_key_padding_mask,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


class TransformerDecoder(Module):
    """A stack of ``num_layers`` copies of ``decoder_layer`` (then ``norm`` when given).

    >>> import chainrule as cr
    >>> layer = cr.nn.TransformerDecoderLayer(8, 2, 16)
    >>> dec = cr.nn.TransformerDecoder(layer, num_layers=2)
    >>> dec(cr.randn(4, 3, 8), cr.randn(6, 3, 8)).shape
    chainrule.Size([4, 3, 8])
    """

    def __init__(
        self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None
    ) -> None:
        super().__init__()
        self.layers = _get_clones(decoder_layer, num_layers)
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        first = self.layers[0] if len(self.layers) else None
        batch_first = first.self_attn.batch_first if first is not None else False
        tgt_is_causal = _detect_is_causal_mask(tgt_mask, tgt_is_causal, _seq_len(tgt, batch_first))
        output = tgt
        for layer in self.layers:
            output = layer(
                output,
                memory,
                tgt_mask=tgt_mask,
                memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=tgt_is_causal,
                memory_is_causal=memory_is_causal,
            )
        if self.norm is not None:
            output = self.norm(output)
        return output


class Transformer(Module):
    """The encoder-decoder Transformer of "Attention Is All You Need".

    ``Transformer(d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
    dim_feedforward=2048, dropout=0.1, activation=relu, custom_encoder=None,
    custom_decoder=None, layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True)``;
    ``forward(src, tgt, ...)`` returns the decoder output. Every weight matrix is initialised
    with ``xavier_uniform_``.

    >>> import chainrule as cr
    >>> model = cr.nn.Transformer(8, 2, 1, 1, 16, batch_first=True)
    >>> model(cr.randn(2, 5, 8), cr.randn(2, 3, 8)).shape
    chainrule.Size([2, 3, 8])
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: str | Callable = F.relu,
        custom_encoder: Module | None = None,
        custom_decoder: Module | None = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device=None,
        dtype=None,
    ) -> None:
        super().__init__()
        kw = {"device": device, "dtype": dtype}
        common = dict(
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation=activation,
            layer_norm_eps=layer_norm_eps,
            batch_first=batch_first,
            norm_first=norm_first,
            bias=bias,
            **kw,
        )
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            layer = TransformerEncoderLayer(d_model, nhead, **common)
            norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
            self.encoder = TransformerEncoder(layer, num_encoder_layers, norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            layer = TransformerDecoderLayer(d_model, nhead, **common)
            norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, **kw)
            self.decoder = TransformerDecoder(layer, num_decoder_layers, norm)
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first
        for p in self.parameters():
            if p.dim() > 1:
                init.xavier_uniform_(p)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        batch_dim = 0 if self.batch_first else 1
        if src.dim() != tgt.dim() or (
            src.dim() == 3 and src.shape[batch_dim] != tgt.shape[batch_dim]
        ):
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt,
            memory,
            tgt_mask=tgt_mask,
            memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask,
            tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )

    @staticmethod
    def generate_square_subsequent_mask(size: int, device=None, dtype=None) -> Tensor:
        """The causal mask: ``-inf`` above the diagonal, 0 elsewhere (float32 by default)."""
        return _square_subsequent_mask(size, device, dtype)
