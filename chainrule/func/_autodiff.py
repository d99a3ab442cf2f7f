"""``grad``, ``vjp``, ``jvp``, ``jacrev``, ``jacfwd``, ``hessian`` on top of the tape engine.

Each transform returns a function. When called it

1. *lifts* the differentiated arguments: a tensor that nothing outside tracks becomes a fresh
   leaf (``detach().requires_grad_()``); a tensor that an enclosing computation tracks (an
   outer transform, or a model parameter) gets a differentiable alias instead, so the
   result stays connected to it and transforms nest (``grad(grad(f))``);
2. runs the user's function with grad recording on;
3. asks the engine for vector-Jacobian products (``autograd.grad``), building a graph of them
   whenever grad mode is on;
4. detaches every result whose graph reaches no leaf other than the fresh ones made in
   step 1: those graphs can never be used, and the caller gets plain tensors, as from
   ``torch.func``.

Forward mode (``jvp``, ``jacfwd``) uses the double-vjp identity: ``g(u) = J^T u`` is linear in
``u``, so differentiating ``g`` with respect to ``u`` along ``v`` gives ``J v``. It needs only
reverse mode, at the cost of one extra backward pass, and works for every op whose backward
rule is differentiable (all of chainrule's are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chainrule import backend, ops
from chainrule.autograd import engine
from chainrule.func import _pytree
from chainrule.ops import movement
from chainrule.tensor import AccumulateGrad, Tensor, _edge, modes

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian"]


# ---------------------------------------------------------------------------------------------
# shared machinery
# ---------------------------------------------------------------------------------------------


class _Lifted:
    """The differentiated arguments of one call: their leaves, structure and fresh leaves."""

    __slots__ = ("args", "leaves", "specs", "own")

    def __init__(self, args: tuple, argnums: tuple, api: str):
        self.args = list(args)
        self.leaves: list[Tensor] = []  # every differentiated tensor, in argnums order
        self.specs: list = []  # (spec, number of leaves) per argnum
        self.own: set = set()  # AccumulateGrad nodes of the fresh leaves made here
        for i in argnums:
            leaves, spec = _pytree.flatten(self.args[i])
            lifted = [self._lift(x, api) for x in leaves]
            self.args[i] = _pytree.unflatten(spec, lifted)
            self.leaves += lifted
            self.specs.append((spec, len(lifted)))

    def _lift(self, x: Any, api: str) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(
                f"{api}: expected the differentiated arguments to be tensors (or tuples, lists, "
                f"dicts of tensors), got {type(x).__name__}"
            )
        if x._data.dtype not in backend.FLOAT_NP_DTYPES:
            raise RuntimeError(
                f"{api}: only floating point tensors can be differentiated, got {x.dtype}"
            )
        if x.requires_grad and modes.grad_enabled:
            # tracked from outside: an alias keeps the connection (and a distinct node to
            # differentiate with respect to)
            return movement.reshape(x, x._data.shape)
        leaf = x.detach().requires_grad_(True)
        self.own.add(_edge(leaf)[0])
        return leaf

    def regroup(self, flat: list) -> list:
        """Per argnum, the tree of ``flat`` values (one per leaf, in ``leaves`` order)."""
        out, start = [], 0
        for spec, n in self.specs:
            out.append(_pytree.unflatten(spec, flat[start : start + n]))
            start += n
        return out


def _as_argnums(argnums, n_args: int, api: str) -> tuple[tuple, bool]:
    single = isinstance(argnums, int)
    nums = (argnums,) if single else tuple(argnums)
    if not nums:
        raise RuntimeError(f"{api}: argnums must be non-empty")
    out = []
    for a in nums:
        if not isinstance(a, int):
            raise RuntimeError(f"{api}: argnums must be int or Tuple[int, ...], got {argnums!r}")
        if not -n_args <= a < n_args:
            raise RuntimeError(
                f"{api}: Got argnums={a}, but only {n_args} positional inputs were given"
            )
        out.append(a % n_args)
    if len(set(out)) != len(out):
        raise RuntimeError(f"{api}: argnums {argnums!r} contains duplicates")
    return tuple(out), single


def _call(func: Callable, args, kwargs, has_aux: bool, api: str):
    """Run ``func`` with grad recording on; split off the auxiliary output."""
    previous = modes.grad_enabled
    modes.grad_enabled = True
    try:
        out = func(*args, **kwargs)
    finally:
        modes.grad_enabled = previous
    if has_aux:
        if not (isinstance(out, tuple) and len(out) == 2):
            raise RuntimeError(
                f"{api}: output of function with has_aux=True must be a tuple (output, aux)"
            )
        return out
    return out, None


def _zeros_like(t: Tensor) -> Tensor:
    return Tensor._make(backend.array_module(t._data).zeros_like(t._data))


def _vjp(outputs: list, cotangents: list, inputs: list, create_graph: bool) -> list:
    """``sum_k cotangent_k . d(output_k)/d(input)`` per input; zeros where unconnected."""
    pairs = [
        (o, c) for o, c in zip(outputs, cotangents) if isinstance(o, Tensor) and o.requires_grad
    ]
    if not pairs or not inputs:
        return [_zeros_like(x) for x in inputs]
    grads = engine.grad(
        [o for o, _ in pairs],
        inputs,
        [c for _, c in pairs],
        retain_graph=True,
        create_graph=create_graph,
        allow_unused=True,
    )
    return [_zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


def _reaches_other_leaves(t: Tensor, own: set) -> bool:
    """True when ``t``'s graph reaches a leaf that was not made by this transform."""
    if not t.requires_grad:
        return False
    if t.grad_fn is None:  # a leaf: one of ours, or one tracked from outside
        ref = t._accumulator
        return ref is None or ref() not in own
    stack, seen = [t.grad_fn], set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        if type(node) is AccumulateGrad:
            if node not in own:
                return True
            continue
        stack.extend(e[0] for e in node.edges if e is not None)
    return False


