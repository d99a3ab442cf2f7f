"""Op-table rows for the reduce family (see op_table.py)."""

from tests.ops.op_table import A, C, OpSpec  # noqa: F401

ROWS: list = []

ROWS += [
    OpSpec("sum", lambda m, a: m.sum(a), [C(A(3, 4)), C(A()), C(A(0, 3), note="empty")]),
    OpSpec("sum", lambda m, a: m.sum(a, dim=1, keepdim=True), [C(A(3, 4)), C(A(2, 3, 4))]),
    OpSpec("sum", lambda m, a: a.sum((0, -1)), [C(A(2, 3, 4)), C(A(4, 3, 2, noncontig=True))]),
    OpSpec("mean", lambda m, a: m.mean(a, 0), [C(A(3, 4)), C(A(2, 3, 4))]),
    OpSpec("mean", lambda m, a: a.mean(), [C(A(3, 4)), C(A())]),
]
