"""The ``chainrule`` command line: ``train``, ``eval``, ``explain`` and ``demo``.

Run ``chainrule train`` (or ``python -m chainrule train``) to train an MLP on the bundled
handwritten digits; ``chainrule --help`` lists everything.
"""

from __future__ import annotations

import argparse
import sys

from chainrule.cli.train import (
    ACTIVATIONS,
    MODELS,
    OPTIMIZERS,
    SCHEDULERS,
    UsageError,
    run_eval,
    run_train,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chainrule",
        description="Train and inspect neural networks with chainrule.",
    )
    sub = parser.add_subparsers(dest="command")

    train = sub.add_parser("train", help="train a model on a built-in dataset")
    train.add_argument(
        "--dataset",
        default="digits",
        help="digits (default), mnist, fashion_mnist, spirals, moons, xor, ...",
    )
    train.add_argument(
        "--data-dir", default=None, help="directory with the IDX files of mnist/fashion_mnist"
    )
    train.add_argument("--model", default="mlp", help=f"one of {', '.join(MODELS)}")
    train.add_argument("--hidden", type=int, default=256, help="hidden width (default 256)")
    train.add_argument("--layers", type=int, default=2, help="hidden layers of mlp (default 2)")
    train.add_argument("--activation", default="relu", help=f"one of {', '.join(ACTIVATIONS)}")
    train.add_argument("--optimizer", default="adam", help=f"one of {', '.join(OPTIMIZERS)}")
    train.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    train.add_argument("--weight-decay", type=float, default=0.0)
    train.add_argument("--scheduler", default="cosine", help=f"one of {', '.join(SCHEDULERS)}")
    train.add_argument("--epochs", type=int, default=30)
    train.add_argument("--batch-size", type=int, default=32)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument(
        "--out", default=None, help="output directory (default runs/<dataset>-<model>)"
    )
    train.add_argument(
        "--resume", action="store_true", help="continue from <out>/last.safetensors exactly"
    )
    train.add_argument(
        "--diagnose",
        action="store_true",
        help="monitor gradient health; report problems and write plots",
    )
    train.add_argument("--no-progress", action="store_true", help="no progress bar")

    ev = sub.add_parser("eval", help="accuracy and confusion matrix of a checkpoint")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--dataset", default=None, help="override the checkpoint's dataset")
    ev.add_argument("--data-dir", default=None)

    explain = sub.add_parser("explain", help="the chain rule, step by step, on a tiny network")
    explain.add_argument(
        "--out",
        default="runs/explain",
        help="directory for the graph (DOT, and SVG/PNG with Graphviz)",
    )

    demo = sub.add_parser("demo", help="demonstrations of what goes wrong in training")
    demo.add_argument("name", choices=["vanishing"], help="vanishing: deep sigmoid vs ReLU")
    demo.add_argument("--out", default="runs/demo-vanishing")
    demo.add_argument("--depth", type=int, default=10)
    demo.add_argument("--steps", type=int, default=150)
    demo.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list | None = None) -> int:
    """Entry point of the ``chainrule`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["train", *(argv or [])])
    try:
        if args.command == "train":
            if args.out is None:
                args.out = f"runs/{args.dataset}-{args.model}"
            return run_train(args)
        if args.command == "eval":
            return run_eval(args)
        if args.command == "explain":
            from chainrule.cli.explain import run_explain

            return run_explain(args)
        if args.command == "demo":
            from chainrule.cli.explain import run_demo

            return run_demo(args)
    except UsageError as exc:
        print(f"chainrule {args.command}: error: {exc}", file=sys.stderr)
        return 2
    parser.print_help()
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
