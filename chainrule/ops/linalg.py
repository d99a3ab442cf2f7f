"""Linear algebra: the matmul family, einsum, and the ops behind ``chainrule.linalg``.

Every backward rule here is written with the ops of this module, so second derivatives work:

* matmul: two more matmuls (the engine sums batch dimensions broadcasting added);
* einsum: the gradient of each operand is another einsum of the output gradient with the
  other operands (``Einsum.backward`` explains repeated and summed-away labels);
* inv: ``-A^-T g A^-T``; det: ``g det A^-T``; solve: one more solve with ``A^T``;
  cholesky: ``L^-T Phi(L^T g) L^-1``, symmetrised; svd: the classical formulas with
  ``F_ij = 1 / (s_j^2 - s_i^2)``.

All of them accept batches of matrices in the leading dimensions.
"""

from __future__ import annotations

import math
import string
from collections import Counter

from chainrule import backend
from chainrule.backend import array_module, result_type
from chainrule.ops import reduce as _reduce
from chainrule.ops.elementwise import cast, log, where
from chainrule.ops.movement import broadcast_to, permute, reshape, transpose
from chainrule.ops.reduce import amax, amin, return_type, vector_norm
from chainrule.tensor import Node, Tensor, wrap_dim

__all__ = [
    "matmul",
    "mm",
    "bmm",
    "dot",
    "vdot",
    "inner",
    "outer",
    "ger",
    "tensordot",
    "einsum",
    "det",
    "logdet",
    "slogdet",
    "inverse",
]

_INF = math.inf


def _mT(x: Tensor) -> Tensor:
    return transpose(x, -1, -2)


def _const(arr) -> Tensor:
    return Tensor._make(arr)


def _shape_str(x: Tensor) -> str:
    return f"{list(x._data.shape)}"


# ---------------------------------------------------------------------------------------------
# matmul family
# ---------------------------------------------------------------------------------------------


class Matmul(Node):
    """``a @ b``; the gradients are ``g @ b^T`` and ``a^T @ g`` (1-D operands as vectors)."""

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
            if a.ndim == 2 and b.ndim == 2 and _transposed_layout(b):
                # b is a transposed view (``x @ w.T``): build the gradient in w's own layout,
                # so that w.grad is a plain contiguous array and needs no strided copy
                gb = _mT(matmul(_mT(g), a))
            else:
                gb = matmul(_mT(a), g)
        return ga, gb


def _transposed_layout(t: Tensor) -> bool:
    flags = t._data.flags
    return flags.f_contiguous and not flags.c_contiguous


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


def dot(input: Tensor, other: Tensor) -> Tensor:
    """Inner product of two 1-D tensors of the same size and dtype.

    >>> import chainrule as cr
    >>> cr.dot(cr.tensor([1.0, 2.0]), cr.tensor([3.0, 4.0]))
    tensor(11.)
    """
    return _dot(input, other, "dot")


def _dot(a: Tensor, b: Tensor, op: str) -> Tensor:
    if a._data.ndim != 1 or b._data.ndim != 1:
        raise RuntimeError(
            f"{op}: 1D tensors expected, but got {a._data.ndim}D and {b._data.ndim}D tensors "
            f"(shapes {_shape_str(a)} and {_shape_str(b)})"
        )
    if a._data.shape != b._data.shape:
        raise RuntimeError(
            f"{op}: inconsistent tensor size, expected tensor {_shape_str(a)} and src "
            f"{_shape_str(b)} to have the same number of elements, but got "
            f"{a._data.shape[0]} and {b._data.shape[0]} elements respectively"
        )
    if a._data.dtype != b._data.dtype:
        raise RuntimeError(
            f"{op}: expected both vectors to have same dtype, but found {a.dtype.name} and "
            f"{b.dtype.name}"
        )
    return Matmul.apply(a, b)


def vdot(input: Tensor, other: Tensor) -> Tensor:
    """``dot`` with the first argument conjugated: the same as :func:`dot` for real tensors."""
    return _dot(input, other, "vdot")


def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """Outer product ``input[i] * vec2[j]`` of two 1-D tensors.

    >>> import chainrule as cr
    >>> cr.outer(cr.tensor([1.0, 2.0]), cr.tensor([1.0, 10.0, 100.0]))
    tensor([[  1.,  10., 100.],
            [  2.,  20., 200.]])
    """
    for name, x in (("self", input), ("vec2", vec2)):
        if x._data.ndim != 1:
            raise RuntimeError(
                f"outer: Expected 1-D argument {name}, but got {x._data.ndim}-D (shape "
                f"{_shape_str(x)})"
            )
    return reshape(input, (-1, 1)) * vec2