def _release(tree: Any, own: set) -> Any:
    """Detach the tensors of ``tree`` that only the transform's own fresh leaves feed."""
    leaves, spec = _pytree.flatten(tree)
    out = [
        x.detach() if isinstance(x, Tensor) and not _reaches_other_leaves(x, own) else x
        for x in leaves
    ]
    return _pytree.unflatten(spec, out)


def _check_cotangent(c: Any, like: Tensor, api: str, i: int) -> Tensor:
    if not isinstance(c, Tensor):
        raise RuntimeError(f"{api}: expected a tensor for cotangent {i}, got {type(c).__name__}")
    if tuple(c._data.shape) != tuple(like._data.shape):
        raise RuntimeError(
            f"{api}: Expected cotangent {i} to have the shape of the output, "
            f"{list(like._data.shape)}, got {list(c._data.shape)}"
        )
    return c


def _stack(tensors: list, dim: int, track: bool) -> Tensor:
    """Stack along a new dimension: differentiably when ``track``, else as plain arrays."""
    if track and any(t.requires_grad for t in tensors):
        return ops.stack(tensors, dim)
    xp = backend.array_module(tensors[0]._data)
    return Tensor._make(xp.stack([t._data for t in tensors], axis=dim))


def _basis(like: Tensor, j: int) -> Tensor:
    """A tensor shaped like ``like``: one at flat position ``j``, zero elsewhere."""
    xp = backend.array_module(like._data)
    e = xp.zeros(like._data.size, dtype=like._data.dtype)
    e[j] = 1
    return Tensor._make(e.reshape(like._data.shape))


# ---------------------------------------------------------------------------------------------
# grad, grad_and_value, vjp
# ---------------------------------------------------------------------------------------------


