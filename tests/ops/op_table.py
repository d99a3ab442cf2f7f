"""The op table: one row per public tensor op, driving every gradient and oracle test.

A row names the op, gives ``fn(m, *args, **kwargs)`` written once for both frameworks (``m``
is the ``chainrule`` module or ``torch``), and lists cases of input shapes. From each row the
tests in ``test_op_table.py`` check

* forward values and input gradients against PyTorch (float64 and float32) when installed,
* first derivatives by finite differences in float64 (``chainrule.autograd.gradcheck``),
* second derivatives by finite differences (``gradgradcheck``) where ``second_order``.

Adding an op means adding its block in a family file and its row in one of the
``table_<family>.py`` files; ``test_every_public_op_has_a_row`` fails until the row exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Arg:
    """A generated tensor argument.

    kind: ``float`` (normal), ``positive`` (0.5..2), ``unit`` (-0.9..0.9), ``int`` (0..high),
    ``index`` (0..high, int64), ``bool`` (random mask), ``distinct`` (floats far apart, so
    max/min/sort have no near-ties), ``spd`` (symmetric positive definite matrices).
    """

    shape: tuple
    kind: str = "float"
    grad: bool = True
    noncontig: bool = False
    high: int = 3

    def make(self, rng: np.random.Generator, dtype) -> np.ndarray:
        shape = tuple(self.shape)
        if self.noncontig:  # build the transposed array and view it back: not C-contiguous
            shape = shape[::-1]
        k = self.kind
        if k == "float":
            a = rng.standard_normal(shape)
        elif k == "positive":
            a = rng.uniform(0.5, 2.0, shape)
        elif k == "unit":
            a = rng.uniform(-0.9, 0.9, shape)
        elif k == "distinct":
            n = int(np.prod(shape)) if shape else 1
            a = (rng.permutation(n) * 0.37 - n * 0.15 + rng.uniform(-0.05, 0.05, n)).reshape(shape)
        elif k == "spd":
            n = shape[-1]
            m = rng.standard_normal(shape)
            a = m @ np.swapaxes(m, -1, -2) + n * np.eye(n)
        elif k in ("int", "index"):
            return_dtype = np.int64
            a = np.asarray(rng.integers(0, self.high, shape)).astype(return_dtype)
            return a.T if self.noncontig else a
        elif k == "bool":
            a = np.asarray(rng.random(shape) < 0.5)
            return a.T if self.noncontig else a
        else:
            raise ValueError(f"unknown Arg kind {k!r}")
        a = np.asarray(a, dtype=dtype)
        return a.T if self.noncontig else a

    @property
    def differentiable(self) -> bool:
        return self.grad and self.kind not in ("int", "index", "bool")


@dataclass
class Case:
    """One call: positional ``args`` (``Arg`` or plain values) and keyword ``kwargs``."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    note: str = ""


@dataclass
class OpSpec:
    name: str
    fn: Callable[..., Any]
    cases: list
    grad: bool = True  # differentiable: finite-difference and gradient-oracle checks
    second_order: bool = True  # twice differentiable: gradgradcheck
    torch: bool = True  # compare with PyTorch
    rtol32: float = 1e-5
    atol32: float = 1e-6
    family: str = ""

    def ids(self) -> list:
        return [
            f"{self.name}-{i}{'-' + c.note if c.note else ''}" for i, c in enumerate(self.cases)
        ]


def C(*args, note: str = "", **kwargs) -> Case:  # noqa: N802 - short constructor for tables
    """Shorthand: ``C(Arg((3,)), 2, dim=0)``."""
    return Case(args, kwargs, note)


def A(*shape, **kw) -> Arg:  # noqa: N802
    """Shorthand for a float tensor argument: ``A(3, 4)``, ``A(3, kind='positive')``."""
    return Arg(tuple(shape), **kw)


def all_rows() -> list:
    from tests.ops import (
        table_elementwise,
        table_indexing,
        table_linalg,
        table_movement,
        table_nn_kernels,
        table_reduce,
        table_sequence_kernels,
    )

    rows = []
    for module in (
        table_elementwise,
        table_reduce,
        table_movement,
        table_indexing,
        table_linalg,
        table_nn_kernels,
        table_sequence_kernels,
    ):
        for row in module.ROWS:
            row.family = module.__name__.split("table_", 1)[-1]
            rows.append(row)
    return rows
