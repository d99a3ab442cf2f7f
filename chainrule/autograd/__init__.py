"""Automatic differentiation: ``backward``, ``grad``, custom ``Function``s, checks and modes.

The engine itself is :mod:`chainrule.autograd.engine`; custom operations are in
:mod:`chainrule.autograd.function`; debugging switches in :mod:`chainrule.autograd.anomaly`.
"""

from chainrule.autograd import function
from chainrule.autograd.anomaly import (
    debug_nans,
    detect_anomaly,
    is_anomaly_check_nan_enabled,
    is_anomaly_enabled,
    is_debug_nans_enabled,
    set_debug_nans,
    set_detect_anomaly,
)
from chainrule.autograd.engine import backward, grad
from chainrule.autograd.function import Function, FunctionCtx, once_differentiable
from chainrule.autograd.grad_mode import (
    enable_grad,
    inference_mode,
    is_grad_enabled,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)

__all__ = [
    "backward",
    "grad",
    "Function",
    "FunctionCtx",
    "once_differentiable",
    "function",
    "no_grad",
    "enable_grad",
    "set_grad_enabled",
    "inference_mode",
    "is_grad_enabled",
    "is_inference_mode_enabled",
    "set_detect_anomaly",
    "detect_anomaly",
    "is_anomaly_enabled",
    "is_anomaly_check_nan_enabled",
    "set_debug_nans",
    "debug_nans",
    "is_debug_nans_enabled",
]

from chainrule.autograd.gradcheck import GradcheckError, gradcheck, gradgradcheck  # noqa: E402

__all__ += ["gradcheck", "gradgradcheck", "GradcheckError"]
