"""Small synthetic datasets, generated from a seed (nothing to download or install).

Each function returns a :class:`DatasetSplit` with float32 inputs; classification targets are
int64 class indices. The same ``seed`` always gives the same data and the same split.
"""

from __future__ import annotations

from chainrule import backend
from chainrule.backend import Generator
from chainrule.datasets.base import DatasetSplit, split_arrays

__all__ = ["spirals", "moons", "xor", "circles", "blobs", "sine"]

np = backend.np
_F64 = backend.float64


def _check_n(name: str, n_samples: int, minimum: int = 2) -> None:
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < minimum:
        raise ValueError(f"{name}: n_samples must be an integer >= {minimum}, got {n_samples!r}")


def _per_class(n_samples: int, n_classes: int) -> list[int]:
    """Split ``n_samples`` as evenly as possible (the first classes get the remainder)."""
    base, extra = divmod(n_samples, n_classes)
    return [base + (k < extra) for k in range(n_classes)]


def spirals(
    n_samples: int = 1000,
    *,
    n_classes: int = 3,
    noise: float = 0.2,
    turns: float = 1.0,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplit:
    """Points on ``n_classes`` interleaved spiral arms in the plane; the class is the arm.

    Not linearly separable: a classic first test for a small MLP. ``noise`` jitters the angle
    (in radians), ``turns`` is how far each arm winds.
    """
    _check_n("spirals", n_samples, n_classes)
    if n_classes < 2:
        raise ValueError(f"spirals: n_classes must be >= 2, got {n_classes}")
    gen = Generator().manual_seed(seed)
    xs, ys = [], []
    for k, m in enumerate(_per_class(n_samples, n_classes)):
        r = np.linspace(0.05, 1.0, m)
        theta = 2 * np.pi * (k / n_classes + turns * r) + noise * gen.normal((m,), dtype_=_F64)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(m, k))
    return split_arrays(
        "spirals",
        np.concatenate(xs),
        np.concatenate(ys),
        test_fraction=test_fraction,
        seed=seed,
        num_classes=n_classes,
        classes=tuple(f"arm {k}" for k in range(n_classes)),
        description=f"{n_classes} interleaved spiral arms in 2-D",
    )


