"""Ready-to-train datasets (``chainrule.datasets``), each returned as a :class:`DatasetSplit`.

* generated from a seed, needing nothing: :func:`spirals`, :func:`moons`, :func:`xor`,
  :func:`circles`, :func:`blobs` (2-D classification) and :func:`sine` (sequence regression);
* :func:`digits`: scikit-learn's bundled 8×8 digits (``pip install 'chainrule[datasets]'``);
* :func:`mnist`, :func:`fashion_mnist`: read from IDX files in a directory you name.

Nothing is ever downloaded. By name: ``load("moons", n_samples=500)``; ``available()`` lists
the names.

>>> from chainrule import datasets
>>> data = datasets.load("spirals", n_samples=300, seed=1)
>>> data
DatasetSplit(name='spirals', train=240 samples, test=60 samples, input_shape=(2,), num_classes=3)
>>> x, y = data.train[0:4]
>>> x.shape, y.dtype
(chainrule.Size([4, 2]), chainrule.int64)
"""

from __future__ import annotations

from collections.abc import Callable

from chainrule.datasets.base import DatasetSplit
from chainrule.datasets.generated import blobs, circles, moons, sine, spirals, xor
from chainrule.datasets.real import (
    MNIST,
    FashionMNIST,
    digits,
    fashion_mnist,
    mnist,
    read_idx,
)

__all__ = [
    "DatasetSplit",
    "MNIST",
    "FashionMNIST",
    "available",
    "blobs",
    "circles",
    "digits",
    "fashion_mnist",
    "load",
    "mnist",
    "moons",
    "options",
    "read_idx",
    "register",
    "sine",
    "spirals",
    "xor",
]

_REGISTRY: dict[str, Callable[..., DatasetSplit]] = {
    "blobs": blobs,
    "circles": circles,
    "digits": digits,
    "fashion_mnist": fashion_mnist,
    "mnist": mnist,
    "moons": moons,
    "sine": sine,
    "spirals": spirals,
    "xor": xor,
}


def _normalise(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def available() -> list[str]:
    """The names :func:`load` accepts, sorted."""
    return sorted(_REGISTRY)


def load(name: str, **kwargs) -> DatasetSplit:
    """The dataset called ``name`` (``"fashion-mnist"`` and ``"fashion_mnist"`` both work);
    keywords go to its function (``seed=``, ``n_samples=``, ``root=`` ...)."""
    key = _normalise(name)
    if key not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    return _REGISTRY[key](**kwargs)


def options(name: str) -> tuple[str, ...]:
    """The keyword arguments dataset ``name`` accepts (``("root", "flatten")`` for mnist)."""
    import inspect

    key = _normalise(name)
    if key not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(available())}")
    params = inspect.signature(_REGISTRY[key]).parameters.values()
    return tuple(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


def register(name: str, factory: Callable[..., DatasetSplit], *, overwrite: bool = False) -> None:
    """Make ``load(name, **kw)`` call ``factory(**kw)``, which returns a :class:`DatasetSplit`."""
    key = _normalise(name)
    if key in _REGISTRY and not overwrite:
        raise ValueError(f"a dataset named {key!r} is already registered (pass overwrite=True)")
    _REGISTRY[key] = factory
