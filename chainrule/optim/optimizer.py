"""``Optimizer``: parameter groups, per-parameter state, and the update loop every optimiser shares.

An optimiser subclass supplies two things:

* ``_init_state(p, state, group)``: fill the empty ``state`` dict of parameter ``p`` on its
  first step (``state["step"]``, ``state["exp_avg"]`` ... as chainrule tensors, named as in
  PyTorch so that state dicts are interchangeable);
* ``_update(group, xp, p, g, s, sc, tmp)``: one step of the update rule on plain arrays of one
  shape. ``p`` (the parameter's values) and the arrays in ``s`` (its tensor state, by name) are
  updated in place; ``g`` (the gradient) is read only; ``tmp`` holds ``_n_tmp`` scratch arrays;
  ``sc`` holds the scalar state (``"step"`` ...) as NumPy scalars, and the rule replaces its
  entries with the new values. A rule may add an array to ``s`` (SGD's momentum buffer).

Updates never go through autograd: they work on the arrays behind the tensors (``p._data``),
so an optimiser step records no history and costs no graph bookkeeping. Every rule is
elementwise; ``chainrule.optim._engine`` uses that to run it over many small parameters at
once, over long arrays in cache-sized chunks, and on several threads.
"""

from __future__ import annotations

import copy
import warnings
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from chainrule import backend
from chainrule.autograd.grad_mode import enable_grad
from chainrule.optim import _engine
from chainrule.tensor import RemovableHandle, Tensor

__all__ = [
    "Optimizer",
    "required",
    "register_optimizer_step_pre_hook",
    "register_optimizer_step_post_hook",
]


class _RequiredParameter:
    """Marks a hyperparameter that every parameter group must set (no default)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _RequiredParameter()

_global_pre_hooks: list[Callable] = []
_global_post_hooks: list[Callable] = []


def register_optimizer_step_pre_hook(hook: Callable) -> RemovableHandle:
    """Call ``hook(optimizer, args, kwargs)`` before every optimiser's ``step``.

    The hook may return ``(new_args, new_kwargs)`` to replace the step's arguments.
    """
    _global_pre_hooks.append(hook)
    return RemovableHandle(_global_pre_hooks, hook)


def register_optimizer_step_post_hook(hook: Callable) -> RemovableHandle:
    """Call ``hook(optimizer, args, kwargs)`` after every optimiser's ``step``."""
    _global_post_hooks.append(hook)
    return RemovableHandle(_global_post_hooks, hook)


def _with_hooks(step: Callable) -> Callable:
    """Wrap a subclass's ``step`` so that step hooks run around it (as PyTorch does)."""

    def hooked_step(self, *args, **kwargs):
        self._opt_called = True  # lets a learning-rate scheduler check the call order
        if _global_pre_hooks or self._step_pre_hooks:
            for hook in (*_global_pre_hooks, *self._step_pre_hooks):
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            f"{type(self).__name__}.step pre-hook must return None or a tuple "
                            f"(new_args, new_kwargs), but got {result!r}"
                        )
                    args, kwargs = result
        out = step(self, *args, **kwargs)
        if _global_post_hooks or self._step_post_hooks:
            for hook in (*self._step_post_hooks, *_global_post_hooks):
                hook(self, args, kwargs)
        return out

    hooked_step.__name__ = step.__name__
    hooked_step.__qualname__ = step.__qualname__
    hooked_step.__doc__ = step.__doc__
    hooked_step._hooked = True
    return hooked_step


def scalar_dtype():
    """The dtype of scalar state such as ``step``: float64 when that is the default, else
    float32 (PyTorch's rule, which also decides the rounding of NAdam's ``mu_product``)."""
    d = backend.get_default_dtype()
    return backend.float64.np if d is backend.float64 else backend.float32.np


def scalar_state(value: float) -> Tensor:
    """A 0-d CPU tensor holding scalar state (PyTorch keeps ``step`` on the CPU, too)."""
    return Tensor._make(backend.np.array(value, dtype=scalar_dtype()))


def to_float(value) -> float:
    """A hyperparameter that may be given as a one-element tensor, as a Python float."""
    if isinstance(value, Tensor):
        return float(value.item())
    return float(value)


def _typename(obj) -> str:
    return type(obj).__module__ + "." + type(obj).__qualname__


