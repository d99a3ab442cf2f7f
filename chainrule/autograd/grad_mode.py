"""Switching gradient recording on and off: context managers that also work as decorators."""

from __future__ import annotations

import functools

from chainrule.tensor import modes


class _GradModeContext:
    """Base: sets grad mode on entry, restores it on exit; usable as ``@decorator``."""

    _target = True

    def __enter__(self):
        self._previous = (modes.grad_enabled, modes.inference)
        self._apply()
        return self

    def _apply(self):
        modes.grad_enabled = self._target

    def __exit__(self, *exc):
        modes.grad_enabled, modes.inference = self._previous
        return False

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)

        return wrapper

    def clone(self):
        return type(self)()


class no_grad(_GradModeContext):  # noqa: N801 - PyTorch's name
    """Ops inside record no history (use for evaluation and parameter updates).

    >>> import chainrule as cr
    >>> x = cr.ones(2, requires_grad=True)
    >>> with cr.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    _target = False


class enable_grad(_GradModeContext):  # noqa: N801
    """Turn recording back on inside a ``no_grad`` block."""

    _target = True


class set_grad_enabled(_GradModeContext):  # noqa: N801
    """Turn recording on or off; takes effect immediately, and restores on ``with`` exit."""

    def __init__(self, mode: bool):
        self._target = bool(mode)
        self._previous = (modes.grad_enabled, modes.inference)
        modes.grad_enabled = self._target

    def __enter__(self):
        return self

    def clone(self):
        return set_grad_enabled.__new__(set_grad_enabled)._init_from(self._target)

    def _init_from(self, target):
        self._target = target
        return self

    def __call__(self, fn):
        target = self._target
        modes.grad_enabled = self._previous[0]  # used as a decorator: don't change state now

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            previous = (modes.grad_enabled, modes.inference)
            modes.grad_enabled = target
            try:
                return fn(*args, **kwargs)
            finally:
                modes.grad_enabled, modes.inference = previous

        return wrapper


class inference_mode(_GradModeContext):  # noqa: N801
    """Like ``no_grad`` for pure inference (``inference_mode(False)`` leaves grad mode alone)."""

    def __init__(self, mode: bool = True):
        self.mode = bool(mode)

    def _apply(self):
        if self.mode:
            modes.grad_enabled = False
            modes.inference = True

    def clone(self):
        return inference_mode(self.mode)


def is_grad_enabled() -> bool:
    """True when ops record history."""
    return modes.grad_enabled


def is_inference_mode_enabled() -> bool:
    """True inside ``inference_mode()``."""
    return modes.inference