def grad_and_value(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """Like :func:`grad`, returning ``(gradient, value)`` (``(gradient, (value, aux))`` with
    ``has_aux``), so the function value comes free with its gradient.

    >>> import chainrule as cr
    >>> g, v = cr.func.grad_and_value(lambda x: (x ** 2).sum())(cr.tensor([1.0, 2.0]))
    >>> g, v
    (tensor([2., 4.]), tensor(5.))
    """
    api = "grad_and_value(f)(*args)"

    def wrapper(*args, **kwargs):
        nums, single = _as_argnums(argnums, len(args), api)
        lifted = _Lifted(args, nums, api)
        out, aux = _call(func, lifted.args, kwargs, has_aux, api)
        if not isinstance(out, Tensor):
            raise RuntimeError(f"{api}: Expected f(*args) to return a Tensor, got {type(out)}")
        if out._data.size != 1 or out._data.ndim != 0:
            raise RuntimeError(
                f"{api}: Expected f(*args) to return a scalar Tensor, got tensor with "
                f"{out._data.ndim} dims (shape {list(out._data.shape)}). Maybe you wanted to "
                "use the vjp or jacrev APIs instead?"
            )
        seed = Tensor._make(backend.array_module(out._data).ones((), dtype=out._data.dtype))
        flat = _vjp([out], [seed], lifted.leaves, modes.grad_enabled)
        flat = [_release(g, lifted.own) for g in flat]
        grads = lifted.regroup(flat)
        grads = grads[0] if single else tuple(grads)
        value = _release(out, lifted.own)
        if has_aux:
            return grads, (value, _release(aux, lifted.own))
        return grads, value

    return wrapper


def grad(func: Callable, argnums=0, has_aux: bool = False) -> Callable:
    """The gradient of scalar-valued ``func`` with respect to argument ``argnums``.

    ``argnums`` may be a tuple (a tuple of gradients is returned); arguments may be tensors
    or tuples/lists/dicts of tensors (the gradient has the same structure). With ``has_aux``
    ``func`` returns ``(value, aux)`` and the result is ``(gradient, aux)``. Transforms nest:
    ``grad(grad(f))`` is the second derivative.

    >>> import chainrule as cr
    >>> x = cr.tensor(2.0)
    >>> cr.func.grad(lambda t: t ** 3)(x), cr.func.grad(cr.func.grad(lambda t: t ** 3))(x)
    (tensor(12.), tensor(12.))
    """
    inner = grad_and_value(func, argnums, has_aux)

    def wrapper(*args, **kwargs):
        grads, value = inner(*args, **kwargs)
        if has_aux:
            return grads, value[1]
        return grads

    return wrapper


def vjp(func: Callable, *primals, has_aux: bool = False):
    """``(func(*primals), vjp_fn)``: ``vjp_fn(cotangents)`` gives the vector-Jacobian products.

    ``cotangents`` has the structure of the output; ``vjp_fn`` returns a tuple with one entry
    per primal and may be called many times. With ``has_aux`` the aux output comes third.

    >>> import chainrule as cr
    >>> out, fn = cr.func.vjp(cr.sin, cr.tensor([0.0, 1.0]))
    >>> fn(cr.ones(2))
    (tensor([1.0000, 0.5403]),)
    """
    api = "vjp(f, *primals)"
    lifted = _Lifted(primals, tuple(range(len(primals))), api)
    out, aux = _call(func, lifted.args, {}, has_aux, api)
    out_leaves, out_spec = _pytree.flatten(out)
    for i, o in enumerate(out_leaves):
        if not isinstance(o, Tensor):
            raise RuntimeError(f"{api}: expected f to return tensors, output {i} is {type(o)}")

    def vjp_fn(*cotangents):
        tree = cotangents[0] if len(cotangents) == 1 else cotangents
        cts, ct_spec = _pytree.flatten(tree)
        if len(cts) != len(out_leaves):
            raise RuntimeError(
                f"{api}: expected {len(out_leaves)} cotangents (the structure of the output), "
                f"got {len(cts)}"
            )
        cts = [_check_cotangent(c, o, "vjp_fn", i) for i, (c, o) in enumerate(zip(cts, out_leaves))]
        flat = _vjp(out_leaves, cts, lifted.leaves, modes.grad_enabled)
        own = set(lifted.own)
        flat = [_release(g, own) for g in flat]
        return tuple(lifted.regroup(flat))

    result = _release(out, lifted.own)
    if has_aux:
        return result, vjp_fn, _release(aux, lifted.own)
    return result, vjp_fn


# ---------------------------------------------------------------------------------------------
# forward mode by double vjp: jvp, jacfwd
# ---------------------------------------------------------------------------------------------


class _Transposed:
    """``g(u) = J^T u`` for the float outputs of one call, as a graph in the dummy ``u``."""

    def __init__(self, outputs: list, inputs: list, own: set):
        self.outputs = outputs
        self.us: list = []
        self.own = set(own)
        pairs = []
        for o in outputs:
            u = None
            if isinstance(o, Tensor) and o.requires_grad:
                u = _zeros_like(o).requires_grad_(True)
                self.own.add(_edge(u)[0])
                pairs.append((o, u))
            self.us.append(u)
        if pairs:
            g = engine.grad(
                [o for o, _ in pairs],
                inputs,
                [u for _, u in pairs],
                create_graph=True,
                allow_unused=True,
            )
        else:
            g = [None] * len(inputs)
        # entries that do not depend on u mean a zero Jacobian for that input
        self.g = [x if x is not None and x.requires_grad else None for x in g]

    def jvp(self, tangents: list) -> list:
        """``J v`` per output for ``v`` = one tangent per input (None: zero tangent)."""
        pairs = [(g, v) for g, v in zip(self.g, tangents) if g is not None and v is not None]
        live = [u for u in self.us if u is not None]
        if pairs and live:
            got = engine.grad(
                [g for g, _ in pairs],
                live,
                [v for _, v in pairs],
                retain_graph=True,
                create_graph=modes.grad_enabled,
                allow_unused=True,
            )
        else:
            got = [None] * len(live)
        it = iter(got)
        out = []
        for o, u in zip(self.outputs, self.us):
            r = next(it) if u is not None else None
            out.append(_zeros_like(o) if r is None else _release(r, self.own))
        return out


def jvp(func: Callable, primals: tuple, tangents: tuple, *, has_aux: bool = False):
    """``(func(*primals), J v)``: the Jacobian-vector product along ``tangents``.

    Computed by the double-vjp identity (see the module docstring), so it costs two reverse
    passes rather than one forward pass.

    >>> import chainrule as cr
    >>> out, tangent = cr.func.jvp(cr.sin, (cr.tensor([0.0]),), (cr.tensor([2.0]),))
    >>> tangent
    tensor([2.])
    """
    api = "jvp(f, primals, tangents)"
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise RuntimeError(f"{api}: Expected primals and tangents to be tuples")
    if len(primals) != len(tangents):
        raise RuntimeError(
            f"{api}: Expected primals and tangents to have the same length, got "
            f"{len(primals)} and {len(tangents)}"
        )
    lifted = _Lifted(tuple(primals), tuple(range(len(primals))), api)
    flat_tangents, _ = _pytree.flatten(tuple(tangents))
    if len(flat_tangents) != len(lifted.leaves):
        raise RuntimeError(f"{api}: Expected tangents to have the same structure as primals")
    for i, (p, t) in enumerate(zip(lifted.leaves, flat_tangents)):
        if not isinstance(t, Tensor) or tuple(t._data.shape) != tuple(p._data.shape):
            raise RuntimeError(
                f"{api}: Expected primals and tangents to have the same shape, got "
                f"{list(p._data.shape)} and "
                f"{list(t._data.shape) if isinstance(t, Tensor) else type(t).__name__} "
                f"for input {i}"
            )
    out, aux = _call(func, lifted.args, {}, has_aux, api)
    out_leaves, out_spec = _pytree.flatten(out)
    transposed = _Transposed(out_leaves, lifted.leaves, lifted.own)
    jv = _pytree.unflatten(out_spec, transposed.jvp(flat_tangents))
    result = _release(out, lifted.own)
    if has_aux:
        return result, jv, _release(aux, lifted.own)
    return result, jv


# ---------------------------------------------------------------------------------------------
# Jacobians and the Hessian
# ---------------------------------------------------------------------------------------------


def _assemble(out_leaves, lifted, single, out_spec, jac_of):
    """The Jacobian tree: output structure outside, argnums structure inside."""
    per_output = []
    for i in range(len(out_leaves)):
        flat = [jac_of(i, k) for k in range(len(lifted.leaves))]
        trees = lifted.regroup(flat)
        per_output.append(trees[0] if single else tuple(trees))
    return _pytree.unflatten(out_spec, per_output)


def jacrev(func: Callable, argnums=0, *, has_aux: bool = False, chunk_size=None) -> Callable:
    """The Jacobian of ``func`` by reverse mode: one backward pass per output element.

    For an output of shape ``O`` and an input of shape ``I`` the Jacobian has shape ``O + I``.
    Several outputs or argnums give nested tuples, outputs outside. ``chunk_size`` is
    accepted for compatibility and ignored.

    >>> import chainrule as cr
    >>> cr.func.jacrev(lambda x: x * x)(cr.tensor([1.0, 2.0]))
    tensor([[2., 0.],
            [0., 4.]])
    """
    api = "jacrev(f)(*args)"

    def wrapper(*args, **kwargs):
        nums, single = _as_argnums(argnums, len(args), api)
        lifted = _Lifted(args, nums, api)
        out, aux = _call(func, lifted.args, kwargs, has_aux, api)
        out_leaves, out_spec = _pytree.flatten(out)
        track = modes.grad_enabled
        rows = []  # rows[i][k]: list over output elements of d out_i[j] / d input_k
        for o in out_leaves:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"{api}: expected f to return tensors, got {type(o)}")
            per_input = [[] for _ in lifted.leaves]
            for j in range(o._data.size):
                grads = _vjp([o], [_basis(o, j)], lifted.leaves, track)
                for k, g in enumerate(grads):
                    per_input[k].append(_release(g, lifted.own))
            rows.append(per_input)

        def jac_of(i, k):
            o, x = out_leaves[i], lifted.leaves[k]
            if not rows[i][k]:  # an empty output
                return _zeros_like_shape(x, tuple(o._data.shape) + tuple(x._data.shape))
            stacked = _stack(rows[i][k], 0, track)
            return movement.reshape(stacked, tuple(o._data.shape) + tuple(x._data.shape))

        jac = _assemble(out_leaves, lifted, single, out_spec, jac_of)
        if has_aux:
            return jac, _release(aux, lifted.own)
        return jac

    return wrapper


