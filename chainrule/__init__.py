"""chainrule: backpropagation you can read.

Tensors record the ops applied to them; ``loss.backward()`` walks that record back with the
chain rule. The API follows PyTorch's names and semantics (``chainrule.nn``, ``chainrule.optim``
...), on NumPy (CPU) or CuPy (GPU) arrays.

>>> import chainrule as cr
>>> w = cr.tensor([1.0, -2.0], requires_grad=True)
>>> loss = (w * w).sum()
>>> loss.backward()
>>> w.grad
tensor([ 2., -4.])
"""

from chainrule import autograd, backend, datasets, func, linalg, nn, ops, optim, utils
from chainrule.autograd import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from chainrule.backend import (
    Generator,
    bfloat16,
    dtype,
    float16,
    float32,
    float64,
    get_default_dtype,
    get_num_threads,
    int8,
    int16,
    int32,
    int64,
    promote_types,
    set_default_dtype,
    set_num_threads,
    uint8,
)
from chainrule.backend import bool_ as bool  # noqa: A001 - PyTorch's name
from chainrule.ops import *  # noqa: F401,F403
from chainrule.serialization import load, save
from chainrule.tensor import Device as device
from chainrule.tensor import Size, Tensor

half = float16
float = float32  # noqa: A001
double = float64
long = int64
int = int32  # noqa: A001
default_generator = backend.default_generator

__version__ = "0.1.0"
