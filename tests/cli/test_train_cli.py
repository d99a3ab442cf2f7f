"""``chainrule train`` / ``eval`` in a subprocess, as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

import chainrule as cr

pytest.importorskip("sklearn")
pytest.importorskip("safetensors")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
METRIC_KEYS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")


def run(*args, check=True, **kw):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "chainrule", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        **kw,
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def metrics(out):
    with open(os.path.join(out, "metrics.json")) as fh:
        rows = json.load(fh)
    return [{k: row[k] for k in METRIC_KEYS if k in row} for row in rows]


def test_short_run_writes_every_artefact(tmp_path):
    out = str(tmp_path / "run")
    proc = run("train", "--epochs", "2", "--out", out, "--no-progress")
    assert "epoch   2/2" in proc.stdout and "val acc" in proc.stdout
    for name in (
        "model.safetensors",
        "best.safetensors",
        "last.safetensors",
        "metrics.csv",
        "metrics.json",
        "loss.png",
        "accuracy.png",
    ):
        path = os.path.join(out, name)
        assert os.path.getsize(path) > 0, name
    rows = metrics(out)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[-1]["val_acc"] > 0.85
    state = cr.load(os.path.join(out, "model.safetensors"))
    assert state["config"]["dataset"] == "digits" and "1.weight" in str(list(state["model"]))
    ev = run("eval", "--checkpoint", os.path.join(out, "model.safetensors"))
    assert "accuracy" in ev.stdout and "confusion matrix" in ev.stdout
    assert f"{rows[-1]['val_acc']:.2%}" in ev.stdout


def test_default_run_reaches_97_percent_with_no_false_alarms(tmp_path):
    # the README's main command, with the gradient-health monitor watching every step
    out = str(tmp_path / "default")
    proc = run("train", "--diagnose", "--out", out, "--no-progress")
    assert "diagnosis" not in proc.stdout, proc.stdout
    assert metrics(out)[-1]["val_acc"] >= 0.97
    for name in ("gradient_flow.png", "layer_stats.png", "attribution.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name


def test_interrupt_and_resume_equals_uninterrupted_run(tmp_path):
    epochs = "4"
    straight = str(tmp_path / "straight")
    run("train", "--epochs", epochs, "--out", straight, "--no-progress", "--seed", "3")

    out = str(tmp_path / "interrupted")
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chainrule",
            "train",
            "--epochs",
            epochs,
            "--out",
            out,
            "--no-progress",
            "--seed",
            "3",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    for line in proc.stdout:
        if line.startswith("epoch   2/"):
            break
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err
    assert len(metrics(out)) in (2, 3)
    run("train", "--epochs", epochs, "--out", out, "--no-progress", "--seed", "3", "--resume")
    assert metrics(out) == metrics(straight)


def test_bad_input_is_reported_clearly(tmp_path):
    proc = run("train", "--dataset", "nope", "--out", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2 and "digits" in proc.stderr and "Traceback" not in proc.stderr
    proc = run("train", "--model", "nope", "--out", str(tmp_path / "x"), check=False)
    assert proc.returncode == 2 and "mlp" in proc.stderr
    proc = run(
        "train",
        "--dataset",
        "mnist",
        "--data-dir",
        str(tmp_path / "missing"),
        "--out",
        str(tmp_path / "x"),
        check=False,
    )
    assert proc.returncode == 2 and "train-images-idx3-ubyte" in proc.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = run("train", "--out", str(blocker / "sub"), check=False)
    assert proc.returncode == 2 and "cannot write" in proc.stderr
    proc = run(
        "train", "--dataset", "moons", "--model", "cnn", "--out", str(tmp_path / "y"), check=False
    )
    assert proc.returncode == 2 and "image" in proc.stderr


def test_explain_prints_the_trace_and_writes_the_graph(tmp_path):
    proc = run("explain", "--out", str(tmp_path))
    assert "step 1:" in proc.stdout and "dL/dw11" in proc.stdout
    assert os.path.getsize(tmp_path / "graph.dot") > 100


def test_demo_vanishing_contrasts_the_two_networks(tmp_path):
    proc = run("demo", "vanishing", "--out", str(tmp_path), "--steps", "40")
    sigmoid, relu = proc.stdout.split("relu-he-residual", 1)
    assert "vanishing" in sigmoid
    assert "[vanishing]" not in relu
    assert os.path.getsize(tmp_path / "gradient_flow_sigmoid.png") > 1000