ger = outer


def vecdot(x: Tensor, y: Tensor, *, dim: int = -1) -> Tensor:
    """``linalg.vecdot``: the dot product of vectors along ``dim``, broadcasting the rest."""
    return _reduce.sum(x * y, dim)


def tensordot(a: Tensor, b: Tensor, dims=2) -> Tensor:
    """Contract ``dims`` dimensions: the last ``dims`` of ``a`` with the first ``dims`` of
    ``b`` (an int), or the listed pairs (``([1, 0], [0, 1])``).

    >>> import chainrule as cr
    >>> cr.tensordot(cr.ones(2, 3, 4), cr.ones(3, 4, 5), dims=2).shape
    chainrule.Size([2, 5])
    """
    na, nb = a._data.ndim, b._data.ndim
    if isinstance(dims, int):
        if dims < 0 or dims > na or dims > nb:
            raise RuntimeError(
                f"tensordot: dims ({dims}) must be between 0 and the number of dimensions of "
                f"both tensors (shapes {_shape_str(a)} and {_shape_str(b)})"
            )
        da, db = list(range(na - dims, na)), list(range(dims))
    else:
        da, db = dims
        da = [da] if isinstance(da, int) else list(da)
        db = [db] if isinstance(db, int) else list(db)
        if len(da) != len(db):
            raise RuntimeError(
                f"tensordot: both dimension lists should have the same length, got {da} and {db}"
            )
        da = [wrap_dim(d, na, "tensordot") for d in da]
        db = [wrap_dim(d, nb, "tensordot") for d in db]
    letters = iter(_LETTERS)
    sa = [next(letters) for _ in range(na)]
    sb = [next(letters) for _ in range(nb)]
    for i, j in zip(da, db):
        if a._data.shape[i] != b._data.shape[j]:
            raise RuntimeError(
                f"tensordot: contracted dimensions need to match, but first has size "
                f"{a._data.shape[i]} in dim {i} and second has size {b._data.shape[j]} in dim "
                f"{j} (shapes {_shape_str(a)} and {_shape_str(b)})"
            )
        sb[j] = sa[i]
    out = [c for i, c in enumerate(sa) if i not in da] + [
        c for j, c in enumerate(sb) if j not in db
    ]
    a, b = _einsum_operands([a, b], "tensordot")
    return _einsum_core(("".join(sa), "".join(sb)), "".join(out), [a, b])


def inner(input: Tensor, other: Tensor) -> Tensor:
    """Sum of products over the last dimension of both (a product when either is 0-d)."""
    if input._data.ndim == 0 or other._data.ndim == 0:
        return input * other
    return tensordot(input, other, ([-1], [-1]))


# ---------------------------------------------------------------------------------------------
# einsum
# ---------------------------------------------------------------------------------------------

# labels in ASCII order, so that sorting them gives PyTorch's implicit output order
_LETTERS = string.ascii_uppercase + string.ascii_lowercase


class Einsum(Node):
    """``numpy.einsum`` over explicit, ellipsis-free subscripts (``einsum`` normalises first).

    The gradient of operand k is the einsum of the output gradient with the other operands,
    producing k's subscripts. Two cases need care:

    * a label repeated in operand k (``'ii->i'``): an output may not repeat labels, so the
      second occurrence gets a fresh label tied to the first by an identity matrix;
    * a label only operand k carries (``'ij->i'`` sums j away): the gradient is constant
      along it, so it is computed without that label and broadcast back.

    Being einsums themselves, gradients have gradients (any order).
    """

    __slots__ = ("subs", "out")
    saves: tuple = ()  # per arity: see _einsum_node

    def forward(self, xp, *arrays, subs=(), out=""):
        self.subs, self.out = subs, out
        eq = f"{','.join(subs)}->{out}"
        big = len(arrays) > 1 and sum(a.size for a in arrays) > 4096
        # optimize=True lets NumPy use BLAS (tensordot) for large contractions; its planning
        # costs more than it saves on small inputs
        return xp.asarray(xp.einsum(eq, *arrays, optimize=bool(big)))

    def backward(self, g, *ops):
        used = set("".join(self.subs) + self.out)
        sizes = {}
        for sub, x in zip(self.subs, ops):
            sizes.update(zip(sub, x._data.shape))
        grads = []
        for k, x in enumerate(ops):
            if not self.edges[k]:
                grads.append(None)
                continue
            subs = [self.out] + [s for j, s in enumerate(self.subs) if j != k]
            operands = [g] + [o for j, o in enumerate(ops) if j != k]
            fresh = (c for c in _LETTERS if c not in used)
            target, seen = [], set()
            xp = array_module(g._data)
            for c in self.subs[k]:
                if c in seen:  # a repeated label: a fresh one, tied to c by an identity
                    f = next(fresh)
                    target.append(f)
                    subs.append(c + f)
                    operands.append(_const(xp.eye(sizes[c], dtype=g._data.dtype)))
                else:
                    seen.add(c)
                    target.append(c)
            carried = set("".join(subs))
            kept = "".join(c for c in target if c in carried)
            grad = _einsum_core(tuple(subs), kept, operands)
            if len(kept) != len(target):  # labels summed away in the forward: broadcast back
                shape = tuple(sizes[c] if c in carried else 1 for c in target)
                grad = broadcast_to(reshape(grad, shape), x._data.shape)
            grads.append(grad)
        return tuple(grads)


