"""``Module``: the base class of every layer and model.

A module owns three ordered registries, filled by plain attribute assignment:

* ``_parameters``: :class:`~chainrule.nn.Parameter` objects (``self.weight = Parameter(...)``);
* ``_buffers``: tensors that are state but not learned (``register_buffer``), e.g. BatchNorm's
  running statistics;
* ``_modules``: child modules (``self.fc = Linear(...)``).

Everything else (``parameters()``, ``state_dict()``, ``to()``, ``train()``, ``repr``) walks
these registries, children after the module's own entries, in insertion order, so names and
orders match PyTorch's exactly (``features.3.bias``, ``bn.running_mean``...).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator
from typing import Any

from chainrule import backend
from chainrule.autograd.grad_mode import no_grad
from chainrule.nn.parameter import Buffer, Parameter
from chainrule.ops.elementwise import bump_version
from chainrule.tensor import Node, RemovableHandle, Tensor

__all__ = [
    "Module",
    "register_module_forward_pre_hook",
    "register_module_forward_hook",
]


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What ``load_state_dict`` returns: the keys it could not match (empty when all did)."""

    __slots__ = ()

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


class _Hook:
    """One registered hook and how to call it (identity-compared, so handles remove it)."""

    __slots__ = ("fn", "with_kwargs", "always_call")

    def __init__(self, fn: Callable, with_kwargs: bool = False, always_call: bool = False):
        self.fn = fn
        self.with_kwargs = with_kwargs
        self.always_call = always_call


def _add_hook(hooks: list, fn: Callable, prepend: bool, **kw) -> RemovableHandle:
    entry = _Hook(fn, **kw)
    if prepend:
        hooks.insert(0, entry)
    else:
        hooks.append(entry)
    return RemovableHandle(hooks, entry)


# hooks that run for every module (PyTorch's ``register_module_forward_hook`` family)
_global_forward_pre_hooks: list = []
_global_forward_hooks: list = []


def register_module_forward_pre_hook(hook: Callable) -> RemovableHandle:
    """Run ``hook(module, args)`` before the forward of every module."""
    return _add_hook(_global_forward_pre_hooks, hook, False)


def register_module_forward_hook(hook: Callable, *, always_call: bool = False) -> RemovableHandle:
    """Run ``hook(module, args, output)`` after the forward of every module."""
    return _add_hook(_global_forward_hooks, hook, False, always_call=always_call)