def _zeros_like_shape(like: Tensor, shape: tuple) -> Tensor:
    xp = backend.array_module(like._data)
    return Tensor._make(xp.zeros(shape, dtype=like._data.dtype))


def jacfwd(func: Callable, argnums=0, has_aux: bool = False, *, randomness: str = "error"):
    """The Jacobian of ``func`` column by column (one Jacobian-vector product per input
    element), so it is cheaper than :func:`jacrev` when inputs are fewer than outputs.

    Each column is a jvp by the double-vjp identity: one backward pass builds ``J^T u``, then
    one backward pass through that graph per column. Results equal :func:`jacrev`'s.
    ``randomness`` is accepted for compatibility.

    >>> import chainrule as cr
    >>> cr.func.jacfwd(lambda x: x.sum() * x)(cr.tensor([1.0, 2.0]))
    tensor([[4., 1.],
            [2., 5.]])
    """
    api = "jacfwd(f)(*args)"

    def wrapper(*args, **kwargs):
        nums, single = _as_argnums(argnums, len(args), api)
        lifted = _Lifted(args, nums, api)
        out, aux = _call(func, lifted.args, kwargs, has_aux, api)
        out_leaves, out_spec = _pytree.flatten(out)
        for o in out_leaves:
            if not isinstance(o, Tensor):
                raise RuntimeError(f"{api}: expected f to return tensors, got {type(o)}")
        transposed = _Transposed(out_leaves, lifted.leaves, lifted.own)
        track = modes.grad_enabled
        cols = []  # cols[k][j]: J v for v = basis vector j of input k, one entry per output
        for k, x in enumerate(lifted.leaves):
            per_element = []
            for j in range(x._data.size):
                tangents = [None] * len(lifted.leaves)
                tangents[k] = _basis(x, j)
                per_element.append(transposed.jvp(tangents))
            cols.append(per_element)

        def jac_of(i, k):
            o, x = out_leaves[i], lifted.leaves[k]
            shape = tuple(o._data.shape) + tuple(x._data.shape)
            if not cols[k]:  # an empty input
                return _zeros_like_shape(o, shape)
            column = [movement.reshape(c[i], (-1,)) for c in cols[k]]
            return movement.reshape(_stack(column, 1, track), shape)

        jac = _assemble(out_leaves, lifted, single, out_spec, jac_of)
        if has_aux:
            return jac, _release(aux, lifted.own)
        return jac

    return wrapper


def hessian(func: Callable, argnums=0) -> Callable:
    """The Hessian of scalar ``func``: the Jacobian of its gradient.

    Computed as ``jacrev(jacrev(func))`` (PyTorch uses ``jacfwd(jacrev(func))``; second
    derivatives commute, so the values are the same).

    >>> import chainrule as cr
    >>> cr.func.hessian(lambda x: (x ** 3).sum())(cr.tensor([1.0, 2.0]))
    tensor([[ 6.,  0.],
            [ 0., 12.]])
    """
    return jacrev(jacrev(func, argnums), argnums)
