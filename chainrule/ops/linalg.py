"""Linear algebra: the matmul family, einsum and ``chainrule.linalg``.

Matmul's backward is two more matmuls; batch dimensions that broadcasting added are summed
away by the engine.
"""

from __future__ import annotations

from chainrule.backend import result_type
from chainrule.ops.elementwise import cast
from chainrule.ops.movement import reshape, transpose
from chainrule.tensor import Node, Tensor

__all__ = ["matmul", "mm", "bmm"]


def _mT(x: Tensor) -> Tensor:
    return transpose(x, -1, -2)


class Matmul(Node):
    __slots__ = ()
    saves = (0, 1)

    def forward(self, xp, a, b):
        return xp.matmul(a, b)

    def backward(self, g, a, b):
        ga = gb = None
        if a.ndim == 1 and b.ndim == 1:
            return (g * b if self.edges[0] else None), (g * a if self.edges[1] else None)
        if a.ndim == 1:  # (k) @ (..., k, n) -> (..., n)
            if self.edges[0]:
                ga = reshape(
                    matmul(reshape(g, (*g.shape[:-1], 1, g.shape[-1])), _mT(b)),
                    (*g.shape[:-1], a.shape[0]),
                )
            if self.edges[1]:
                gb = a.reshape(-1, 1) * reshape(g, (*g.shape[:-1], 1, g.shape[-1]))
            return ga, gb
        if b.ndim == 1:  # (..., m, k) @ (k) -> (..., m)
            if self.edges[0]:
                ga = reshape(g, (*g.shape, 1)) * b
            if self.edges[1]:
                gb = reshape(matmul(_mT(a), reshape(g, (*g.shape, 1))), (*g.shape[:-1], b.shape[0]))
            return ga, gb
        if self.edges[0]:
            ga = matmul(g, _mT(b))
        if self.edges[1]:
            gb = matmul(_mT(a), g)
        return ga, gb


def _check_matmul(a: Tensor, b: Tensor, op: str) -> None:
    sa, sb = a._data.shape, b._data.shape
    if len(sa) == 0 or len(sb) == 0:
        raise RuntimeError(
            f"{op}: both arguments need at least 1 dimension, got {list(sa)} and {list(sb)}"
        )
    ka = sa[-1]
    kb = sb[0] if len(sb) == 1 else sb[-2]
    if ka != kb:
        raise RuntimeError(
            f"{op}: mat1 and mat2 shapes cannot be multiplied ({'x'.join(map(str, sa))} and "
            f"{'x'.join(map(str, sb))})"
        )


def _same_dtype(a: Tensor, b: Tensor, op: str):
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(
            f"{op}: expected both operands to have the same dtype, but got {a.dtype} and {b.dtype}"
        )
    return a, b


def matmul(input: Tensor, other: Tensor) -> Tensor:
    """Matrix product with NumPy/PyTorch rules for 1-D operands and batch broadcasting."""
    _check_matmul(input, other, "matmul")
    if input._data.dtype != other._data.dtype:
        target = result_type((input, other))
        input, other = cast(input, target), cast(other, target)
    return Matmul.apply(input, other)


def mm(input: Tensor, mat2: Tensor) -> Tensor:
    """Product of two matrices."""
    if input._data.ndim != 2 or mat2._data.ndim != 2:
        raise RuntimeError(
            f"mm: expected 2-D tensors, got shapes {list(input.shape)} and {list(mat2.shape)}"
        )
    _check_matmul(input, mat2, "mm")
    _same_dtype(input, mat2, "mm")
    return Matmul.apply(input, mat2)


def bmm(input: Tensor, mat2: Tensor) -> Tensor:
    """Batched product of (b, n, m) and (b, m, p) tensors."""
    if input._data.ndim != 3 or mat2._data.ndim != 3:
        raise RuntimeError(
            f"bmm: expected 3-D tensors, got shapes {list(input.shape)} and {list(mat2.shape)}"
        )
    if input._data.shape[0] != mat2._data.shape[0]:
        raise RuntimeError(f"bmm: batch sizes differ: {list(input.shape)} and {list(mat2.shape)}")
    _check_matmul(input, mat2, "bmm")
    _same_dtype(input, mat2, "bmm")
    return Matmul.apply(input, mat2)


# Tensor methods (bound in ops/__init__.py)
METHODS = {"matmul": matmul, "mm": mm, "bmm": bmm}
