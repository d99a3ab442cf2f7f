"""Run benchmark workloads for chainrule and PyTorch (and JAX when installed) and compare.

Each (workload, framework) pair runs in a fresh subprocess, so one framework's imports, caches
and thread pools never affect another's timings. Rounds are interleaved (chainrule, torch,
torch, chainrule, ...) so that a machine that speeds up or slows down during the run affects
every framework alike; the ratio column is the median of the per-round ratios. Every child
gets the same thread limit and builds the workload from the same NumPy-generated data and
weights; the harness checks that the initial losses agree.

    python -m benchmarks                       # every workload, 5 rounds
    python -m benchmarks overhead mlp --rounds 3 --json results.json
    python -m benchmarks overhead --quick      # a few steps, for smoke tests
"""

from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import traceback

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FRAMEWORKS = ("chainrule", "torch", "jax")
REFERENCE = "torch"  # the framework the ratio column divides by
RESULT_MARK = "@@benchmark-result@@ "  # prefix of the one stdout line a child reports on
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

DEFAULTS = {"rounds": 5, "steps": 30, "warmup": 5}
QUICK = {"rounds": 1, "steps": 3, "warmup": 1}


# ---------------------------------------------------------------------------------------------
# child: build one workload in one framework, time its steps, report one JSON line
# ---------------------------------------------------------------------------------------------


def _max_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024  # bytes vs KiB


def _import_framework(name: str, threads: int):
    if name == "torch":
        import torch

        torch.set_num_threads(threads)
        return torch
    if name == "jax":
        # XLA has no plain thread-count switch: restrict the process to `threads` cores.
        if hasattr(os, "sched_setaffinity"):
            cores = sorted(os.sched_getaffinity(0))[:threads]
            os.sched_setaffinity(0, cores)
        import jax

        return jax
    return importlib.import_module(name)


def _child(
    framework: str, module: str, workload: str, steps: int, warmup: int, seed: int, threads: int
) -> dict:
    import numpy

    fw = _import_framework(framework, threads)
    rss_before = _max_rss_mb()
    table = "JAX_WORKLOADS" if framework == "jax" else "WORKLOADS"
    build = getattr(importlib.import_module(module), table)[workload]
    step, initial_loss, ops = build(fw, seed)
    losses = [step() for _ in range(warmup)]
    gc.collect()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        losses.append(step())
        times.append(time.perf_counter() - start)
    return {
        "times_s": times,
        "initial_loss": None if initial_loss is None else float(initial_loss),
        "final_loss": None if losses[-1] is None else float(losses[-1]),
        "ops_per_step": ops,
        "peak_rss_mb": _max_rss_mb(),
        "rss_growth_mb": _max_rss_mb() - rss_before,
        "versions": {framework: getattr(fw, "__version__", "?"), "numpy": numpy.__version__},
    }


def child_main(argv: list[str]) -> int:
    framework, module, workload, steps, warmup, seed, threads = argv
    try:
        result = _child(
            framework, module, workload, int(steps), int(warmup), int(seed), int(threads)
        )
    except Exception as exc:
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# parent: schedule the children, aggregate, check, print
# ---------------------------------------------------------------------------------------------


def available_frameworks() -> list[str]:
    """The frameworks importable here (chainrule is always there: it is this repository)."""
    return [f for f in FRAMEWORKS if f == "chainrule" or importlib.util.find_spec(f) is not None]


