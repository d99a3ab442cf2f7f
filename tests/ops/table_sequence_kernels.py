"""Op-table rows for the fused sequence kernels (see op_table.py).

The recurrent rows call the low-level ``lstm`` / ``gru`` / ``rnn_*`` functions that both
frameworks expose with the same signature. Shapes are tiny: every row is checked by finite
differences, and to second order, where the fused nodes fall back to their ops-written BPTT.
"""

from tests.ops.op_table import A, Arg, C, OpSpec


def _lstm(m, x, h, c, *ws, layers=1, bi=False, bf=False, bias=True):
    return m.lstm(x, (h, c), list(ws), bias, layers, 0.0, False, bi, bf)


def _recurrent(name):
    def fn(m, x, h, *ws, layers=1, bi=False, bf=False, bias=True):
        return getattr(m, name)(x, h, list(ws), bias, layers, 0.0, False, bi, bf)

    return fn


def _weights(gates, i, h, bias=True, proj=None):
    """Shapes of one layer-direction's parameters, in PyTorch's order."""
    ws = [A(gates * h, i), A(gates * h, proj or h)]
    if bias:
        ws += [A(gates * h), A(gates * h)]
    if proj:
        ws.append(A(proj, h))
    return ws


def _two_layers_no_bias(gates, n_states):
    """Two stacked layers without biases: T=3, batch 1; ``n_states`` initial states (h, or
    h and c)."""
    return C(
        A(3, 1, 2),
        *[A(2, 1, 2) for _ in range(n_states)],
        *_weights(gates, 2, 2, bias=False),
        *_weights(gates, 2, 2, bias=False),
        layers=2,
        bias=False,
        note="2-layer-nobias",
    )


def _bidirectional_batch_first(gates):
    """One bidirectional layer on batch-first input: batch 2, T=3."""
    return C(
        A(2, 3, 2),
        A(2, 2, 2),
        *_weights(gates, 2, 2),
        *_weights(gates, 2, 2),
        bi=True,
        bf=True,
        note="bidirectional-batch_first",
    )


# the float32 tolerances of every row here (looser than the table's defaults)
_TOL = {"rtol32": 1e-4, "atol32": 1e-5}


def _sdpa(m, q, k, v, *mask, **kw):
    return m.nn.functional.scaled_dot_product_attention(q, k, v, *mask, **kw)


# T=3 steps, batch 2, input 2, hidden 2 unless noted
ROWS = [
    OpSpec(
        "lstm",
        _lstm,
        [
            C(A(3, 2, 2), A(1, 2, 2), A(1, 2, 2), *_weights(4, 2, 2)),
            C(A(2, 3, 2), A(1, 2, 2), A(1, 2, 2), *_weights(4, 2, 2), bf=True, note="batch_first"),
            C(
                A(3, 2, 2),
                A(2, 2, 2),
                A(2, 2, 2),
                *_weights(4, 2, 2),
                *_weights(4, 2, 2),
                bi=True,
                note="bidirectional",
            ),
            _two_layers_no_bias(4, n_states=2),
            C(A(2, 2, 2), A(1, 2, 1), A(1, 2, 3), *_weights(4, 2, 3, proj=1), note="proj"),
        ],
        **_TOL,
    ),
    OpSpec(
        "gru",
        _recurrent("gru"),
        [
            C(A(3, 2, 2), A(1, 2, 2), *_weights(3, 2, 2)),
            _bidirectional_batch_first(3),
            _two_layers_no_bias(3, n_states=1),
        ],
        **_TOL,
    ),
    OpSpec(
        "rnn_tanh",
        _recurrent("rnn_tanh"),
        [
            C(A(3, 2, 2), A(1, 2, 3), *_weights(1, 2, 3)),
            _bidirectional_batch_first(1),
        ],
        **_TOL,
    ),
    OpSpec(
        "rnn_relu",
        _recurrent("rnn_relu"),
        [
            C(A(3, 2, 2), A(1, 2, 2), *_weights(1, 2, 2)),
            _two_layers_no_bias(1, n_states=1),
        ],
        **_TOL,
    ),
    OpSpec(
        "lstm_cell",
        lambda m, x, h, c, *ws: m.lstm_cell(x, (h, c), *ws),
        [C(A(2, 3), A(2, 2), A(2, 2), *_weights(4, 3, 2))],
        **_TOL,
    ),
    OpSpec(
        "gru_cell",
        lambda m, x, h, *ws: m.gru_cell(x, h, *ws),
        [
            C(A(2, 3), A(2, 2), *_weights(3, 3, 2)),
            C(A(2, 3), A(2, 2), *_weights(3, 3, 2, bias=False), note="nobias"),
        ],
        **_TOL,
    ),
    OpSpec(
        "rnn_tanh_cell",
        lambda m, x, h, *ws: m.rnn_tanh_cell(x, h, *ws),
        [C(A(2, 3), A(2, 2), *_weights(1, 3, 2))],
        **_TOL,
    ),
    OpSpec(
        "rnn_relu_cell",
        lambda m, x, h, *ws: m.rnn_relu_cell(x, h, *ws),
        [C(A(2, 3), A(2, 2), *_weights(1, 3, 2))],
        **_TOL,
    ),
    # attention: (batch, heads, L, E) queries against S keys
    OpSpec(
        "scaled_dot_product_attention",
        _sdpa,
        [
            C(A(1, 2, 3, 2), A(1, 2, 4, 2), A(1, 2, 4, 3)),
            C(A(2, 3, 2), A(2, 3, 2), A(2, 3, 2), is_causal=True, note="causal"),
            C(A(1, 2, 3, 2), A(1, 2, 4, 2), A(1, 2, 4, 2), Arg((3, 4), "bool"), note="bool-mask"),
            C(A(2, 3, 2), A(2, 4, 2), A(2, 4, 2), A(2, 3, 4), note="float-mask"),
            C(A(3, 2), A(4, 2), A(4, 2), scale=0.7, note="unbatched-scale"),
        ],
        **_TOL,
    ),
]
