"""Pictures of gradient health (PNG via matplotlib, the ``plot`` extra)."""

from __future__ import annotations


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: works without a display
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("plots need matplotlib: pip install 'chainrule[plot]'") from exc
    return plt


def _positive(values):
    return [v if (v == v and v > 0) else float("nan") for v in values]


def plot_gradient_flow(monitor, path: str, title: str | None = None) -> str:
    """Per-layer gradient norms (median of the recorded steps), log scale, input to output."""
    plt = _pyplot()
    names = [n for n, s in monitor.layers.items() if s.grad_rms]
    meds, lows, highs = [], [], []
    for n in names:
        xs = sorted(x for x in monitor.layers[n].grad_rms if x == x)
        if not xs:
            meds.append(float("nan"))
            lows.append(float("nan"))
            highs.append(float("nan"))
            continue
        meds.append(xs[len(xs) // 2])
        lows.append(xs[0])
        highs.append(xs[-1])
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 3), 4))
    xs = list(range(len(names)))
    ax.plot(xs, _positive(meds), marker="o", label="median RMS gradient")
    ax.fill_between(xs, _positive(lows), _positive(highs), alpha=0.2, label="min-max over steps")
    ax.set_yscale("log")
    ax.set_xticks(xs)
    ax.set_xticklabels(names, rotation=45, ha="right")
    ax.set_xlabel("layer (input → output)")
    ax.set_ylabel("RMS gradient")
    ax.set_title(title or "Gradient flow")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_layer_stats(monitor, path: str, title: str | None = None) -> str:
    """Gradient norm, weight norm and update ratio of every layer over the recorded steps."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for name, s in monitor.layers.items():
        axes[0].plot(_positive(s.grad_norm), label=name)
        axes[1].plot(_positive(s.weight_norm), label=name)
        axes[2].plot(_positive(s.update_ratio), label=name)
    for ax, label in zip(axes, ("gradient norm", "weight norm", "update / weight")):
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(label)
    axes[2].axhline(1e-3, color="grey", linestyle="--", linewidth=1)
    axes[0].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_attribution(monitor, path: str, top: int = 20, title: str | None = None) -> str:
    """Parameters ranked by first-order attribution ``sum |w · dL/dw|`` (horizontal bars)."""
    plt = _pyplot()
    ranked = monitor.attribution(top)
    names = [n for n, _ in ranked][::-1]
    values = [v for _, v in ranked][::-1]
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.35 * len(names) + 1)))
    ax.barh(names, values)
    if values and all(v > 0 for v in values) and max(values) / min(values) > 100:
        ax.set_xscale("log")
    ax.set_xlabel("Σ |w · ∂L/∂w| over recorded steps")
    ax.set_title(title or "Which weights moved the loss most")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_training_curves(history: dict, path: str, keys=("loss",), title: str | None = None):
    """Line plot of metric lists in ``history`` against epochs (used by ``chainrule train``)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for key in keys:
        values = history.get(key)
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_title(title or ", ".join(keys))
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


__all__ = ["plot_gradient_flow", "plot_layer_stats", "plot_attribution", "plot_training_curves"]