_EINSUM_NODES: dict = {}


def _einsum_node(n: int) -> type:
    """The ``Einsum`` primitive for ``n`` operands (all saved for the backward)."""
    cls = _EINSUM_NODES.get(n)
    if cls is None:
        cls = type("Einsum", (Einsum,), {"__slots__": (), "saves": tuple(range(n))})
        _EINSUM_NODES[n] = cls
    return cls


def _einsum_core(subs: tuple, out: str, operands: list) -> Tensor:
    return _einsum_node(len(operands)).apply(*operands, subs=tuple(subs), out=out)


def _einsum_operands(operands: list, op: str) -> list:
    operands = [x if isinstance(x, Tensor) else Tensor(x) for x in operands]
    dtypes = {x._data.dtype for x in operands}
    if len(dtypes) > 1:
        names = ", ".join(backend.from_np(x._data.dtype).name for x in operands)
        raise RuntimeError(f"{op}(): expected all operands to have the same dtype, got {names}")
    return operands


def _parse_einsum(equation: str, shapes: list) -> tuple:
    """Subscripts per operand and for the output, with ``...`` replaced by unused letters."""
    eq = equation.replace(" ", "")
    where_ = f"einsum(): equation '{equation}'"
    lhs, arrow, rhs = eq.partition("->")
    if "->" in rhs:
        raise RuntimeError(f"{where_} has more than one '->'")
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise RuntimeError(
            f"{where_} has {len(terms)} operand subscript(s) but {len(shapes)} operand(s) "
            f"were given (shapes {[list(s) for s in shapes]})"
        )
    for t in terms + [rhs]:
        rest = t.replace("...", "", 1)
        bad = [c for c in rest if c not in _LETTERS]
        if bad:
            raise RuntimeError(
                f"{where_}: invalid subscript {bad[0]!r}; subscripts must be letters [a-zA-Z] "
                "with at most one '...' per operand"
            )
    used = set(c for c in eq if c in _LETTERS)
    free = [c for c in _LETTERS if c not in used]
    n_ell = []
    for i, (t, shape) in enumerate(zip(terms, shapes)):
        named = len(t) - 3 if "..." in t else len(t)
        if ("..." in t and named > len(shape)) or ("..." not in t and named != len(shape)):
            raise RuntimeError(
                f"{where_}: the subscripts {t!r} of operand {i} name {named} dimension(s) but "
                f"the operand has shape {list(shape)}"
            )
        n_ell.append(len(shape) - named if "..." in t else 0)
    n = max(n_ell, default=0)
    if n > len(free):
        raise RuntimeError(f"{where_}: too many dimensions for the available labels")
    ell = "".join(free[:n])
    subs = [t.replace("...", ell[n - k :]) for t, k in zip(terms, n_ell)]
    if not arrow:
        counts = Counter("".join(t.replace("...", "") for t in terms))
        named_once = sorted(c for c, k in counts.items() if k == 1)
        out = (ell if any("..." in t for t in terms) else "") + "".join(named_once)
    else:
        out = rhs.replace("...", ell)
        for c in out:
            if out.count(c) > 1:
                raise RuntimeError(f"{where_}: output subscript {c!r} appears more than once")
            if not any(c in s for s in subs):
                raise RuntimeError(
                    f"{where_}: output subscript {c!r} does not appear in the equation for any "
                    "input operand"
                )
    return subs, out