def moons(
    n_samples: int = 1000, *, noise: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> DatasetSplit:
    """Two interleaving half circles in the plane (Gaussian ``noise`` added to each point)."""
    _check_n("moons", n_samples)
    gen = Generator().manual_seed(seed)
    n_top, n_bottom = _per_class(n_samples, 2)
    t_top = gen.uniform((n_top,), 0.0, np.pi, dtype_=_F64)
    t_bottom = gen.uniform((n_bottom,), 0.0, np.pi, dtype_=_F64)
    top = np.stack([np.cos(t_top), np.sin(t_top)], axis=1)
    bottom = np.stack([1.0 - np.cos(t_bottom), 0.5 - np.sin(t_bottom)], axis=1)
    x = np.concatenate([top, bottom]) + noise * gen.normal((n_samples, 2), dtype_=_F64)
    y = np.concatenate([np.zeros(n_top), np.ones(n_bottom)])
    return split_arrays(
        "moons",
        x,
        y,
        test_fraction=test_fraction,
        seed=seed,
        num_classes=2,
        classes=("upper", "lower"),
        description="two interleaving half circles in 2-D",
    )


def xor(
    n_samples: int = 1000, *, noise: float = 0.05, test_fraction: float = 0.2, seed: int = 0
) -> DatasetSplit:
    """Points in the square [-1, 1]²; the class is 1 where exactly one coordinate is positive.

    The labels come from the clean points; ``noise`` then jitters the inputs.
    """
    _check_n("xor", n_samples)
    gen = Generator().manual_seed(seed)
    x = gen.uniform((n_samples, 2), -1.0, 1.0, dtype_=_F64)
    y = (x[:, 0] > 0) != (x[:, 1] > 0)
    x = x + noise * gen.normal((n_samples, 2), dtype_=_F64)
    return split_arrays(
        "xor",
        x,
        y,
        test_fraction=test_fraction,
        seed=seed,
        num_classes=2,
        classes=("same sign", "different signs"),
        description="XOR of the signs of two coordinates",
    )


def circles(
    n_samples: int = 1000,
    *,
    noise: float = 0.05,
    factor: float = 0.5,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplit:
    """A circle of radius 1 (class 0) around one of radius ``factor`` (class 1)."""
    _check_n("circles", n_samples)
    if not 0 < factor < 1:
        raise ValueError(f"circles: factor must be in (0, 1), got {factor}")
    gen = Generator().manual_seed(seed)
    n_out, n_in = _per_class(n_samples, 2)
    angle = gen.uniform((n_samples,), 0.0, 2 * np.pi, dtype_=_F64)
    radius = np.concatenate([np.ones(n_out), np.full(n_in, factor)])
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    x = x + noise * gen.normal((n_samples, 2), dtype_=_F64)
    y = np.concatenate([np.zeros(n_out), np.ones(n_in)])
    return split_arrays(
        "circles",
        x,
        y,
        test_fraction=test_fraction,
        seed=seed,
        num_classes=2,
        classes=("outer", "inner"),
        description="two concentric circles in 2-D",
    )


def blobs(
    n_samples: int = 1000,
    *,
    centers: int = 3,
    n_features: int = 2,
    cluster_std: float = 1.0,
    box: tuple[float, float] = (-10.0, 10.0),
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplit:
    """Gaussian clusters around ``centers`` random centres in ``box``; the class is the
    cluster."""
    _check_n("blobs", n_samples, centers)
    gen = Generator().manual_seed(seed)
    middles = gen.uniform((centers, n_features), box[0], box[1], dtype_=_F64)
    counts = _per_class(n_samples, centers)
    y = np.repeat(np.arange(centers), counts)
    x = middles[y] + cluster_std * gen.normal((n_samples, n_features), dtype_=_F64)
    return split_arrays(
        "blobs",
        x,
        y,
        test_fraction=test_fraction,
        seed=seed,
        num_classes=centers,
        classes=tuple(f"blob {k}" for k in range(centers)),
        description=f"{centers} Gaussian clusters in {n_features}-D",
    )


def sine(
    n_samples: int = 1000,
    *,
    seq_len: int = 20,
    step: float = 0.2,
    freq: tuple[float, float] = (0.5, 1.5),
    noise: float = 0.0,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> DatasetSplit:
    """Regression on sequences: predict the next value of a sine wave.

    Each sample is a window ``sin(f * step * t + phase)`` for ``t = 0 .. seq_len - 1``, with
    a random frequency ``f`` in ``freq`` and a random phase; inputs have shape
    ``(seq_len, 1)`` (batch-first for ``nn.RNN``/``LSTM``/``GRU``), the target (shape ``(1,)``)
    is the value at ``t = seq_len``. ``noise`` adds Gaussian noise to the inputs only.
    """
    _check_n("sine", n_samples)
    if seq_len < 1:
        raise ValueError(f"sine: seq_len must be >= 1, got {seq_len}")
    gen = Generator().manual_seed(seed)
    f = gen.uniform((n_samples, 1), freq[0], freq[1], dtype_=_F64)
    phase = gen.uniform((n_samples, 1), 0.0, 2 * np.pi, dtype_=_F64)
    t = np.arange(seq_len + 1) * step
    wave = np.sin(f * t + phase)  # (n, seq_len + 1)
    x = wave[:, :seq_len]
    if noise:
        x = x + noise * gen.normal(x.shape, dtype_=_F64)
    return split_arrays(
        "sine",
        x[:, :, None],
        wave[:, seq_len:],
        test_fraction=test_fraction,
        seed=seed,
        num_classes=None,
        description=f"next value of a sine wave after {seq_len} steps",
    )
