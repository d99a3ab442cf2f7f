"""``vmap``: apply a function written for one example to a batch.

chainrule's ops are not batch-aware, so ``vmap`` runs ``func`` once per batch element (on the
slices along ``in_dims``) and stacks the results along ``out_dims``. This is exactly the
semantics of ``torch.func.vmap`` for any ``func`` (reductions, matmuls, data-dependent
Python control flow and randomness included: each element draws its own random numbers, like
``randomness='different'``), and every op is differentiable through it. It is not faster than
a Python loop: for speed, write the batched computation directly.
"""

from __future__ import annotations

from collections.abc import Callable

from chainrule import ops
from chainrule.func import _pytree
from chainrule.tensor import Tensor

__all__ = ["vmap"]


def _check_dim(dim, x, api: str) -> int | None:
    if dim is None:
        return None
    if not isinstance(dim, int):
        raise ValueError(f"{api}: in_dims must be an int, None or a tree of them, got {dim!r}")
    if not isinstance(x, Tensor):
        raise ValueError(
            f"{api}: Got in_dim={dim} for an input but the input is of type {type(x).__name__}. "
            "We cannot vmap over non-Tensor arguments, please use None as the respective in_dim"
        )
    if not -x.ndim <= dim < x.ndim:
        raise ValueError(
            f"{api}: Got in_dim={dim} for some input, but that input is a Tensor of "
            f"dimensionality {x.ndim} so expected in_dim to satisfy {-x.ndim} <= in_dim < "
            f"{x.ndim}."
        )
    return dim % x.ndim


def _slice(x: Tensor, dim: int, b: int) -> Tensor:
    return ops.select(x, dim, b)


def vmap(
    func: Callable,
    in_dims=0,
    out_dims=0,
    randomness: str = "error",
    *,
    chunk_size: int | None = None,
) -> Callable:
    """Map ``func`` over dimension ``in_dims`` of its inputs, stacking outputs on ``out_dims``.

    ``in_dims`` is an int or None for every argument, or a tuple with one entry per positional
    argument (each an int, None for "not batched", or a tree matching that argument);
    ``out_dims`` is an int/None or a tuple with one entry per output. Keyword arguments are
    passed unbatched. Runs ``func`` once per batch element (see the module docstring).

    >>> import chainrule as cr
    >>> dot = lambda a, b: (a * b).sum()
    >>> cr.func.vmap(dot)(cr.ones(3, 2), cr.ones(3, 2))
    tensor([2., 2., 2.])
    >>> cr.func.vmap(dot, in_dims=(0, None))(cr.ones(3, 2), cr.ones(2))
    tensor([2., 2., 2.])
    """
    if randomness not in ("error", "different", "same"):
        raise RuntimeError(
            f"Only allowed values for randomness are 'error', 'different', or 'same'. Got "
            f"{randomness}"
        )

    def wrapper(*args, **kwargs):
        api = f"vmap({getattr(func, '__name__', 'f')}, in_dims={in_dims!r}, ...)(<inputs>)"
        if isinstance(in_dims, (tuple, list)) and len(in_dims) != len(args):
            raise ValueError(
                f"{api}: in_dims is not compatible with the structure of `inputs`. in_dims has "
                f"structure of {len(in_dims)} entries but inputs has {len(args)}"
            )
        leaves, spec = _pytree.flatten(tuple(args))
        if isinstance(in_dims, (tuple, list)):
            dims = []
            for d, a in zip(in_dims, args):
                _, sub = _pytree.flatten(a)
                dims += _pytree.broadcast_prefix(d, sub, api)
        else:
            dims = [in_dims] * len(leaves)
        dims = [_check_dim(d, x, api) for d, x in zip(dims, leaves)]
        sizes = sorted({x.shape[d] for d, x in zip(dims, leaves) if d is not None})
        if not sizes:
            raise ValueError(
                f"{api}: vmap must have at least one non-None value in in_dims (no input is "
                "batched)"
            )
        if len(sizes) > 1:
            raise ValueError(
                f"{api}: Expected all tensors to have the same size in the mapped dimension, "
                f"got sizes {sizes} for the mapped dimension"
            )
        results = []
        for b in range(sizes[0]):
            sliced = [x if d is None else _slice(x, d, b) for d, x in zip(dims, leaves)]
            results.append(func(*_pytree.unflatten(spec, sliced), **kwargs))
        return _stack_outputs(results, out_dims, api)

    return wrapper


def _stack_outputs(results: list, out_dims, api: str):
    flat = [_pytree.flatten(r) for r in results]
    leaves0, spec = flat[0]
    if isinstance(out_dims, (tuple, list)):
        dims = _pytree.broadcast_prefix(
            tuple(out_dims) if isinstance(results[0], tuple) else out_dims[0], spec, api
        )
    else:
        dims = [out_dims] * len(leaves0)
    stacked = []
    for i, d in enumerate(dims):
        items = [leaves[i] for leaves, _ in flat]
        if d is None:
            stacked.append(items[0])
            continue
        if not all(isinstance(t, Tensor) for t in items):
            raise ValueError(
                f"{api}: `{api.split('(')[1].split(',')[0]}` must only return Tensors, got "
                f"type {type(items[0]).__name__}. Did you mean to set out_dims= to None for "
                "that output?"
            )
        ndim = items[0].ndim + 1
        if not -ndim <= d < ndim:
            raise ValueError(
                f"{api}: out_dims={d} is out of range for an output with {ndim - 1} dimensions"
            )
        stacked.append(ops.stack(items, d % ndim))
    return _pytree.unflatten(spec, stacked)
