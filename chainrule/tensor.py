"""``Tensor`` and the record it keeps of how it was computed.

A tensor wraps one backend array (``tensor._data``). When an op runs on tensors that require
gradients (and grad mode is on), the op's :class:`Node` is kept as the output's ``grad_fn``: it
remembers which nodes produced its inputs (``edges``) and the tensors its backward rule needs
(``saved``). ``chainrule.autograd.engine`` later walks these nodes from the loss back to the
leaves.

Op methods (``x.exp()``, ``x + y``, ``x[0]``...) are attached to ``Tensor`` in
``chainrule/ops/__init__.py``, next to the functions they call.
"""

from __future__ import annotations

import os
import sys
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from chainrule import backend
from chainrule.backend import array_module, from_np

# ---------------------------------------------------------------------------------------------
# global switches read by every op (kept as attributes of one object so reading them is cheap)
# ---------------------------------------------------------------------------------------------


class _Modes:
    __slots__ = (
        "grad_enabled",
        "inference",
        "anomaly",
        "anomaly_check_nan",
        "debug_nans",
        "observers",
    )

    def __init__(self):
        self.grad_enabled = True
        self.inference = False
        self.anomaly = False  # record where each node was created; check backward for NaN
        self.anomaly_check_nan = True
        self.debug_nans = False  # raise at the first forward op whose output is NaN/Inf
        # callables ``fn(node, outputs)`` told of every recorded node (diagnostics use this to
        # record values and count live nodes); empty, it costs one check per recorded op
        self.observers = []


modes = _Modes()

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_frame() -> str:
    """``file:line`` of the innermost stack frame outside the chainrule package."""
    frame = sys._getframe(1)
    while frame is not None:
        if not os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR):
            return f"{frame.f_code.co_filename}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


def _user_stack() -> str:
    """The creation stack of a node, without chainrule's own frames, for anomaly reports."""
    frames = [
        f
        for f in traceback.extract_stack()[:-3]
        if not os.path.abspath(f.filename).startswith(_PACKAGE_DIR)
    ]
    return "".join(traceback.format_list(frames[-8:]))


# ---------------------------------------------------------------------------------------------
# graph nodes
# ---------------------------------------------------------------------------------------------

_FREED = object()  # marks a node whose saved tensors were released by a backward pass