def run_child(framework: str, module: str, workload: str, args) -> dict:
    env = dict(os.environ)
    for var in THREAD_VARS:
        env[var] = str(args.threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.run",
        "--child",
        framework,
        module,
        workload,
        str(args.steps),
        str(args.warmup),
        str(args.seed),
        str(args.threads),
    ]
    try:
        proc = subprocess.run(
            cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=args.timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {args.timeout} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result = json.loads(line[len(RESULT_MARK) :])
            if "error" in result:
                result["stderr"] = proc.stderr[-4000:]
            return result
    return {"error": f"child exited with code {proc.returncode}", "stderr": proc.stderr[-4000:]}


def _close(a: float | None, b: float | None, rtol: float) -> bool:
    if a is None or b is None:
        return True
    return math.isclose(a, b, rel_tol=rtol, abs_tol=rtol * 1e-2)


def aggregate(workload: str, framework: str, rounds: list[dict]) -> dict:
    """One table row from the per-round child results of one (workload, framework) pair."""
    row = {"workload": workload, "framework": framework, "rounds": rounds}
    errors = [r["error"] for r in rounds if "error" in r]
    if errors:
        row["error"] = errors[0]
        return row
    times = [t for r in rounds for t in r["times_s"]]
    round_medians = [statistics.median(r["times_s"]) for r in rounds]
    row["median_ms"] = statistics.median(times) * 1e3
    row["round_min_ms"] = min(round_medians) * 1e3
    row["round_max_ms"] = max(round_medians) * 1e3
    ops = rounds[0]["ops_per_step"]
    row["us_per_op"] = row["median_ms"] * 1e3 / ops if ops else None
    row["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rounds)
    row["rss_growth_mb"] = max(r["rss_growth_mb"] for r in rounds)
    row["initial_loss"] = rounds[0]["initial_loss"]
    row["final_loss"] = rounds[0]["final_loss"]
    row["versions"] = rounds[0]["versions"]
    return row


def check_rows(rows: list[dict], rtol: float) -> None:
    """Set each row's ``check``: its ratio to the reference and whether its losses agree."""
    ref = next((r for r in rows if r["framework"] == REFERENCE and "error" not in r), None)
    for row in rows:
        if "error" in row:
            row["check"] = "ERROR"
            continue
        problems = []
        losses = {r["initial_loss"] for r in row["rounds"]}
        if len(losses) > 1:
            problems.append("initial loss changes between rounds")
        if ref is not None:
            # Paired per round: the two children of a round ran back to back, so a machine
            # that drifts between rounds (frequency, neighbours) cancels out of each ratio.
            ratios = [
                statistics.median(mine["times_s"]) / statistics.median(theirs["times_s"])
                for mine, theirs in zip(row["rounds"], ref["rounds"])
            ]
            row["ratio"] = statistics.median(ratios)
            if not _close(row["initial_loss"], ref["initial_loss"], rtol):
                problems.append(
                    f"initial loss {row['initial_loss']!r} != {REFERENCE}'s {ref['initial_loss']!r}"
                )
        row["problems"] = problems
        row["check"] = "LOSS MISMATCH" if problems else "ok"


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: list[dict]) -> str:
    """The results as a Markdown table (readable in a terminal too)."""
    head = [
        "workload",
        "framework",
        "median ms",
        "round medians ms",
        f"vs {REFERENCE}",
        "µs/op",
        "peak RSS MB",
        "RSS growth MB",
        "initial loss",
        "check",
    ]
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["workload"], r["framework"]] + ["-"] * 7 + ["ERROR"])
            continue
        body.append(
            [
                r["workload"],
                r["framework"],
                _fmt(r["median_ms"], ".3f"),
                f"{r['round_min_ms']:.3f}-{r['round_max_ms']:.3f}",
                _fmt(r.get("ratio"), ".2f"),
                _fmt(r["us_per_op"], ".1f"),
                _fmt(r["peak_rss_mb"], ".0f"),
                _fmt(r["rss_growth_mb"], ".0f"),
                _fmt(r["initial_loss"], ".6f"),
                r["check"],
            ]
        )
    widths = [max(len(str(line[i])) for line in [head] + body) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(head), rule] + [line(b) for b in body])


