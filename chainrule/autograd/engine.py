"""The reverse-mode engine: walk the recorded nodes backwards applying the chain rule.

``run`` is the whole algorithm:

1. order every node reachable from the outputs so that a node comes after all nodes that
   consume its outputs (an iterative depth-first search: no recursion limit);
2. seed the outputs with their gradients and visit nodes in that order; each node's incoming
   gradients are complete when it is visited (summed where paths meet);
3. call the node's backward rule, then reduce each result to its input's shape (undoing
   broadcasting) and dtype, and add it to the gradient waiting at the node that produced the
   input;
4. at a leaf, run its hooks and add the gradient to ``.grad``.

Saved tensors are released as soon as a node has run (unless ``retain_graph``), so memory
returns to what it was before the forward pass.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from chainrule import backend
from chainrule.ops import reduce as _reduce
from chainrule.ops.elementwise import cast as _cast
from chainrule.tensor import _FREED, AccumulateGrad, Tensor, _edge, modes


def _as_grad_tensor(value, like: Tensor) -> Tensor:
    if isinstance(value, Tensor):
        if tuple(value._data.shape) != tuple(like._data.shape):
            raise RuntimeError(
                f"backward: mismatch in shape: grad_output has a shape of "
                f"{list(value._data.shape)} and output has a shape of {list(like._data.shape)}"
            )
        return value
    arr = backend.asarray(value, like.dtype)
    return Tensor._make(backend.array_module(like._data).broadcast_to(arr, like._data.shape))


def _prepare(outputs, grad_outputs, op: str):
    if isinstance(outputs, Tensor):
        outputs = (outputs,)
    outputs = tuple(outputs)
    if grad_outputs is None:
        grad_outputs = (None,) * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise RuntimeError(f"{op}: got {len(grad_outputs)} gradients for {len(outputs)} outputs")
    roots, grads = [], []
    for i, (out, g) in enumerate(zip(outputs, grad_outputs)):
        if not out.requires_grad:
            raise RuntimeError(
                f"element {i} of tensors does not require grad and does not have a grad_fn"
            )
        if g is None:
            if out._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs (the output has "
                    f"shape {list(out._data.shape)}; pass gradient= of that shape)"
                )
            xp = backend.array_module(out._data)
            g = Tensor._make(xp.ones(out._data.shape, dtype=out._data.dtype))
        else:
            g = _as_grad_tensor(g, out)
        roots.append(out)
        grads.append(g)
    return roots, grads


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves of their graph.

    >>> import chainrule as cr
    >>> w = cr.tensor([2.0], requires_grad=True)
    >>> cr.autograd.backward([(w * 3).sum()])
    >>> w.grad
    tensor([3.])
    """
    roots, grads = _prepare(tensors, grad_tensors, "backward")
    if retain_graph is None:
        retain_graph = create_graph
    targets = None
    if inputs is not None:
        inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
        if not inputs:
            raise RuntimeError("backward: 'inputs' argument to backward() cannot be empty.")
        targets = inputs
    run(roots, grads, retain_graph, create_graph, targets, accumulate=True)


def grad(
    outputs,
    inputs,
    grad_outputs=None,
    retain_graph=None,
    create_graph: bool = False,
    allow_unused: bool | None = None,
    materialize_grads: bool = False,
):
    """Return d(outputs)/d(inputs) (vector-Jacobian products) without touching ``.grad``.

    >>> import chainrule as cr
    >>> x = cr.tensor(3.0, requires_grad=True)
    >>> (dx,) = cr.autograd.grad(x ** 2, x, create_graph=True)
    >>> dx, cr.autograd.grad(dx, x)[0]
    (tensor(6., grad_fn=<MulBackward>), tensor(2.))
    """
    single = isinstance(inputs, Tensor)
    inputs = (inputs,) if single else tuple(inputs)
    for i, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad")
    roots, grads = _prepare(outputs, grad_outputs, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    results = run(roots, grads, retain_graph, create_graph, inputs, accumulate=False)
    if allow_unused is None:
        allow_unused = materialize_grads
    out = []
    for i, (t, g) in enumerate(zip(inputs, results)):
        if g is None:
            if materialize_grads:
                xp = backend.array_module(t._data)
                g = Tensor._make(xp.zeros_like(t._data))
            elif not allow_unused:
                raise RuntimeError(
                    f"One of the differentiated Tensors (input {i}, shape "
                    f"{list(t._data.shape)}) appears to not have been used in the graph. Set "
                    "allow_unused=True if this is the desired behavior."
                )
        out.append(g)
    return tuple(out)


def _topological_order(roots: Sequence) -> list:
    """Nodes reachable from ``roots``, each after every node that feeds it a gradient."""
    order, seen = [], set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.edges))]
        while stack:
            node, pending = stack[-1]
            for edge in pending:
                if edge is not None and edge[0] not in seen:
                    child = edge[0]
                    seen.add(child)
                    stack.append((child, iter(child.edges)))
                    break
            else:
                stack.pop()
                order.append(node)
    order.reverse()
    return order