class Node:
    """One recorded op: how to send the gradient of its output back to its inputs.

    A primitive op subclasses ``Node`` and defines

    * ``forward(self, xp, *arrays, **params)``: the array computation (``xp`` is NumPy or
      CuPy); non-tensor parameters the backward needs are stored on ``self``;
    * ``backward(self, grad, *saved)``: the vector-Jacobian product written with chainrule
      ops (so it is itself differentiable), returning one gradient per input (or ``None``).
      It never reduces broadcast dimensions: the engine sums the gradient to each input's
      shape and casts it to the input's dtype.

    ``saves`` lists the input positions the rule needs and ``save_output`` adds the output;
    they arrive after ``grad`` in that order. ``self.edges[i]`` is falsy when input ``i``
    needs no gradient, so expensive rules can skip work.
    """

    __slots__ = ("edges", "saved", "versions", "hooks", "trace", "__weakref__")

    saves: tuple[int, ...] = ()
    save_output = False
    is_view = False  # the output shares the first input's memory (and version counter)
    n_outputs = 1

    def __init__(self):
        self.hooks = None
        self.trace = None

    def forward(self, xp, *arrays, **params):  # pragma: no cover - every primitive overrides
        raise NotImplementedError(f"{type(self).__name__} has no forward")

    def backward(self, grad, *saved):  # pragma: no cover - every primitive overrides
        raise NotImplementedError(f"{type(self).__name__} has no backward rule")

    @property
    def name(self) -> str:
        """The name PyTorch would show for this node (``MulBackward``)."""
        return f"{type(self).__name__}Backward0"

    @property
    def next_functions(self) -> tuple:
        """``(node, output_nr)`` per input, ``(None, 0)`` where no gradient flows."""
        return tuple((None, 0) if e is None else (e[0], e[1]) for e in self.edges)

    def register_hook(self, fn: Callable) -> None:
        """Not supported on nodes; register hooks on tensors instead."""
        raise RuntimeError("register hooks on tensors (tensor.register_hook) in chainrule")

    def __repr__(self) -> str:
        return f"<{self.name}>"

    # -- the op call: run the forward, record the node when gradients are needed -----------
    @classmethod
    def apply(cls, *inputs, **params):
        """Run this primitive on ``inputs`` (tensors or constants) and record it if needed."""
        node = cls()
        arrays = []
        requires = False
        xp = None
        for x in inputs:
            if isinstance(x, Tensor):
                arrays.append(x._data)
                if xp is None:
                    xp = array_module(x._data)
                if x.requires_grad:
                    requires = True
            else:
                arrays.append(x)
        if xp is None:
            xp = backend.np
        try:
            out = node.forward(xp, *arrays, **params)
        except ValueError as exc:  # NumPy's broadcasting error, restated as PyTorch's
            _raise_if_not_broadcastable(cls, arrays, exc)
            raise
        if modes.debug_nans:
            _check_forward_finite(node, out, arrays)
        if not (requires and modes.grad_enabled):
            if cls.n_outputs == 1:
                return _wrap(out, inputs[0] if cls.is_view else None)
            return tuple(_wrap(o) for o in out)
        node.edges = tuple(
            _edge(x) if isinstance(x, Tensor) and x.requires_grad else None for x in inputs
        )
        saved = tuple(inputs[i] for i in cls.saves)
        node.versions = tuple(x._vc[0] if isinstance(x, Tensor) else None for x in saved)
        if modes.anomaly:
            node.trace = _user_stack()
        if cls.n_outputs == 1:
            result = Tensor._make(out, True, node, 0)
            if cls.is_view:
                result._vc = inputs[0]._vc
            if cls.save_output:
                saved += (_SavedOutput(result),)
            node.saved = saved
            if modes.observers:
                _notify(node, (result,))
            return result
        results = tuple(Tensor._make(o, True, node, i) for i, o in enumerate(out))
        node.saved = saved
        if modes.observers:
            _notify(node, results)
        return results

    def saved_tensors_for_backward(self, create_graph: bool) -> tuple:
        """The saved values, checked against in-place changes since they were saved."""
        saved = self.saved
        if saved is _FREED:
            raise RuntimeError(
                "Trying to backward through the graph a second time (or directly access saved "
                "tensors after they have already been freed). Saved intermediate values of the "
                f"graph are freed when you call .backward() or autograd.grad(); {self.name} "
                "needed them. Specify retain_graph=True if you need to backward through the "
                "graph a second time or if you need to access saved tensors after calling "
                "backward."
            )
        out = []
        for i, value in enumerate(saved):
            if type(value) is _SavedOutput:
                value = value.unpack(self, create_graph)
            elif isinstance(value, Tensor) and value._vc[0] != self.versions[i]:
                _raise_modified(self, value, self.versions[i])
            out.append(value)
        return tuple(out)


_SAVED_SLOT = Node.__dict__["saved"]


class BufferedNode(Node):
    """A primitive that keeps arrays of its own for its backward (the attributes named in
    ``_buffers``), besides its saved inputs.

    The engine releases a node's saved values right after running its backward (unless
    ``retain_graph``) by setting ``node.saved``; :meth:`release` drops the buffers at that
    same moment, so a finished backward gives their memory back at once, not only when the
    graph is dropped. Subclasses with other resources extend :meth:`release`.
    """

    __slots__ = ()
    _buffers: tuple = ()

    @property
    def saved(self):
        return _SAVED_SLOT.__get__(self, type(self))

    @saved.setter
    def saved(self, value):
        _SAVED_SLOT.__set__(self, value)
        if value is _FREED:
            self.release()

    def release(self) -> None:
        """Drop the arrays named in ``_buffers``."""
        for name in self._buffers:
            setattr(self, name, None)


class _SavedOutput:
    """An op's own output saved for its backward (kept as the array, to avoid a cycle)."""

    __slots__ = ("array", "vc", "version", "nr")

    def __init__(self, tensor: Tensor):
        self.array = tensor._data
        self.vc = tensor._vc
        self.version = tensor._vc[0]
        self.nr = tensor._output_nr

    def unpack(self, node: Node, create_graph: bool) -> Tensor:
        if self.vc[0] != self.version:
            t = Tensor._make(self.array)
            t._vc = self.vc
            _raise_modified(node, t, self.version, self.nr)
        if create_graph:
            t = Tensor._make(self.array, True, node, self.nr)
            t._vc = self.vc
            return t
        return Tensor._make(self.array)


