"""Every script in ``examples/`` runs, quickly, and does what its docstring says."""

import importlib.util
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# Smaller settings so the whole set runs in seconds; the scripts' defaults are the real runs.
QUICK_ARGS = {"train_digits": {"epochs": 3}, "vanishing_gradients": {"steps": 8}}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.py")))
def test_example_runs(name, capsys):
    module = _load(name)
    assert module.__doc__, f"examples/{name}.py needs a docstring saying what it shows"
    result = module.main(**QUICK_ARGS.get(name, {}))
    assert capsys.readouterr().out.strip(), "an example should print what it shows"
    if name == "train_digits":
        assert result > 0.85  # three epochs of Adam already classify most digits
    if name == "vanishing_gradients":
        assert any(f.kind == "vanishing" for f in result)
