"""Op-table rows for the linalg family (see op_table.py)."""

from tests.ops.op_table import A, C, OpSpec

ROWS: list = []


def S(*shape, **kw):  # noqa: N802 - symmetric positive definite (well-conditioned) matrices
    return A(*shape, kind="spd", **kw)


def _einsum(equation):
    return lambda m, *xs: m.einsum(equation, *xs)


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
    OpSpec("dot", lambda m, a, b: m.dot(a, b), [C(A(4), A(4)), C(A(0), A(0), note="empty")]),
    OpSpec("dot", lambda m, a, b: a.dot(b), [C(A(3), A(3))]),
    OpSpec("vdot", lambda m, a, b: m.vdot(a, b), [C(A(4), A(4))]),
    OpSpec("outer", lambda m, a, b: m.outer(a, b), [C(A(3), A(4)), C(A(1), A(2))]),
    OpSpec("ger", lambda m, a, b: m.ger(a, b), [C(A(3), A(2))]),
    OpSpec(
        "inner",
        lambda m, a, b: m.inner(a, b),
        [C(A(4), A(4)), C(A(2, 3), A(4, 3)), C(A(), A(2, 3), note="scalar")],
    ),
    OpSpec(
        "tensordot",
        lambda m, a, b, **kw: m.tensordot(a, b, **kw),
        [
            C(A(2, 3, 4), A(3, 4, 5)),
            C(A(2, 3), A(3, 4), dims=1),
            C(A(2, 3), A(4, 5), dims=0),
            C(A(3, 4, 2), A(4, 3), dims=([1, 0], [0, 1])),
        ],
    ),
    # einsum: explicit and implicit outputs, ellipsis, traces/diagonals, broadcasting
    OpSpec("einsum", _einsum("ij,jk->ik"), [C(A(3, 4), A(4, 2))]),
    OpSpec("einsum", _einsum("ij,jk"), [C(A(3, 4), A(4, 2))]),
    OpSpec("einsum", _einsum("bij,bjk->bik"), [C(A(2, 3, 4), A(2, 4, 2))]),
    OpSpec("einsum", _einsum("...ij,...jk->...ik"), [C(A(2, 3, 4), A(4, 2), note="ellipsis")]),
    OpSpec("einsum", _einsum("...ij,...jk"), [C(A(2, 1, 3, 4), A(5, 4, 2), note="ellipsis-bc")]),
    OpSpec("einsum", _einsum("ii->i"), [C(A(3, 3))]),
    OpSpec("einsum", _einsum("ii"), [C(A(3, 3))]),
    OpSpec("einsum", _einsum("iij->j"), [C(A(3, 3, 2))]),
    OpSpec("einsum", _einsum("bii->bi"), [C(A(2, 3, 3))]),
    OpSpec("einsum", _einsum("ij->"), [C(A(3, 4))]),
    OpSpec("einsum", _einsum("ij->ji"), [C(A(3, 4)), C(A(4, 3, noncontig=True))]),
    OpSpec("einsum", _einsum("ij->j"), [C(A(3, 4))]),
    OpSpec("einsum", _einsum("i,j->ij"), [C(A(3), A(4))]),
    OpSpec("einsum", _einsum("i,i->"), [C(A(4), A(4))]),
    OpSpec("einsum", _einsum("ij,ij->ij"), [C(A(3, 4), A(3, 4))]),
    OpSpec("einsum", _einsum("ij,j->ij"), [C(A(3, 1), A(4), note="size1-broadcast")]),
    OpSpec("einsum", _einsum("ij,jk,kl->il"), [C(A(2, 3), A(3, 4), A(4, 2))]),
    OpSpec("einsum", _einsum("bhqd,bhkd->bhqk"), [C(A(2, 2, 3, 4), A(2, 2, 5, 4))]),
    OpSpec("einsum", _einsum("...i->..."), [C(A(2, 3, 4))]),
    OpSpec("einsum", _einsum("...->"), [C(A(2, 3))]),
    OpSpec("einsum", _einsum("i,->i"), [C(A(3), A(), note="scalar")]),
    OpSpec("einsum", _einsum("Ab,bA"), [C(A(2, 3), A(3, 2), note="upper")]),
    OpSpec("einsum", _einsum("ij,jk->ik"), [C(A(0, 3), A(3, 2), note="empty")]),
    OpSpec("einsum", lambda m, a, b: m.einsum("ij,jk->ik", [a, b]), [C(A(2, 3), A(3, 2))]),
    OpSpec("einsum", lambda m, a, b: m.einsum(a, [0, 1], b, [1, 2], [0, 2]), [C(A(2, 3), A(3, 2))]),
    # chainrule.linalg (inputs well-conditioned: symmetric positive definite)
    OpSpec("det", lambda m, a: m.det(a), [C(S(3, 3)), C(A(3, 3)), C(S(2, 4, 4), note="batched")]),
    OpSpec("det", lambda m, a: m.linalg.det(a), [C(S(1, 1)), C(A(2, 2)), C(S(4, 4))]),
    OpSpec("logdet", lambda m, a: m.logdet(a), [C(S(3, 3)), C(S(2, 3, 3), note="batched")]),
    OpSpec(
        "slogdet",
        lambda m, a: m.linalg.slogdet(a),
        [C(S(3, 3)), C(A(3, 3)), C(S(2, 2, 2), note="batched")],
    ),
    OpSpec("inverse", lambda m, a: m.inverse(a), [C(S(3, 3)), C(S(2, 3, 3), note="batched")]),
    OpSpec(
        "linalg.inv",
        lambda m, a: m.linalg.inv(a),
        [C(S(3, 3)), C(A(2, 2)), C(S(2, 3, 3), note="batched"), C(S(3, 3, noncontig=True))],
    ),
    OpSpec(
        "linalg.solve",
        lambda m, a, b: m.linalg.solve(a, b),
        [
            C(S(3, 3), A(3), note="vector"),
            C(S(3, 3), A(3, 2), note="matrix"),
            C(S(2, 3, 3), A(2, 3), note="batch-vector"),
            C(S(2, 3, 3), A(3, 4), note="broadcast-b"),
            C(S(3, 3), A(2, 3, 1), note="broadcast-a"),
            C(S(2, 3, 3), A(3), note="vector-1d"),
        ],
    ),
    OpSpec("linalg.solve", lambda m, a, b: m.linalg.solve(a, b, left=False), [C(S(3, 3), A(2, 3))]),
    OpSpec(
        "linalg.cholesky",
        lambda m, a: m.linalg.cholesky((a + a.mT) / 2),
        [C(S(3, 3)), C(S(2, 4, 4), note="batched"), C(S(1, 1))],
    ),
    OpSpec(
        "linalg.cholesky",
        lambda m, a: m.linalg.cholesky((a + a.mT) / 2, upper=True),
        [C(S(3, 3))],
    ),
    OpSpec(
        "linalg.svdvals",
        lambda m, a: m.linalg.svdvals(a),
        [C(A(3, 3, kind="distinct")), C(A(4, 2)), C(A(2, 5)), C(A(2, 3, 2), note="batched")],
    ),
    # gauge-invariant functions of U and V (singular vectors are defined up to sign)
    OpSpec(
        "linalg.svd",
        lambda m, a: (lambda r: m.einsum("ik,k,jk->ij", r[0], r[1] ** 3, r[0]))(
            m.linalg.svd(a, full_matrices=False)
        ),
        [C(A(4, 3)), C(A(3, 3)), C(A(2, 4))],
    ),
    OpSpec(
        "linalg.svd",
        lambda m, a: (lambda r: m.einsum("...ki,...k,...kj->...ij", r[2], r[1] ** 2, r[2]))(
            m.linalg.svd(a, full_matrices=False)
        ),
        [C(A(4, 3)), C(A(2, 4)), C(A(2, 3, 3), note="batched")],
    ),
    OpSpec(
        "linalg.svd",
        lambda m, a: (lambda r: (r[0] * r[1]) @ r[2])(m.linalg.svd(a, full_matrices=False)),
        [C(A(4, 3)), C(A(3, 5))],
    ),
    OpSpec(
        "linalg.vecdot",
        lambda m, a, b, **kw: m.linalg.vecdot(a, b, **kw),
        [C(A(3, 4), A(3, 4)), C(A(2, 3), A(4, 1, 3), dim=-1), C(A(3, 2), A(3, 2), dim=0)],
    ),
    OpSpec(
        "linalg.vector_norm",
        lambda m, a, **kw: m.linalg.vector_norm(a, **kw),
        [
            C(A(3, 4)),
            C(A(3, 4), ord=1, dim=1),
            C(A(2, 3, 4), ord=3, dim=(0, 2), keepdim=True),
            C(A(3, 4, kind="distinct"), ord=float("inf"), dim=-1),
            C(A(3, 4, kind="distinct"), ord=-float("inf")),
            C(A(3, 4), ord=0.5, dim=0),
            C(A(), note="scalar"),
        ],
    ),
    OpSpec(
        "linalg.matrix_norm",
        lambda m, a, **kw: m.linalg.matrix_norm(a, **kw),
        [
            C(A(3, 4)),
            C(A(2, 3, 4), keepdim=True),
            C(A(3, 4, kind="distinct"), ord=1),
            C(A(3, 4, kind="distinct"), ord=-1),
            C(A(3, 4, kind="distinct"), ord=float("inf")),
            C(A(2, 3, 4, kind="distinct"), ord=-float("inf"), dim=(0, 2)),
            C(A(3, 4, kind="distinct"), ord=2),
            C(A(4, 3, kind="distinct"), ord=-2, keepdim=True),
            C(A(2, 3, 3, kind="distinct"), ord="nuc"),
            C(A(3, 2, 4, kind="distinct"), ord="nuc", dim=(0, 2), keepdim=True),
        ],
    ),
    OpSpec(
        "linalg.norm",
        lambda m, a, **kw: m.linalg.norm(a, **kw),
        [
            C(A(3, 4)),
            C(A(2, 3, 4)),
            C(A(4), ord=3),
            C(A(3, 4), ord="fro"),
            C(A(3, 4, kind="distinct"), ord=float("inf")),
            C(A(2, 3, 4), dim=1, ord=1),
            C(A(2, 3, 4), dim=(0, 2), keepdim=True),
            C(A(2, 3, 4, kind="distinct"), dim=(-1, -2), ord="nuc"),
        ],
    ),
]
