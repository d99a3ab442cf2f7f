"""Adadelta: step sizes from running averages of squared gradients and squared updates."""

from __future__ import annotations

from chainrule.optim.optimizer import (
    Optimizer,
    check_common,
    check_differentiable,
    check_hyper,
    effective_grad,
    ema_sq_,
    start_state,
    to_float,
)


class Adadelta(Optimizer):
    r"""Adadelta (Zeiler), in PyTorch's formulation.

    :math:`v_t = \rho v_{t-1} + (1-\rho) g_t^2`, :math:`\Delta_t = \sqrt{u_{t-1} + \epsilon}
    / \sqrt{v_t + \epsilon}\; g_t`, :math:`u_t = \rho u_{t-1} + (1-\rho)\Delta_t^2` and
    :math:`p \leftarrow p - \text{lr}\,\Delta_t`. State: ``step``, ``square_avg``,
    ``acc_delta``.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.tensor([1.0]))
    >>> opt = cr.optim.Adadelta([w], lr=1.0, eps=0.0001)
    >>> w.grad = cr.tensor([1.0]); opt.step(); round(w.item(), 4)
    0.9684
    """

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_common(lr)
        check_hyper(0.0 <= rho <= 1.0, f"Invalid rho value: {rho}")
        check_hyper(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check_hyper(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check_differentiable(differentiable)
        defaults = {
            "lr": lr,
            "rho": rho,
            "eps": eps,
            "weight_decay": weight_decay,
            "maximize": maximize,
            "capturable": capturable,
            "foreach": foreach,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, p, state: dict, group: dict) -> None:
        start_state(state, p, "square_avg", "acc_delta")

    def _update(self, group, xp, p, g, s, sc, tmp) -> None:
        t0, t1, t2 = tmp
        rho = group["rho"]
        eps = group["eps"]
        sc["step"] = sc["step"] + 1
        g = effective_grad(xp, g, p, group["maximize"], group["weight_decay"], t2, t0)
        square_avg = s["square_avg"]
        acc_delta = s["acc_delta"]
        ema_sq_(xp, square_avg, g, rho, t0)
        std = xp.add(square_avg, eps, out=t1)
        xp.sqrt(std, out=std)
        delta = xp.add(acc_delta, eps, out=t0)
        xp.sqrt(delta, out=delta)
        delta /= std
        delta *= g
        ema_sq_(xp, acc_delta, delta, rho, t1)
        delta *= -to_float(group["lr"])
        p += delta
