"""Neural-network kernels as primitives: convolution, pooling, normalisation, losses' cores.

They are primitives (rather than compositions of smaller ops) for speed: each one is a few
large array operations (im2col + matmul, strided windows) with a hand-written backward.
"""

from __future__ import annotations

__all__: list = []

# Tensor methods (bound in ops/__init__.py)
METHODS: dict = {}
