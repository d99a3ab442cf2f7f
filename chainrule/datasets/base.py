"""``DatasetSplit``: a dataset ready for training, with what a model needs to know about it."""

from __future__ import annotations

import math
from dataclasses import dataclass

from chainrule import backend
from chainrule.backend import Generator
from chainrule.tensor import Tensor
from chainrule.utils.data import DataLoader, TensorDataset


@dataclass(frozen=True, repr=False)
class DatasetSplit:
    """Train and test parts of a dataset, plus its shape and task.

    Attributes:
        name: the registry name (``"digits"``, ``"spirals"`` ...).
        train, test: :class:`~chainrule.utils.data.TensorDataset` of ``(inputs, targets)``.
        input_shape: the shape of one input sample, without the batch dimension
            (``(1, 8, 8)`` for digits images, ``(2,)`` for points, ``(20, 1)`` for sequences).
        num_classes: the number of classes for classification (targets are int64 class
            indices, as ``CrossEntropyLoss`` expects); ``None`` for regression.
        target_shape: the shape of one target (``()`` for a class index).
        task: ``"classification"`` or ``"regression"``.
        classes: class names (``None`` for regression).
        description: one line saying what the data is.

    >>> from chainrule import datasets
    >>> data = datasets.moons(n_samples=100, seed=0)
    >>> data.input_shape, data.num_classes, len(data.train), len(data.test)
    ((2,), 2, 80, 20)
    >>> train_loader, test_loader = data.loaders(batch_size=16)
    """

    name: str
    train: TensorDataset
    test: TensorDataset
    input_shape: tuple
    num_classes: int | None
    target_shape: tuple = ()
    task: str = "classification"
    classes: tuple | None = None
    description: str = ""

    @property
    def in_features(self) -> int:
        """The number of input values per sample (the width of a first ``Linear`` layer on
        flattened inputs)."""
        return math.prod(self.input_shape)

    def loaders(
        self,
        batch_size: int = 64,
        *,
        shuffle: bool = True,
        generator: Generator | None = None,
        **kwargs,
    ) -> tuple[DataLoader, DataLoader]:
        """``(train_loader, test_loader)``: the train part shuffled (unless ``shuffle=False``),
        the test part in order. Extra keywords go to both :class:`DataLoader` s."""
        train = DataLoader(
            self.train, batch_size=batch_size, shuffle=shuffle, generator=generator, **kwargs
        )
        test = DataLoader(self.test, batch_size=batch_size, shuffle=False, **kwargs)
        return train, test

    def __repr__(self) -> str:
        kind = (
            f"num_classes={self.num_classes}"
            if self.task == "classification"
            else f"regression, target_shape={self.target_shape}"
        )
        return (
            f"DatasetSplit(name={self.name!r}, train={len(self.train)} samples, "
            f"test={len(self.test)} samples, input_shape={self.input_shape}, {kind})"
        )


def split_arrays(
    name: str,
    inputs,
    targets,
    *,
    test_fraction: float,
    seed: int,
    num_classes: int | None,
    classes: tuple | None = None,
    description: str = "",
) -> DatasetSplit:
    """Shuffle NumPy ``inputs``/``targets`` with ``seed`` and cut off a test part."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"{name}: test_fraction must be in [0, 1), got {test_fraction}")
    n = inputs.shape[0]
    order = Generator().manual_seed(seed + 1).permutation(n)  # not the stream that drew the data
    n_test = int(round(n * test_fraction))
    test_idx, train_idx = order[:n_test], order[n_test:]
    if num_classes is None:
        targets = targets.astype(backend.float32.np, copy=False)
        target_shape = tuple(targets.shape[1:])
        task = "regression"
    else:
        targets = targets.astype(backend.int64.np, copy=False)
        target_shape = ()
        task = "classification"
    inputs = inputs.astype(backend.float32.np, copy=False)

    def part(idx):
        return TensorDataset(Tensor._make(inputs[idx]), Tensor._make(targets[idx]))

    return DatasetSplit(
        name=name,
        train=part(train_idx),
        test=part(test_idx),
        input_shape=tuple(inputs.shape[1:]),
        num_classes=num_classes,
        target_shape=target_shape,
        task=task,
        classes=classes,
        description=description,
    )
