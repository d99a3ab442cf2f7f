"""Gradient health: per-layer statistics during training, and a diagnosis with remedies.

One line attaches the monitor; the training loop stays as it was::

    monitor = chainrule.diagnostics.GradientMonitor(model)
    for x, y in loader:
        loss = loss_fn(model(x), y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
    for finding in monitor.diagnose():
        print(finding)

How it sees everything without help from the loop:

* a hook on every parameter receives its gradient during ``backward()`` (gradient norm,
  non-finite values, and the attribution ``sum |w · dL/dw|``);
* forward hooks on ReLU/Sigmoid/Tanh modules measure dead and saturated units;
* the next forward pass of the model closes the step: the weights have been updated by
  then, so the update-to-weight ratio ``|Δw| / |w|`` is measured against a snapshot;
* the weight norm, update ratio and attribution of large tensors are estimated from a
  fixed sample of evenly spaced runs of their entries (see :func:`_sample`), which keeps
  the monitor's cost near a tenth of a training step;
* every recorded op is counted while the monitor is attached, so a graph that survives from
  step to step (``total_loss += loss``) shows up as a live-node count that keeps growing.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field

from chainrule import backend
from chainrule.tensor import Tensor, modes

# Thresholds of the diagnosis; each one is explained where it is used.
VANISHING_RATIO = 1e-3  # input-side RMS gradient / output-side RMS gradient
EXPLODING_RATIO = 1e3
EXPLODING_GROWTH = 1e2  # growth of the total gradient norm over the recorded steps
DEAD_FRACTION = 0.5
SATURATED_FRACTION = 0.5
UPDATE_RATIO_HIGH = 1e-1  # |Δw|/|w| per step; ~1e-3 is the usual healthy value
UPDATE_RATIO_LOW = 1e-6
CONVERGED_FRACTION = 0.1  # gradient norm now / at the first step, below which training converged
LEAK_STEPS = 5  # a live graph that grows over this many consecutive steps is a leak


@dataclass
class Finding:
    """One diagnosis: what is wrong, where, the evidence, and what usually fixes it."""

    kind: str  # vanishing | exploding | nonfinite | dead | saturated | lr_high | lr_low | leak
    layer: str
    evidence: str
    advice: str

    def __str__(self) -> str:
        where = f" in {self.layer}" if self.layer else ""
        return f"[{self.kind}]{where}: {self.evidence}\n    advice: {self.advice}"


@dataclass
class LayerStats:
    """The history of one parameterised layer (one value per recorded step)."""

    name: str
    grad_norm: list = field(default_factory=list)
    grad_rms: list = field(default_factory=list)
    # RMS of dL/d(layer output): the signal backprop carries through the layer. Weight
    # gradients x^T·delta can stay level while delta itself explodes or vanishes (large
    # activations compensate), so the depth-wise ratios use this one.
    output_grad_rms: list = field(default_factory=list)
    weight_norm: list = field(default_factory=list)
    update_ratio: list = field(default_factory=list)
    nonfinite: list = field(default_factory=list)
    attribution: list = field(default_factory=list)  # sum |w * dL/dw| over the layer


@dataclass
class ActivationStats:
    """Dead or saturated units after one activation module, per step."""

    name: str
    kind: str  # relu | sigmoid | tanh
    dead: list = field(default_factory=list)  # fraction of units never active in the batch
    saturated: list = field(default_factory=list)


ADVICE = {
    "vanishing": "use ReLU-family activations instead of sigmoid/tanh, He (kaiming) or Xavier "
    "initialisation, batch normalisation, or residual connections so gradients reach the "
    "first layers",
    "exploding": "clip gradients (nn.utils.clip_grad_norm_), lower the learning rate, use "
    "smaller initial weights (Xavier/He) or normalisation layers",
    "nonfinite": "find the first op producing NaN/Inf with chainrule.autograd.set_debug_nans; "
    "lower the learning rate or clip gradients; check for log(0) or division by zero",
    "dead": "lower the learning rate, initialise biases at zero or small positive values, or "
    "use LeakyReLU/ELU/GELU which keep a gradient for negative inputs",
    "saturated": "normalise the inputs, use Xavier initialisation or batch normalisation, or "
    "switch to ReLU-family activations",
    "lr_high": "lower the learning rate (try 10x smaller) or add a warm-up schedule",
    "lr_low": "raise the learning rate (try 10x larger) or use an adaptive optimiser (Adam)",
    "leak": "a tensor that requires grad is kept across steps (e.g. `total_loss += loss`): "
    "accumulate `loss.item()` or `loss.detach()` instead",
}


def _sq_norm(arr) -> float:
    """Sum of squares of ``arr`` in one BLAS pass (a dot product of the flat array with
    itself); recomputed in float64 only when the fast sum overflows."""
    xp = backend.array_module(arr)
    flat = arr.reshape(-1)
    if flat.dtype.kind == "f" and flat.dtype.itemsize >= 4:
        sq = float(xp.dot(flat, flat))
        if math.isfinite(sq):
            return sq
    wide = flat.astype("float64")
    return float(xp.dot(wide, wide))


SAMPLE_BLOCKS, SAMPLE_BLOCK = 64, 256  # the sample: 64 evenly spaced runs of 256 entries


def _sample(arr) -> tuple:
    """``(view, scale)``: the entries of ``arr`` the sampled statistics read, and how many
    entries of the tensor each one stands for.

    The update ratio ``|Δw| / |w|`` is a health measure read in orders of magnitude, and the
    attribution ``sum |w * dL/dw|`` ranks parameters; a sample of ``SAMPLE_BLOCKS`` evenly
    spaced runs of ``SAMPLE_BLOCK`` contiguous entries estimates both (and the weight norm)
    to within a few percent, and spares the monitor a full copy, subtraction, product and
    sum over every large weight at every step. The monitor is memory-bound, so the runs are
    contiguous: scattered single entries would touch a cache line each. Tensors up to the
    sample's size are read whole (exact figures). Gradient norms, and the non-finite check
    that rides on them, always read every entry."""
    flat = arr.reshape(-1)
    n = flat.size
    if n <= SAMPLE_BLOCKS * SAMPLE_BLOCK:
        return flat, 1.0
    step = n // SAMPLE_BLOCKS
    view = flat[: SAMPLE_BLOCKS * step].reshape(SAMPLE_BLOCKS, step)[:, :SAMPLE_BLOCK]
    return view, n / view.size


class GradientMonitor:
    """Records gradient health of ``model`` during training; see the module docstring.

    ``every``: record statistics every n-th step (1 = every step).
    """

    def __init__(self, model, every: int = 1):
        self.model = model
        self.every = max(1, int(every))
        self.step = 0
        self.layers: dict = {}
        self.activations: dict = {}
        self.live_nodes: list = []
        self._params = []  # (layer name, param name, parameter)
        self._handles = []
        self._pending_grads: dict = {}
        self._pending_attr: dict = {}
        self._pending_nonfinite: dict = {}
        self._pending_output: dict = {}
        self._snapshot: dict = {}
        self._live = weakref.WeakSet()
        self._attribution_total: dict = {}
        self._attach()

    # -- wiring ------------------------------------------------------------------------------
    def _attach(self) -> None:
        layer_of = {}
        for mod_name, module in self.model.named_modules():
            own = list(module.named_parameters(recurse=False))
            for pname, p in own:
                layer = mod_name or "(model)"
                layer_of[id(p)] = layer
                self._params.append((layer, f"{layer}.{pname}" if mod_name else pname, p))
                if layer not in self.layers:
                    self.layers[layer] = LayerStats(layer)
                    self._handles.append(module.register_forward_hook(self._output_hook(layer)))
            kind = type(module).__name__.lower()
            if kind in ("relu", "sigmoid", "tanh"):
                self.activations[mod_name] = ActivationStats(mod_name, kind)
                self._handles.append(module.register_forward_hook(self._activation_hook(mod_name)))
        for layer, qualified, p in self._params:
            if p.requires_grad:
                self._handles.append(p.register_hook(self._grad_hook(layer, qualified, p)))
        self._handles.append(self.model.register_forward_pre_hook(self._on_forward))
        modes.observers.append(self._observe)

    def detach(self) -> None:
        """Remove every hook; the recorded history stays available."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if self._observe in modes.observers:
            modes.observers.remove(self._observe)

    def _observe(self, node, outputs) -> None:
        self._live.add(node)

    def _recording(self) -> bool:
        return self.step % self.every == 0

    def _grad_hook(self, layer: str, qualified: str, p: Tensor):
        def hook(grad):
            if not self._recording():
                return None
            g = grad._data
            xp = backend.array_module(g)
            sq = _sq_norm(g)
            # a finite sum of squares proves every value finite: count only when it is not
            bad = 0 if math.isfinite(sq) else int((~xp.isfinite(g)).sum())
            self._pending_nonfinite[layer] = self._pending_nonfinite.get(layer, 0) + bad
            if bad:
                sq = float("nan")
            prev = self._pending_grads.get(layer, (0.0, 0))
            self._pending_grads[layer] = (prev[0] + sq, prev[1] + g.size)
            if bad:
                attr = float("nan")
            elif g.shape == p._data.shape:
                # sum |w * g| over the same sample as the update ratio (see _sample)
                w_s, scale = _sample(p._data)
                attr = scale * float(xp.abs(w_s * _sample(g)[0]).sum())
            else:
                attr = float(xp.abs(p._data * g).sum())
            self._pending_attr[layer] = self._pending_attr.get(layer, 0.0) + attr
            self._attribution_total[qualified] = self._attribution_total.get(qualified, 0.0) + attr
            return None

        return hook

    def _output_hook(self, layer: str):
        def record(grad):
            g = grad._data
            prev = self._pending_output.get(layer, (0.0, 0))
            self._pending_output[layer] = (prev[0] + _sq_norm(g), prev[1] + g.size)

        def hook(module, inputs, output):
            if self._recording() and module.training and isinstance(output, Tensor):
                if output.requires_grad and output.grad_fn is not None:
                    output.register_hook(record)

        return hook

    def _activation_hook(self, name: str):
        def hook(module, inputs, output):
            if not (self._recording() and module.training):
                return
            y = output._data
            xp = backend.array_module(y)
            stats = self.activations[name]
            flat = y.reshape(y.shape[0], -1) if y.ndim > 1 else y.reshape(1, -1)
            if stats.kind == "relu":
                never_active = (flat <= 0).all(axis=0)
                stats.dead.append(float(never_active.mean()))
            else:
                limit = 0.99
                if stats.kind == "sigmoid":
                    sat = (flat < 1 - limit) | (flat > limit)
                else:
                    sat = xp.abs(flat) > limit
                stats.saturated.append(float(sat.mean()))

        return hook

    def _on_forward(self, module, args) -> None:
        if not module.training:
            return
        self._close_step()

    def _close_step(self, final: bool = False) -> None:
        """Finish the previous step (its weights are updated by now) and start the next.

        The live-node count is taken only when a new forward begins: what is alive then was
        kept from earlier steps. ``final`` closes the step in flight for a report: no live
        count (the loop's locals are already gone) and the snapshot is left as it is."""
        if self._pending_grads:
            for layer, stats in self.layers.items():
                sq, n = self._pending_grads.get(layer, (0.0, 0))
                if n == 0:
                    continue
                stats.grad_norm.append(math.sqrt(sq) if sq == sq else float("nan"))
                stats.grad_rms.append(math.sqrt(sq / n) if sq == sq else float("nan"))
                stats.nonfinite.append(self._pending_nonfinite.get(layer, 0))
                out_sq, out_n = self._pending_output.get(layer, (0.0, 0))
                stats.output_grad_rms.append(
                    math.sqrt(out_sq / out_n) if out_n and out_sq == out_sq else float("nan")
                )
                stats.attribution.append(self._pending_attr.get(layer, 0.0))
                w_sq, d_sq, updated = 0.0, 0.0, False
                for lay, qualified, p in self._params:
                    if lay != layer:
                        continue
                    now, scale = _sample(p._data)  # see _sample
                    w_sq += scale * _sq_norm(now)
                    before = self._snapshot.get(qualified)
                    if before is not None and now.shape == before.shape:
                        d_sq += scale * _sq_norm(now - before)
                        updated = True
                stats.weight_norm.append(math.sqrt(w_sq))
                if updated:
                    stats.update_ratio.append(math.sqrt(d_sq) / (math.sqrt(w_sq) + 1e-12))
            if not final:
                self.live_nodes.append(len(self._live))
        self._pending_grads.clear()
        self._pending_output.clear()
        self._pending_attr.clear()
        self._pending_nonfinite.clear()
        if final:
            return
        self.step += 1
        if self._recording():
            self._snapshot = {q: _sample(p._data)[0].copy() for _, q, p in self._params}
        else:
            self._snapshot = {}

    # -- results ------------------------------------------------------------------------------
    def attribution(self, top: int | None = None) -> list:
        """Parameters ranked by accumulated first-order attribution ``sum |w · dL/dw|``
        (estimated from a fixed sample of large tensors' entries, see ``_sample``)."""
        ranked = sorted(self._attribution_total.items(), key=lambda kv: -kv[1])
        return ranked[:top] if top else ranked

    def layer_attribution(self) -> list:
        """Layers ranked by accumulated attribution (their share of the total)."""
        totals = {name: sum(s.attribution) for name, s in self.layers.items()}
        whole = sum(totals.values()) or 1.0
        return sorted(((k, v, v / whole) for k, v in totals.items()), key=lambda kv: -kv[1])

    def summary(self) -> str:
        """A table of the latest statistics per layer."""
        lines = [f"{'layer':<24}{'grad norm':>12}{'weight norm':>13}{'update/weight':>15}"]
        for name, s in self.layers.items():
            g = s.grad_norm[-1] if s.grad_norm else float("nan")
            w = s.weight_norm[-1] if s.weight_norm else float("nan")
            u = s.update_ratio[-1] if s.update_ratio else float("nan")
            lines.append(f"{name:<24}{g:>12.3e}{w:>13.3e}{u:>15.3e}")
        return "\n".join(lines)

    def diagnose(self, window: int = 20) -> list:
        """Findings from the last ``window`` recorded steps (an empty list when healthy)."""
        self._close_pending_for_report()
        findings: list = []
        layers = [s for s in self.layers.values() if s.grad_rms]
        # depth-wise comparison on dL/d(output) where every layer has it, else on the weights'
        use_output = bool(layers) and all(
            any(x == x for x in s.output_grad_rms[-window:]) for s in layers
        )
        recent = {
            s.name: (s.output_grad_rms if use_output else s.grad_rms)[-window:] for s in layers
        }

        def median(xs):
            xs = sorted(x for x in xs if x == x)
            return xs[len(xs) // 2] if xs else float("nan")

        for s in layers:
            bad = sum(s.nonfinite[-window:])
            if bad:
                findings.append(
                    Finding(
                        "nonfinite",
                        s.name,
                        f"{bad} non-finite gradient values in the last "
                        f"{len(s.nonfinite[-window:])} steps",
                        ADVICE["nonfinite"],
                    )
                )
        finite_layers = [s for s in layers if median(recent[s.name]) == median(recent[s.name])]
        if len(finite_layers) >= 2:
            last = median(recent[finite_layers[-1].name])
            first = median(recent[finite_layers[0].name])
            if last > 0 and first / last < VANISHING_RATIO:
                weak = [
                    s.name for s in finite_layers if median(recent[s.name]) / last < VANISHING_RATIO
                ]
                findings.append(
                    Finding(
                        "vanishing",
                        ", ".join(weak[:4]),
                        f"RMS gradient at {finite_layers[0].name} is {first:.2e}, "
                        f"{last / max(first, 1e-300):.1e}x smaller than at "
                        f"{finite_layers[-1].name} "
                        f"({last:.2e}): gradients shrink by orders of magnitude towards the input",
                        ADVICE["vanishing"],
                    )
                )
            elif last > 0 and first / last > EXPLODING_RATIO:
                findings.append(
                    Finding(
                        "exploding",
                        finite_layers[0].name,
                        f"RMS gradient grows from {last:.2e} at {finite_layers[-1].name} to "
                        f"{first:.2e} at {finite_layers[0].name} "
                        f"({first / last:.1e}x) towards the input",
                        ADVICE["exploding"],
                    )
                )
        for s in layers:
            norms = [x for x in s.grad_norm[-window:] if x == x]
            if len(norms) >= 3 and norms[0] > 0 and norms[-1] / norms[0] > EXPLODING_GROWTH:
                findings.append(
                    Finding(
                        "exploding",
                        s.name,
                        f"gradient norm grew from {norms[0]:.2e} to {norms[-1]:.2e} over "
                        f"{len(norms)} steps",
                        ADVICE["exploding"],
                    )
                )
                break
        for a in self.activations.values():
            if a.dead and median(a.dead[-window:]) > DEAD_FRACTION:
                findings.append(
                    Finding(
                        "dead",
                        a.name,
                        f"{median(a.dead[-window:]):.0%} of the ReLU units output "
                        "zero for every sample of the batch (no gradient flows through them)",
                        ADVICE["dead"],
                    )
                )
            if a.saturated and median(a.saturated[-window:]) > SATURATED_FRACTION:
                findings.append(
                    Finding(
                        "saturated",
                        a.name,
                        f"{median(a.saturated[-window:]):.0%} of the "
                        f"{a.kind} outputs are saturated (derivative near zero)",
                        ADVICE["saturated"],
                    )
                )
        ratios = [median(s.update_ratio[-window:]) for s in layers if s.update_ratio]
        ratios = [r for r in ratios if r == r]
        if ratios:
            top = max(ratios)
            if top > UPDATE_RATIO_HIGH:
                name = layers[
                    [
                        median(s.update_ratio[-window:]) if s.update_ratio else -1 for s in layers
                    ].index(top)
                ].name
                findings.append(
                    Finding(
                        "lr_high",
                        name,
                        f"each step changes the weights by {top:.1e} of their "
                        "norm (healthy training is around 1e-3)",
                        ADVICE["lr_high"],
                    )
                )
            elif top < UPDATE_RATIO_LOW and not self._converged(window):
                findings.append(
                    Finding(
                        "lr_low",
                        "",
                        f"the largest update-to-weight ratio is {top:.1e} per step "
                        "(healthy training is around 1e-3)",
                        ADVICE["lr_low"],
                    )
                )
        leak = self._leak()
        if leak:
            findings.append(leak)
        return findings

    def _converged(self, window: int) -> bool:
        """Whether the gradient has fallen far below its size at the first recorded step.

        Tiny updates are healthy at the end of training (a schedule annealed the learning
        rate, or the loss is near its minimum); they mean a too-low learning rate only while
        the gradient is still as large as when training started."""
        first = math.sqrt(sum(s.grad_norm[0] ** 2 for s in self.layers.values() if s.grad_norm))
        recent = [
            math.sqrt(sum(s.grad_norm[i] ** 2 for s in self.layers.values() if s.grad_norm))
            for i in range(-min(window, min(len(s.grad_norm) for s in self.layers.values())), 0)
        ]
        return bool(recent) and first > 0 and max(recent) < CONVERGED_FRACTION * first

    def _leak(self) -> Finding | None:
        counts = self.live_nodes[-(LEAK_STEPS + 1) :]
        if len(counts) <= LEAK_STEPS:
            return None
        growth = [b - a for a, b in zip(counts, counts[1:])]
        if all(g > 0 for g in growth):
            per_step = sum(growth) / len(growth)
            return Finding(
                "leak",
                "",
                f"the autograd graph kept alive grows by about {per_step:.0f} "
                f"nodes per step ({counts[0]} -> {counts[-1]} live nodes over "
                f"{len(growth)} steps)",
                ADVICE["leak"],
            )
        return None

    def _close_pending_for_report(self) -> None:
        # statistics of the step in flight are complete once backward has run; close it so a
        # report right after the last step includes it (the update ratio needs one more step)
        if self._pending_grads:
            self._close_step(final=True)


def watch(model, every: int = 1) -> GradientMonitor:
    """Attach a :class:`GradientMonitor` to ``model`` (the one line the training code needs)."""
    return GradientMonitor(model, every=every)


__all__ = ["GradientMonitor", "watch", "Finding", "LayerStats", "ActivationStats", "ADVICE"]
