"""A custom op with its own backward rule, checked by finite differences.

``autograd.Function`` is how you add an op whose derivative you know better than the engine
would compute it: here a numerically stable ``log(1 + exp(x))`` (softplus).

Run: ``python examples/custom_function.py``
"""

import chainrule as cr


class Softplus(cr.autograd.Function):
    """``log(1 + exp(x))`` computed without overflow; its derivative is ``sigmoid(x)``."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        # max(x, 0) + log1p(exp(-|x|)) never overflows, unlike log(1 + exp(x)).
        return x.clamp(min=0) + (-x.abs()).exp().log1p()

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * x.sigmoid()


def main() -> None:
    x = cr.tensor([-800.0, -1.0, 0.0, 3.0, 800.0], dtype=cr.float64, requires_grad=True)
    y = Softplus.apply(x)
    print("softplus:", y.tolist())
    assert all(v == v and v != float("inf") for v in y.tolist())  # finite at +-800

    y.sum().backward()
    print("gradient:", x.grad.tolist())

    # gradcheck compares the rule with finite differences (float64, PyTorch's tolerances).
    probe = cr.randn(6, dtype=cr.float64, requires_grad=True)
    ok = cr.autograd.gradcheck(Softplus.apply, (probe,))
    print("gradcheck passed:", ok)
    assert ok


if __name__ == "__main__":
    main()
