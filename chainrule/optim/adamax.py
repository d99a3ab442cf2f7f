"""Adamax: Adam with the infinity norm in place of the root mean square."""

from __future__ import annotations

from chainrule.optim.optimizer import (
    Optimizer,
    check_common,
    check_differentiable,
    effective_grad,
    lerp_,
    start_state,
    to_float,
)


class Adamax(Optimizer):
    r"""Adamax (Kingma & Ba, section 7), in PyTorch's formulation.

    :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`, :math:`u_t = \max(\beta_2 u_{t-1},
    |g_t| + \epsilon)` and :math:`p \leftarrow p - \frac{\text{lr}}{1-\beta_1^t}\, m_t / u_t`.
    State: ``step``, ``exp_avg``, ``exp_inf``.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.tensor([1.0]))
    >>> opt = cr.optim.Adamax([w], lr=0.1)
    >>> w.grad = cr.tensor([2.0]); opt.step(); round(w.item(), 4)
    0.9
    """

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        check_common(lr, eps=eps, weight_decay=weight_decay, betas=betas)
        check_differentiable(differentiable)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "capturable": capturable,
        }
        super().__init__(params, defaults)

    def _init_state(self, p, state: dict, group: dict) -> None:
        start_state(state, p, "exp_avg", "exp_inf")

    def _update(self, group, xp, p, g, s, sc, tmp) -> None:
        t0, t1, t2 = tmp
        beta1, beta2 = group["betas"]
        sc["step"] = step_t = sc["step"] + 1
        g = effective_grad(xp, g, p, group["maximize"], group["weight_decay"], t2, t0)
        exp_avg = s["exp_avg"]
        exp_inf = s["exp_inf"]
        lerp_(xp, exp_avg, g, 1.0 - beta1, t0)
        exp_inf *= beta2
        xp.abs(g, out=t1)
        t1 += group["eps"]
        xp.maximum(exp_inf, t1, out=exp_inf)  # propagates NaN, like torch.maximum
        clr = to_float(group["lr"]) / (1.0 - beta1 ** float(step_t))
        xp.multiply(exp_avg, -clr, out=t0)
        t0 /= exp_inf
        p += t0