class Optimizer:
    """Base class of all optimisers.

    ``params`` is an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts that each
    define a parameter group (``{"params": [...], "lr": 0.1}``); options a group does not set
    come from ``defaults``.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.ones(2))
    >>> opt = cr.optim.SGD([w], lr=0.5)
    >>> (w * w).sum().backward()
    >>> opt.step(); w
    Parameter containing:
    tensor([0., 0.], requires_grad=True)
    """

    # names of the scalar (0-d) entries of each parameter's state; the rest are arrays shaped
    # like the parameter
    _scalar_names: tuple[str, ...] = ("step",)
    _n_tmp = 3  # scratch arrays the update rule uses

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        step = cls.__dict__.get("step")
        if step is not None and not getattr(step, "_hooked", False):
            cls.step = _with_hooks(step)

    def __init__(self, params, defaults: dict[str, Any]) -> None:
        self.defaults = defaults
        self._step_pre_hooks: list[Callable] = []
        self._step_post_hooks: list[Callable] = []
        self._state_dict_pre_hooks: list[Callable] = []
        self._state_dict_post_hooks: list[Callable] = []
        self._load_state_dict_pre_hooks: list[Callable] = []
        self._load_state_dict_post_hooks: list[Callable] = []
        # per group: its kept layout (runs, chunks, scratch) and how small parameters share
        # flat buffers (see chainrule.optim._engine)
        self._plans: dict[tuple, Any] = {}
        self._opt_called = False
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {_typename(params)}"
            )
        self.state: defaultdict[Tensor, dict] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if len(groups) == 0:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # -- groups ------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters with its own options (unset options take the defaults).

        Useful to start training layers that were frozen: ``opt.add_param_group({"params":
        head.parameters(), "lr": 1e-3})``.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group)}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs. Please use a list instead."
            )
        else:
            params = list(params)
        tensors, names = [], []
        for item in params:
            if isinstance(item, tuple):
                names.append(item[0])
                tensors.append(item[1])
            else:
                tensors.append(item)
        if names:
            if len(names) != len(tensors):
                raise ValueError(
                    "all optimizer params should be with/without names. Some param names are "
                    "missing"
                )
            param_group["param_names"] = names
        param_group["params"] = tensors
        for p in tensors:
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"optimizer can only optimize Tensors, but one of the params is {_typename(p)}"
                )
            if not (p.is_leaf or p.retains_grad):
                raise ValueError("can't optimize a non-leaf Tensor")
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    "parameter group didn't specify a value of required optimization parameter "
                    f"{name}"
                )
            param_group.setdefault(name, default)
        ids = [id(p) for p in tensors]
        if len(ids) != len(set(ids)):
            warnings.warn(
                "optimizer contains a parameter group with duplicate parameters; in future, this "
                "will cause an error",
                stacklevel=3,
            )
        seen: set[int] = set()
        for group in self.param_groups:
            seen.update(id(p) for p in group["params"])
            if ("param_names" in param_group) != ("param_names" in group):
                which = "with names" if "param_names" in param_group else "without names"
                raise ValueError(
                    "all optimizer param groups should be with/without names. cannot add param "
                    f"group {which} to the optimizer"
                )
        if not seen.isdisjoint(ids):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def __repr__(self) -> str:
        lines = [type(self).__name__ + " ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines) + "\n)"

    # -- gradients ---------------------------------------------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to ``None`` (default) or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad
                if g is None:
                    continue
                if set_to_none:
                    p.grad = None
                    continue
                if g.grad_fn is not None:
                    g.detach_()
                else:
                    g.requires_grad = False
                g._data[...] = 0
                g._vc[0] += 1

    # -- the step ----------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None):
        """Update every parameter that has a gradient; ``closure`` (optional) recomputes the
        loss, which ``step`` returns."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with backend.errstate(all="ignore"):  # NaN/Inf propagate silently, as in PyTorch
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _stateless(self, group: dict) -> bool:
        """True when this group's update keeps no per-parameter state (SGD without momentum)."""
        return False

    def _init_state(self, p: Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError(f"{type(self).__name__} defines no state initialisation")

    def _update(self, group: dict, xp, p, g, s: dict, sc: dict, tmp: list) -> None:
        raise NotImplementedError(f"{type(self).__name__} defines no update")

    def _step_group(self, group: dict) -> None:
        """Update the parameters of one group that have gradients."""
        _engine.step_group(self, group)

    # -- hooks -------------------------------------------------------------------------------
    def register_step_pre_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` before each ``step``; it may return
        ``(new_args, new_kwargs)``."""
        self._step_pre_hooks.append(hook)
        return RemovableHandle(self._step_pre_hooks, hook)

    def register_step_post_hook(self, hook: Callable) -> RemovableHandle:
        """Call ``hook(optimizer, args, kwargs)`` after each ``step``."""
        self._step_post_hooks.append(hook)
        return RemovableHandle(self._step_post_hooks, hook)

    def register_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Call ``hook(optimizer)`` before :meth:`state_dict` builds its result."""
        return _register(self._state_dict_pre_hooks, hook, prepend)

    def register_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Call ``hook(optimizer, state_dict)`` on the result of :meth:`state_dict`; a returned
        dict replaces it."""
        return _register(self._state_dict_post_hooks, hook, prepend)

    def register_load_state_dict_pre_hook(self, hook: Callable, prepend: bool = False):
        """Call ``hook(optimizer, state_dict)`` before loading; a returned dict is loaded
        instead."""
        return _register(self._load_state_dict_pre_hooks, hook, prepend)

    def register_load_state_dict_post_hook(self, hook: Callable, prepend: bool = False):
        """Call ``hook(optimizer)`` after :meth:`load_state_dict`."""
        return _register(self._load_state_dict_post_hooks, hook, prepend)

    # -- saving and resuming -----------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The optimiser's state as ``{"state": {index: {...}}, "param_groups": [...]}``.

        Parameters are replaced by their position (counted across groups in order), exactly as
        in PyTorch, so the dict can be saved and loaded into an optimiser built over the same
        parameters. The state tensors are the live ones (not copies), as in PyTorch.
        """
        for hook in self._state_dict_pre_hooks:
            hook(self)
        index: dict[int, int] = {}
        start = 0
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for i, p in enumerate(group["params"], start):
                index.setdefault(id(p), i)
            packed["params"] = [index[id(p)] for p in group["params"]]
            start += len(packed["params"])
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        result = {"state": state, "param_groups": groups}
        for hook in self._state_dict_post_hooks:
            out = hook(self, result)
            if out is not None:
                result = out
        return result

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (from chainrule, or from PyTorch with its tensors).

        State tensors are copied and cast to their parameter's dtype (except ``step``), so the
        loaded optimiser continues exactly where the saved one was.
        """
        state_dict = dict(state_dict)
        for hook in self._load_state_dict_pre_hooks:
            out = hook(self, state_dict)
            if out is not None:
                state_dict = out
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for g, sg in zip(groups, saved_groups):
            if len(g["params"]) != len(sg["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    "of optimizer's group"
                )
        id_map = {}
        for g, sg in zip(groups, saved_groups):
            for p, i in zip(g["params"], sg["params"]):
                id_map[i] = p
        state: defaultdict[Any, dict] = defaultdict(dict)
        for k, v in state_dict["state"].items():
            if k in id_map:
                p = id_map[k]
                state[p] = _cast_state(p, v, None)
            else:
                state[k] = v
        new_groups = []
        for g, sg in zip(groups, saved_groups):
            sg["params"] = g["params"]
            if "param_names" in g and "param_names" not in sg:
                sg["param_names"] = g["param_names"]
            new_groups.append(sg)
        self.state = state
        self.param_groups = new_groups
        self._plans = {}
        for hook in self._load_state_dict_post_hooks:
            hook(self)

    def __getstate__(self) -> dict[str, Any]:
        return {"defaults": self.defaults, "state": self.state, "param_groups": self.param_groups}


_bump = _engine.bump


def _register(hooks: list, hook: Callable, prepend: bool) -> RemovableHandle:
    if prepend:
        hooks.insert(0, hook)
    else:
        hooks.append(hook)
    return RemovableHandle(hooks, hook)


def _as_array(value):
    """The array behind a state value: a chainrule tensor, an array, or another framework's
    tensor (a PyTorch state dict loads too)."""
    if isinstance(value, Tensor):
        return value._data
    if backend.is_array(value):
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):  # a torch.Tensor
        return value.detach().cpu().numpy()
    return None


def _cast_state(p: Tensor, value, key):
    """A copy of one saved state value, moved to ``p``'s device and (but for ``step``) dtype."""
    if key == "step" and isinstance(value, (int, float)):
        return scalar_state(float(value))
    arr = _as_array(value)
    if arr is not None:
        if key == "step":  # kept in its own dtype, on the CPU; everything else follows ``p``
            return Tensor._make(backend.np.array(backend.to_numpy(arr)))
        target = p._data
        xp = backend.array_module(target)
        dtype = target.dtype if target.dtype in backend.FLOAT_NP_DTYPES else arr.dtype
        out = backend.to_device(arr, backend.device_of(target))
        return Tensor._make(xp.array(out, dtype=dtype, copy=True))
    if isinstance(value, dict):
        return {k: _cast_state(p, v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cast_state(p, v, None) for v in value)
    return value


# ``step`` of subclasses is wrapped in ``__init_subclass__``; the shared one is wrapped here.
Optimizer.step = _with_hooks(Optimizer.step)


# ---------------------------------------------------------------------------------------------
# pieces the update rules share
# ---------------------------------------------------------------------------------------------


def lerp_(xp, a, b, weight: float, tmp) -> None:
    """``a += weight * (b - a)`` in place, rounded the way PyTorch's ``lerp_`` rounds: from
    ``a`` for small weights, from ``b`` for large ones. ``tmp`` is scratch."""
    xp.subtract(b, a, out=tmp)
    if abs(weight) < 0.5:
        tmp *= weight
        a += tmp
    else:
        tmp *= 1.0 - weight
        xp.subtract(b, tmp, out=a)


def ema_sq_(xp, avg, g, beta: float, tmp) -> None:
    """``avg = beta * avg + (1 - beta) * g * g`` in place (PyTorch's ``mul_().addcmul_()``)."""
    avg *= beta
    xp.multiply(g, 1.0 - beta, out=tmp)
    tmp *= g
    avg += tmp


def effective_grad(xp, g, p, maximize: bool, weight_decay: float, out, tmp):
    """The gradient the rule follows: negated with ``maximize``, plus ``weight_decay * p``
    (L2 decay). Returns ``g`` itself when neither applies, else ``out``."""
    if maximize:
        g = xp.negative(g, out=out)
    if weight_decay != 0:
        if g is out:
            xp.multiply(p, weight_decay, out=tmp)
            out += tmp
        else:
            xp.multiply(p, weight_decay, out=out)
            out += g
        g = out
    return g


def check_hyper(ok: bool, message: str) -> None:
    """Raise PyTorch's ``ValueError`` for an invalid hyperparameter."""
    if not ok:
        raise ValueError(message)


def check_common(lr, eps=None, weight_decay=None, betas=None) -> None:
    """The checks most optimisers share, with PyTorch's messages."""
    if isinstance(lr, Tensor) and lr.numel() != 1:
        raise ValueError("Tensor lr must be 1-element")
    check_hyper(0.0 <= to_float(lr), f"Invalid learning rate: {lr}")
    if eps is not None:
        check_hyper(0.0 <= eps, f"Invalid epsilon value: {eps}")
    if betas is not None:
        check_hyper(0.0 <= betas[0] < 1.0, f"Invalid beta parameter at index 0: {betas[0]}")
        check_hyper(0.0 <= betas[1] < 1.0, f"Invalid beta parameter at index 1: {betas[1]}")
    if weight_decay is not None:
        check_hyper(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")


def check_differentiable(differentiable: bool) -> None:
    """chainrule's optimisers update arrays outside autograd: no differentiable mode."""
    if differentiable:
        raise NotImplementedError(
            "differentiable=True is not supported: chainrule optimisers update parameters "
            "outside autograd (write the update with tensor ops to differentiate through it)"
        )


def start_state(state: dict, p: Tensor, *names: str) -> None:
    """Fill a parameter's empty ``state`` the way most rules begin: ``step`` 0 (a 0-d scalar),
    then a zero tensor shaped like ``p`` for each of ``names``, in that order (PyTorch's)."""
    state["step"] = scalar_state(0.0)
    for name in names:
        state[name] = zeros_state(p)


def zeros_state(p: Tensor, fill: float = 0.0) -> Tensor:
    """A state tensor shaped like ``p`` (same dtype and device), filled with ``fill``."""
    arr = p._data
    xp = backend.array_module(arr)
    if fill == 0.0:
        return Tensor._make(xp.zeros(arr.shape, dtype=arr.dtype))
    return Tensor._make(xp.full(arr.shape, fill, dtype=arr.dtype))


def state_copy(xp, a):
    """A copy of array ``a`` to keep as state (such as a first momentum buffer), laid out
    for fast passes over it (see ``chainrule.backend.aligned_empty``)."""
    out = backend.aligned_empty(xp, a.shape, a.dtype)
    out[...] = a
    return out
