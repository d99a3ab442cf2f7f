"""Debugging modes: anomaly detection (backward) and NaN detection (forward).

*Anomaly detection* (PyTorch's): every node records the stack that created it; when a backward
rule returns NaN the engine raises naming the node and that forward line, and an in-place
change to a tensor saved for backward is reported with the line that made it.

*Debug NaNs* (like JAX's ``debug_nans``): every op checks its output and raises
``FloatingPointError`` at the first NaN/Inf, naming the op, its inputs and your line. When off,
each op pays one flag check.

The switches are attributes of ``chainrule.tensor.modes``, read by every op.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from chainrule.tensor import modes

__all__ = [
    "set_detect_anomaly",
    "detect_anomaly",
    "is_anomaly_enabled",
    "is_anomaly_check_nan_enabled",
    "set_debug_nans",
    "debug_nans",
    "is_debug_nans_enabled",
]


class _Switch:
    """Sets flags now (or on ``with`` entry) and restores the previous values on exit."""

    def _flags(self) -> dict:  # pragma: no cover - every switch overrides
        raise NotImplementedError

    def _set(self) -> None:
        self._previous = {name: getattr(modes, name) for name in self._flags()}
        for name, value in self._flags().items():
            setattr(modes, name, value)

    def _restore(self) -> None:
        for name, value in self._previous.items():
            setattr(modes, name, value)

    def __exit__(self, *exc) -> bool:
        self._restore()
        return False

    def __call__(self, fn: Callable) -> Callable:
        """Use as a decorator: the flags hold during each call of ``fn``."""

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self._fresh():
                return fn(*args, **kwargs)

        return wrapper


class set_detect_anomaly(_Switch):  # noqa: N801 - PyTorch's name
    """Turn anomaly detection on or off now; as a context manager, restore it on exit.

    >>> import chainrule as cr
    >>> with cr.autograd.set_detect_anomaly(True):
    ...     cr.autograd.is_anomaly_enabled()
    True
    """

    def __init__(self, mode: bool, check_nan: bool = True):
        self.mode, self.check_nan = bool(mode), bool(check_nan)
        self._set()

    def _flags(self) -> dict:
        return {"anomaly": self.mode, "anomaly_check_nan": self.check_nan}

    def __enter__(self):
        return self

    def __call__(self, fn: Callable) -> Callable:
        self._restore()  # used as a decorator: don't change the state now
        return super().__call__(fn)

    def _fresh(self):
        return set_detect_anomaly(self.mode, self.check_nan)


class detect_anomaly(_Switch):  # noqa: N801
    """Context manager and decorator enabling anomaly detection inside it.

    Nodes created inside remember their forward stack; a backward producing NaN raises
    ``RuntimeError: Function 'XBackward0' returned nan values in its 0th output`` followed by
    that stack.

    >>> import chainrule as cr
    >>> x = cr.tensor([0.0], requires_grad=True)
    >>> with cr.autograd.detect_anomaly():
    ...     y = (x.sqrt() * 0).sum()  # sqrt'(0) is inf, times 0: nan
    ...     y.backward()  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    RuntimeError: Function 'SqrtBackward0' returned nan values in its 0th output.
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = bool(check_nan)

    def _flags(self) -> dict:
        return {"anomaly": True, "anomaly_check_nan": self.check_nan}

    def __enter__(self):
        self._set()
        return self

    def _fresh(self):
        return detect_anomaly(self.check_nan)


def is_anomaly_enabled() -> bool:
    """True while anomaly detection is on."""
    return modes.anomaly


def is_anomaly_check_nan_enabled() -> bool:
    """True while anomaly detection checks backward outputs for NaN."""
    return modes.anomaly and modes.anomaly_check_nan


class set_debug_nans(_Switch):  # noqa: N801 - named after JAX's flag
    """Raise ``FloatingPointError`` at the first op whose output has NaN or Inf.

    Takes effect immediately; as a context manager the previous setting returns on exit.

    >>> import chainrule as cr
    >>> with cr.autograd.set_debug_nans(True):
    ...     cr.tensor([-1.0]).log()  # doctest: +IGNORE_EXCEPTION_DETAIL
    Traceback (most recent call last):
    FloatingPointError: debug_nans: Log produced NaN in its output ...
    """

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self._set()

    def _flags(self) -> dict:
        return {"debug_nans": self.mode}

    def __enter__(self):
        return self

    def __call__(self, fn: Callable) -> Callable:
        self._restore()
        return super().__call__(fn)

    def _fresh(self):
        return set_debug_nans(self.mode)


class debug_nans(_Switch):  # noqa: N801
    """Context manager and decorator: :func:`set_debug_nans` ``(True)`` inside it."""

    def _flags(self) -> dict:
        return {"debug_nans": True}

    def __enter__(self):
        self._set()
        return self

    def _fresh(self):
        return debug_nans()


def is_debug_nans_enabled() -> bool:
    """True while forward NaN/Inf checking is on."""
    return modes.debug_nans
