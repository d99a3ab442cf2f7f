"""Stochastic gradient descent, with momentum, dampening, Nesterov momentum and weight decay."""

from __future__ import annotations

from chainrule.optim.optimizer import (
    Optimizer,
    check_common,
    check_differentiable,
    check_hyper,
    effective_grad,
    state_copy,
    to_float,
)


class SGD(Optimizer):
    r"""Stochastic gradient descent, optionally with momentum (PyTorch's formulation).

    With gradient :math:`g_t` (plus ``weight_decay * p`` when set), momentum :math:`\mu` and
    dampening :math:`\tau`: :math:`b_1 = g_1`, :math:`b_t = \mu b_{t-1} + (1-\tau) g_t`, then
    :math:`p \leftarrow p - \text{lr}\, b_t` (or :math:`g_t + \mu b_t` with ``nesterov``).
    The buffer is ``state[p]["momentum_buffer"]``.

    >>> import chainrule as cr
    >>> w = cr.nn.Parameter(cr.tensor([1.0]))
    >>> opt = cr.optim.SGD([w], lr=0.1, momentum=0.9)
    >>> w.grad = cr.tensor([1.0]); opt.step(); opt.step()
    >>> round(w.item(), 4)
    0.71
    """

    _scalar_names = ()
    _n_tmp = 2
    # a momentum step is four cheap passes over memory: it needs twice the elements of a
    # typical rule before sharing it among threads pays for the handoff
    _parallel_weight = 0.5

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        check_common(lr)
        check_hyper(momentum >= 0.0, f"Invalid momentum value: {momentum}")
        check_hyper(weight_decay >= 0.0, f"Invalid weight_decay value: {weight_decay}")
        check_differentiable(differentiable)
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
            "foreach": foreach,
            "differentiable": differentiable,
            "fused": fused,
        }
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, defaults)

    def _stateless(self, group: dict) -> bool:
        return group["momentum"] == 0

    def _init_state(self, p, state: dict, group: dict) -> None:
        pass  # the momentum buffer starts as a copy of the first gradient (see _update)

    def _update(self, group, xp, p, g, s, sc, tmp) -> None:
        # runs once per chunk at every step: the common case (momentum, no decay) stays short
        t0, t1 = tmp
        momentum = group["momentum"]
        maximize, weight_decay = group["maximize"], group["weight_decay"]
        d = g
        if maximize or weight_decay != 0:
            d = effective_grad(xp, g, p, maximize, weight_decay, t0, t1)
        if momentum != 0:
            buf = s.get("momentum_buffer")
            if buf is None:
                buf = s["momentum_buffer"] = state_copy(xp, d)  # a copy: ``d`` may be scratch
            else:
                buf *= momentum
                dampening = group["dampening"]
                if dampening == 0:
                    buf += d
                else:
                    xp.multiply(d, 1.0 - dampening, out=t1)
                    buf += t1
            if group["nesterov"]:
                xp.multiply(buf, momentum, out=t1)
                t1 += d
                d = t1
            else:
                d = buf
        lr = group["lr"]
        if type(lr) is not float:
            lr = to_float(lr)
        step = t1 if d is t1 else t0  # scratch that ``d`` doesn't need any more
        xp.multiply(d, -lr, out=step)
        p += step
