"""Op-table rows for the movement family (see op_table.py)."""

from tests.ops.op_table import A, C, OpSpec


def _cat(m, *ts, **kw):
    return m.cat(ts, **kw)


def _stack(m, *ts, **kw):
    return m.stack(ts, **kw)


ROWS: list = []

ROWS += [
    OpSpec(
        "reshape",
        lambda m, a: m.reshape(a, (4, -1)) * 1,
        [C(A(2, 6)), C(A(6, 2, noncontig=True), note="noncontig"), C(A(0, 4), note="empty")],
    ),
    OpSpec("reshape", lambda m, a: m.reshape(a, (1, 1)), [C(A(), note="scalar")]),
    OpSpec("reshape", lambda m, a: m.reshape(a, ()), [C(A(1, 1), note="to-scalar")]),
    OpSpec("view", lambda m, a: a.view(3, 2, 2) * 1, [C(A(2, 6))]),
    OpSpec("view", lambda m, a: a.view(-1), [C(A(2, 1, 3))]),
    OpSpec("broadcast_to", lambda m, a: m.broadcast_to(a, (2, 3, 4)) * 1, [C(A(3, 1)), C(A(4))]),
    OpSpec("broadcast_to", lambda m, a: m.broadcast_to(a, (2, 3)), [C(A(), note="scalar")]),
    OpSpec("expand", lambda m, a: a.expand(2, -1, 4) * 1, [C(A(3, 1))]),
    OpSpec("expand_as", lambda m, a, b: a.expand_as(b) * b, [C(A(3, 1), A(3, 4))]),
    OpSpec(
        "permute",
        lambda m, a: m.permute(a, (2, 0, 1)) * 1,
        [C(A(2, 3, 4)), C(A(4, 3, 2, noncontig=True), note="noncontig")],
    ),
    OpSpec("permute", lambda m, a: a.permute(-1, 0), [C(A(2, 3), note="negative")]),
    OpSpec("transpose", lambda m, a: m.transpose(a, 0, -1) * 1, [C(A(2, 3, 4)), C(A(3, 4))]),
    OpSpec("swapaxes", lambda m, a: m.swapaxes(a, 0, 1) * 1, [C(A(2, 3))]),
    OpSpec("swapdims", lambda m, a: m.swapdims(a, -1, 0), [C(A(2, 3))]),
    OpSpec("t", lambda m, a: m.t(a) * 1, [C(A(2, 3)), C(A(3))]),
    OpSpec(
        "T",
        lambda m, a: a.T,
        [C(A(2, 3)), C(A(3, 2, noncontig=True), note="noncontig")],
    ),
    OpSpec("mT", lambda m, a: a.mT, [C(A(2, 3, 4))]),
    OpSpec(
        "flatten",
        lambda m, a, **kw: m.flatten(a, **kw),
        [
            C(A(2, 3, 2)),
            C(A(2, 3, 2), start_dim=1),
            C(A(2, 3, 2, 2), start_dim=1, end_dim=-2, note="negative"),
            C(A(3, 2, noncontig=True), note="noncontig"),
            C(A(2, 0, 3), start_dim=1, note="empty"),
        ],
    ),
    OpSpec("flatten", lambda m, a: m.flatten(a), [C(A(), note="scalar")]),
    OpSpec("ravel", lambda m, a: m.ravel(a), [C(A(3, 2, noncontig=True)), C(A(2, 1))]),
    OpSpec(
        "unflatten",
        lambda m, a, dim, sizes: m.unflatten(a, dim, sizes),
        [
            C(A(2, 6), 1, (3, -1)),
            C(A(6), -1, (2, 1, 3), note="negative"),
            C(A(4, 2, noncontig=True), 0, (2, 2), note="noncontig"),
            C(A(0, 4), 1, (2, 2), note="empty"),
        ],
    ),
    OpSpec(
        "squeeze",
        lambda m, a, *d: m.squeeze(a, *d) * 1,
        [
            C(A(2, 1, 3, 1)),
            C(A(2, 1, 3, 1), 1),
            C(A(2, 1, 3, 1), -1, note="negative"),
            C(A(2, 1, 3), 0, note="not-size-1"),
            C(A(), note="scalar"),
            C(A(1, 1), note="all-ones"),
            C(A(1, 3, 2, noncontig=True), 0, note="noncontig"),
            C(A(0, 1), note="empty"),
        ],
    ),
    OpSpec("squeeze", lambda m, a: a.squeeze((0, -1)), [C(A(1, 2, 1), note="tuple")]),
    OpSpec(
        "unsqueeze",
        lambda m, a, d: m.unsqueeze(a, d),
        [
            C(A(2, 3), 0),
            C(A(2, 3), -1, note="negative"),
            C(A(2, 3), 1),
            C(A(), 0, note="scalar"),
            C(A(3, 2, noncontig=True), 1, note="noncontig"),
            C(A(0, 2), 0, note="empty"),
        ],
    ),
    OpSpec(
        "movedim",
        lambda m, a, s, d: m.movedim(a, s, d),
        [
            C(A(2, 3, 4), 0, -1),
            C(A(2, 3, 4), (0, 1), (2, 0)),
            C(A(4, 3, 2, noncontig=True), -1, 0, note="noncontig"),
        ],
    ),
    OpSpec("moveaxis", lambda m, a: m.moveaxis(a, 1, 0), [C(A(2, 3))]),
    OpSpec(
        "repeat",
        lambda m, a, *r: a.repeat(*r),
        [
            C(A(2, 3), 2, 1, 3),
            C(A(2, 3), 1, 2),
            C(A(), 3, note="scalar"),
            C(A(1, 2), 0, 2, note="zero-reps"),
            C(A(3, 2, noncontig=True), 2, 2, note="noncontig"),
            C(A(0, 2), 2, 1, note="empty"),
        ],
    ),
    OpSpec(
        "tile",
        lambda m, a, reps: m.tile(a, reps),
        [C(A(2, 3), (2,)), C(A(2), (2, 2)), C(A(3, 2, noncontig=True), (1, 2), note="noncontig")],
    ),
    OpSpec(
        "flip",
        lambda m, a, dims: m.flip(a, dims),
        [
            C(A(2, 3, 4), (0, 2)),
            C(A(3), (0,)),
            C(A(2, 3), (-1,), note="negative"),
            C(A(4, 3, noncontig=True), (0, 1), note="noncontig"),
            C(A(0, 3), (1,), note="empty"),
        ],
    ),
    OpSpec("flip", lambda m, a: a.flip(1), [C(A(2, 3), note="int-dim")]),
    OpSpec(
        "roll",
        lambda m, a, shifts, *dims: m.roll(a, shifts, *dims),
        [
            C(A(3, 4), 1, 0),
            C(A(3, 4), (1, -2), (0, 1), note="two-dims"),
            C(A(2, 3), 2, note="flat"),
            C(A(3, 4), -5, -1, note="negative"),
            C(A(4, 3, noncontig=True), 1, 1, note="noncontig"),
            C(A(), 1, note="scalar"),
            C(A(0, 3), 1, 1, note="empty"),
        ],
    ),
    OpSpec(
        "cat",
        _cat,
        [
            C(A(2, 3), A(1, 3)),
            C(A(2, 3), A(2, 1), A(2, 2), dim=-1, note="negative"),
            C(A(2, 3), A(2, 3, kind="int"), note="promote"),
            C(A(0, 3), A(2, 3), note="empty"),
            C(A(2, 3), A(0), note="legacy-empty"),
            C(A(3, 2, noncontig=True), A(1, 2), note="noncontig"),
            C(A(1), note="single"),
        ],
    ),
    OpSpec("concat", lambda m, a, b: m.concat((a, b), 1), [C(A(2, 1), A(2, 2))]),
    OpSpec("concatenate", lambda m, a, b: m.concatenate([a, b]), [C(A(2), A(3))]),
    OpSpec(
        "stack",
        _stack,
        [
            C(A(2, 3), A(2, 3)),
            C(A(2, 3), A(2, 3), A(2, 3), dim=-1, note="negative"),
            C(A(), A(), note="scalar"),
            C(A(2), A(2, kind="int"), note="promote"),
            C(A(3, 2, noncontig=True), A(3, 2), dim=1, note="noncontig"),
            C(A(0, 2), A(0, 2), note="empty"),
            C(A(3), note="single"),
        ],
    ),
    OpSpec(
        "split",
        lambda m, a, s, *d: m.split(a, s, *d),
        [
            C(A(5, 2), 2),
            C(A(5, 2), [1, 4]),
            C(A(2, 5), 3, -1, note="negative"),
            C(A(3), 5, note="one-piece"),
            C(A(2, 4, noncontig=True), [1, 0, 3], 1, note="noncontig"),
            C(A(0, 3), 2, note="empty"),
        ],
    ),
    OpSpec("split", lambda m, a: a.split(1)[1] * 2, [C(A(3, 2), note="one-used")]),
    OpSpec(
        "chunk",
        lambda m, a, n, *d: m.chunk(a, n, *d),
        [C(A(5, 2), 3), C(A(6), 4), C(A(2, 4), 2, -1, note="negative"), C(A(0), 2, note="empty")],
    ),
    OpSpec(
        "unbind",
        lambda m, a, *d: m.unbind(a, *d),
        [
            C(A(3, 2)),
            C(A(3, 2), -1, note="negative"),
            C(A(1, 2), note="one"),
            C(A(2, 3, noncontig=True), 1, note="noncontig"),
            C(A(3), note="to-scalars"),
        ],
    ),
    OpSpec("unbind", lambda m, a: m.unbind(a)[0] * 3, [C(A(3, 2), note="one-used")]),
    OpSpec(
        "narrow",
        lambda m, a, d, s, n: m.narrow(a, d, s, n),
        [
            C(A(4, 3), 0, 1, 2),
            C(A(4, 3), -1, -2, 2, note="negative"),
            C(A(3, 4, noncontig=True), 1, 0, 3, note="noncontig"),
            C(A(4, 3), 0, 2, 0, note="empty"),
        ],
    ),
    OpSpec(
        "select",
        lambda m, a, d, i: m.select(a, d, i),
        [C(A(3, 4), 1, -1), C(A(3), 0, 1, note="to-scalar"), C(A(3, 4, noncontig=True), 0, 2)],
    ),
    OpSpec(
        "tril",
        lambda m, a, *k: m.tril(a, *k),
        [
            C(A(3, 4)),
            C(A(3, 4), -1),
            C(A(2, 3, 3), 1, note="batched"),
            C(A(4, 3, noncontig=True), note="noncontig"),
            C(A(0, 3), note="empty"),
        ],
    ),
    OpSpec(
        "triu",
        lambda m, a, *k: m.triu(a, *k),
        [
            C(A(3, 4)),
            C(A(3, 4), 1),
            C(A(2, 3, 3), -1, note="batched"),
            C(A(4, 3, noncontig=True), note="noncontig"),
            C(A(0, 3), note="empty"),
        ],
    ),
    OpSpec(
        "clone",
        lambda m, a: m.clone(a),
        [C(A(3, 4)), C(A(), note="scalar"), C(A(4, 3, noncontig=True), note="noncontig")],
    ),
    OpSpec(
        "contiguous",
        lambda m, a: a.contiguous() * 1,
        [C(A(3, 4)), C(A(4, 3, noncontig=True), note="noncontig")],
    ),
]
