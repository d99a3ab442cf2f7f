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

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Parameter(Tensor._make(self._data.copy()), self.requires_grad)
        if self.grad is not None:
            out.grad = Tensor._make(self.grad._data.copy())
        memo[id(self)] = out
        return out


class Buffer(Tensor):
    """A tensor that a ``Module`` registers as a buffer when assigned to an attribute
    (``self.mask = nn.Buffer(t, persistent=False)``); shorthand for ``register_buffer``.

    >>> import chainrule as cr
    >>> m = cr.nn.Module()
    >>> m.steps = cr.nn.Buffer(cr.zeros(1))
    >>> list(m.state_dict())
    ['steps']
    """

    __slots__ = ("persistent",)

    def __new__(cls, data: Tensor, *, persistent: bool = True):
        arr = data._data if isinstance(data, Tensor) else backend.asarray(data)
        b = Tensor._make.__func__(cls, arr)
        b.persistent = persistent
        return b

    def __init__(self, data=None, *, persistent: bool = True):
        pass

    def __deepcopy__(self, memo):
        if id(self) in memo:
            return memo[id(self)]
        out = Buffer(Tensor._make(self._data.copy()), persistent=self.persistent)
        memo[id(self)] = out
        return out
