"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""

from __future__ import annotations

from chainrule.optim.optimizer import (
    Optimizer,
    check_common,
    check_differentiable,
    effective_grad,
    ema_sq_,
    lerp_,
    start_state,
    to_float,
    zeros_state,
)


class Adam(Optimizer):
    r"""Adam (Kingma & Ba), with PyTorch's options and state names.

    :math:`m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t`, :math:`v_t = \beta_2 v_{t-1} +
    (1-\beta_2) g_t^2`, and :math:`p \leftarrow p - \frac{\text{lr}}{1-\beta_1^t}\,
    m_t / (\sqrt{v_t} / \sqrt{1-\beta_2^t} + \epsilon)`. ``amsgrad`` uses the running maximum
    of :math:`v_t`; ``weight_decay`` adds ``weight_decay * p`` to the gradient, or (with
    ``decoupled_weight_decay``, as in :class:`AdamW`) shrinks ``p`` by ``1 - lr * weight_decay``.
    State: ``step``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``).

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.tensor([1.0, -1.0]))
    >>> opt = cr.optim.Adam([w], lr=0.1)
    >>> w.grad = cr.tensor([3.0, -0.5]); opt.step()
    >>> w
    Parameter containing:
    tensor([ 0.9000, -0.9000], requires_grad=True)
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool = False,
    ) -> None:
        check_common(lr, eps=eps, weight_decay=weight_decay, betas=betas)
        check_differentiable(differentiable)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        defaults = {
            "lr": lr,
            "betas": tuple(to_float(b) for b in betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _init_state(self, p, state: dict, group: dict) -> None:
        start_state(state, p, "exp_avg", "exp_avg_sq")
        if group["amsgrad"]:
            state["max_exp_avg_sq"] = zeros_state(p)

    def _update(self, group, xp, p, g, s, sc, tmp) -> None:
        t0, t1, t2 = tmp
        lr = to_float(group["lr"])
        beta1, beta2 = group["betas"]
        weight_decay = group["weight_decay"]
        sc["step"] = step_t = sc["step"] + 1
        step = float(step_t)
        decoupled = group["decoupled_weight_decay"]
        if decoupled and weight_decay != 0:
            p *= 1.0 - lr * weight_decay
        g = effective_grad(xp, g, p, group["maximize"], 0 if decoupled else weight_decay, t2, t0)
        exp_avg = s["exp_avg"]
        exp_avg_sq = s["exp_avg_sq"]
        lerp_(xp, exp_avg, g, 1.0 - beta1, t0)
        ema_sq_(xp, exp_avg_sq, g, beta2, t0)
        step_size = lr / (1.0 - beta1**step)
        bias_correction2_sqrt = (1.0 - beta2**step) ** 0.5
        if group["amsgrad"]:
            max_sq = s["max_exp_avg_sq"]
            xp.maximum(max_sq, exp_avg_sq, out=max_sq)
            xp.sqrt(max_sq, out=t1)
        else:
            xp.sqrt(exp_avg_sq, out=t1)
        t1 /= bias_correction2_sqrt
        t1 += group["eps"]
        xp.multiply(exp_avg, -step_size, out=t0)
        t0 /= t1
        p += t0


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter): ``p`` shrinks by
    ``1 - lr * weight_decay`` before the Adam update instead of decay entering the gradient.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.tensor([1.0]))
    >>> opt = cr.optim.AdamW([w], lr=0.1, weight_decay=0.5)
    >>> w.grad = cr.tensor([0.0]); opt.step(); round(w.item(), 4)
    0.95
    """

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            foreach=foreach,
            maximize=maximize,
            capturable=capturable,
            differentiable=differentiable,
            fused=fused,
            decoupled_weight_decay=True,
        )
