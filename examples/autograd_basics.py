"""Autograd in five minutes: gradients, gradients of gradients, and hooks.

Run: ``python examples/autograd_basics.py``
"""

import chainrule as cr


def main() -> None:
    # A leaf tensor that asks for its gradient.
    x = cr.tensor([0.5, -1.0, 2.0], requires_grad=True)

    # Every op records how it was computed: y.grad_fn is the last step.
    y = (x.tanh() * x).sum()
    print("y =", y.item(), "made by", type(y.grad_fn).__name__)

    # backward() walks the record in reverse applying the chain rule.
    y.backward()
    print("dy/dx =", x.grad.tolist())

    # The rule by hand: d/dx [x tanh x] = tanh x + x (1 - tanh^2 x).
    t = x.detach().tanh()
    expected = t + x.detach() * (1 - t * t)
    assert cr.allclose(x.grad, expected)

    # Gradients of gradients: the backward rules are written in chainrule ops.
    z = cr.tensor(1.5, requires_grad=True)
    (g,) = cr.autograd.grad(z**3, z, create_graph=True)  # 3 z^2
    (h,) = cr.autograd.grad(g, z)  # 6 z
    print("d/dz z^3 =", g.item(), " d2/dz2 z^3 =", h.item())
    assert abs(h.item() - 9.0) < 1e-6

    # A hook sees (and may change) the gradient flowing into a tensor.
    w = cr.ones(3, requires_grad=True)
    w.register_hook(lambda grad: grad * 0.5)
    (w * 4).sum().backward()
    print("halved by the hook:", w.grad.tolist())
    assert w.grad.tolist() == [2.0, 2.0, 2.0]


if __name__ == "__main__":
    main()
