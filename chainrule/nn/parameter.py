"""``Parameter``: a tensor that a ``Module`` registers as one of its learnable weights."""

from __future__ import annotations

from chainrule import backend
from chainrule.tensor import Tensor


class Parameter(Tensor):
    """A leaf tensor that requires grad (by default) and is registered by ``Module``.

    >>> import chainrule as cr
    >>> p = cr.nn.Parameter(cr.zeros(2))
    >>> p
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    """

    __slots__ = ()

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True):
        arr = (
            backend.np.zeros(0, dtype=backend.get_default_dtype().np)
            if data is None
            else (data._data if isinstance(data, Tensor) else backend.asarray(data))
        )
        p = Tensor._make.__func__(cls, arr)
        if requires_grad:
            p.requires_grad_(True)
        return p

    def __init__(self, data=None, requires_grad: bool = True):
        pass

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()

    def __reduce_ex__(self, protocol):
        raise TypeError("chainrule tensors are saved with chainrule.save, not pickle")
