"""Adagrad: per-coordinate step sizes from the sum of all past squared gradients."""

from __future__ import annotations

from chainrule.optim.optimizer import (
    Optimizer,
    check_common,
    check_differentiable,
    check_hyper,
    effective_grad,
    scalar_state,
    to_float,
    zeros_state,
)


class Adagrad(Optimizer):
    r"""Adagrad (Duchi et al.), in PyTorch's formulation.

    :math:`s_t = s_{t-1} + g_t^2` (starting at ``initial_accumulator_value``) and
    :math:`p \leftarrow p - \eta_t\, g_t / (\sqrt{s_t} + \epsilon)` with
    :math:`\eta_t = \text{lr} / (1 + (t-1)\,\text{lr\_decay})`. State: ``step``, ``sum``
    (created for every parameter when the optimiser is built, as in PyTorch).

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.tensor([1.0]))
    >>> opt = cr.optim.Adagrad([w], lr=0.5)
    >>> w.grad = cr.tensor([4.0]); opt.step(); round(w.item(), 4)
    0.5
    """

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_common(lr)
        check_hyper(0.0 <= lr_decay, f"Invalid lr_decay value: {lr_decay}")
        check_hyper(0.0 <= weight_decay, f"Invalid weight_decay value: {weight_decay}")
        check_hyper(
            0.0 <= initial_accumulator_value,
            f"Invalid initial_accumulator_value value: {initial_accumulator_value}",
        )
        check_hyper(0.0 <= eps, f"Invalid epsilon value: {eps}")
        check_differentiable(differentiable)
        if fused and foreach:
            raise RuntimeError("`fused` and `foreach` cannot be `True` together.")
        defaults = {
            "lr": lr,
            "lr_decay": lr_decay,
            "eps": eps,
            "weight_decay": weight_decay,
            "initial_accumulator_value": initial_accumulator_value,
            "foreach": foreach,
            "maximize": maximize,
            "differentiable": differentiable,
            "fused": fused,
        }
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, self.state[p], group)

    def _init_state(self, p, state: dict, group: dict) -> None:
        state["step"] = scalar_state(0.0)
        # PyTorch fills the accumulator from the optimiser-wide value even when a group sets
        # its own; doing the same keeps the two interchangeable
        state["sum"] = zeros_state(p, self.defaults["initial_accumulator_value"])

    def _update(self, group, xp, p, g, s, sc, tmp) -> None:
        t0, t1, t2 = tmp
        sc["step"] = step_t = sc["step"] + 1
        step = float(step_t)
        g = effective_grad(xp, g, p, group["maximize"], group["weight_decay"], t2, t0)
        clr = to_float(group["lr"]) / (1 + (step - 1) * group["lr_decay"])
        state_sum = s["sum"]
        xp.multiply(g, g, out=t0)
        state_sum += t0
        xp.sqrt(state_sum, out=t1)
        t1 += group["eps"]
        xp.multiply(g, -clr, out=t0)
        t0 /= t1
        p += t0
