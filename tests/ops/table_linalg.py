"""Op-table rows for the linalg family (see op_table.py)."""

from tests.ops.op_table import A, C, OpSpec  # noqa: F401

ROWS: list = []

ROWS += [
    OpSpec(
        "matmul",
        lambda m, a, b: m.matmul(a, b),
        [
            C(A(3, 4), A(4, 2)),
            C(A(2, 3, 4), A(4, 5), note="batched"),
            C(A(2, 1, 3, 4), A(3, 4, 2), note="broadcast"),
            C(A(4), A(4, 3), note="vec-mat"),
            C(A(3, 4), A(4), note="mat-vec"),
            C(A(4), A(4), note="dot"),
            C(A(2, 3, 4), A(4), note="batch-vec"),
            C(A(4), A(2, 4, 3), note="vec-batch"),
            C(A(3, 4, noncontig=True), A(4, 2), note="noncontig"),
        ],
    ),
    OpSpec("mm", lambda m, a, b: m.mm(a, b), [C(A(3, 4), A(4, 2))]),
    OpSpec("bmm", lambda m, a, b: m.bmm(a, b), [C(A(2, 3, 4), A(2, 4, 2))]),
]