def machine_info() -> dict:
    """CPU model, core count and Python version of this machine."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for text in f:
                if text.startswith("model name"):
                    cpu = text.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def parse_args(argv: list[str] | None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    p.add_argument("names", nargs="*", help="workloads to run (default: all)")
    p.add_argument("--rounds", type=int, help=f"interleaved rounds (default {DEFAULTS['rounds']})")
    p.add_argument("--steps", type=int, help=f"timed steps per round (default {DEFAULTS['steps']})")
    p.add_argument("--warmup", type=int, help=f"untimed steps first (default {DEFAULTS['warmup']})")
    p.add_argument("--quick", action="store_true", help="1 round of 3 steps: a smoke test")
    p.add_argument("--frameworks", help="comma-separated (default: every one installed)")
    p.add_argument("--threads", type=int, default=2, help="threads per framework (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data and weights")
    p.add_argument(
        "--loss-rtol",
        type=float,
        default=1e-4,
        help="relative tolerance of the initial-loss check (default 1e-4)",
    )
    p.add_argument("--timeout", type=float, default=600, help="seconds per child (default 600)")
    p.add_argument("--json", metavar="PATH", help="also write every measurement to PATH")
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = p.parse_args(argv)
    for key, value in DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, QUICK[key] if args.quick else value)
    return p, args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child_main(argv[1:])
    parser, args = parse_args(argv)
    sys.path.insert(0, REPO_ROOT)
    from benchmarks.workloads import discover

    workloads = discover()
    if args.list:
        print("\n".join(f"{name}  ({mod})" for name, (mod, _) in sorted(workloads.items())))
        return 0
    names = args.names or sorted(workloads)
    unknown = [n for n in names if n not in workloads]
    if unknown:
        parser.error(f"unknown workload(s) {unknown}; known: {sorted(workloads)}")
    installed = available_frameworks()
    if args.frameworks:
        frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
        missing = [f for f in frameworks if f not in installed]
        if missing:
            parser.error(f"framework(s) {missing} not installed (installed: {installed})")
    else:
        frameworks = installed
    skipped = [f for f in FRAMEWORKS if f not in frameworks]

    info = machine_info()
    print(
        f"# {datetime.date.today()}  {info['cpu']}, {info['cores']} cores, python "
        f"{info['python']}; {args.threads} threads per framework; {args.rounds} rounds x "
        f"{args.steps} steps (+{args.warmup} warm-up)"
    )
    if skipped:
        print(f"# not run: {', '.join(skipped)}")

    all_rows = []
    for name in names:
        modname, _ = workloads[name]
        module = sys.modules[modname]
        fws = [f for f in frameworks if f != "jax" or name in getattr(module, "JAX_WORKLOADS", {})]
        per_fw: dict[str, list[dict]] = {f: [] for f in fws}
        for r in range(args.rounds):
            # A B, B A, A B ...: a steady drift of the machine's speed favours no framework.
            for fw in fws if r % 2 == 0 else fws[::-1]:
                per_fw[fw].append(run_child(fw, modname, name, args))
        rows = [aggregate(name, fw, per_fw[fw]) for fw in fws]
        check_rows(rows, args.loss_rtol)
        all_rows.extend(rows)
        for row in rows:
            if "error" in row:
                print(f"# {name}/{row['framework']} failed: {row['error']}", file=sys.stderr)
                print(row["rounds"][0].get("stderr", ""), file=sys.stderr)
            elif row["problems"]:
                print(f"# {name}/{row['framework']}: {'; '.join(row['problems'])}", file=sys.stderr)

    versions = {}
    for row in all_rows:
        versions.update(row.get("versions", {}))
    print("# versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    print(format_table(all_rows))

    if args.json:
        record = {
            "date": str(datetime.date.today()),
            "machine": info,
            "versions": versions,
            "settings": {
                k: getattr(args, k)
                for k in ("rounds", "steps", "warmup", "threads", "seed", "loss_rtol")
            },
            "results": all_rows,
        }
        with open(args.json, "w") as f:
            json.dump(record, f, indent=1)
    failed = [r for r in all_rows if r["check"] != "ok"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
