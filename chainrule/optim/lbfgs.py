"""L-BFGS: a quasi-Newton method that builds curvature from the last few steps.

The two-loop recursion and the strong-Wolfe line search follow Nocedal & Wright, *Numerical
Optimization* (algorithms 7.4, 3.5 and 3.6), with the same decisions as PyTorch's version
(itself modelled on minFunc), so that both produce the same iterates.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from chainrule import backend
from chainrule.autograd.grad_mode import enable_grad
from chainrule.optim.optimizer import Optimizer, _bump, check_common, to_float
from chainrule.tensor import Tensor, modes

# The two primitives whose rounding differs between libraries (BLAS inner products sum in
# their own order; PyTorch's ``add_(x, alpha=a)`` fuses the multiply and add). Iterates of a
# long run amplify such differences, so they are kept in one place: tests swap in PyTorch's
# versions to check that everything else matches it bit for bit.


def dot(a, b) -> float:
    """The inner product of two flat vectors, as a Python float."""
    return float(a.dot(b))


def add_scaled_(y, x, alpha: float) -> None:
    """``y += alpha * x`` in place."""
    y += x * alpha


def cubic_minimizer(x1, f1, g1, x2, f2, g2, bounds=None) -> float:
    """The minimiser of the cubic through ``(x1, f1)`` and ``(x2, f2)`` with slopes ``g1``,
    ``g2``, clipped to ``bounds`` (default: between the two points); their midpoint when the
    cubic has no minimum."""
    lo, hi = bounds if bounds is not None else (min(x1, x2), max(x1, x2))
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    disc = d1 * d1 - g1 * g2
    if disc < 0:
        return (lo + hi) / 2.0
    d2 = math.sqrt(disc)
    if x1 <= x2:
        x = x2 - (x2 - x1) * ((g2 + d2 - d1) / (g2 - g1 + 2 * d2))
    else:
        x = x1 - (x1 - x2) * ((g1 + d2 - d1) / (g1 - g2 + 2 * d2))
    return min(max(x, lo), hi)


def strong_wolfe_search(
    evaluate: Callable,
    t: float,
    d,
    f: float,
    g,
    gtd: float,
    c1: float = 1e-4,
    c2: float = 0.9,
    tolerance_change: float = 1e-9,
    max_ls: int = 25,
):
    """Find a step ``t`` along ``d`` that satisfies the strong Wolfe conditions.

    ``evaluate(t)`` returns ``(loss, flat gradient)`` at ``x + t d``. ``f``, ``g``, ``gtd`` are
    the loss, gradient and slope at ``t = 0``. Returns ``(loss, gradient, t, evaluations)``.
    """
    d_scale = float(abs(d).max())
    g = g.copy()
    f_new, g_new = evaluate(t)
    evals = 1
    gtd_new = dot(g_new, d)
    # phase 1: grow the step until a bracket [lo, hi] around an acceptable step is known
    t_prev, f_prev, g_prev, gtd_prev = 0.0, f, g, gtd
    done = False
    it = 0
    points = None  # the bracket: lists of [step, loss, gradient, slope] for its two ends
    while it < max_ls:
        if f_new > f + c1 * t * gtd or (it > 1 and f_new >= f_prev):
            points = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new.copy(), gtd_new]]
            break
        if abs(gtd_new) <= -c2 * gtd:  # sufficient decrease and curvature: accept t
            points = [[t, f_new, g_new, gtd_new]]
            done = True
            break
        if gtd_new >= 0:  # the slope turned: a minimum lies between t_prev and t
            points = [[t_prev, f_prev, g_prev, gtd_prev], [t, f_new, g_new.copy(), gtd_new]]
            break
        # extrapolate, at least 1% past t and at most 10 times t
        t_next = cubic_minimizer(
            t_prev, f_prev, gtd_prev, t, f_new, gtd_new, bounds=(t + 0.01 * (t - t_prev), t * 10)
        )
        t_prev, f_prev, g_prev, gtd_prev = t, f_new, g_new.copy(), gtd_new
        t = t_next
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = dot(g_new, d)
        it += 1
    if it == max_ls:
        points = [[0.0, f, g, None], [t, f_new, g_new, None]]
    # phase 2: shrink the bracket by cubic interpolation until the conditions hold
    stalled = False
    lo, hi = (0, 1) if points[0][1] <= points[-1][1] else (1, 0)
    while not done and it < max_ls:
        a, b = points[0][0], points[1][0]
        if abs(b - a) * d_scale < tolerance_change:
            break
        t = cubic_minimizer(a, points[0][1], points[0][3], b, points[1][1], points[1][3])
        # keep away from the ends of the bracket, where interpolation makes little progress
        top, bottom = max(a, b), min(a, b)
        margin = 0.1 * (top - bottom)
        if min(top - t, t - bottom) < margin:
            if stalled or t >= top or t <= bottom:
                t = top - margin if abs(t - top) < abs(t - bottom) else bottom + margin
                stalled = False
            else:
                stalled = True
        else:
            stalled = False
        f_new, g_new = evaluate(t)
        evals += 1
        gtd_new = dot(g_new, d)
        it += 1
        if f_new > f + c1 * t * gtd or f_new >= points[lo][1]:
            points[hi] = [t, f_new, g_new.copy(), gtd_new]
            lo, hi = (0, 1) if points[0][1] <= points[1][1] else (1, 0)
        else:
            if abs(gtd_new) <= -c2 * gtd:
                done = True
            elif gtd_new * (points[hi][0] - points[lo][0]) >= 0:
                points[hi] = points[lo]
            points[lo] = [t, f_new, g_new.copy(), gtd_new]
    t, f_new, g_new, _ = points[lo]
    return f_new, g_new, t, evals


def _wrap(value):
    return Tensor._make(value) if backend.is_array(value) else value


def _unwrap(value):
    return value._data if isinstance(value, Tensor) else value


class LBFGS(Optimizer):
    """L-BFGS with PyTorch's options; ``step(closure)`` runs up to ``max_iter`` iterations.

    The closure clears the gradients, computes the loss, calls ``backward`` and returns the
    loss. ``line_search_fn='strong_wolfe'`` searches each step length; without it every step
    has length ``lr`` (the first one scaled down by the gradient's size). One parameter group
    only; the whole state lives in ``state[first parameter]``.

    >>> import chainrule as cr
    >>> x = cr.nn.Parameter(cr.tensor([3.0, -2.0], dtype=cr.float64))
    >>> opt = cr.optim.LBFGS([x], line_search_fn="strong_wolfe")
    >>> def closure():
    ...     opt.zero_grad()
    ...     loss = ((x - 1) ** 2).sum()
    ...     loss.backward()
    ...     return loss
    >>> _ = opt.step(closure); [round(v, 6) for v in x.tolist()]
    [1.0, 1.0]
    """

    _scalar_names = ()

    def __init__(
        self,
        params,
        lr: float = 1,
        max_iter: int = 20,
        max_eval: int | None = None,
        tolerance_grad: float = 1e-7,
        tolerance_change: float = 1e-9,
        history_size: int = 100,
        line_search_fn: str | None = None,
    ) -> None:
        check_common(lr)
        if max_eval is None:
            max_eval = max_iter * 5 // 4
        defaults = {
            "lr": lr,
            "max_iter": max_iter,
            "max_eval": max_eval,
            "tolerance_grad": tolerance_grad,
            "tolerance_change": tolerance_change,
            "history_size": history_size,
            "line_search_fn": line_search_fn,
        }
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")

    # -- the parameters as one flat vector ---------------------------------------------------
    @property
    def _params(self) -> list:
        return self.param_groups[0]["params"]

    def _flat_grad(self):
        parts = []
        for p in self._params:
            g = p.grad
            parts.append(
                backend.array_module(p._data).zeros(p._data.size, p._data.dtype)
                if g is None
                else g._data.reshape(-1)
            )
        xp = backend.array_module(parts[0])
        return xp.concatenate(parts)

    def _add_to_params(self, step: float, direction) -> None:
        offset = 0
        anomaly = modes.anomaly
        for p in self._params:
            n = p._data.size
            add_scaled_(p._data, direction[offset : offset + n].reshape(p._data.shape), step)
            offset += n
            _bump(p, anomaly)

    def _copy_params(self) -> list:
        return [p._data.copy() for p in self._params]

    def _restore_params(self, saved: list) -> None:
        anomaly = modes.anomaly
        for p, arr in zip(self._params, saved):
            p._data[...] = arr
            _bump(p, anomaly)

    def _evaluate(self, closure: Callable) -> float:
        with enable_grad():
            return closure()

    # -- the step ----------------------------------------------------------------------------
    def step(self, closure: Callable):
        """Run up to ``max_iter`` L-BFGS iterations; returns the loss before the first one."""
        if closure is None:
            raise RuntimeError("LBFGS.step requires a closure that recomputes the loss")
        group = self.param_groups[0]
        lr = to_float(group["lr"])
        max_iter = group["max_iter"]
        max_eval = group["max_eval"]
        tolerance_grad = group["tolerance_grad"]
        tolerance_change = group["tolerance_change"]
        line_search_fn = group["line_search_fn"]
        history_size = group["history_size"]
        if line_search_fn not in (None, "strong_wolfe"):
            raise RuntimeError("only 'strong_wolfe' is supported")

        state = self.state[self._params[0]]
        state.setdefault("func_evals", 0)
        state.setdefault("n_iter", 0)
        with backend.errstate(all="ignore"):
            orig_loss = self._evaluate(closure)
            loss = float(orig_loss)
            evals = 1
            state["func_evals"] += 1
            flat_grad = self._flat_grad()
            if float(abs(flat_grad).max()) <= tolerance_grad:
                return orig_loss

            d = _unwrap(state.get("d"))
            t = state.get("t")
            old_dirs = [_unwrap(v) for v in state.get("old_dirs") or []]
            old_stps = [_unwrap(v) for v in state.get("old_stps") or []]
            ro = [float(_unwrap(v)) for v in state.get("ro") or []]
            h_diag = state.get("H_diag")
            h_diag = None if h_diag is None else float(_unwrap(h_diag))
            prev_flat_grad = _unwrap(state.get("prev_flat_grad"))
            prev_loss = state.get("prev_loss")

            n_iter = 0
            while n_iter < max_iter:
                n_iter += 1
                state["n_iter"] += 1
                if state["n_iter"] == 1:
                    d = -flat_grad
                    old_dirs, old_stps, ro = [], [], []
                    h_diag = 1.0
                else:
                    # curvature pair from the last step; skipped unless it is safely positive
                    y = flat_grad - prev_flat_grad
                    s = d * t
                    ys = dot(y, s)
                    if ys > 1e-10:
                        if len(old_dirs) == history_size:
                            old_dirs.pop(0)
                            old_stps.pop(0)
                            ro.pop(0)
                        old_dirs.append(y)
                        old_stps.append(s)
                        ro.append(1.0 / ys)
                        h_diag = ys / dot(y, y)
                    # two-loop recursion: d = -H g with H the L-BFGS inverse-Hessian estimate
                    if "al" not in state:
                        state["al"] = [None] * history_size
                    al = state["al"]
                    q = -flat_grad
                    for i in range(len(old_dirs) - 1, -1, -1):
                        al[i] = dot(old_stps[i], q) * ro[i]
                        add_scaled_(q, old_dirs[i], -al[i])
                    d = q * h_diag
                    for i in range(len(old_dirs)):
                        be_i = dot(old_dirs[i], d) * ro[i]
                        add_scaled_(d, old_stps[i], al[i] - be_i)

                prev_flat_grad = flat_grad.copy()
                prev_loss = loss
                if state["n_iter"] == 1:
                    t = min(1.0, float(1.0 / abs(flat_grad).sum())) * lr
                else:
                    t = lr
                gtd = dot(flat_grad, d)
                if gtd > -tolerance_change:  # not a descent direction any more
                    break

                step_evals = 0
                if line_search_fn is not None:
                    start = self._copy_params()

                    def along(step_length, start=start, d=d):
                        self._add_to_params(step_length, d)
                        value = float(self._evaluate(closure))
                        grad = self._flat_grad()
                        self._restore_params(start)
                        return value, grad

                    loss, flat_grad, t, step_evals = strong_wolfe_search(
                        along, t, d, loss, flat_grad, gtd, max_ls=max_eval - evals
                    )
                    self._add_to_params(t, d)
                    opt_cond = float(abs(flat_grad).max()) <= tolerance_grad
                else:
                    self._add_to_params(t, d)
                    opt_cond = False
                    if n_iter != max_iter:
                        loss = float(self._evaluate(closure))
                        flat_grad = self._flat_grad()
                        opt_cond = float(abs(flat_grad).max()) <= tolerance_grad
                        step_evals = 1
                evals += step_evals
                state["func_evals"] += step_evals

                if n_iter == max_iter or evals >= max_eval or opt_cond:
                    break
                if float(abs(d * t).max()) <= tolerance_change:
                    break
                if abs(loss - prev_loss) < tolerance_change:
                    break

        state["d"] = _wrap(d)
        state["t"] = t
        state["old_dirs"] = [_wrap(v) for v in old_dirs]
        state["old_stps"] = [_wrap(v) for v in old_stps]
        state["ro"] = ro
        state["H_diag"] = h_diag
        state["prev_flat_grad"] = _wrap(prev_flat_grad)
        state["prev_loss"] = prev_loss
        return orig_loss
