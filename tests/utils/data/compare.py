"""Comparing batches from chainrule and PyTorch loaders."""

from __future__ import annotations

import numpy as np

import chainrule as cr


def plain(x):
    """A batch as plain Python + NumPy, with tensors tagged by their dtype name."""
    if isinstance(x, cr.Tensor):
        return ("tensor", x.dtype.name, x.numpy())
    if type(x).__module__.startswith("torch") and hasattr(x, "numpy"):
        return ("tensor", str(x.dtype).replace("torch.", ""), x.numpy())
    if isinstance(x, dict):
        return {k: plain(v) for k, v in x.items()}
    if isinstance(x, tuple) and hasattr(x, "_fields"):
        return ("namedtuple", type(x).__name__, [plain(v) for v in x])
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, [plain(v) for v in x])
    return x


def assert_same(a, b, where="batch"):
    """Equal structure, container types, dtypes and values."""
    if isinstance(a, tuple) and a and a[0] == "tensor":
        assert isinstance(b, tuple) and b[0] == "tensor", f"{where}: {a!r} vs {b!r}"
        assert a[1] == b[1], f"{where}: dtype {a[1]} vs {b[1]}"
        np.testing.assert_array_equal(a[2], b[2], err_msg=where)
        return
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{where}: {a!r} vs {b!r}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
        return
    if isinstance(a, tuple) and a and a[0] in ("list", "tuple", "namedtuple"):
        assert isinstance(b, tuple) and a[0] == b[0], f"{where}: {a!r} vs {b!r}"
        items_a, items_b = a[-1], b[-1]
        assert len(items_a) == len(items_b), where
        for i, (x, y) in enumerate(zip(items_a, items_b)):
            assert_same(x, y, f"{where}[{i}]")
        return
    assert a == b, f"{where}: {a!r} vs {b!r}"


def assert_batches_equal(ours, theirs):
    ours, theirs = list(ours), list(theirs)
    assert len(ours) == len(theirs), f"{len(ours)} batches vs {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert_same(plain(a), plain(b), f"batch {i}")
