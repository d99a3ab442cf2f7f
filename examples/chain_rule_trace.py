"""Watch the chain rule run: every backward step of a 2-2-1 network, with its numbers.

Run: ``python examples/chain_rule_trace.py``
"""

from chainrule.diagnostics import format_trace, trace_backward
from chainrule.diagnostics.trace import tiny_network


def main() -> None:
    loss, params = tiny_network()
    trace = trace_backward(loss, params=params)
    print(format_trace(trace))

    # The trace's gradients are the ones backward() computes.
    loss.backward()
    for name, p in params.items():
        assert abs(trace.gradients[name] - p.grad.item()) < 1e-12, name
    print("every traced gradient matches backward()")


if __name__ == "__main__":
    main()
