"""Nested containers of tensors ("pytrees"): flatten to a list of leaves and rebuild.

Tuples, lists and dicts are containers (dicts keep their insertion order); anything else,
tensors included, is a leaf. ``spec`` records the structure so :func:`unflatten` can rebuild
it around new leaves.
"""

from __future__ import annotations

from typing import Any

LEAF = None  # the spec of a leaf


def flatten(tree: Any) -> tuple[list, Any]:
    """``(leaves, spec)`` of ``tree``."""
    leaves: list = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list) -> Any:
    if isinstance(tree, (tuple, list)):
        return (type(tree), [_flatten(x, leaves) for x in tree])
    if isinstance(tree, dict):
        return (dict, list(tree.keys()), [_flatten(v, leaves) for v in tree.values()])
    leaves.append(tree)
    return LEAF


def unflatten(spec: Any, leaves: list) -> Any:
    """Rebuild the structure ``spec`` with ``leaves`` in order."""
    it = iter(leaves)
    return _unflatten(spec, it)


def _unflatten(spec: Any, it) -> Any:
    if spec is LEAF:
        return next(it)
    if spec[0] is dict:
        return {k: _unflatten(s, it) for k, s in zip(spec[1], spec[2])}
    kind, children = spec
    items = [_unflatten(s, it) for s in children]
    if kind is list:
        return items
    if kind is tuple:
        return tuple(items)
    return kind(*items)  # a namedtuple


def num_leaves(spec: Any) -> int:
    """How many leaves a tree of structure ``spec`` has."""
    if spec is LEAF:
        return 1
    children = spec[2] if spec[0] is dict else spec[1]
    return sum(num_leaves(s) for s in children)


def broadcast_prefix(prefix: Any, spec: Any, what: str) -> list:
    """One value per leaf of ``spec``, where ``prefix`` is a value or a tree prefix of it.

    ``vmap``'s ``in_dims=(0, None)`` gives 0 to every leaf of the first argument and None to
    every leaf of the second; ``in_dims=({'w': 0, 'b': None},)`` goes down into a dict.
    """
    if spec is LEAF or not isinstance(prefix, (tuple, list, dict)):
        return [prefix] * num_leaves(spec)
    if spec[0] is dict:
        if not isinstance(prefix, dict) or set(prefix) != set(spec[1]):
            raise ValueError(f"{what}: {prefix!r} does not match the structure of the input")
        out = []
        for k, s in zip(spec[1], spec[2]):
            out += broadcast_prefix(prefix[k], s, what)
        return out
    children = spec[1]
    if isinstance(prefix, dict) or len(prefix) != len(children):
        raise ValueError(f"{what}: {prefix!r} does not match the structure of the input")
    out = []
    for p, s in zip(prefix, children):
        out += broadcast_prefix(p, s, what)
    return out