def einsum(equation, *operands) -> Tensor:
    """Sum of products over labelled dimensions, as in ``numpy.einsum`` and ``torch.einsum``.

    Supports explicit (``'ij,jk->ik'``) and implicit (``'ij,jk'``) outputs, ``...`` for
    broadcast batch dimensions, repeated labels (``'ii->i'`` is the diagonal, ``'ii'`` the
    trace), size-1 dimensions broadcasting against a label's size, the list form
    ``einsum(eq, [a, b])`` and the sublist form ``einsum(a, [0, 1], b, [1, 2], [0, 2])``.

    >>> import chainrule as cr
    >>> a, b = cr.ones(2, 3), cr.ones(3, 4)
    >>> cr.einsum('ij,jk->ik', a, b).shape
    chainrule.Size([2, 4])
    >>> cr.einsum('ii', cr.eye(3))
    tensor(3.)
    """
    if not isinstance(equation, str):
        equation, operands = _sublist_equation(equation, *operands)
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    operands = _einsum_operands(list(operands), "einsum")
    subs, out = _parse_einsum(equation, [x._data.shape for x in operands])
    # a label's size is the size of its non-1 dimensions; size-1 dimensions broadcast against
    # it, which is the same as dropping them from their operand
    sizes: dict = {}
    for i, (sub, x) in enumerate(zip(subs, operands)):
        own: dict = {}
        for c, s in zip(sub, x._data.shape):
            if own.setdefault(c, s) != s:
                raise RuntimeError(
                    f"einsum(): subscript {c!r} is repeated for operand {i} but the sizes "
                    f"don't match, {own[c]} != {s} (shape {_shape_str(x)})"
                )
            if s != 1:
                if sizes.get(c, 1) not in (1, s):
                    raise RuntimeError(
                        f"einsum(): operands do not broadcast with remapped shapes in equation "
                        f"'{equation}': subscript {c!r} has size {sizes[c]} and {s} (operand "
                        f"shapes {[list(o._data.shape) for o in operands]})"
                    )
                sizes[c] = s
            else:
                sizes.setdefault(c, 1)
    final_subs, final_ops = [], []
    for sub, x in zip(subs, operands):
        keep = [i for i, c in enumerate(sub) if not (x._data.shape[i] == 1 and sizes[c] > 1)]
        if len(keep) != len(sub):
            x = reshape(x, tuple(x._data.shape[i] for i in keep))
            sub = "".join(sub[i] for i in keep)
        final_subs.append(sub)
        final_ops.append(x)
    return _einsum_core(tuple(final_subs), out, final_ops)


def _sublist_equation(*args) -> tuple:
    """``(a, [0, 1], b, [1, 2], [0, 2])`` as an equation string and the operands."""
    args = list(args)
    out = None
    if len(args) % 2 == 1:
        out = args.pop()
    operands, terms = args[0::2], args[1::2]

    def spell(sublist) -> str:
        text = ""
        for label in sublist:
            if label is Ellipsis:
                text += "..."
            elif isinstance(label, int) and 0 <= label < len(_LETTERS):
                text += _LETTERS[label]
            else:
                raise RuntimeError(
                    f"einsum(): subscript in sublist format must be in range [0, "
                    f"{len(_LETTERS)}), got {label!r}"
                )
        return text

    eq = ",".join(spell(t) for t in terms)
    if out is not None:
        eq += "->" + spell(out)
    return eq, tuple(operands)


# ---------------------------------------------------------------------------------------------
# chainrule.linalg: inv, det, slogdet, solve, cholesky, svd, norms
# ---------------------------------------------------------------------------------------------


def _square(a: Tensor, op: str, name: str = "A") -> None:
    shape = a._data.shape
    if len(shape) < 2:
        raise RuntimeError(
            f"{op}: The input tensor {name} must have at least 2 dimensions (got shape "
            f"{list(shape)})."
        )
    if shape[-1] != shape[-2]:
        raise RuntimeError(
            f"{op}: {name} must be batches of square matrices, but they are {shape[-2]} by "
            f"{shape[-1]} matrices (shape {list(shape)})"
        )


def _float(a: Tensor, op: str) -> None:
    if a._data.dtype not in backend.FLOAT_NP_DTYPES:
        raise RuntimeError(
            f"{op}: Expected a floating point tensor as input. Got {a.dtype.name} (shape "
            f"{_shape_str(a)})"
        )


