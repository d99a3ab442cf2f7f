"""``chainrule train`` and ``chainrule eval``: train a model on a built-in dataset, end to end.

A run writes to ``--out``:

* ``last.safetensors`` — everything needed to resume exactly (model, optimiser, scheduler,
  random generators, epoch, history), rewritten atomically after every epoch;
* ``best.safetensors`` — the model with the best validation metric so far;
* ``model.safetensors`` — the final model;
* ``metrics.csv`` / ``metrics.json`` — one row per epoch;
* ``loss.png`` / ``accuracy.png`` — the curves (and, with ``--diagnose``, gradient-health plots).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import sys
import time

import chainrule as cr
from chainrule import nn

MODELS = ("mlp", "cnn", "linear", "deep-mlp")
ACTIVATIONS = {  # --activation name -> nn module class name
    "relu": "ReLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "gelu": "GELU",
    "silu": "SiLU",
    "leaky_relu": "LeakyReLU",
    "elu": "ELU",
}
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "nadam")
SCHEDULERS = ("cosine", "step", "onecycle", "none")


class UsageError(Exception):
    """A bad command-line argument: reported in one line, without a traceback."""


# ---- building blocks ----------------------------------------------------------------------


def build_model(
    name: str, input_shape: tuple, num_outputs: int, hidden: int, layers: int, activation: str
) -> nn.Module:
    """A model preset for inputs of ``input_shape`` and ``num_outputs`` outputs."""
    if activation not in ACTIVATIONS:
        raise UsageError(
            f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}"
        )
    act = getattr(nn, ACTIVATIONS[activation])
    n_in = math.prod(input_shape)
    if name == "linear":
        return nn.Sequential(nn.Flatten(), nn.Linear(n_in, num_outputs))
    if name in ("mlp", "deep-mlp"):
        depth = layers if name == "mlp" else max(layers, 8)
        mods: list = [nn.Flatten()]
        width = n_in
        for _ in range(depth):
            mods += [nn.Linear(width, hidden), act()]
            width = hidden
        mods.append(nn.Linear(width, num_outputs))
        return nn.Sequential(*mods)
    if name == "cnn":
        if len(input_shape) != 3:
            raise UsageError(
                f"model 'cnn' needs image inputs (channels, height, width); this dataset has "
                f"inputs of shape {tuple(input_shape)}: use --model mlp or linear"
            )
        c, h, w = input_shape
        size_h, size_w = h // 4, w // 4
        if size_h < 1 or size_w < 1:
            raise UsageError(f"model 'cnn' needs images of at least 4x4, got {h}x{w}")
        return nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1),
            act(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            act(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(32 * size_h * size_w, hidden),
            act(),
            nn.Linear(hidden, num_outputs),
        )
    raise UsageError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def build_optimizer(name: str, params, lr: float, weight_decay: float):
    """The optimiser ``name`` with PyTorch's defaults apart from ``lr``/``weight_decay``."""
    opt = cr.optim
    table = {
        "adam": lambda: opt.Adam(params, lr=lr, weight_decay=weight_decay),
        "adamw": lambda: opt.AdamW(params, lr=lr, weight_decay=weight_decay or 0.01),
        "sgd": lambda: opt.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay),
        "rmsprop": lambda: opt.RMSprop(params, lr=lr, weight_decay=weight_decay),
        "adagrad": lambda: opt.Adagrad(params, lr=lr, weight_decay=weight_decay),
        "nadam": lambda: opt.NAdam(params, lr=lr, weight_decay=weight_decay),
    }
    if name not in table:
        raise UsageError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return table[name]()


