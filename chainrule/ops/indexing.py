"""Indexing primitives: ``t[...]``, ``t[...] = v``, gather/scatter, masks and index_select.

Gradients of reads scatter back into zeros (repeated indices accumulate); gradients of writes
route to the written values and mask out the overwritten positions.
"""

from __future__ import annotations

__all__: list = []

# Tensor methods (bound in ops/__init__.py)
METHODS: dict = {}
