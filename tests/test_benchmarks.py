"""The benchmark harness runs end to end (no timing assertions: speed targets live in the
benchmarks themselves, never in tests)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from benchmarks import run

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _run(*args, timeout=240):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_quick_overhead_prints_the_table(tmp_path):
    frameworks = "chainrule,torch" if HAS_TORCH else "chainrule"
    out = tmp_path / "result.json"
    proc = _run("overhead", "--quick", "--frameworks", frameworks, "--json", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| workload"))
    assert "median ms" in header and "µs/op" in header and "peak RSS MB" in header
    rows = [line for line in lines if line.startswith("| overhead")]
    assert [row.split("|")[2].strip() for row in rows] == frameworks.split(",")
    assert all(row.rstrip(" |").endswith("ok") for row in rows)

    record = json.loads(out.read_text())
    results = {r["framework"]: r for r in record["results"]}
    assert set(results) == set(frameworks.split(","))
    for r in results.values():
        assert len(r["rounds"]) == 1 and len(r["rounds"][0]["times_s"]) == 3
        assert r["us_per_op"] > 0
        assert r["peak_rss_mb"] > 0
    if HAS_TORCH:
        # same NumPy-made input in both: the initial losses agree
        assert results["chainrule"]["initial_loss"] == pytest.approx(
            results["torch"]["initial_loss"], rel=1e-4
        )
        assert results["chainrule"]["ratio"] > 0


def test_workloads_are_discovered():
    proc = _run("--list", timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert {"overhead", "mlp"} <= names


def test_unknown_workload_is_an_error():
    proc = _run("no-such-workload", "--quick", timeout=60)
    assert proc.returncode != 0
    assert "unknown workload" in proc.stderr


def test_a_failing_workload_is_marked():
    # a child that cannot build its workload shows as an ERROR row (and the run exits non-zero)
    rows = [run.aggregate("w", "chainrule", [{"error": "boom"}])]
    run.check_rows(rows, 1e-4)
    assert rows[0]["check"] == "ERROR"
    assert "ERROR" in run.format_table(rows)


def test_a_loss_mismatch_is_flagged():
    def result(loss):
        return {
            "times_s": [0.001, 0.002],
            "initial_loss": loss,
            "final_loss": loss,
            "ops_per_step": 10,
            "peak_rss_mb": 1.0,
            "rss_growth_mb": 0.0,
            "versions": {},
        }

    rows = [
        run.aggregate("w", "chainrule", [result(1.0)]),
        run.aggregate("w", "torch", [result(1.1)]),
    ]
    run.check_rows(rows, 1e-4)
    assert rows[0]["check"] == "LOSS MISMATCH" and rows[1]["check"] == "ok"
    assert rows[0]["ratio"] == pytest.approx(1.0)
    assert rows[0]["us_per_op"] == pytest.approx(150.0)  # median 1.5 ms over 10 ops
    assert "LOSS MISMATCH" in run.format_table(rows)
