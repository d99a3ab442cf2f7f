"""README's two set-up commands stay true: the test command is what CI runs, and the main
command installs what ``chainrule train`` needs before running it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parent.parent


def _bash_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def _setup_commands() -> tuple[str, str]:
    setups = [b for b in _bash_blocks() if b.startswith("python3 -m venv")]
    main = next(b for b in setups if b.endswith("chainrule train"))
    tests = next(b for b in setups if "pytest" in b)
    return main, tests


def _ci_lines() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def test_test_command_is_what_ci_runs():
    _, tests = _setup_commands()
    steps = [s.strip() for s in tests.split("&&")]
    install = next(s for s in steps if s.startswith("pip install"))
    run = steps[-1]
    ci = _ci_lines()
    assert any(line.endswith(install.removeprefix("pip install ")) for line in ci), ci
    assert run in ci, (run, ci)
    assert ci[-1] == run  # the tests are the last thing CI does


def test_main_command_installs_what_train_needs():
    main, _ = _setup_commands()
    extra = re.search(r"pip install -e '\.\[(\w+)\]'", main).group(1)
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = config["project"]["optional-dependencies"][extra]
    names = {re.split(r"[<>=\[ ]", req)[0].lower() for req in wanted}
    # progress bar, plots, checkpoints, the digits dataset
    assert {"tqdm", "matplotlib", "safetensors", "scikit-learn"} <= names
    assert config["project"]["scripts"]["chainrule"] == "chainrule.cli:main"