def _linalg_error(exc: Exception, op: str, what: str, *tensors: Tensor) -> RuntimeError:
    shapes = " and ".join(f"{_shape_str(t)} {t.dtype.name}" for t in tensors)
    return RuntimeError(f"{op}: {what} (input {shapes}; {exc})")


def _linalg_errors():
    return backend.np.linalg.LinAlgError


class Inv(Node):
    """Matrix inverse; the gradient is ``-A^-T g A^-T`` (from ``d(A^-1) = -A^-1 dA A^-1``)."""

    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        return xp.linalg.inv(a)

    def backward(self, g, out):
        out_t = _mT(out)
        return -matmul(matmul(out_t, g), out_t)


def inv(A: Tensor) -> Tensor:  # noqa: N803 - PyTorch's argument names
    """The inverse of each square matrix in ``A`` (batched over leading dimensions).

    >>> import chainrule as cr
    >>> cr.linalg.inv(cr.tensor([[2.0, 0.0], [0.0, 4.0]]))
    tensor([[0.5000, 0.0000],
            [0.0000, 0.2500]])
    """
    _square(A, "linalg.inv")
    _float(A, "linalg.inv")
    try:
        return Inv.apply(A)
    except _linalg_errors() as exc:
        raise _linalg_error(
            exc,
            "linalg.inv",
            "the inversion could not be completed because the input matrix is singular",
            A,
        ) from None


inverse = inv


class Det(Node):
    """Determinant; ``d det(A) / dA = det(A) A^-T``.

    Where ``det(A) == 0`` (singular) the gradient is 0, as PyTorch computes it.
    """

    __slots__ = ()
    saves = (0,)
    save_output = True

    def forward(self, xp, a):
        return xp.asarray(xp.linalg.det(a))

    def backward(self, g, a, out):
        singular = out == 0
        if bool(singular._data.any()):  # keep inv() defined; the factor det = 0 zeroes them
            eye = _const(array_module(a._data).eye(a._data.shape[-1], dtype=a._data.dtype))
            a = where(reshape(singular, (*singular.shape, 1, 1)), eye, a)
        scale = reshape(g * out, (*out.shape, 1, 1))
        return scale * _mT(inv(a))


def det(A: Tensor) -> Tensor:  # noqa: N803 - PyTorch's argument names
    """The determinant of each square matrix in ``A`` (batched).

    >>> import chainrule as cr
    >>> cr.linalg.det(cr.tensor([[2.0, 1.0], [1.0, 3.0]]))
    tensor(5.)
    """
    _square(A, "linalg.det")
    _float(A, "linalg.det")
    return Det.apply(A)


class LogAbsDet(Node):
    """``log |det A|``; the gradient is ``A^-T`` (``-inf`` and no gradient when singular)."""

    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        return xp.asarray(xp.linalg.slogdet(a)[1])

    def backward(self, g, a):
        return reshape(g, (*g.shape, 1, 1)) * _mT(inv(a))


_SlogdetResult = return_type("slogdet", ("sign", "logabsdet"))


def slogdet(A: Tensor):  # noqa: N803 - PyTorch's argument names
    """``(sign, logabsdet)`` with ``det(A) = sign * exp(logabsdet)``, accurate when the
    determinant would overflow or underflow. Only ``logabsdet`` is differentiable."""
    _square(A, "linalg.slogdet")
    _float(A, "linalg.slogdet")
    xp = array_module(A._data)
    sign = _const(xp.asarray(xp.linalg.slogdet(A._data)[0]).astype(A._data.dtype, copy=False))
    return _SlogdetResult(sign, LogAbsDet.apply(A))


def logdet(A: Tensor) -> Tensor:  # noqa: N803 - PyTorch's argument names
    """``log(det(A))``: NaN where the determinant is negative, ``-inf`` where it is 0."""
    sign, logabs = slogdet(A)
    with backend.errstate(all="ignore"):
        return logabs + log(sign)


class Solve(Node):
    """``X = A^-1 B`` for matrices ``B`` (..., n, k); batch dimensions broadcast.

    ``gB = A^-T g`` (one more solve) and ``gA = -gB X^T``.
    """

    __slots__ = ()
    saves = (0,)
    save_output = True

    def forward(self, xp, a, b):
        return xp.linalg.solve(a, b)

    def backward(self, g, a, x):
        gb = Solve.apply(_mT(a), g)
        ga = -matmul(gb, _mT(x)) if self.edges[0] else None
        return ga, (gb if self.edges[1] else None)


