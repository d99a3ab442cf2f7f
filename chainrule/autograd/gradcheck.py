"""Checking gradients against finite differences (PyTorch's ``gradcheck`` and ``gradgradcheck``).

``gradcheck`` builds the whole Jacobian twice: column by column from central differences
``(f(x + eps) - f(x - eps)) / 2eps``, and row by row from the engine (one backward per output
element), then compares them elementwise with ``|analytic - numeric| <= atol + rtol*|numeric|``.
Use float64 inputs: float32 differences are too coarse for the default tolerances.
"""

from __future__ import annotations

from chainrule import backend
from chainrule.autograd import engine
from chainrule.autograd.grad_mode import no_grad
from chainrule.tensor import Tensor


class GradcheckError(RuntimeError):
    """Raised by :func:`gradcheck` when the analytic and numeric Jacobians differ."""


def _as_tuple(x) -> tuple:
    return x if isinstance(x, tuple) else tuple(x) if isinstance(x, list) else (x,)


def _differentiable_outputs(outputs) -> list:
    return [
        o for o in outputs if isinstance(o, Tensor) and o._data.dtype in backend.FLOAT_NP_DTYPES
    ]


def numerical_jacobian(func, inputs, eps: float = 1e-6) -> list:
    """Per differentiable input, a (numel(outputs), numel(input)) array of central differences."""
    np = backend.np
    inputs = _as_tuple(inputs)
    targets = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]

    def evaluate():
        # grad mode stays on: ``func`` may itself differentiate (gradgradcheck)
        outs = _differentiable_outputs(_as_tuple(func(*inputs)))
        if not outs:
            return np.zeros(0)
        return np.concatenate([backend.to_numpy(o._data).astype(np.float64).ravel() for o in outs])

    jacobians = []
    for x in targets:
        arr = x._data
        n_out = evaluate().size
        jac = np.zeros((n_out, arr.size))
        for j in range(arr.size):
            idx = np.unravel_index(j, arr.shape)
            original = arr[idx].copy()
            arr[idx] = original + eps
            plus = evaluate()
            arr[idx] = original - eps
            minus = evaluate()
            arr[idx] = original
            jac[:, j] = (plus - minus) / (2 * eps)
        jacobians.append(jac)
    return jacobians


def analytical_jacobian(func, inputs) -> list:
    """Per differentiable input, the Jacobian the engine computes (one backward per output)."""
    np = backend.np
    inputs = _as_tuple(inputs)
    targets = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    outputs = _differentiable_outputs(_as_tuple(func(*inputs)))
    n_out = sum(o._data.size for o in outputs)
    jacobians = [np.zeros((n_out, x._data.size)) for x in targets]
    live = [(o, k) for k, o in enumerate(outputs) if o.requires_grad]
    row = 0
    for k, out in enumerate(outputs):
        size = out._data.size
        if not out.requires_grad:
            row += size
            continue
        for j in range(size):
            seeds = []
            for o, kk in live:
                seed = np.zeros(o._data.shape, dtype=o._data.dtype)
                if kk == k:
                    seed.reshape(-1)[j] = 1
                seeds.append(Tensor._make(backend.to_device(seed, o.device.type)))
            grads = engine.grad(
                [o for o, _ in live], targets, seeds, retain_graph=True, allow_unused=True
            )
            for i, g in enumerate(grads):
                if g is not None:
                    jacobians[i][row + j] = backend.to_numpy(g._data).astype(np.float64).ravel()
        row += size
    return jacobians


def gradcheck(
    func,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    **unused,
) -> bool:
    """Compare the engine's gradients of ``func`` at ``inputs`` with finite differences.

    >>> import chainrule as cr
    >>> x = cr.randn(3, dtype=cr.float64, requires_grad=True)
    >>> cr.autograd.gradcheck(lambda t: (t.sin() * t).sum(), (x,))
    True
    """
    inputs = _as_tuple(inputs)
    targets = [x for x in inputs if isinstance(x, Tensor) and x.requires_grad]
    if not targets:
        raise ValueError("gradcheck expects at least one input tensor with requires_grad=True")
    np = backend.np
    numeric = numerical_jacobian(func, inputs, eps)
    analytic = analytical_jacobian(func, inputs)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        ok = np.abs(a - n) <= atol + rtol * np.abs(n)
        if not ok.all():
            bad = np.argwhere(~ok)[0]
            msg = (
                f"Jacobian mismatch for output 0 with respect to input {i} "
                f"(shape {list(targets[i].shape)}, {targets[i].dtype}): at "
                f"[output {bad[0]}, input element {bad[1]}] numerical {n[tuple(bad)]:.8g} vs "
                f"analytical {a[tuple(bad)]:.8g}; max abs difference "
                f"{np.abs(a - n).max():.3g}.\nnumerical:\n{n}\nanalytical:\n{a}"
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(
    func,
    inputs,
    grad_outputs=None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    **unused,
) -> bool:
    """Check second derivatives: gradcheck of ``v -> vjp(func, inputs, v)``."""
    inputs = _as_tuple(inputs)
    n_in = len(inputs)
    if grad_outputs is None:
        with no_grad():
            outputs = _differentiable_outputs(_as_tuple(func(*inputs)))
        gen = backend.Generator().manual_seed(1234)
        grad_outputs = tuple(
            Tensor._make(
                backend.to_device(gen.normal(o._data.shape, dtype_=o.dtype), o.device.type)
            ).requires_grad_(True)
            for o in outputs
        )
    grad_outputs = _as_tuple(grad_outputs)

    def first_derivative(*args):
        ins, gos = args[:n_in], args[n_in:]
        outs = _differentiable_outputs(_as_tuple(func(*ins)))
        pairs = [(o, g) for o, g in zip(outs, gos) if o.requires_grad]
        diff = [x for x in ins if isinstance(x, Tensor) and x.requires_grad]
        if not pairs:
            return ()
        grads = engine.grad(
            [o for o, _ in pairs],
            diff,
            [g for _, g in pairs],
            create_graph=True,
            allow_unused=True,
        )
        return tuple(g for g in grads if g is not None)

    return gradcheck(
        first_derivative,
        inputs + grad_outputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        raise_exception=raise_exception,
    )
