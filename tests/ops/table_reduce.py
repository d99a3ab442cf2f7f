"""Op-table rows for the reduce family (see op_table.py)."""

from tests.ops.op_table import A, C, OpSpec

ROWS: list = []


def _zeros(m, a, positions):
    """``a`` with zeros at ``positions`` of its last dimension (for exact-zero gradients)."""
    mask = [0.0 if i in positions else 1.0 for i in range(a.shape[-1])]
    return a * m.tensor(mask, dtype=a.dtype)


def D(*shape, **kw):  # noqa: N802 - distinct values: no near-ties for max/min/median/norms
    return A(*shape, kind="distinct", **kw)


# reductions with dim=None, int, negative int, tuple; keepdim both ways; 0-d, size-1 dims,
# non-contiguous and empty inputs
DIMS = [
    C(A(3, 4)),
    C(A(2, 3, 4), dim=1),
    C(A(2, 3, 4), dim=-1, keepdim=True),
    C(A(2, 3, 4), dim=(0, 2)),
    C(A(2, 3, 4), dim=(-1, 0), keepdim=True),
    C(A(), note="scalar"),
    C(A(), dim=0, note="scalar-dim"),
    C(A(1, 4, 1), dim=0, note="size1"),
    C(A(4, 3, noncontig=True), dim=0, note="noncontig"),
]

