"""Op-table rows for the movement family (see op_table.py)."""

from tests.ops.op_table import A, C, OpSpec  # noqa: F401

ROWS: list = []

ROWS += [
    OpSpec(
        "reshape", lambda m, a: m.reshape(a, (4, -1)) * 1, [C(A(2, 6)), C(A(6, 2, noncontig=True))]
    ),
    OpSpec("view", lambda m, a: a.view(3, 2, 2) * 1, [C(A(2, 6))]),
    OpSpec("broadcast_to", lambda m, a: m.broadcast_to(a, (2, 3, 4)) * 1, [C(A(3, 1)), C(A(4))]),
    OpSpec("expand", lambda m, a: a.expand(2, -1, 4) * 1, [C(A(3, 1))]),
    OpSpec("expand_as", lambda m, a, b: a.expand_as(b) * b, [C(A(3, 1), A(3, 4))]),
    OpSpec("permute", lambda m, a: m.permute(a, (2, 0, 1)) * 1, [C(A(2, 3, 4))]),
    OpSpec("transpose", lambda m, a: m.transpose(a, 0, -1) * 1, [C(A(2, 3, 4)), C(A(3, 4))]),
    OpSpec("swapaxes", lambda m, a: m.swapaxes(a, 0, 1) * 1, [C(A(2, 3))]),
    OpSpec("t", lambda m, a: m.t(a) * 1, [C(A(2, 3)), C(A(3))]),
]
