"""Custom differentiable operations: subclass :class:`Function`, as in PyTorch.

A ``Function`` gives the forward computation and its backward rule as two static methods::

    class Cube(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x * x

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * 3 * x * x

    y = Cube.apply(x)

How it plugs into the engine: every ``Function`` subclass gets a companion :class:`Node`
subclass (``CubeBackward``). ``apply`` creates one instance of it, which is both the ``ctx``
handed to ``forward``/``backward`` and the ``grad_fn`` of the outputs. Its ``edges``,
``saved`` and ``versions`` are filled exactly as ``Node.apply`` fills a primitive's, so the
engine runs it like any other node: saved tensors are checked for in-place changes and freed
after backward, hooks and anomaly detection work unchanged.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from chainrule import backend
from chainrule.tensor import Node, Tensor, _edge, _SavedOutput, _user_stack, modes

__all__ = ["Function", "FunctionCtx", "BackwardFunction", "once_differentiable"]


class FunctionCtx(Node):
    """The ``ctx`` of a custom :class:`Function` (and the ``grad_fn`` of its outputs).

    Besides the methods below it accepts any attribute (``ctx.scale = 2.0``) to carry
    non-tensor values from ``forward`` to ``backward``. Tensors needed by ``backward`` should go
    through :meth:`save_for_backward`: they are checked against in-place modification and
    released after backward.
    """

    # no __slots__: arbitrary attributes live in the instance __dict__

    def __init__(self):
        super().__init__()
        self.edges = ()
        self.saved = ()
        self.versions = ()
        self.needs_input_grad: tuple[bool, ...] = ()
        self.materialize_grads = True
        self.n_outputs = 1
        self._to_save = None
        self._non_differentiable = ()
        self._dirty = ()
        self._unpacked = None
        self._output_meta = ()

    # -- called from forward -----------------------------------------------------------------
    def save_for_backward(self, *tensors: Tensor | None) -> None:
        """Keep ``tensors`` (or None) for ``backward``; read them back with ``saved_tensors``.

        Call it at most once, from ``forward``. Inputs, outputs and intermediate tensors may be
        saved; an in-place change to any of them before backward makes backward raise.
        """
        for i, t in enumerate(tensors):
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    f"save_for_backward can only save tensors, but argument {i} is of type "
                    f"{type(t).__name__}"
                )
        self._to_save = tensors

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        """Declare outputs that have no gradient (indices, masks...).

        They are returned with ``requires_grad=False``; ``backward`` still receives a
        gradient for each of them (zeros, or None without materialized grads).
        """
        self._non_differentiable = tensors

    def mark_dirty(self, *tensors: Tensor) -> None:
        """Declare inputs that ``forward`` modified in place (and returns as outputs).

        Their history is replaced by this function's node, as for built-in in-place ops.
        """
        self._dirty = tensors

    def set_materialize_grads(self, value: bool) -> None:
        """With True (the default) missing output gradients reach ``backward`` as zeros;
        with False they arrive as None (saves work when outputs are often unused)."""
        self.materialize_grads = bool(value)

    # -- read in backward --------------------------------------------------------------------
    @property
    def saved_tensors(self) -> tuple:
        """What ``save_for_backward`` stored, after checking no in-place change happened.

        Raises if backward already ran without ``retain_graph=True`` (they were freed).
        """
        if self._unpacked is not None:
            return self._unpacked
        return self.saved_tensors_for_backward(modes.grad_enabled)

    @property
    def name(self) -> str:
        return type(self).__name__

    # -- run by the engine ---------------------------------------------------------------------
    def backward(self, grads, *saved):
        fn = type(self)._forward_cls
        if self.n_outputs == 1:
            grads = [grads]
        else:
            grads = list(grads)
        if self.materialize_grads:
            for i, g in enumerate(grads):
                if g is None and self._output_meta[i] is not None:
                    shape, dtype, xp = self._output_meta[i]
                    grads[i] = Tensor._make(xp.zeros(shape, dtype=dtype))
        self._unpacked = saved
        try:
            result = fn.backward(self, *grads)
        finally:
            self._unpacked = None
        if not isinstance(result, tuple):
            result = (result,)
        n_in = len(self.edges)
        if len(result) < n_in or any(r is not None for r in result[n_in:]):
            raise RuntimeError(
                f"function {self.name} returned an incorrect number of gradients (expected "
                f"{n_in}, got {len(result)})"
            )
        for i, (edge, g) in enumerate(zip(self.edges, result)):
            if edge is None or g is None:
                continue
            if not isinstance(g, Tensor):
                raise TypeError(
                    f"function {self.name} returned a gradient of type {type(g).__name__} for "
                    f"input {i}; expected a Tensor or None"
                )
            if not _expandable(g._data.shape, edge[2]):
                raise RuntimeError(
                    f"Function {self.name} returned an invalid gradient at index {i} - got "
                    f"{list(g._data.shape)} but expected shape compatible with {list(edge[2])}"
                )
        return result[:n_in]


BackwardFunction = FunctionCtx  # the base class of every ``<Name>Backward`` node


def _expandable(grad_shape: tuple, shape: tuple) -> bool:
    """True when ``shape`` broadcasts to ``grad_shape`` (so the engine can sum it back)."""
    if len(shape) > len(grad_shape):
        return False
    for s, g in zip(reversed(shape), reversed(grad_shape)):
        if s != g and s != 1:
            return False
    return True


class Function:
    """Base class for operations with a hand-written backward.

    Subclasses define static ``forward(ctx, *args, **kwargs)`` (runs with gradient recording
    off, on tensors and any other values) and ``backward(ctx, *grad_outputs)`` (one gradient
    per output in; one gradient per positional forward argument out, None for non-tensors or
    inputs that need none). Call ``MyFunction.apply(*args)``, never ``forward`` directly.

    When ``backward`` is written with chainrule ops, ``create_graph=True`` makes it
    differentiable too (double backward).

    >>> import chainrule as cr
    >>> class Square(cr.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x * x
    ...     @staticmethod
    ...     def backward(ctx, grad):
    ...         (x,) = ctx.saved_tensors
    ...         return 2 * x * grad
    >>> x = cr.tensor([1.0, 3.0], requires_grad=True)
    >>> Square.apply(x).sum().backward()
    >>> x.grad
    tensor([2., 6.])
    """

    _backward_cls: type

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        cls._backward_cls = type(
            f"{cls.__name__}Backward",
            (FunctionCtx,),
            {"_forward_cls": cls, "__module__": cls.__module__},
        )

    def __init__(self, *args, **kwargs):
        raise RuntimeError(
            f"{type(self).__name__} is a Function: call {type(self).__name__}.apply(...) instead "
            "of instantiating it"
        )

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        """The computation; override it (``ctx`` first, unless ``setup_context`` is defined)."""
        raise NotImplementedError("You must implement the forward function for custom Function.")

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple, output: Any) -> None:
        """Optional (PyTorch 2 style): when overridden, ``forward`` takes no ``ctx`` and this
        method fills the ctx from the inputs and output instead."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Tensor) -> Any:
        """The vector-Jacobian product; override it."""
        raise NotImplementedError("You must implement the backward function for custom Function.")

    vjp = backward

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` on ``args`` and record the call so backward reaches ``backward``."""
        if cls is Function:
            raise RuntimeError("apply() must be called on a subclass of Function")
        ctx = cls._backward_cls()
        tracked = modes.grad_enabled and any(
            isinstance(a, Tensor) and a.requires_grad for a in args
        )
        ctx.needs_input_grad = tuple(
            tracked and isinstance(a, Tensor) and a.requires_grad for a in args
        )
        previous = modes.grad_enabled
        modes.grad_enabled = False
        try:
            if _overrides(cls, "setup_context"):
                output = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        finally:
            modes.grad_enabled = previous
        if not tracked:
            return output
        return _record(ctx, args, output)


def _overrides(cls: type, method: str) -> bool:
    for klass in cls.__mro__:
        if method in klass.__dict__:
            return klass is not Function
    return False


def _record(ctx: FunctionCtx, args: tuple, output: Any) -> Any:
    """Make ``ctx`` the ``grad_fn`` of the tensor outputs and connect it to the inputs."""
    single = not isinstance(output, tuple)
    outputs = (output,) if single else output
    ctx.edges = tuple(_edge(a) if isinstance(a, Tensor) and a.requires_grad else None for a in args)
    if modes.anomaly:
        ctx.trace = _user_stack()
    input_ids = {id(a) for a in args if isinstance(a, Tensor)}
    dirty = {id(t) for t in ctx._dirty}
    non_diff = {id(t) for t in ctx._non_differentiable}
    ctx.n_outputs = len(outputs)
    meta = []
    results = []
    claimed = {}  # id(tensor the user returned) -> the output tensor that carries ctx
    for nr, out in enumerate(outputs):
        if not isinstance(out, Tensor):
            meta.append(None)  # a non-tensor output: its gradient stays None
            results.append(out)
            continue
        meta.append((out._data.shape, out._data.dtype, backend.array_module(out._data)))
        differentiable = id(out) not in non_diff and out._data.dtype in backend.FLOAT_NP_DTYPES
        if id(out) in dirty:
            if out.grad_fn is None and out.requires_grad:
                raise RuntimeError(
                    "a leaf Variable that requires grad has been used in an in-place operation."
                )
            result = out  # the modified input takes this node as its history
        elif id(out) in input_ids or id(out) in claimed or out.grad_fn is not None:
            result = Tensor._make(out._data)  # an alias: the input itself keeps its history
            result._vc = out._vc
        else:
            result = out  # a tensor created by forward: adopt it
        if differentiable:
            result.grad_fn = ctx
            result._output_nr = nr
            result.requires_grad = True
            result._accumulator = None
        else:
            result.grad_fn = None
            result.requires_grad = False
        claimed.setdefault(id(out), result)
        results.append(result)
    ctx._output_meta = tuple(meta)

    to_save = ctx._to_save or ()
    ctx._to_save = None
    saved = []
    for t in to_save:
        result = claimed.get(id(t)) if t is not None else None
        if result is not None and result.grad_fn is ctx:
            # an output: keep its array, not the tensor (the tensor points back at ctx)
            saved.append(_SavedOutput(result))
        else:
            saved.append(t)
    ctx.saved = tuple(saved)
    ctx.versions = tuple(t._vc[0] if isinstance(t, Tensor) else None for t in saved)
    return results[0] if single else tuple(results)


def once_differentiable(backward: Callable) -> Callable:
    """Decorate a ``backward`` that is not itself differentiable: it runs with gradient
    recording off even under ``create_graph=True``, so no graph is built through it."""

    @functools.wraps(backward)
    def wrapper(ctx, *grads):
        previous = modes.grad_enabled
        modes.grad_enabled = False
        try:
            return backward(ctx, *grads)
        finally:
            modes.grad_enabled = previous

    return wrapper