ROWS += [
    OpSpec("sum", lambda m, a: m.sum(a), [C(A(3, 4)), C(A()), C(A(0, 3), note="empty")]),
    OpSpec("sum", lambda m, a, **kw: m.sum(a, **kw), DIMS + [C(A(0, 3), dim=1, note="empty")]),
    OpSpec("sum", lambda m, a: a.sum((0, -1)), [C(A(2, 3, 4)), C(A(4, 3, 2, noncontig=True))]),
    OpSpec("sum", lambda m, a: m.sum(a, dtype=m.float64), [C(A(3, 2))]),
    OpSpec("mean", lambda m, a: m.mean(a, 0), [C(A(3, 4)), C(A(2, 3, 4))]),
    OpSpec("mean", lambda m, a: a.mean(), [C(A(3, 4)), C(A())]),
    OpSpec("mean", lambda m, a, **kw: m.mean(a, **kw), DIMS),
    # prod: zeros in the input (one or two) check the division-free gradient
    OpSpec("prod", lambda m, a: m.prod(a), [C(A(3, 4)), C(A()), C(A(0, 3), note="empty")]),
    OpSpec(
        "prod",
        lambda m, a, **kw: m.prod(a, **kw),
        [
            C(A(3, 4), dim=1),
            C(A(2, 3, 4), dim=-2, keepdim=True),
            C(A(), dim=0, note="scalar"),
            C(A(1, 4), dim=0, note="size1"),
            C(A(4, 3, noncontig=True), dim=0, note="noncontig"),
            C(A(0, 3), dim=1, note="empty"),
        ],
    ),
    OpSpec("prod", lambda m, a: a.prod(), [C(A(2, 4))]),
    OpSpec("prod", lambda m, a: m.prod(_zeros(m, a, {1})), [C(A(2, 4), note="one-zero")]),
    OpSpec("prod", lambda m, a: m.prod(_zeros(m, a, {0, 2})), [C(A(4), note="two-zeros")]),
    OpSpec(
        "prod", lambda m, a: m.prod(_zeros(m, a, {1, 3}), -1), [C(A(3, 5), note="two-zeros-dim")]
    ),
    OpSpec("prod", lambda m, a: m.prod(_zeros(m, a, {2}), 1), [C(A(2, 4), note="zero-dim")]),
    # extrema
    OpSpec("max", lambda m, a: m.max(a), [C(D(3, 4)), C(D()), C(D(4, 3, noncontig=True))]),
    OpSpec(
        "max",
        lambda m, a, **kw: m.max(a, **kw),
        [
            C(D(3, 4), dim=1),
            C(D(2, 3, 4), dim=-1, keepdim=True),
            C(D(2, 3, 4), dim=0),
            C(D(), dim=0, note="scalar"),
            C(D(1, 4), dim=0, note="size1"),
            C(D(5, 4, noncontig=True), dim=1, note="noncontig"),
            C(D(0, 3), dim=1, note="empty"),
        ],
    ),
    OpSpec("max", lambda m, a, b: m.max(a, b), [C(D(3, 4), D(3, 4)), C(D(3, 1), D(4))]),
    OpSpec("max", lambda m, a: a.max(1)[0] + a.max(0).values.sum(), [C(D(3, 4))]),
    OpSpec("min", lambda m, a: m.min(a), [C(D(3, 4)), C(D())]),
    OpSpec(
        "min",
        lambda m, a, **kw: m.min(a, **kw),
        [C(D(3, 4), dim=0), C(D(2, 3, 4), dim=-2, keepdim=True), C(D(), dim=-1, note="scalar")],
    ),
    OpSpec("min", lambda m, a, b: m.min(a, b), [C(D(3, 4), D(3, 4))]),
    OpSpec(
        "amax",
        lambda m, a, **kw: m.amax(a, **kw),
        [
            C(D(3, 4)),
            C(D(3, 4), dim=1),
            C(D(2, 3, 4), dim=(0, 2)),
            C(D(2, 3, 4), dim=(-1,), keepdim=True),
            C(D(), note="scalar"),
            C(D(4, 3, noncontig=True), dim=0, note="noncontig"),
            C(D(0, 3), dim=1, note="empty"),
        ],
    ),
    OpSpec(
        "amin",
        lambda m, a, **kw: m.amin(a, **kw),
        [C(D(3, 4)), C(D(3, 4), dim=-1), C(D(2, 3, 4), dim=(1, 2), keepdim=True)],
    ),
    OpSpec(
        "argmax",
        lambda m, a, **kw: m.argmax(a, **kw),
        [
            C(D(3, 4)),
            C(D(3, 4), dim=1),
            C(D(2, 3, 4), dim=-1, keepdim=True),
            C(D(3, 4), keepdim=True),
            C(D(), note="scalar"),
            C(D(4, 3, noncontig=True), dim=0, note="noncontig"),
        ],
        grad=False,
    ),
    OpSpec(
        "argmin",
        lambda m, a, **kw: m.argmin(a, **kw),
        [C(D(3, 4)), C(D(3, 4), dim=0), C(D(2, 3, 4), dim=1, keepdim=True)],
        grad=False,
    ),
    OpSpec("median", lambda m, a: m.median(a), [C(D(5)), C(D(3, 4)), C(D())]),
    OpSpec(
        "median",
        lambda m, a, **kw: m.median(a, **kw),
        [C(D(3, 5), dim=1), C(D(4, 3), dim=0, keepdim=True), C(D(2, 4, 3), dim=-2)],
    ),
    # statistics
    OpSpec(
        "var",
        lambda m, a, **kw: m.var(a, **kw),
        [
            C(A(3, 4)),
            C(A(2, 3, 4), dim=1),
            C(A(2, 3, 4), dim=(0, -1), keepdim=True),
            C(A(3, 4), dim=0, correction=0),
            C(A(3, 5), dim=1, correction=2),
            C(A(3, 4), dim=1, unbiased=False),
            C(A(5, 4, noncontig=True), dim=0, note="noncontig"),
            C(A(1, 4), dim=1, note="size1"),
        ],
    ),
    OpSpec("var", lambda m, a: a.var(1, True), [C(A(3, 4))]),
    OpSpec(
        "std",
        lambda m, a, **kw: m.std(a, **kw),
        [
            C(A(3, 4)),
            C(A(2, 3, 4), dim=-1),
            C(A(2, 3, 4), dim=(0, 1), keepdim=True),
            C(A(3, 4), dim=0, correction=0),
            C(A(3, 4), dim=1, unbiased=False),
        ],
    ),
    OpSpec("var_mean", lambda m, a, **kw: m.var_mean(a, **kw), [C(A(3, 4)), C(A(3, 4), dim=1)]),
    OpSpec(
        "std_mean",
        lambda m, a, **kw: m.std_mean(a, **kw),
        [C(A(3, 4)), C(A(2, 3, 4), dim=(0, 2), keepdim=True, correction=0)],
    ),
    # logsumexp, softmax, log_softmax
    OpSpec(
        "logsumexp",
        lambda m, a, **kw: m.logsumexp(a, **kw),
        [
            C(A(3, 4), dim=1),
            C(A(2, 3, 4), dim=-1, keepdim=True),
            C(A(2, 3, 4), dim=(0, 2)),
            C(A(), dim=0, note="scalar"),
            C(A(1, 4), dim=0, note="size1"),
            C(A(4, 3, noncontig=True), dim=0, note="noncontig"),
            C(A(0, 3), dim=1, note="empty"),
        ],
    ),
    OpSpec("logsumexp", lambda m, a: (a * 50).logsumexp(0), [C(A(6), note="large")]),
    OpSpec(
        "softmax",
        lambda m, a, **kw: m.softmax(a, **kw),
        [
            C(A(3, 4), dim=1),
            C(A(2, 3, 4), dim=0),
            C(A(2, 3, 4), dim=-2),
            C(A(), dim=0, note="scalar"),
            C(A(1, 4), dim=0, note="size1"),
            C(A(4, 3, noncontig=True), dim=1, note="noncontig"),
            C(A(0, 3), dim=1, note="empty"),
        ],
    ),
    OpSpec("softmax", lambda m, a: a.softmax(-1) * 1, [C(A(3, 4))]),
    OpSpec("softmax", lambda m, a: m.softmax(a, 1, dtype=m.float64), [C(A(3, 4))]),
    OpSpec("softmax", lambda m, a: m.softmax(a * 1e3, 0), [C(A(5), note="large")]),
    OpSpec(
        "log_softmax",
        lambda m, a, **kw: m.log_softmax(a, **kw),
        [
            C(A(3, 4), dim=1),
            C(A(2, 3, 4), dim=0),
            C(A(), dim=0, note="scalar"),
            C(A(4, 3, noncontig=True), dim=-1, note="noncontig"),
            C(A(0, 3), dim=1, note="empty"),
        ],
    ),
    OpSpec("log_softmax", lambda m, a: a.log_softmax(0) * 1, [C(A(3, 4))]),
    OpSpec("log_softmax", lambda m, a: m.log_softmax(a * 1e3, 0), [C(A(5), note="large")]),
    # norms
    OpSpec(
        "norm",
        lambda m, a, **kw: m.norm(a, **kw),
        [
            C(A(3, 4)),
            C(A(2, 3, 4), dim=1),
            C(A(2, 3, 4), dim=(0, 2), keepdim=True),
            C(A(3, 4), p=1, dim=-1),
            C(A(3, 4), p=3),
            C(A(3, 4), p=1.5, dim=0),
            C(D(3, 4), p=float("inf"), dim=1),
            C(D(3, 4), p=-float("inf")),
            C(A(3, 4), p="fro", dim=(0, 1)),
            C(A(), note="scalar"),
            C(A(4, 3, noncontig=True), dim=0, note="noncontig"),
            C(A(0, 3), note="empty"),
        ],
    ),
    OpSpec("norm", lambda m, a: a.norm(p="nuc"), [C(D(3, 4)), C(D(4, 2))]),
    OpSpec("norm", lambda m, a: a.norm(p=0, dim=1), [C(A(3, 4))], grad=False),
    # scans
    OpSpec(
        "cumsum",
        lambda m, a, **kw: m.cumsum(a, **kw),
        [
            C(A(3, 4), dim=1),
            C(A(2, 3, 4), dim=0),
            C(A(2, 3, 4), dim=-2),
            C(A(), dim=0, note="scalar"),
            C(A(4, 3, noncontig=True), dim=1, note="noncontig"),
            C(A(0, 3), dim=0, note="empty"),
        ],
    ),
    OpSpec("cumsum", lambda m, a: a.cumsum(0, dtype=m.float64), [C(A(4, 2))]),
    OpSpec("cumsum", lambda m, a: m.cumsum(a, 1), [C(A(3, 4, kind="int"))], grad=False),
    OpSpec(
        "cumprod",
        lambda m, a, **kw: m.cumprod(a, **kw),
        [
            C(A(3, 4), dim=1),
            C(A(2, 3, 4), dim=-1),
            C(A(), dim=0, note="scalar"),
            C(A(4, 3, noncontig=True), dim=0, note="noncontig"),
        ],
    ),
    OpSpec("cumprod", lambda m, a: m.cumprod(_zeros(m, a, {2}), 1), [C(A(2, 5), note="zero")]),
    OpSpec("cumprod", lambda m, a: m.cumprod(_zeros(m, a, {1, 3}), -1), [C(A(2, 5), note="zeros")]),
    # logical
    OpSpec(
        "all",
        lambda m, a, **kw: m.all(a, **kw),
        [
            C(A(3, 4, kind="bool")),
            C(A(3, 4, kind="bool"), dim=1),
            C(A(2, 3, 4, kind="bool"), dim=(0, 2), keepdim=True),
            C(A(3, 4, kind="int")),
            C(A(0, 3, kind="bool"), dim=0, note="empty"),
        ],
        grad=False,
    ),
    OpSpec(
        "any",
        lambda m, a, **kw: m.any(a, **kw),
        [
            C(A(3, 4, kind="bool")),
            C(A(3, 4, kind="bool"), dim=-1, keepdim=True),
            C(A(3, 4), dim=0),
            C(A(0, 3, kind="bool"), dim=1, note="empty"),
        ],
        grad=False,
    ),
    OpSpec(
        "count_nonzero",
        lambda m, a, **kw: m.count_nonzero(a, **kw),
        [C(A(3, 4, kind="int")), C(A(3, 4, kind="int"), dim=1), C(A(2, 3, 4), dim=(0, 2))],
        grad=False,
    ),
]
