"""Benchmark workloads, one module per family.

Every module here exposes ``WORKLOADS = {"name": build}`` where ``build(fw, seed)`` returns
``(step, initial_loss, ops_per_step)``:

* ``fw`` is the imported framework module (``chainrule`` or ``torch``);
* ``step()`` runs one training step and returns the loss as a float (or ``None``);
* ``initial_loss`` is the loss of the untrained model as a float (or ``None``), used to check
  that every framework starts from the same data and weights;
* ``ops_per_step`` is the number of tensor ops one step runs (or ``None``), for a per-op time.

A module may also expose ``JAX_WORKLOADS = {"name": build_jax}`` with ``build_jax(jax, seed)``
returning the same triple, for a jit-compiled JAX version. Modules import NumPy only: the
framework arrives as an argument, so a module can be imported when a framework is missing.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable


def discover() -> dict[str, tuple[str, Callable]]:
    """Every workload of every module in this package: ``{name: (module name, build)}``."""
    found: dict[str, tuple[str, Callable]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        modname = f"{__name__}.{info.name}"
        try:
            module = importlib.import_module(modname)
        except Exception as exc:  # a broken module should not hide the others
            print(f"warning: cannot import {modname}: {exc!r}", file=sys.stderr)
            continue
        for name, build in getattr(module, "WORKLOADS", {}).items():
            if name in found:
                raise ValueError(f"workload {name!r} defined in {found[name][0]} and {modname}")
            found[name] = (modname, build)
    return found
