"""Op-table rows for the indexing family (see op_table.py).

Rows named ``getitem``/``setitem`` cover ``t[key]`` and ``t[key] = v``. Written positions in
setitem and scatter rows are distinct: where a position is written twice, which write wins is
unspecified (and finite differences would disagree with any gradient convention).
"""

from tests.ops.op_table import A, Arg, C, OpSpec


def I(*shape, high=3, noncontig=False):  # noqa: E743, N802 - short constructor, like A
    """An int64 index tensor with values in ``[0, high)`` (repeats are likely)."""
    return Arg(tuple(shape), kind="index", high=high, noncontig=noncontig)


def M(*shape, noncontig=False):  # noqa: N802
    """A random bool mask."""
    return Arg(tuple(shape), kind="bool", noncontig=noncontig)


def _set(key, value_fn=None):
    """``b = a * 1; b[key] = value; return b`` (the value from the second input or a number)."""

    def fn(m, a, *rest):
        b = a * 1
        b[key(m, *rest[1:]) if callable(key) else key] = value_fn(rest[0]) if value_fn else rest[0]
        return b

    return fn


ROWS: list = []

ROWS += [
    # ---- reads ---------------------------------------------------------------------------
    OpSpec(
        "getitem",
        lambda m, a: a[1:, ::2],
        [C(A(3, 4)), C(A(5, 3, noncontig=True), note="noncontig"), C(A(1, 4), note="empty")],
    ),
    OpSpec("getitem", lambda m, a: a[..., None, 0], [C(A(2, 3)), C(A(2, 3, 2))]),
    OpSpec("getitem", lambda m, a: a[-1, 1:-1], [C(A(3, 4), note="negative")]),
    OpSpec("getitem", lambda m, a: a[1], [C(A(3), note="to-scalar"), C(A(3, 2))]),
    OpSpec("getitem", lambda m, a: a[()] * 1, [C(A(), note="scalar")]),
    OpSpec("getitem", lambda m, a: a[None], [C(A(), note="scalar-none")]),
    OpSpec("getitem", lambda m, a: a[:0], [C(A(3, 2), note="empty-slice")]),
    OpSpec(
        "getitem",
        lambda m, a, i: a[i],
        [
            C(A(3, 2), I(4)),
            C(A(3, 2), I(2, 3, noncontig=True), note="2d-index"),
            C(A(3), I(0), note="empty-index"),
            C(A(4, 3, noncontig=True), I(5, high=3), note="noncontig"),
        ],
    ),
    OpSpec("getitem", lambda m, a: a[[0, 2, 0, 0]], [C(A(3, 2), note="repeated")]),
    OpSpec("getitem", lambda m, a: a[[-1, 0]], [C(A(3, 2), note="negative-index")]),
    OpSpec(
        "getitem",
        lambda m, a, i: a[i, 1:],
        [C(A(3, 4), I(5), note="index-then-slice")],
    ),
    OpSpec("getitem", lambda m, a, i: a[:, i], [C(A(2, 3), I(2, 2), note="slice-then-index")]),
    OpSpec(
        "getitem",
        lambda m, a, i: a[0, :, i],
        [C(A(2, 3, 4), I(2, high=4), note="int-slice-index")],
    ),
    OpSpec(
        "getitem",
        lambda m, a, i, j: a[i, :, j],
        [C(A(3, 2, 4), I(5), I(5, high=4), note="separated-indices")],
    ),
    OpSpec(
        "getitem",
        lambda m, a, i, j: a[i, j],
        [C(A(3, 4), I(2, 1), I(3, high=4), note="broadcast-indices")],
    ),
    OpSpec(
        "getitem",
        lambda m, a, mask: a[mask],
        [
            C(A(3, 4), M(3, 4), note="mask"),
            C(A(3, 4), M(3), note="leading-mask"),
            C(A(3, 4), M(3, 4, noncontig=True), note="noncontig-mask"),
            C(A(0, 2), M(0, 2), note="empty"),
        ],
    ),
    OpSpec("getitem", lambda m, a, mask: a[:, mask], [C(A(2, 4), M(4), note="inner-mask")]),
    OpSpec("getitem", lambda m, a: a[a > 0], [C(A(3, 4), note="computed-mask")]),
    # ---- writes (into a copy, so the input keeps a gradient) ---------------------------------
    OpSpec(
        "setitem",
        _set(0),
        [C(A(3, 4), A(4)), C(A(3, 4), A(1), note="broadcast"), C(A(3, 4), A(), note="0-d")],
    ),
    OpSpec("setitem", _set(0), [C(A(3, 4), A(1, 4), note="leading-one")]),
    OpSpec("setitem", _set((slice(1, None), slice(None, None, 2))), [C(A(3, 4), A(2, 2))]),
    OpSpec("setitem", _set((Ellipsis, 1)), [C(A(2, 3, 2), A(2, 3), note="ellipsis")]),
    OpSpec("setitem", _set(1, lambda v: 2.5), [C(A(3, 2), 0, note="number")]),
    OpSpec(
        "setitem",
        _set([2, 0]),
        [C(A(3, 4), A(2, 4), note="index"), C(A(4, 3, noncontig=True), A(3), note="noncontig")],
    ),
    OpSpec(
        "setitem",
        _set((slice(None), [3, 1])),
        [C(A(2, 4), A(2, 2), note="slice-index")],
    ),
    OpSpec(
        "setitem",
        lambda m, a, v, mask: _set(mask)(m, a, v),
        [C(A(3, 4), A(), M(3, 4), note="mask")],
    ),
    OpSpec("setitem", _set(slice(0, 0)), [C(A(3, 2), A(2), note="empty")]),
    # ---- gather / scatter ------------------------------------------------------------------
    OpSpec(
        "gather",
        lambda m, a, d, i: m.gather(a, d, i),
        [
            C(A(3, 4), 1, I(3, 2, high=4)),
            C(A(3, 4), 0, I(2, 4, high=3)),
            C(A(3, 4), -1, I(2, 5, high=4), note="negative-smaller"),
            C(A(4, 3, noncontig=True), 1, I(4, 2, high=3), note="noncontig"),
            C(A(3, 4), 1, I(3, 0), note="empty"),
        ],
    ),
    OpSpec(
        "scatter",
        lambda m, a, src: m.scatter(a, 1, m.tensor([[0, 2], [1, 3], [3, 0]]), src),
        [C(A(3, 4), A(3, 2))],
    ),
    # PyTorch's own backward rejects a src larger than the index (shape check in its engine)
    OpSpec(
        "scatter",
        lambda m, a, src: m.scatter(a, 1, m.tensor([[0, 2], [1, 3], [3, 0]]), src),
        [C(A(3, 4), A(3, 3), note="larger-src")],
        torch=False,
    ),
    OpSpec(
        "scatter",
        lambda m, a: m.scatter(a, -2, m.tensor([[2, 0, 1]]), 1.5),
        [C(A(3, 3), note="value"), C(A(3, 3, noncontig=True), note="noncontig")],
    ),
    OpSpec(
        "scatter_add",
        lambda m, a, d, i, src: m.scatter_add(a, d, i, src),
        [
            C(A(3, 4), 1, I(3, 5, high=4), A(3, 5)),
            C(A(3, 4, noncontig=True), -1, I(2, 2, high=3), A(2, 2), note="noncontig"),
        ],
    ),
    OpSpec(
        "scatter_add",
        lambda m, a, d, i, src: m.scatter_add(a, d, i, src),
        [C(A(3, 4), 0, I(4, 4, high=3), A(5, 4), note="larger-src")],
        torch=False,
    ),
    OpSpec(
        "index_select",
        lambda m, a, d, i: m.index_select(a, d, i),
        [
            C(A(4, 3), 0, I(5, high=4)),
            C(A(4, 3), -1, I(2, high=3), note="negative"),
            C(A(4, 3, noncontig=True), 1, I(4, high=3), note="noncontig"),
            C(A(4, 3), 0, I(0), note="empty"),
        ],
    ),
    OpSpec(
        "index_add",
        lambda m, a, d, i, s, **kw: m.index_add(a, d, i, s, **kw),
        [
            C(A(4, 3), 0, I(5, high=4), A(5, 3)),
            C(A(4, 3), -1, I(2, high=3), A(4, 2), alpha=2.0, note="alpha"),
            C(A(3, 4, noncontig=True), 0, I(2, high=3), A(2, 4), note="noncontig"),
        ],
    ),
    OpSpec(
        "index_fill",
        lambda m, a: m.index_fill(a, 1, m.tensor([0, 2]), -1.5),
        [C(A(4, 3)), C(A(3, 4, noncontig=True), note="noncontig")],
    ),
    # ---- masks -------------------------------------------------------------------------------
    OpSpec(
        "masked_fill",
        lambda m, a, mask: m.masked_fill(a, mask, 2.0),
        [
            C(A(3, 4), M(3, 4)),
            C(A(3, 4), M(4), note="broadcast-mask"),
            C(A(4, 3, noncontig=True), M(4, 3), note="noncontig"),
            C(A(0, 3), M(0, 3), note="empty"),
        ],
    ),
    OpSpec("masked_fill", lambda m, a: m.masked_fill(a, a > 0, 2.0), [C(A(), note="scalar")]),
    OpSpec(
        "masked_fill",
        lambda m, a, v, mask: a.masked_fill(mask, v),
        [C(A(3, 4), A(), M(3, 4), note="tensor-value")],
    ),
    OpSpec(
        "masked_select",
        lambda m, a, mask: m.masked_select(a, mask),
        [
            C(A(3, 4), M(3, 4)),
            C(A(3, 4), M(4), note="broadcast-mask"),
            C(A(4), M(3, 4), note="broadcast-input"),
        ],
    ),
    OpSpec(
        "take",
        lambda m, a, i: m.take(a, i),
        [C(A(3, 4), I(2, 3, high=12)), C(A(4, 3, noncontig=True), I(5, high=12), note="nc")],
    ),
    OpSpec(
        "take_along_dim",
        lambda m, a, i, *d: m.take_along_dim(a, i, *d),
        [
            C(A(3, 4), I(3, 2, high=4), 1),
            C(A(3, 4), I(5, high=12), note="flat"),
            C(A(3, 4), I(1, 2, high=4), -1, note="broadcast"),
        ],
    ),
    OpSpec(
        "nonzero",
        lambda m, a: m.nonzero(a),
        [C(Arg((3, 4), kind="int")), C(Arg((), kind="int"), note="scalar")],
        grad=False,
    ),
    OpSpec(
        "nonzero",
        lambda m, a: m.nonzero(a, as_tuple=True),
        [C(Arg((3, 4), kind="int")), C(M(0, 2), note="empty")],
        grad=False,
    ),
    OpSpec("argwhere", lambda m, a: m.argwhere(a), [C(M(2, 3))], grad=False),
]