def solve(A: Tensor, B: Tensor, *, left: bool = True) -> Tensor:  # noqa: N803 - PyTorch's argument names
    """The solution ``X`` of ``A X = B`` (``X A = B`` when ``left=False``), batched.

    ``B`` is a batch of vectors when it has shape (n,) or the shape of ``A`` without its last
    dimension; otherwise a batch of matrices (..., n, k). Batch dimensions broadcast.

    >>> import chainrule as cr
    >>> cr.linalg.solve(cr.tensor([[2.0, 0.0], [0.0, 4.0]]), cr.tensor([2.0, 2.0]))
    tensor([1.0000, 0.5000])
    """
    _square(A, "linalg.solve")
    _float(A, "linalg.solve")
    if A._data.dtype != B._data.dtype:
        raise RuntimeError(
            f"linalg.solve: Expected A and B to have the same dtype, but found A of type "
            f"{A.dtype.name} and B of type {B.dtype.name} instead"
        )
    n = A._data.shape[-1]
    a_shape, b_shape = A._data.shape, B._data.shape
    vector = B._data.ndim == 1 or (B._data.ndim == A._data.ndim - 1 and b_shape == a_shape[:-1])
    if not left:
        if vector:
            raise RuntimeError(
                "linalg.solve: Vector broadcasting of the left hand side is not "
                "supported for left=False. In this case linalg.solve is "
                "equivalent to B / A.squeeze(-1)"
            )
        return _mT(solve(_mT(A), _mT(B)))
    rows = b_shape[-1] if vector else (b_shape[-2] if B._data.ndim >= 2 else None)
    if rows != n:
        raise RuntimeError(
            f"linalg.solve: Incompatible shapes of A and B for the equation AX = B "
            f"({'x'.join(map(str, a_shape))} and {'x'.join(map(str, b_shape))})"
        )
    b = reshape(B, (*b_shape, 1)) if vector else B
    try:
        x = Solve.apply(A, b)
    except _linalg_errors() as exc:
        raise _linalg_error(
            exc, "linalg.solve", "The solver failed because the input matrix is singular", A, B
        ) from None
    except ValueError as exc:  # batch dimensions that do not broadcast
        raise RuntimeError(
            f"linalg.solve: the batch dimensions of A {list(a_shape)} and B {list(b_shape)} "
            f"do not broadcast ({exc})"
        ) from None
    return reshape(x, x._data.shape[:-1]) if vector else x


class Cholesky(Node):
    """Lower-triangular ``L`` with ``L L^T = A`` (only the lower triangle of A is read).

    Derivation of the gradient: from ``dA = dL L^T + L dL^T``,
    ``dL = L Phi(L^-1 dA L^-T)`` where Phi keeps the strictly lower triangle and halves the
    diagonal. Phi is self-adjoint for the elementwise inner product, so
    ``<gL, dL> = <L^-T Phi(L^T gL) L^-1, dA>``. As A is symmetric only the symmetric part of
    that matrix matters; it is returned symmetrised, as in PyTorch.
    """

    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        return xp.linalg.cholesky(a)

    def backward(self, g, chol):
        xp = array_module(chol._data)
        n = chol._data.shape[-1]
        phi = _const((xp.tril(xp.ones((n, n))) - 0.5 * xp.eye(n)).astype(chol._data.dtype))
        lt = _mT(chol)
        p = matmul(lt, g) * phi
        ga = _mT(Solve.apply(lt, _mT(Solve.apply(lt, p))))  # L^-T P L^-1
        return (ga + _mT(ga)) * 0.5


def cholesky(A: Tensor, *, upper: bool = False) -> Tensor:  # noqa: N803 - PyTorch's argument names
    """The Cholesky factor of each symmetric positive-definite matrix in ``A``: lower
    triangular ``L`` with ``A = L L^T`` (``L^T`` when ``upper=True``).

    >>> import chainrule as cr
    >>> cr.linalg.cholesky(cr.tensor([[4.0, 2.0], [2.0, 5.0]]))
    tensor([[2., 0.],
            [1., 2.]])
    """
    _square(A, "linalg.cholesky")
    _float(A, "linalg.cholesky")
    try:
        chol = Cholesky.apply(A)
    except _linalg_errors() as exc:
        raise _linalg_error(
            exc,
            "linalg.cholesky",
            "The factorization could not be completed because the input is not positive-definite",
            A,
        ) from None
    return _mT(chol) if upper else chol