def _raise_modified(node: Node, tensor: Tensor, saved_version: int, output_nr=None):
    where = ""
    if len(tensor._vc) > 1 and tensor._vc[1]:
        where = f" The in-place operation that modified it ran at {tensor._vc[1]}."
    elif not modes.anomaly:
        where = (
            " Hint: enable anomaly detection (chainrule.autograd.set_detect_anomaly(True)) "
            "to find the operation that modified it."
        )
    if node.trace:
        where += f"\nThe forward call that created {node.name} was:\n{node.trace}"
    dt = from_np(tensor._data.dtype)
    if output_nr is None:
        role = f"which {node.name} saved for its backward"
    else:
        role = f"which is output {output_nr} of {node.name}"
    raise RuntimeError(
        "one of the variables needed for gradient computation has been modified by an inplace "
        f"operation: [{dt.name} tensor of shape {list(tensor._data.shape)}], {role}, is at "
        f"version {tensor._vc[0]}; expected version {saved_version} instead.{where}"
    )


class AccumulateGrad(Node):
    """The node at a leaf that requires grad: the engine adds what reaches it to ``.grad``."""

    __slots__ = ("variable",)

    def __init__(self, variable: Tensor):
        super().__init__()
        self.variable = variable
        self.edges = ()
        self.saved = ()


def _notify(node: Node, outputs: tuple) -> None:
    for observer in tuple(modes.observers):
        observer(node, outputs)


def _edge(x: Tensor) -> tuple:
    """``(node, output_nr, shape, array dtype)`` for an input that needs a gradient."""
    node = x.grad_fn
    if node is None:  # a leaf: route to its (shared) AccumulateGrad node
        ref = x._accumulator
        node = ref() if ref is not None else None
        if node is None:
            node = AccumulateGrad(x)
            x._accumulator = weakref.ref(node)
    return (node, x._output_nr, x._data.shape, x._data.dtype)


def _wrap(array, view_of: Tensor | None = None) -> Tensor:
    t = Tensor._make(array)
    if view_of is not None:
        t._vc = view_of._vc
    return t


def _raise_if_not_broadcastable(cls: type, arrays: list, exc: ValueError) -> None:
    """Raise PyTorch's size-mismatch error when the array inputs do not broadcast together."""
    message = str(exc)
    if "broadcast" not in message or "remapped" in message:  # not an elementwise mismatch
        return
    shapes = [a.shape for a in arrays if backend.is_array(a)]
    if len(shapes) < 2:
        return
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    for dim in range(ndim - 1, -1, -1):
        sizes = [s[dim] for s in padded]
        big = [(i, n) for i, n in enumerate(sizes) if n != 1]
        for i, n in big[1:]:
            if n != big[0][1]:
                first, second = big[0][0], i
                names = "abcdefgh"
                raise RuntimeError(
                    f"The size of tensor {names[first]} ({big[0][1]}) must match the size of "
                    f"tensor {names[second]} ({n}) at non-singleton dimension {dim} (in "
                    f"{cls.__name__}, input shapes "
                    f"{', '.join(str(list(s)) for s in shapes)})"
                ) from exc


def _check_forward_finite(node: Node, out, arrays) -> None:
    outs = out if isinstance(out, tuple) else (out,)
    for o in outs:
        if not backend.is_array(o) or o.dtype not in backend.FLOAT_NP_DTYPES:
            continue
        xp = array_module(o)
        if not bool(xp.isfinite(o).all()):
            shapes = ", ".join(f"{list(a.shape)} {a.dtype}" for a in arrays if backend.is_array(a))
            kind = "NaN" if bool(xp.isnan(o).any()) else "Inf"
            raise FloatingPointError(
                f"debug_nans: {type(node).__name__} produced {kind} in its output "
                f"(inputs: {shapes or 'none'}) at {user_frame()}"
            )


# ---------------------------------------------------------------------------------------------
# Tensor
# ---------------------------------------------------------------------------------------------


