"""Neural-network building blocks (``chainrule.nn``), PyTorch's names and semantics.

* :class:`Module` and :class:`Parameter`: how layers hold weights, buffers and children;
* layers (``Linear``, ``Conv2d``, ``BatchNorm2d``, ``Embedding``...), activations and losses,
  in :mod:`chainrule.nn.modules`;
* :mod:`chainrule.nn.functional`, :mod:`chainrule.nn.init`, :mod:`chainrule.nn.utils`.
"""

from chainrule.nn import functional, init, utils
from chainrule.nn import modules as _modules
from chainrule.nn.modules import *
from chainrule.nn.parameter import Buffer, Parameter

__all__ = ["Parameter", "Buffer", "functional", "init", "utils", *_modules.__all__]