def build_scheduler(name: str, optimizer, epochs: int, steps_per_epoch: int):
    """A learning-rate schedule stepped once per epoch (``onecycle``: once per batch)."""
    sched = cr.optim.lr_scheduler
    if name == "none":
        return None
    if name == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "step":
        return sched.StepLR(optimizer, step_size=max(1, epochs // 3), gamma=0.1)
    if name == "onecycle":
        max_lr = optimizer.param_groups[0]["lr"]
        return sched.OneCycleLR(
            optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=steps_per_epoch
        )
    raise UsageError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")


def load_dataset(name: str, data_dir: str | None, seed: int):
    """The named dataset split into train and test, with inputs standardised.

    Each input feature is shifted and scaled by the training part's mean and standard
    deviation (computed the same way on every run, so ``eval`` reproduces it).
    """
    try:
        accepted = cr.datasets.options(name)
        kwargs = {}
        if "root" in accepted:
            kwargs["root"] = data_dir
        if "seed" in accepted:
            kwargs["seed"] = seed
        data = cr.datasets.load(name, **kwargs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except (OSError, ImportError) as exc:
        raise UsageError(str(exc)) from None
    x_train, y_train = data.train.tensors
    x_test, y_test = data.test.tensors
    mean = x_train.mean(0, keepdim=True)
    std = x_train.std(0, keepdim=True) + 1e-6
    return dataclasses.replace(
        data,
        train=cr.utils.data.TensorDataset((x_train - mean) / std, y_train),
        test=cr.utils.data.TensorDataset((x_test - mean) / std, y_test),
    )


# ---- the run ---------------------------------------------------------------------------------

CONFIG_KEYS = (
    "dataset",
    "model",
    "hidden",
    "layers",
    "activation",
    "optimizer",
    "lr",
    "weight_decay",
    "scheduler",
    "epochs",
    "batch_size",
    "seed",
)


def _config(args) -> dict:
    return {k: getattr(args, k) for k in CONFIG_KEYS}


def check_output_dir(out: str) -> None:
    """Fail before training when ``out`` cannot be written."""
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".write-test")
        with open(probe, "w") as fh:
            fh.write("ok")
        os.remove(probe)
    except OSError as exc:
        raise UsageError(f"cannot write to --out {out!r}: {exc.strerror or exc}") from None


class Trainer:
    """Holds the state of one training run (everything a checkpoint captures)."""

    def __init__(self, args, data):
        self.args = args
        self.data = data
        self.task = getattr(data, "task", "classification")
        cr.manual_seed(args.seed)
        self.model = build_model(
            args.model,
            tuple(data.input_shape),
            data.num_classes if self.task == "classification" else data.num_outputs,
            args.hidden,
            args.layers,
            args.activation,
        )
        self.optimizer = build_optimizer(
            args.optimizer, self.model.parameters(), args.lr, args.weight_decay
        )
        self.shuffle_generator = cr.Generator().manual_seed(args.seed)
        self.train_loader = cr.utils.data.DataLoader(
            data.train, batch_size=args.batch_size, shuffle=True, generator=self.shuffle_generator
        )
        self.test_loader = cr.utils.data.DataLoader(data.test, batch_size=512)
        self.scheduler = build_scheduler(
            args.scheduler, self.optimizer, args.epochs, len(self.train_loader)
        )
        self.per_batch_schedule = args.scheduler == "onecycle"
        self.loss_fn = nn.CrossEntropyLoss() if self.task == "classification" else nn.MSELoss()
        self.epoch = 0
        self.history: list = []
        self.best = None
        self.monitor = None

    # -- checkpoints --------------------------------------------------------------------------
    def state(self) -> dict:
        return {
            "format": "chainrule-train-checkpoint",
            "config": _config(self.args),
            "epoch": self.epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "rng": cr.default_generator.get_state(),
            "shuffle_rng": self.shuffle_generator.get_state(),
            "history": self.history,
            "best": self.best,
        }

    def load_state(self, state: dict) -> None:
        if state.get("format") != "chainrule-train-checkpoint":
            raise UsageError("the checkpoint was not written by 'chainrule train'")
        saved = state["config"]
        mine = _config(self.args)
        different = [k for k in CONFIG_KEYS if k != "epochs" and saved.get(k) != mine[k]]
        if different:
            raise UsageError(
                "--resume with different settings than the checkpoint: "
                + ", ".join(f"{k}={mine[k]!r} (checkpoint: {saved.get(k)!r})" for k in different)
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        cr.default_generator.set_state(state["rng"])
        self.shuffle_generator.set_state(state["shuffle_rng"])
        self.epoch = int(state["epoch"])
        self.history = list(state["history"])
        self.best = state["best"]

    def save(self, name: str, state: dict | None = None) -> str:
        path = os.path.join(self.args.out, name)
        cr.save(state if state is not None else self.state(), path)
        return path

    # -- one epoch ------------------------------------------------------------------------------
    def train_epoch(self, progress) -> dict:
        self.model.train()
        total, count, correct = 0.0, 0, 0
        start = time.perf_counter()
        bar = progress(self.train_loader, self.epoch + 1)
        for x, y in bar:
            out = self.model(x)
            loss = self.loss_fn(out, y)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None and self.per_batch_schedule:
                self.scheduler.step()
            n = len(x)
            total += loss.item() * n
            count += n
            if self.task == "classification":
                correct += int((out.argmax(1) == y).sum().item())
            elapsed = time.perf_counter() - start
            if hasattr(bar, "set_postfix"):
                # shown at tqdm's next redraw: refreshing here would print a stale count
                bar.set_postfix(
                    loss=f"{total / count:.4f}",
                    samples_s=f"{count / max(elapsed, 1e-9):.0f}",
                    refresh=False,
                )
        if self.scheduler is not None and not self.per_batch_schedule:
            self.scheduler.step()
        seconds = time.perf_counter() - start
        row = {
            "train_loss": total / max(count, 1),
            "seconds": seconds,
            "samples_per_s": count / max(seconds, 1e-9),
        }
        if self.task == "classification":
            row["train_acc"] = correct / max(count, 1)
        return row

    def evaluate(self, loader=None) -> dict:
        self.model.eval()
        total, count, correct = 0.0, 0, 0
        preds, targets = [], []
        with cr.no_grad():
            for x, y in loader or self.test_loader:
                out = self.model(x)
                total += self.loss_fn(out, y).item() * len(x)
                count += len(x)
                if self.task == "classification":
                    p = out.argmax(1)
                    correct += int((p == y).sum().item())
                    preds += p.tolist()
                    targets += y.tolist()
        row = {"val_loss": total / max(count, 1)}
        if self.task == "classification":
            row["val_acc"] = correct / max(count, 1)
            row["_preds"], row["_targets"] = preds, targets
        return row


def _progress_factory(enabled: bool, total_epochs: int):
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None

    def make(loader, epoch):
        if not enabled or tqdm is None:
            return loader
        return tqdm(
            loader,
            desc=f"epoch {epoch}/{total_epochs}",
            leave=False,
            unit="batch",
            dynamic_ncols=True,
            file=sys.stderr,
        )

    return make


def write_metrics(out: str, history: list) -> None:
    """``metrics.json`` and ``metrics.csv`` (one row per epoch)."""
    with open(os.path.join(out, "metrics.json"), "w") as fh:
        json.dump(history, fh, indent=2)
    if history:
        keys = list(history[0].keys())
        for row in history[1:]:
            keys += [k for k in row if k not in keys]
        with open(os.path.join(out, "metrics.csv"), "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=keys)
            writer.writeheader()
            writer.writerows(history)


def write_plots(out: str, history: list, classification: bool) -> list:
    """Loss and accuracy curves as PNG (skipped, with a note, without matplotlib)."""
    try:
        from chainrule.diagnostics.plots import plot_training_curves
    except ImportError:
        return []
    series = {
        k: [row.get(k) for row in history]
        for k in ("train_loss", "val_loss", "train_acc", "val_acc")
    }
    written = []
    try:
        written.append(
            plot_training_curves(
                series, os.path.join(out, "loss.png"), ("train_loss", "val_loss"), "loss"
            )
        )
        if classification:
            written.append(
                plot_training_curves(
                    series, os.path.join(out, "accuracy.png"), ("train_acc", "val_acc"), "accuracy"
                )
            )
    except ImportError as exc:
        print(f"note: {exc}; no plots written", file=sys.stderr)
    return written


def confusion_matrix(preds: list, targets: list, num_classes: int) -> list:
    """``m[true][predicted]`` counts."""
    m = [[0] * num_classes for _ in range(num_classes)]
    for p, t in zip(preds, targets):
        m[int(t)][int(p)] += 1
    return m


def format_confusion(m: list) -> str:
    n = len(m)
    width = max(5, max(len(str(v)) for row in m for v in row) + 1)
    head = "true\\pred" + "".join(f"{j:>{width}}" for j in range(n))
    rows = [f"{i:>9}" + "".join(f"{v:>{width}}" for v in row) for i, row in enumerate(m)]
    return "\n".join([head, *rows])


def run_train(args) -> int:
    """The ``chainrule train`` command."""
    check_output_dir(args.out)
    data = load_dataset(args.dataset, args.data_dir, args.seed)
    trainer = Trainer(args, data)
    last = os.path.join(args.out, "last.safetensors")
    if args.resume:
        if not os.path.exists(last):
            raise UsageError(f"--resume: no checkpoint at {last}")
        trainer.load_state(cr.load(last))
        print(f"resuming {args.dataset}/{args.model} after epoch {trainer.epoch}")
    else:
        trainer.save("last.safetensors")  # a consistent state exists before the first epoch
    if args.diagnose:
        from chainrule.diagnostics import GradientMonitor

        trainer.monitor = GradientMonitor(trainer.model)
    n_params = sum(p.numel() for p in trainer.model.parameters())
    print(
        f"training {args.model} ({n_params:,} parameters) on {args.dataset}: "
        f"{len(data.train)} train / {len(data.test)} test samples, "
        f"{args.optimizer} lr={args.lr}, {args.epochs} epochs, batch {args.batch_size}"
    )
    progress = _progress_factory(not args.no_progress, args.epochs)
    classification = trainer.task == "classification"
    try:
        while trainer.epoch < args.epochs:
            row = {"epoch": trainer.epoch + 1, "lr": trainer.optimizer.param_groups[0]["lr"]}
            row.update(trainer.train_epoch(progress))
            evaluation = trainer.evaluate()
            evaluation.pop("_preds", None)
            evaluation.pop("_targets", None)
            row.update(evaluation)
            trainer.epoch += 1
            trainer.history.append(row)
            metric = row.get("val_acc", -row["val_loss"])
            improved = trainer.best is None or metric > trainer.best
            if improved:
                trainer.best = metric
                trainer.save(
                    "best.safetensors",
                    {
                        "format": "chainrule-model",
                        "config": _config(args),
                        "model": trainer.model.state_dict(),
                        "epoch": trainer.epoch,
                        "metrics": row,
                    },
                )
            trainer.save("last.safetensors")
            write_metrics(args.out, trainer.history)
            acc = f"  val acc {row['val_acc']:.2%}" if classification else ""
            train_acc = f"  train acc {row['train_acc']:.2%}" if classification else ""
            print(
                f"epoch {row['epoch']:>3}/{args.epochs}  train loss {row['train_loss']:.4f}"
                f"{train_acc}  val loss {row['val_loss']:.4f}{acc}  "
                f"({row['seconds']:.1f}s, {row['samples_per_s']:.0f} samples/s)"
                + ("  *" if improved else ""),
                flush=True,
            )
            if trainer.monitor is not None:
                findings = trainer.monitor.diagnose()
                for finding in findings:
                    print(f"  diagnosis: {finding}", flush=True)
    except KeyboardInterrupt:
        # last.safetensors already holds the state at the start of the epoch in flight, which
        # --resume repeats exactly; the weights reached mid-epoch are saved beside it
        interrupted = trainer.save("interrupted.safetensors")
        write_metrics(args.out, trainer.history)
        print(
            f"\ninterrupted during epoch {trainer.epoch + 1}: saved the mid-epoch state to "
            f"{interrupted}; {last} holds the state after epoch {trainer.epoch}. Continue "
            "with the same command plus --resume.",
            file=sys.stderr,
            flush=True,
        )
        return 130
    cr.save(
        {
            "format": "chainrule-model",
            "config": _config(args),
            "model": trainer.model.state_dict(),
            "epoch": trainer.epoch,
            "metrics": trainer.history[-1] if trainer.history else None,
        },
        os.path.join(args.out, "model.safetensors"),
    )
    write_metrics(args.out, trainer.history)
    plots = write_plots(args.out, trainer.history, classification)
    if trainer.monitor is not None:
        plots += write_diagnostic_plots(trainer.monitor, args.out)
    final = trainer.history[-1] if trainer.history else {}
    if classification and final:
        print(f"final test accuracy {final['val_acc']:.2%} (best {trainer.best:.2%})")
    print(
        f"wrote {args.out}: model.safetensors, best.safetensors, last.safetensors, "
        f"metrics.csv, metrics.json" + "".join(", " + os.path.basename(p) for p in plots)
    )
    return 0


def write_diagnostic_plots(monitor, out: str) -> list:
    """Gradient-flow, per-layer statistics and attribution PNGs next to the other artefacts."""
    from chainrule.diagnostics import plots

    try:
        return [
            plots.plot_gradient_flow(monitor, os.path.join(out, "gradient_flow.png")),
            plots.plot_layer_stats(monitor, os.path.join(out, "layer_stats.png")),
            plots.plot_attribution(monitor, os.path.join(out, "attribution.png")),
        ]
    except ImportError as exc:
        print(f"note: {exc}; no diagnostic plots written", file=sys.stderr)
        return []


def run_eval(args) -> int:
    """The ``chainrule eval`` command: accuracy and confusion matrix of a checkpoint."""
    if not os.path.exists(args.checkpoint):
        raise UsageError(f"no checkpoint at {args.checkpoint}")
    state = cr.load(args.checkpoint)
    if state.get("format") not in ("chainrule-model", "chainrule-train-checkpoint"):
        raise UsageError(f"{args.checkpoint} was not written by 'chainrule train'")
    config = dict(state["config"])
    if args.dataset:
        config["dataset"] = args.dataset
    ns = type("Args", (), {})()
    for k, v in config.items():
        setattr(ns, k, v)
    data = load_dataset(config["dataset"], args.data_dir, config["seed"])
    trainer = Trainer(ns, data)
    trainer.model.load_state_dict(state["model"])
    result = trainer.evaluate()
    print(
        f"{args.checkpoint}: {config['model']} on {config['dataset']} "
        f"({len(data.test)} test samples)"
    )
    print(f"loss {result['val_loss']:.4f}")
    if "val_acc" in result:
        print(f"accuracy {result['val_acc']:.2%}")
        m = confusion_matrix(result["_preds"], result["_targets"], data.num_classes)
        print("confusion matrix (rows: true class, columns: predicted):")
        print(format_confusion(m))
    return 0