def _needed(order: list, target_nodes: set) -> set:
    """Nodes on some path to a target (the rest need not run)."""
    needed = set()
    for node in reversed(order):  # inputs before consumers
        if node in target_nodes or any(e is not None and e[0] in needed for e in node.edges):
            needed.add(node)
    return needed


def _add(a: Tensor | None, b: Tensor, create_graph: bool) -> Tensor:
    if a is None:
        return b
    if create_graph:
        return a + b
    return Tensor._make(a._data + b._data)


def _refs_of_one_local() -> int:
    """What ``sys.getrefcount`` reports for an object held by one local variable (the
    interpreter's own bookkeeping differs between Python versions)."""
    probe = object()
    return sys.getrefcount(probe)


# ``_accumulate_into_leaf``'s ``g`` is held by the engine loop's local and by its parameter
_EXCLUSIVE_TENSOR_REFS = _refs_of_one_local() + 1
_EXCLUSIVE_ARRAY_REFS = _refs_of_one_local() + 1  # ``t._data`` and the local ``arr``


def _exclusive(g: Tensor) -> bool:
    """True when nothing but the engine refers to ``g`` or its memory, so that ``.grad`` can
    take it without a copy (a user's hook that kept it, or a rule that handed the same tensor
    to two inputs, makes it shared). A view counts when it is a contiguous window over all of
    an array that nothing else refers to (a transposed matmul result, for one)."""
    arr = g._data
    if sys.getrefcount(arr) > _EXCLUSIVE_ARRAY_REFS or not arr.flags.writeable:
        return False
    base = arr.base
    if base is not None:
        # the owner is referred to by ``arr.base`` and the local ``base`` only
        if base.base is not None or base.size != arr.size or not arr.flags.c_contiguous:
            return False
        if sys.getrefcount(base) > _EXCLUSIVE_ARRAY_REFS:
            return False
    return True


def _accumulate_into_leaf(var: Tensor, g: Tensor, create_graph: bool) -> None:
    if var.grad is None:
        if create_graph:
            var.grad = g
        elif sys.getrefcount(g) <= _EXCLUSIVE_TENSOR_REFS and _exclusive(g):
            var.grad = Tensor._make(g._data)
        else:
            var.grad = Tensor._make(g._data.copy())
    elif create_graph or var.grad.requires_grad:
        var.grad = var.grad + g
    else:
        var.grad._data += g._data


def _check_finite(node, results) -> None:
    for i, r in enumerate(results):
        if r is None:
            continue
        xp = backend.array_module(r._data)
        if not bool(xp.isfinite(r._data).all()):
            kind = "nan" if bool(xp.isnan(r._data).any()) else "inf"
            where = node.trace or "(enable anomaly mode before the forward pass to see it)\n"
            raise RuntimeError(
                f"Function '{node.name}' returned {kind} values in its {i}th output.\n"
                f"The forward call that created {node.name} was:\n{where}"
            )


