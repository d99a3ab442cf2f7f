"""Layers import downward only: backend -> ops -> autograd -> nn/func -> optim -> the rest."""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "chainrule"

# module prefix -> layer; the longest matching prefix wins
LAYERS = {
    "chainrule.backend": 0,
    "chainrule._format": 1,
    "chainrule.tensor": 1,
    "chainrule.ops": 1,
    "chainrule.linalg": 1,
    "chainrule.random": 1,
    "chainrule.autograd": 2,
    "chainrule.nn": 3,
    "chainrule.func": 3,
    "chainrule.optim": 4,
    "chainrule.amp": 5,
    "chainrule.distributed": 5,
    "chainrule.utils": 5,
    "chainrule.datasets": 5,
    "chainrule.serialization": 5,
    "chainrule.diagnostics": 6,
    "chainrule.viz": 6,
    "chainrule.compile": 6,
    "chainrule": 7,  # the package __init__ gathers everything below
    "chainrule.cli": 8,  # the command line sits on top of the whole package
    "chainrule.__main__": 8,
}

# Tensor.backward runs the engine, which sits one layer up: a call-time import, documented there.
ALLOWED_UPWARD = {("chainrule.tensor", "chainrule.autograd")}


def layer_of(module: str) -> int:
    best = None
    for prefix, layer in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            if best is None or len(prefix) > len(best[0]):
                best = (prefix, layer)
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best[1]


def module_name(path: pathlib.Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module != "chainrule":  # ``from chainrule import x`` imports chainrule.x
                yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"


def test_layers_import_downward_only():
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        mine = layer_of(me)
        for target in imports_of(path):
            if not target.startswith("chainrule"):
                continue
            if target == "chainrule" and layer_of(me) < LAYERS["chainrule"]:
                problems.append(f"{me} imports the top-level package")
                continue
            if any(me.startswith(a) and target.startswith(b) for a, b in ALLOWED_UPWARD):
                continue
            if layer_of(target) > mine:
                problems.append(f"{me} (layer {mine}) imports {target} (layer {layer_of(target)})")
    assert not problems, "\n".join(problems)


def test_only_the_backend_imports_numpy_or_cupy():
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        me = module_name(path)
        if me == "chainrule.backend":
            continue
        for target in imports_of(path):
            if target.split(".")[0] in ("numpy", "cupy", "cupyx"):
                offenders.append(f"{me} imports {target}")
    assert not offenders, "\n".join(offenders)