class Svd(Node):
    """Reduced SVD ``A = U diag(S) Vh`` (k = min(m, n) singular values, descending).

    The gradient for real matrices, with ``F_ij = 1 / (s_j^2 - s_i^2)`` (0 on the diagonal),
    ``J = U^T gU`` and ``K = V^T gV`` (``o`` is the elementwise product)::

        gA = U [diag(gS) + (F o (J - J^T)) S + S (F o (K - K^T))] Vh
             + (I - U U^T) gU S^-1 Vh + U S^-1 gV^T (I - V Vh)

    It is undefined for repeated singular values (F is infinite), as in PyTorch.
    """

    __slots__ = ()
    saves = (0,)
    n_outputs = 3

    def forward(self, xp, a):
        u, s, vh = xp.linalg.svd(a, full_matrices=False)
        return u, s, vh

    def backward(self, grads, a):
        g_u, g_s, g_vh = grads
        u, s, vh = Svd.apply(a)  # recomputed as ops, so that second derivatives see them
        m, n = a._data.shape[-2], a._data.shape[-1]
        k = s._data.shape[-1]
        xp = array_module(a._data)
        dt = a._data.dtype
        if g_s is None:
            g_s = s * 0.0
        inner = _diag_embed(g_s)
        if g_u is not None or g_vh is not None:
            s_row = reshape(s, (*s.shape[:-1], 1, k))
            s_col = reshape(s, (*s.shape, 1))
            off = _const(1 - xp.eye(k, dtype=dt))
            diff = s_row * s_row - s_col * s_col  # s_j^2 - s_i^2 at [i, j]
            f = off / where(_const(xp.eye(k, dtype=bool)), 1.0, diff)
            inv_s = 1.0 / s
            if g_u is not None:
                j = matmul(_mT(u), g_u)
                inner = inner + f * (j - _mT(j)) * s_row
            if g_vh is not None:
                g_v = _mT(g_vh)
                v = _mT(vh)
                kk = matmul(vh, g_v)
                inner = inner + s_col * (f * (kk - _mT(kk)))
        out = matmul(matmul(u, inner), vh)
        if g_u is not None and m > k:
            proj = g_u - matmul(u, matmul(_mT(u), g_u))
            out = out + matmul(proj * reshape(inv_s, (*inv_s.shape[:-1], 1, k)), vh)
        if g_vh is not None and n > k:
            proj = g_v - matmul(v, matmul(vh, g_v))
            out = out + matmul(u * reshape(inv_s, (*inv_s.shape[:-1], 1, k)), _mT(proj))
        return out


def _diag_embed(d: Tensor) -> Tensor:
    """Batched diagonal matrices with ``d`` on the diagonal."""
    k = d._data.shape[-1]
    eye = _const(array_module(d._data).eye(k, dtype=d._data.dtype))
    return reshape(d, (*d.shape, 1)) * eye


_SvdResult = return_type("svd", ("U", "S", "Vh"))


def svd(A: Tensor, full_matrices: bool = True):  # noqa: N803 - PyTorch's argument names
    """``(U, S, Vh)`` with ``A = U diag(S) Vh``, batched; differentiable for
    ``full_matrices=False`` (the reduced factorisation), which is what gradients need."""
    _float(A, "linalg.svd")
    if A._data.ndim < 2:
        raise RuntimeError(
            f"linalg.svd: The input tensor A must have at least 2 dimensions "
            f"(got shape {_shape_str(A)})."
        )
    if full_matrices:
        if A.requires_grad:
            raise RuntimeError(
                "linalg.svd: gradients are only supported for full_matrices=False "
                f"(input shape {_shape_str(A)})"
            )
        xp = array_module(A._data)
        return _SvdResult(*(_const(r) for r in xp.linalg.svd(A._data, full_matrices=True)))
    return _SvdResult(*Svd.apply(A))


def svdvals(A: Tensor) -> Tensor:  # noqa: N803 - PyTorch's argument names
    """The singular values of each matrix, in descending order (gradient ``U diag(g) Vh``)."""
    _float(A, "linalg.svdvals")
    if A._data.ndim < 2:
        raise RuntimeError(
            f"linalg.svdvals: The input tensor A must have at least 2 "
            f"dimensions (got shape {_shape_str(A)})."
        )
    return Svd.apply(A)[1]