def run(
    roots, root_grads, retain_graph, create_graph, targets=None, accumulate=True, observer=None
):
    """Backpropagate ``root_grads`` from ``roots``; see the module docstring.

    With ``accumulate`` the leaves' ``.grad`` receive their gradients (only the leaves in
    ``targets`` when given). Without it the gradients of ``targets`` are returned instead.
    An ``observer`` (see ``chainrule.diagnostics.trace``) is told of every step: ``node(...)``
    after each backward rule, ``meet(...)`` where gradients add, ``leaf(...)`` at leaves.
    """
    buffers: dict = {}
    root_nodes = []
    for t, g in zip(roots, root_grads):
        edge = _edge(t)
        node, nr = edge[0], edge[1]
        root_nodes.append(node)
        _buffer_add(buffers, node, nr, g, create_graph, observer)
    order = _topological_order(root_nodes)

    captured = None
    wanted = None
    if targets is not None:
        captured = [None] * len(targets)
        wanted = {}
        for i, t in enumerate(targets):
            e = _edge(t)
            wanted.setdefault((e[0], e[1]), []).append(i)
        needed = _needed(order, {key[0] for key in wanted})
    else:
        needed = None

    previous_mode = modes.grad_enabled
    modes.grad_enabled = create_graph
    try:
        for node in order:
            grads = buffers.pop(node, None)
            if grads is None:
                continue
            if needed is not None and node not in needed:
                continue
            if node.hooks:
                grads = _run_node_hooks(node, grads)
            if type(node) is AccumulateGrad:
                var = node.variable
                if var._hooks:
                    for hook in var._hooks:
                        replaced = hook(grads)
                        if replaced is not None:
                            grads = replaced
                if observer is not None:
                    observer.leaf(var, grads)
                if wanted is not None and (node, 0) in wanted:
                    if accumulate:
                        _accumulate_into_leaf(var, grads, create_graph)
                    else:
                        for i in wanted[(node, 0)]:
                            captured[i] = grads
                elif accumulate and wanted is None:
                    _accumulate_into_leaf(var, grads, create_graph)
                continue
            if wanted is not None and not accumulate:
                for nr in range(node.n_outputs):
                    for i in wanted.get((node, nr), ()):
                        captured[i] = grads if node.n_outputs == 1 else grads[nr]
                if not any(e is not None and e[0] in needed for e in node.edges):
                    continue
            saved = node.saved_tensors_for_backward(create_graph)
            results = node.backward(grads, *saved)
            if not retain_graph and node.saved:
                node.saved = _FREED
            if type(results) is not tuple:
                results = (results,)
            if observer is not None:
                observer.node(node, grads, saved, results)
            if modes.anomaly and modes.anomaly_check_nan:
                _check_finite(node, results)
            for edge, g in zip(node.edges, results):
                if edge is None or g is None:
                    continue
                child, nr, shape, dtype = edge
                if needed is not None and child not in needed:
                    continue
                if g._data.shape != shape:
                    g = _reduce.sum_to(g, shape, node.name)
                if g._data.dtype != dtype:
                    g = _cast(g, backend.from_np(dtype))
                _buffer_add(buffers, child, nr, g, create_graph, observer)
            # drop this frame's references, so that a leaf's gradient held only by the
            # buffers can become its .grad without a copy (see _exclusive)
            results = saved = grads = g = None
    finally:
        modes.grad_enabled = previous_mode
    return captured


def _buffer_add(buffers: dict, node, nr: int, g: Tensor, create_graph: bool, observer) -> None:
    if node.n_outputs == 1:
        old = buffers.get(node)
        buffers[node] = total = _add(old, g, create_graph)
    else:
        slots = buffers.get(node)
        if slots is None:
            slots = buffers[node] = [None] * node.n_outputs
        old = slots[nr]
        slots[nr] = total = _add(old, g, create_graph)
    if observer is not None and old is not None:
        observer.meet(node, nr, old, g, total)


def _run_node_hooks(node, grads):
    if node.n_outputs == 1:
        for hook in node.hooks.get(0, ()):
            replaced = hook(grads)
            if replaced is not None:
                grads = replaced
        return grads
    grads = list(grads)
    for nr, hooks in node.hooks.items():
        if grads[nr] is None:
            continue
        for hook in hooks:
            replaced = hook(grads[nr])
            if replaced is not None:
                grads[nr] = replaced
    return grads