class Tensor:
    """A multi-dimensional array that records the ops applied to it.

    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> y = (x * x).sum()
    >>> y.backward()
    >>> x.grad
    tensor([2., 4., 6.])
    """

    __slots__ = (
        "_data",
        "requires_grad",
        "grad",
        "grad_fn",
        "_output_nr",
        "_vc",
        "_accumulator",
        "_hooks",
        "_retains_grad",
        "__weakref__",
    )

    def __init__(self, data=None, *, dtype=None, requires_grad: bool = False):
        arr = backend.asarray([] if data is None else data, dtype)
        self._init(arr, requires_grad)

    def _init(self, arr, requires_grad=False, grad_fn=None, nr=0):
        self._data = arr
        self.grad = None
        self.grad_fn = grad_fn
        self._output_nr = nr
        self._vc = [0, None]  # version counter (shared by views) and where it last changed
        self._accumulator = None
        self._hooks = None
        self._retains_grad = False
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _make(cls, arr, requires_grad=False, grad_fn=None, nr=0) -> Tensor:
        """Wrap ``arr`` without copying or checking (the hot path of every op)."""
        t = object.__new__(cls)
        t._data = arr
        t.requires_grad = requires_grad
        t.grad = None
        t.grad_fn = grad_fn
        t._output_nr = nr
        t._vc = [0, None]
        t._accumulator = None
        t._hooks = None
        t._retains_grad = False
        return t

    # -- basic attributes --------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """The size of each dimension, as a tuple (``chainrule.Size`` in PyTorch)."""
        return Size(self._data.shape)

    @property
    def dtype(self):
        """The element type, e.g. ``chainrule.float32``."""
        return from_np(self._data.dtype)

    @property
    def ndim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    @property
    def device(self) -> Device:
        """``device(type='cpu')`` or ``device(type='cuda')``."""
        return Device(backend.device_of(self._data))

    @property
    def is_cuda(self) -> bool:
        """True when the tensor lives on a GPU."""
        return backend.device_of(self._data) == "cuda"

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op (user-created or detached)."""
        return self.grad_fn is None

    @property
    def _version(self) -> int:
        return self._vc[0]

    @property
    def data(self) -> Tensor:
        """The same memory without history; changes to it are not seen by autograd."""
        return Tensor._make(self._data)

    @data.setter
    def data(self, value: Tensor) -> None:
        self._data = value._data if isinstance(value, Tensor) else backend.asarray(value)

    @property
    def is_floating_point_type(self) -> bool:
        return self._data.dtype in backend.FLOAT_NP_DTYPES

    def is_floating_point(self) -> bool:
        """True for float16/bfloat16/float32/float64 tensors."""
        return self._data.dtype in backend.FLOAT_NP_DTYPES

    def size(self, dim: int | None = None):
        """The shape, or the size of one dimension."""
        if dim is None:
            return Size(self._data.shape)
        return self._data.shape[_wrap_dim(dim, self._data.ndim, "size")]

    def numel(self) -> int:
        """The number of elements."""
        return int(self._data.size)

    def dim(self) -> int:
        """The number of dimensions."""
        return self._data.ndim

    def element_size(self) -> int:
        """Bytes per element."""
        return self._data.dtype.itemsize

    def nelement(self) -> int:
        return int(self._data.size)

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self._data.shape[0]

    def __iter__(self):
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return iter(self.unbind(0))

    def __hash__(self) -> int:
        return id(self)

    def __bool__(self) -> bool:
        if self._data.size != 1:
            raise RuntimeError(
                f"Boolean value of Tensor with more than one value is ambiguous "
                f"(shape {list(self._data.shape)})"
            )
        return bool(self._data.reshape(()))

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an index")
        return int(self.item())

    def __complex__(self) -> complex:
        return complex(self.item())

    # -- conversion ---------------------------------------------------------------------------
    def item(self):
        """The single value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise RuntimeError(
                f"a Tensor with {self._data.size} elements cannot be converted to Scalar"
            )
        return backend.to_numpy(self._data).reshape(()).item()

    def tolist(self):
        """Nested Python lists of the values (a number for a 0-d tensor)."""
        arr = backend.to_numpy(self._data)
        if arr.dtype == backend.bfloat16.np:
            arr = arr.astype("float32")
        return arr.tolist()

    def numpy(self, *, force: bool = False):
        """The NumPy array behind the tensor (shared memory on the CPU)."""
        if self.requires_grad and not force:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "instead."
            )
        return backend.to_numpy(self._data)

    def __array__(self, dtype=None, copy=None):
        arr = backend.to_numpy(self._data)
        if dtype is not None and arr.dtype != dtype:
            return arr.astype(dtype)
        return arr

    def cpu(self) -> Tensor:
        """This tensor on the CPU (differentiable)."""
        return self.to("cpu")

    def cuda(self, device=None) -> Tensor:
        """This tensor on the GPU (differentiable)."""
        return self.to("cuda")

    def __repr__(self) -> str:
        from chainrule import _format

        return _format.tensor_repr(self)

    def __str__(self) -> str:
        return self.__repr__()

    # -- autograd -----------------------------------------------------------------------------
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set whether gradients are recorded for this leaf; returns the tensor."""
        if requires_grad and self._data.dtype not in backend.FLOAT_NP_DTYPES:
            raise RuntimeError(
                "only Tensors of floating point dtype can require gradients "
                f"(got {from_np(self._data.dtype)})"
            )
        if not requires_grad and self.grad_fn is not None:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf variables. If you want to use "
                "a computed variable in a subgraph that doesn't require differentiation use "
                "var_no_grad = var.detach()."
            )
        self.requires_grad = bool(requires_grad)
        return self

    def detach(self) -> Tensor:
        """A new tensor sharing memory (and version counter) but cut from the graph."""
        t = Tensor._make(self._data)
        t._vc = self._vc
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph in place."""
        self.grad_fn = None
        self.requires_grad = False
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` for this non-leaf tensor after backward."""
        if not self.requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self.grad_fn is None or self._retains_grad:
            return
        self._retains_grad = True
        ref = weakref.ref(self)

        def keep(grad):
            t = ref()
            if t is not None:
                if t.grad is None:
                    t.grad = grad.detach() if not modes.grad_enabled else grad
                else:
                    t.grad = t.grad + grad
            return None

        keep._retain = True
        self._add_hook(keep)

    @property
    def retains_grad(self) -> bool:
        """True after :meth:`retain_grad` on a non-leaf tensor."""
        return self._retains_grad

    def register_hook(self, hook: Callable[[Tensor], Tensor | None]) -> RemovableHandle:
        """Call ``hook(grad)`` when this tensor's gradient is computed.

        The hook may return a replacement gradient. Returns a handle with ``remove()``.

        >>> import chainrule as cr
        >>> x = cr.ones(2, requires_grad=True)
        >>> h = x.register_hook(lambda g: g * 10)
        >>> x.sum().backward(); x.grad
        tensor([10., 10.])
        """
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
        return self._add_hook(hook)

    def _add_hook(self, hook) -> RemovableHandle:
        if self.grad_fn is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            node = self.grad_fn
            if node.hooks is None:
                node.hooks = {}
            hooks = node.hooks.setdefault(self._output_nr, [])
        # retain_grad's hook runs after the user's hooks, as in PyTorch
        retain = [h for h in hooks if getattr(h, "_retain", False)]
        for h in retain:
            hooks.remove(h)
        hooks.append(hook)
        hooks.extend(retain)
        return RemovableHandle(hooks, hook)

    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate d(self)/d(leaf) into ``.grad`` of every leaf that requires grad."""
        # the engine is one layer up; importing it here keeps ``chainrule.tensor`` importable
        # on its own (see the layering test)
        from chainrule.autograd import engine

        engine.backward(
            (self,),
            None if gradient is None else (gradient,),
            retain_graph=retain_graph,
            create_graph=create_graph,
            inputs=inputs,
        )


class RemovableHandle:
    """Returned by hook registration; ``remove()`` unregisters the hook."""

    __slots__ = ("_hooks", "_hook")

    def __init__(self, hooks: list, hook: Any):
        self._hooks = hooks
        self._hook = hook

    def remove(self) -> None:
        """Unregister the hook (safe to call twice)."""
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Size(tuple):
    """A tensor's shape: a tuple with PyTorch's repr and ``numel``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"chainrule.Size({list(self)})"

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        n = 1
        for s in self:
            n *= s
        return n


class Device:
    """Where a tensor lives: ``device(type='cpu')`` or ``device(type='cuda')``."""

    __slots__ = ("type",)

    def __init__(self, type: str = "cpu"):  # noqa: A002 - PyTorch's argument name
        self.type = str(type).split(":")[0]

    def __eq__(self, other) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(self.type)

    def __repr__(self) -> str:
        return f"device(type='{self.type}')"

    def __str__(self) -> str:
        return self.type


def _wrap_dim(dim: int, ndim: int, op: str = "op") -> int:
    """Turn a possibly negative ``dim`` into an index, with PyTorch's range error."""
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(
            f"{op}: Dimension out of range (expected to be in range of [{-n}, {n - 1}], "
            f"but got {dim})"
        )
    return dim + n if dim < 0 else dim


wrap_dim = _wrap_dim