def _matrix_dims(a: Tensor, dim, op: str) -> tuple:
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise RuntimeError(f"{op}: dim must be a 2-tuple. Got {dim}")
    nd = a._data.ndim
    if nd < 2:
        raise RuntimeError(
            f"{op}: The input tensor A must have at least 2 dimensions (got shape {_shape_str(a)})."
        )
    d0, d1 = wrap_dim(dim[0], nd, op), wrap_dim(dim[1], nd, op)
    if d0 == d1:
        raise RuntimeError(f"{op}: dims must be different. Got ({dim[0]}, {dim[1]})")
    return d0, d1


def matrix_norm(
    A: Tensor,  # noqa: N803 - PyTorch's argument name
    ord="fro",
    dim=(-2, -1),
    keepdim: bool = False,
    *,
    dtype=None,
) -> Tensor:
    """A matrix norm over the two dimensions ``dim``.

    ``ord``: ``'fro'`` (Frobenius), ``'nuc'`` (sum of singular values), ``inf``/``-inf``
    (max/min absolute row sum), ``1``/``-1`` (max/min absolute column sum), ``2``/``-2``
    (largest/smallest singular value).
    """
    op = "linalg.matrix_norm"
    a = A if dtype is None else cast(A, dtype)
    _float(a, op)
    d0, d1 = _matrix_dims(a, dim, op)
    if ord == "fro":
        return vector_norm(a, 2, (d0, d1), keepdim)
    if ord in ("nuc", 2, -2):
        rest = [d for d in range(a._data.ndim) if d not in (d0, d1)]
        s = svdvals(permute(a, (*rest, d0, d1)))
        if ord == "nuc":
            out = _reduce.sum(s, -1)
        else:
            out = amax(s, -1) if ord == 2 else amin(s, -1)
        if keepdim:
            out = reshape(out, tuple(1 if i in (d0, d1) else n for i, n in enumerate(a.shape)))
        return out
    if ord in (1, -1, _INF, -_INF):
        summed, across = (d0, d1) if ord in (1, -1) else (d1, d0)
        sums = vector_norm(a, 1, summed, keepdim=True)
        pick = amax if ord in (1, _INF) else amin
        out = pick(sums, across, keepdim=True)
        if not keepdim:
            out = reshape(out, tuple(n for i, n in enumerate(out.shape) if i not in (d0, d1)))
        return out
    raise RuntimeError(f"{op}: Order {ord} not supported.")


def linalg_norm(
    A: Tensor,  # noqa: N803 - PyTorch's argument name
    ord=None,
    dim=None,
    keepdim: bool = False,
    *,
    dtype=None,
) -> Tensor:
    """``chainrule.linalg.norm``: a vector norm or a matrix norm, chosen like PyTorch.

    With ``dim`` an int (or one-element tuple): the vector ``ord``-norm (2 by default). With
    ``dim`` a 2-tuple: the matrix ``ord``-norm (Frobenius by default). Without ``dim``: the
    2-norm of all elements when ``ord`` is None, else the vector norm of a 1-D input or the
    matrix norm of a 2-D input.

    >>> import chainrule as cr
    >>> cr.linalg.norm(cr.tensor([[1.0, 2.0], [2.0, 4.0]]))
    tensor(5.)
    """
    if isinstance(dim, int):
        dim = (dim,)
    if dim is None:
        if ord is None:
            return vector_norm(A, 2, None, keepdim, dtype=dtype)
        if A._data.ndim == 1:
            dim = (0,)
        elif A._data.ndim == 2:
            dim = (0, 1)
        else:
            raise RuntimeError(
                f"linalg.norm: If dim is not specified but ord is, the input must be 1D or 2D. "
                f"Got {A._data.ndim}D (shape {_shape_str(A)})."
            )
    dim = tuple(dim)
    if len(dim) == 1:
        if isinstance(ord, str):
            raise RuntimeError(
                f"linalg.norm: ord {ord!r} is a matrix norm but dim has one dimension"
            )
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if len(dim) == 2:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    raise RuntimeError(f"linalg.norm: If dim is specified, it must be of length 1 or 2. Got {dim}")


# Tensor methods (bound in ops/__init__.py)
METHODS = {
    "matmul": matmul,
    "mm": mm,
    "bmm": bmm,
    "dot": dot,
    "vdot": vdot,
    "inner": inner,
    "outer": outer,
    "ger": ger,
    "det": det,
    "logdet": logdet,
    "slogdet": slogdet,
    "inverse": inverse,
}
