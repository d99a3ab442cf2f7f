"""``chainrule.linalg``: PyTorch's ``torch.linalg`` namespace.

The ops themselves (and their gradients) live in ``chainrule/ops/linalg.py`` and
``chainrule/ops/reduce.py``; this module only gives them their ``linalg.*`` names.

>>> import chainrule as cr
>>> A = cr.tensor([[4.0, 2.0], [2.0, 3.0]])
>>> cr.linalg.det(A)
tensor(8.)
"""

from chainrule.ops.linalg import (
    cholesky,
    det,
    inv,
    matmul,
    matrix_norm,
    slogdet,
    solve,
    svd,
    svdvals,
    vecdot,
)
from chainrule.ops.linalg import linalg_norm as norm
from chainrule.ops.reduce import vector_norm

__all__ = [
    "norm",
    "vector_norm",
    "matrix_norm",
    "inv",
    "det",
    "slogdet",
    "solve",
    "cholesky",
    "svd",
    "svdvals",
    "matmul",
    "vecdot",
]
