"""RMSprop: divide the gradient by a running root-mean-square of recent gradients."""

from __future__ import annotations

from chainrule.optim.optimizer import (
    Optimizer,
    check_common,
    check_differentiable,
    check_hyper,
    effective_grad,
    ema_sq_,
    lerp_,
    start_state,
    to_float,
    zeros_state,
)


class RMSprop(Optimizer):
    r"""RMSprop (Hinton), in PyTorch's formulation.

    :math:`v_t = \alpha v_{t-1} + (1-\alpha) g_t^2`; the step is :math:`g_t / (\sqrt{v_t} +
    \epsilon)` (``centered`` subtracts the squared running mean of :math:`g` inside the root),
    optionally accumulated in a momentum buffer. State: ``step``, ``square_avg`` (and
    ``momentum_buffer``, ``grad_avg``).

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.tensor([1.0]))
    >>> opt = cr.optim.RMSprop([w], lr=0.01, alpha=0.75)
    >>> w.grad = cr.tensor([2.0]); opt.step(); round(w.item(), 4)
    0.98
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_common(lr, eps=eps)
        check_hyper(0.0 <= momentum, f"Invalid momentum value: {momentum}")
        check_hyper(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check_hyper(0.0 <= alpha, f"Invalid alpha value: {alpha}")
        check_differentiable(differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "alpha": alpha,
            "eps": eps,
            "centered": centered,
            "weight_decay": weight_decay,
            "capturable": capturable,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, p, state: dict, group: dict) -> None:
        start_state(state, p, "square_avg")
        if group["momentum"] > 0:
            state["momentum_buffer"] = zeros_state(p)
        if group["centered"]:
            state["grad_avg"] = zeros_state(p)

    def _update(self, group, xp, p, g, s, sc, tmp) -> None:
        t0, t1, t2 = tmp
        alpha = group["alpha"]
        momentum = group["momentum"]
        lr = to_float(group["lr"])
        sc["step"] = sc["step"] + 1
        g = effective_grad(xp, g, p, group["maximize"], group["weight_decay"], t2, t0)
        square_avg = s["square_avg"]
        ema_sq_(xp, square_avg, g, alpha, t0)
        if group["centered"]:
            grad_avg = s["grad_avg"]
            lerp_(xp, grad_avg, g, 1.0 - alpha, t0)
            xp.multiply(grad_avg, grad_avg, out=t1)
            xp.subtract(square_avg, t1, out=t1)
            xp.sqrt(t1, out=t1)
        else:
            xp.sqrt(square_avg, out=t1)
        t1 += group["eps"]
        if momentum > 0:
            buf = s["momentum_buffer"]
            buf *= momentum
            xp.divide(g, t1, out=t0)
            buf += t0
            xp.multiply(buf, -lr, out=t0)
        else:
            xp.multiply(g, -lr, out=t0)
            t0 /= t1
        p += t0