def _indent(text: str, spaces: int) -> str:
    """Indent every line of ``text`` but the first (for nested module reprs)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    pad = " " * spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])


def _check_name(kind: str, name, module: Module, existing: dict) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
    if name == "":
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
    if hasattr(module, name) and name not in existing:
        raise KeyError(f"attribute '{name}' already exists")


def _as_array(value, key: str):
    """A state_dict value (chainrule tensor, NumPy/CuPy array, torch tensor...) as an array."""
    if isinstance(value, Tensor):
        return value._data
    if backend.is_array(value):
        return value
    try:
        return backend.np.asarray(value)
    except (RuntimeError, TypeError):
        detach = getattr(value, "detach", None)
        if detach is None:
            raise TypeError(
                f"load_state_dict: the value for '{key}' ({type(value).__name__}) cannot be "
                "converted to an array"
            ) from None
        return backend.np.asarray(detach().cpu())


class Module:
    """Base class for all neural-network modules; subclass it and define ``forward``.

    Assigning a :class:`Parameter`, a ``Module`` or (via :meth:`register_buffer`) a tensor
    to an attribute registers it, so it shows up in :meth:`parameters`,
    :meth:`state_dict`, :meth:`to` and the ``repr``.

    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.fc = nn.Linear(3, 2)
    ...     def forward(self, x):
    ...         return self.fc(x).relu()
    >>> net = Net()
    >>> [name for name, _ in net.named_parameters()]
    ['fc.weight', 'fc.bias']
    >>> net(cr.zeros(4, 3)).shape
    chainrule.Size([4, 2])
    """

    training: bool
    _version: int = 1

    def __init__(self, *args, **kwargs) -> None:
        if args or kwargs:
            raise TypeError(
                f"{type(self).__name__}.__init__() got unexpected arguments: Module.__init__ "
                "takes none"
            )
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", {})
        set_(self, "_buffers", {})
        set_(self, "_non_persistent_buffers_set", set())
        set_(self, "_modules", {})
        set_(self, "_forward_pre_hooks", [])
        set_(self, "_forward_hooks", [])
        set_(self, "_backward_hooks", [])
        set_(self, "_backward_pre_hooks", [])

    # -- calling -----------------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        """The computation of the module; every subclass defines it."""
        raise NotImplementedError(
            f'Module [{type(self).__name__}] is missing the required "forward" function'
        )

    def __call__(self, *args, **kwargs):
        if (
            self._forward_pre_hooks
            or self._forward_hooks
            or self._backward_hooks
            or self._backward_pre_hooks
            or _global_forward_pre_hooks
            or _global_forward_hooks
        ):
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict):
        for entry in itertools.chain(_global_forward_pre_hooks, self._forward_pre_hooks):
            if entry.with_kwargs:
                result = entry.fn(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            "forward pre-hook with_kwargs must return None or a tuple of "
                            f"(new_args, new_kwargs), but got {result!r}"
                        )
                    args, kwargs = result
            else:
                result = entry.fn(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        state = None
        if self._backward_hooks or self._backward_pre_hooks:
            state = _BackwardHookState(self)
            args = state.wrap_inputs(args)
        try:
            output = self.forward(*args, **kwargs)
        except Exception:
            for entry in itertools.chain(_global_forward_hooks, self._forward_hooks):
                if entry.always_call:
                    try:
                        entry.fn(self, args, None)
                    except Exception:  # noqa: S110 - the forward's own error is the one to show
                        pass
            raise
        for entry in itertools.chain(_global_forward_hooks, self._forward_hooks):
            if entry.with_kwargs:
                result = entry.fn(self, args, kwargs, output)
            else:
                result = entry.fn(self, args, output)
            if result is not None:
                output = result
        if state is not None:
            output = state.wrap_outputs(output)
        return output

    # -- hooks -------------------------------------------------------------------------------
    def register_forward_pre_hook(
        self, hook: Callable, *, prepend: bool = False, with_kwargs: bool = False
    ) -> RemovableHandle:
        """Run ``hook(module, args)`` before ``forward``; it may return replacement args.

        With ``with_kwargs=True`` the hook is ``hook(module, args, kwargs)`` and may return
        ``(args, kwargs)``. Returns a handle whose ``remove()`` unregisters it.
        """
        return _add_hook(self._forward_pre_hooks, hook, prepend, with_kwargs=with_kwargs)

    def register_forward_hook(
        self,
        hook: Callable,
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
        always_call: bool = False,
    ) -> RemovableHandle:
        """Run ``hook(module, args, output)`` after ``forward``; it may return a new output.

        >>> import chainrule as cr
        >>> lin = cr.nn.Linear(2, 2)
        >>> seen = []
        >>> h = lin.register_forward_hook(lambda m, args, out: seen.append(out.shape))
        >>> _ = lin(cr.zeros(5, 2)); h.remove(); seen
        [chainrule.Size([5, 2])]
        """
        return _add_hook(
            self._forward_hooks, hook, prepend, with_kwargs=with_kwargs, always_call=always_call
        )

    def register_full_backward_hook(self, hook: Callable, prepend: bool = False) -> RemovableHandle:
        """Run ``hook(module, grad_input, grad_output)`` when the gradients with respect to
        the module's inputs have been computed.

        ``grad_input`` and ``grad_output`` are tuples with one entry per positional tensor
        input / tensor output (``None`` where no gradient flows). The hook may return a
        replacement ``grad_input`` tuple.
        """
        return _add_hook(self._backward_hooks, hook, prepend)

    def register_full_backward_pre_hook(
        self, hook: Callable, prepend: bool = False
    ) -> RemovableHandle:
        """Run ``hook(module, grad_output)`` when the output gradients arrive; it may return a
        replacement ``grad_output`` tuple."""
        return _add_hook(self._backward_pre_hooks, hook, prepend)

    def register_backward_hook(self, hook: Callable) -> RemovableHandle:
        """Same as :meth:`register_full_backward_hook` (PyTorch's older name)."""
        return self.register_full_backward_hook(hook)

    # -- registration ------------------------------------------------------------------------
    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (a :class:`Parameter` or None) under ``name``."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("parameter", name, self, self._parameters)
        if param is None:
            self._parameters[name] = None
            return
        if not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(chainrule.nn.Parameter or None required)"
            )
        if param.grad_fn is not None:
            raise ValueError(
                f"Cannot assign non-leaf Tensor to parameter '{name}'. Model parameters must be "
                f"created explicitly. To express '{name}' as a function of another Tensor, "
                "compute the value in the forward() method."
            )
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register a tensor that is state but not a parameter (saved in ``state_dict``
        unless ``persistent=False``; moved by :meth:`to`)."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("buffer", name, self, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(chainrule Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a child module under ``name``."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name("module", name, self, self._modules)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value: Any) -> None:
        d = self.__dict__
        params = d.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name, "_parameters")
            self.register_parameter(name, value)
            return
        if params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(chainrule.nn.Parameter or None expected)"
                )
            params[name] = None
            return
        if isinstance(value, Buffer):
            if d.get("_buffers") is None:
                raise AttributeError("cannot assign buffer before Module.__init__() call")
            self._forget(name, "_buffers")
            self.register_buffer(name, value, value.persistent)
            return
        modules = d.get("_modules")
        if isinstance(value, Module):
            if modules is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name, "_modules")
            modules[name] = value
            return
        if modules is not None and name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(chainrule.nn.Module or None expected)"
                )
            modules[name] = None
            return
        buffers = d.get("_buffers")
        if buffers is not None and name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(chainrule Tensor or None expected)"
                )
            buffers[name] = value
            return
        object.__setattr__(self, name, value)

    def _forget(self, name: str, keep: str) -> None:
        """Drop ``name`` from the plain attributes and the registries other than ``keep``
        (which keeps its entry, so re-assigning an entry keeps its position)."""
        self.__dict__.pop(name, None)
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry != keep:
                self.__dict__[registry].pop(name, None)
        if keep != "_buffers":
            self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name: str) -> Any:
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = d.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if name in d[registry]:
                del d[registry][name]
                self._non_persistent_buffers_set.discard(name)
                return
        object.__delattr__(self, name)

    def __dir__(self):
        keys = set(super().__dir__())
        for registry in ("_parameters", "_buffers", "_modules"):
            keys.update(self.__dict__[registry])
        return sorted(k for k in keys if not k[0].isdigit())

    def get_submodule(self, target: str) -> Module:
        """The module at dotted path ``target`` (``'features.0'``); ``''`` is ``self``."""
        if target == "":
            return self
        mod = self
        for part in target.split("."):
            if part not in mod._modules or mod._modules[part] is None:
                raise AttributeError(f"{mod._get_name()} has no attribute `{part}`")
            mod = mod._modules[part]
        return mod

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at dotted path ``target`` (``'fc.weight'``)."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._parameters:
            raise AttributeError(f"{mod._get_name()} has no parameter `{name}`")
        return mod._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at dotted path ``target`` (``'bn.running_mean'``)."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._buffers:
            raise AttributeError(f"{mod._get_name()} has no buffer `{name}`")
        return mod._buffers[name]

    # -- iteration ---------------------------------------------------------------------------
    def _named_members(self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool):
        seen = set()
        modules = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for module_prefix, module in modules:
            for name, value in module.__dict__[registry].items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                if registry == "_buffers" and name in module._non_persistent_buffers_set:
                    pass  # non-persistent buffers are still buffers; only state_dict skips them
                yield (module_prefix + "." + name if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs: each module's own, then its children's."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter (shared ones once), in :meth:`named_parameters` order."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` pairs, in registration order."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer, in :meth:`named_buffers` order."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for each direct child (each module once)."""
        seen = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator[Module]:
        """The direct children."""
        for _, module in self.named_children():
            yield module

    def named_modules(
        self, memo: set | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """``(dotted name, module)`` for this module and every descendant, depth first
        (the module itself first, with name ``prefix``)."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = prefix + "." + name if prefix else name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """This module and every descendant."""
        for _, module in self.named_modules():
            yield module

    # -- modes and gradients -----------------------------------------------------------------
    def train(self, mode: bool = True) -> Module:
        """Set training mode (dropout active, batch statistics used) here and below."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        self.training = mode
        for module in self.children():
            module.train(mode)
        return self

    def eval(self) -> Module:
        """Set evaluation mode: ``train(False)``."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` of every parameter (e.g. to freeze a part of a model)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters (to None by default, or to zeros)."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                if p.grad.grad_fn is not None:
                    p.grad = p.grad.detach()
                else:
                    p.grad.requires_grad = False
                p.grad._data[...] = 0

    def apply(self, fn: Callable[[Module], None]) -> Module:
        """Call ``fn`` on every descendant (children first) and then on ``self``."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # -- conversion --------------------------------------------------------------------------
    def _apply(self, convert: Callable, floating_only: bool) -> Module:
        """Replace the arrays of every parameter, gradient and buffer by ``convert(array)``
        (the Parameter objects themselves are kept, so optimizers still hold them)."""
        for module in self.modules():
            for tensors in (module._parameters, module._buffers):
                for t in tensors.values():
                    if t is None:
                        continue
                    if floating_only and t._data.dtype not in backend.FLOAT_NP_DTYPES:
                        continue
                    t._data = convert(t._data)
                    if t.grad is not None:
                        t.grad._data = convert(t.grad._data)
        return self

    def to(self, *args, **kwargs) -> Module:
        """Convert parameters and buffers in place: ``to(dtype)``, ``to(device)``,
        ``to(tensor)`` or ``to(device, dtype)``; integer buffers keep their dtype."""
        dtype = kwargs.pop("dtype", None)
        device = kwargs.pop("device", None)
        kwargs.pop("non_blocking", None)
        if kwargs:
            raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
        for a in args:
            if isinstance(a, Tensor):
                dtype, device = a.dtype, a.device.type
            elif isinstance(a, backend.dtype) or (isinstance(a, str) and a in backend._BY_NAME):
                dtype = a
            elif a is not None:
                device = str(a)
        if dtype is not None:
            target = backend.as_dtype(dtype)
            if not target.is_floating_point:
                raise TypeError(
                    "nn.Module.to only accepts floating point dtypes, but got desired "
                    f"dtype={target}"
                )
            self._apply(lambda arr: arr.astype(target.np, copy=False), floating_only=True)
        if device is not None:
            self._apply(lambda arr: backend.to_device(arr, str(device)), floating_only=False)
        return self

    def float(self) -> Module:
        """Floating-point parameters and buffers to float32."""
        return self.to(backend.float32)

    def double(self) -> Module:
        """Floating-point parameters and buffers to float64."""
        return self.to(backend.float64)

    def half(self) -> Module:
        """Floating-point parameters and buffers to float16."""
        return self.to(backend.float16)

    def bfloat16(self) -> Module:
        """Floating-point parameters and buffers to bfloat16."""
        return self.to(backend.bfloat16)

    def cpu(self) -> Module:
        """Move parameters and buffers to the CPU."""
        return self.to("cpu")

    def cuda(self, device=None) -> Module:
        """Move parameters and buffers to the GPU."""
        return self.to("cuda")

    def type(self, dst_type) -> Module:
        """Cast all parameters and buffers to ``dst_type``."""
        return self.to(dst_type)

    # -- state dict --------------------------------------------------------------------------
    def _save_to_state_dict(self, destination: dict, prefix: str, keep_vars: bool) -> None:
        for name, p in self._parameters.items():
            if p is not None:
                destination[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                destination[prefix + name] = b if keep_vars else b.detach()

    def state_dict(self, *args, destination=None, prefix: str = "", keep_vars: bool = False):
        """An ordered dict of every parameter and persistent buffer by dotted name.

        The values share memory with the module (detached unless ``keep_vars``).

        >>> import chainrule as cr
        >>> list(cr.nn.Sequential(cr.nn.Linear(2, 2), cr.nn.BatchNorm1d(2)).state_dict())
        ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', \
'1.num_batches_tracked']
        """
        if args:  # PyTorch's deprecated positional form: (destination, prefix, keep_vars)
            destination = args[0]
            if len(args) > 1:
                prefix = args[1]
            if len(args) > 2:
                keep_vars = args[2]
        if destination is None:
            destination = OrderedDict()
        self._save_to_state_dict(destination, prefix, keep_vars)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(
                    destination=destination, prefix=prefix + name + ".", keep_vars=keep_vars
                )
        return destination

    def _load_from_state_dict(
        self, state_dict, prefix, strict, missing_keys, unexpected_keys, error_msgs, assign
    ) -> None:
        local = {k: v for k, v in self._parameters.items() if v is not None}
        local.update(
            (k, v)
            for k, v in self._buffers.items()
            if v is not None and k not in self._non_persistent_buffers_set
        )
        for name, target in local.items():
            key = prefix + name
            if key not in state_dict:
                missing_keys.append(key)
                continue
            try:
                arr = _as_array(state_dict[key], key)
            except TypeError as exc:
                error_msgs.append(str(exc))
                continue
            if tuple(arr.shape) != tuple(target._data.shape):
                error_msgs.append(
                    f"size mismatch for {key}: copying a param with shape {list(arr.shape)} from "
                    f"checkpoint, the shape in current model is {list(target._data.shape)}."
                )
                continue
            xp = backend.array_module(target._data)
            if backend.array_module(arr) is not xp:
                arr = backend.to_device(arr, backend.device_of(target._data))
            if assign:
                new = xp.array(arr, dtype=target._data.dtype, copy=True)
                target._data = new
            else:
                with no_grad():
                    target._data[...] = arr
                    bump_version(target)
        for key in state_dict:
            if not key.startswith(prefix):
                continue
            head = key[len(prefix) :].split(".", 1)[0]
            if head not in self._modules and head not in local:
                unexpected_keys.append(key)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Copy parameters and buffers from ``state_dict`` into this module, in place.

        Values may be chainrule tensors, NumPy arrays or anything ``numpy.asarray`` accepts
        (such as CPU torch tensors). With ``strict`` (the default) missing or unexpected keys
        raise; shape mismatches always raise. Returns ``(missing_keys, unexpected_keys)``.
        """
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(
                f"Expected state_dict to be dict-like, got {type(state_dict).__name__}."
            )
        missing: list = []
        unexpected: list = []
        errors: list = []
        for prefix, module in self.named_modules():
            module._load_from_state_dict(
                state_dict,
                prefix + "." if prefix else "",
                strict,
                missing,
                unexpected,
                errors,
                assign,
            )
        if strict:
            if unexpected:
                errors.insert(
                    0,
                    "Unexpected key(s) in state_dict: "
                    + ", ".join(f'"{k}"' for k in unexpected)
                    + ".",
                )
            if missing:
                errors.insert(
                    0, "Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in missing) + "."
                )
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {self._get_name()}:\n\t" + "\n\t".join(errors)
            )
        return _IncompatibleKeys(missing, unexpected)

    # -- printing ----------------------------------------------------------------------------
    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (override in layers)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        lines = extra.split("\n") if extra else []
        children = [
            f"({name}): {_indent(repr(module), 2)}" for name, module in self._modules.items()
        ]
        if not lines and not children:
            return f"{self._get_name()}()"
        if len(lines) == 1 and not children:
            return f"{self._get_name()}({lines[0]})"
        body = "\n  ".join(lines + children)
        return f"{self._get_name()}(\n  {body}\n)"

    # -- copying -----------------------------------------------------------------------------
    def __getstate__(self) -> dict:
        return self.__dict__.copy()

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class _BackwardHookState:
    """Connects a module's full backward hooks to the graph of one forward call.

    The tensor inputs and outputs of the call pass through identity nodes. When the output
    gradients reach the output node they are stored (and the pre-hooks run); when the input
    gradients reach the input node the hooks run with both and may replace the input
    gradients.
    """

    __slots__ = ("module", "n_args", "positions", "grad_output", "inputs_hooked")

    def __init__(self, module: Module):
        self.module = module
        self.n_args = 0
        self.positions: list = []
        self.grad_output = None
        self.inputs_hooked = False

    def wrap_inputs(self, args: tuple) -> tuple:
        tensor_args = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        self.n_args = len(tensor_args)
        # positions (among the tensor arguments) of the inputs that need a gradient
        self.positions = [k for k, i in enumerate(tensor_args) if args[i].requires_grad]
        if not self.positions:
            return args
        self.inputs_hooked = True
        arg_index = [tensor_args[k] for k in self.positions]
        wrapped = _identity([args[i] for i in arg_index], self, "inputs")
        args = list(args)
        for i, t in zip(arg_index, wrapped):
            args[i] = t
        return tuple(args)

    def wrap_outputs(self, output):
        if isinstance(output, Tensor):
            if not output.requires_grad:
                return output
            return _identity([output], self, "outputs")[0]
        if isinstance(output, (tuple, list)):
            idx = [i for i, o in enumerate(output) if isinstance(o, Tensor) and o.requires_grad]
            if not idx:
                return output
            wrapped = _identity([output[i] for i in idx], self, "outputs")
            out = list(output)
            for i, t in zip(idx, wrapped):
                out[i] = t
            return type(output)(out) if isinstance(output, tuple) else out
        return output

    def on_grad_output(self, grads: list) -> list:
        grads = tuple(grads)
        for entry in self.module._backward_pre_hooks:
            result = entry.fn(self.module, grads)
            if result is not None:
                grads = tuple(result)
        self.grad_output = grads
        if not self.inputs_hooked:  # no input needs a gradient: the hooks run now
            for entry in self.module._backward_hooks:
                entry.fn(self.module, (None,) * max(self.n_args, 1), grads)
        return list(grads)

    def on_grad_input(self, grads: list) -> list:
        full = [None] * self.n_args
        for k, g in zip(self.positions, grads):
            full[k] = g
        grad_input = tuple(full)
        for entry in self.module._backward_hooks:
            result = entry.fn(self.module, grad_input, self.grad_output)
            if result is not None:
                if len(result) != len(grad_input):
                    raise RuntimeError(
                        f"backward hook of {self.module._get_name()} returned {len(result)} "
                        f"gradients, expected {len(grad_input)}"
                    )
                grad_input = tuple(result)
        return [grad_input[k] for k in self.positions]


_IDENTITY_CLASSES: dict = {}


class _HookIdentity(Node):
    """Passes tensors through unchanged; its backward calls a module's backward hooks."""

    __slots__ = ("state", "side")

    def forward(self, xp, *arrays, state=None, side="inputs"):
        self.state, self.side = state, side
        return arrays if self.n_outputs > 1 else arrays[0]

    def backward(self, grads):
        listed = list(grads) if self.n_outputs > 1 else [grads]
        if self.side == "outputs":
            listed = self.state.on_grad_output(listed)
        else:
            listed = self.state.on_grad_input(listed)
        return tuple(listed) if self.n_outputs > 1 else listed[0]


def _identity(tensors: list, state: _BackwardHookState, side: str) -> list:
    n = len(tensors)
    cls = _IDENTITY_CLASSES.get(n)
    if cls is None:
        cls = type("BackwardHookFunction", (_HookIdentity,), {"__slots__": (), "n_outputs": n})
        _IDENTITY_CLASSES[n] = cls
    out = cls.apply(*tensors, state=state, side=side)
    return list(out) if n > 1 else [out]
