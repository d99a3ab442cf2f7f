"""NAdam: Adam with Nesterov momentum and a momentum schedule (Dozat)."""

from __future__ import annotations

from chainrule.optim.optimizer import (
    Optimizer,
    check_common,
    check_differentiable,
    check_hyper,
    effective_grad,
    ema_sq_,
    lerp_,
    scalar_state,
    to_float,
    zeros_state,
)


class NAdam(Optimizer):
    r"""NAdam (Dozat, 2016), in PyTorch's formulation.

    The momentum coefficient follows :math:`\mu_t = \beta_1 (1 - \tfrac12 \cdot
    0.96^{t\,\psi})` (``momentum_decay`` :math:`\psi`); the update mixes the current gradient and
    the first moment with weights built from the running product of the :math:`\mu_t`.
    ``decoupled_weight_decay`` gives NAdamW. State: ``step``, ``mu_product``, ``exp_avg``,
    ``exp_avg_sq``.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.tensor([1.0]))
    >>> opt = cr.optim.NAdam([w], lr=0.1)
    >>> w.grad = cr.tensor([1.0]); opt.step(); round(w.item(), 4)
    0.8944
    """

    _scalar_names = ("step", "mu_product")

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        check_common(lr, eps=eps, weight_decay=weight_decay, betas=betas)
        check_hyper(0.0 <= momentum_decay, f"Invalid momentum_decay value: {momentum_decay}")
        check_differentiable(differentiable)
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "momentum_decay": momentum_decay,
            "decoupled_weight_decay": decoupled_weight_decay,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
        }
        super().__init__(params, defaults)

    def _init_state(self, p, state: dict, group: dict) -> None:
        state["step"] = scalar_state(0.0)
        state["mu_product"] = scalar_state(1.0)
        state["exp_avg"] = zeros_state(p)
        state["exp_avg_sq"] = zeros_state(p)

    def _update(self, group, xp, p, g, s, sc, tmp) -> None:
        t0, t1, t2 = tmp
        lr = to_float(group["lr"])
        beta1, beta2 = group["betas"]
        weight_decay = group["weight_decay"]
        momentum_decay = group["momentum_decay"]
        sc["step"] = step_t = sc["step"] + 1
        step = float(step_t)
        bias_correction2 = 1.0 - beta2**step
        decoupled = group["decoupled_weight_decay"]
        if decoupled and weight_decay != 0:
            p *= 1.0 - lr * weight_decay
        g = effective_grad(xp, g, p, group["maximize"], 0 if decoupled else weight_decay, t2, t0)
        mu = beta1 * (1.0 - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1.0 - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        # the running product lives in the scalar-state dtype (float32 by default) and is
        # rounded there at every step, exactly as PyTorch's 0-d state tensor is
        product = sc["mu_product"]
        kind = type(product)
        sc["mu_product"] = product = kind(product * kind(mu))
        mu_product = float(product)
        mu_product_next = mu_product * mu_next
        exp_avg = s["exp_avg"]
        exp_avg_sq = s["exp_avg_sq"]
        lerp_(xp, exp_avg, g, 1.0 - beta1, t0)
        ema_sq_(xp, exp_avg_sq, g, beta2, t0)
        xp.divide(exp_avg_sq, bias_correction2, out=t1)
        xp.sqrt(t1, out=t1)
        t1 += group["eps"]
        xp.multiply(g, -lr * (1.0 - mu) / (1.0 - mu_product), out=t0)
        t0 /= t1
        p += t0
        xp.multiply(exp_avg, (-lr * mu_next) / (1.0 - mu_product_next), out=t0)
        t0 /= t1
        p += t0
