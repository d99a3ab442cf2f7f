"""Real image datasets: scikit-learn's bundled 8×8 digits, and MNIST / Fashion-MNIST read from
IDX files in a directory you name. Nothing is ever downloaded.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from chainrule import backend
from chainrule.datasets.base import DatasetSplit, split_arrays
from chainrule.tensor import Tensor
from chainrule.utils.data import TensorDataset

__all__ = ["digits", "mnist", "fashion_mnist", "MNIST", "FashionMNIST", "read_idx"]

np = backend.np

# ---------------------------------------------------------------------------------------------
# digits (scikit-learn)
# ---------------------------------------------------------------------------------------------


def digits(*, flatten: bool = False, test_fraction: float = 0.2, seed: int = 0) -> DatasetSplit:
    """The 1,797 8×8 images of handwritten digits that ship with scikit-learn.

    Inputs are float32 in [0, 1] with shape ``(1, 8, 8)`` per image (``(64,)`` with
    ``flatten=True``); targets are the digits 0-9. Needs scikit-learn:
    ``pip install 'chainrule[datasets]'``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as exc:
        raise ImportError(
            "chainrule.datasets.digits() reads the digits bundled with scikit-learn, which is "
            "not installed: pip install 'chainrule[datasets]'"
        ) from exc
    bunch = load_digits()
    x = np.asarray(bunch.data, dtype=backend.float64.np) / 16.0  # pixel values are 0..16
    x = x if flatten else x.reshape(-1, 1, 8, 8)
    return split_arrays(
        "digits",
        x,
        np.asarray(bunch.target),
        test_fraction=test_fraction,
        seed=seed,
        num_classes=10,
        classes=tuple(str(d) for d in range(10)),
        description="8x8 grayscale handwritten digits (scikit-learn)",
    )


# ---------------------------------------------------------------------------------------------
# IDX files (MNIST and Fashion-MNIST)
# ---------------------------------------------------------------------------------------------

# the third byte of an IDX file's magic number gives the element type (big-endian)
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _open(path: Path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path: str | os.PathLike) -> Tensor:
    """Read one IDX file (raw or gzip-compressed), the format MNIST is distributed in.

    The file holds a 4-byte magic number (two zero bytes, an element-type code, the number of
    dimensions), one big-endian 32-bit size per dimension, then the elements (big-endian).
    """
    path = Path(path)
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError) as exc:  # EOFError: a truncated gzip stream
        raise ValueError(f"read_idx: cannot read {str(path)!r}: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise ValueError(f"read_idx: {str(path)!r} is not an IDX file (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"read_idx: {str(path)!r} is truncated inside its header")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_TYPES[data[2]])
    count = 1
    for s in shape:
        count *= s
    expected = header + count * dtype.itemsize
    if len(data) != expected:
        raise ValueError(
            f"read_idx: {str(path)!r} should be {expected} bytes for shape {list(shape)} "
            f"but is {len(data)} bytes (truncated or corrupted)"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return Tensor._make(arr.astype(dtype.newbyteorder("=")))  # native order, own memory


_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def _find(root: Path, stem: str, folder: str) -> Path | None:
    # the names MNIST is published under, plus torchvision's layout (root/MNIST/raw)
    dot_stem = stem.replace("-idx", ".idx")
    for directory in (root, root / folder / "raw", root / "raw"):
        for name in (stem, stem + ".gz", dot_stem, dot_stem + ".gz"):
            candidate = directory / name
            if candidate.is_file():
                return candidate
    return None


def _read_part(name: str, folder: str, root, train: bool):
    if root is None:
        raise ValueError(
            f"{name}: pass root=, the directory holding the IDX files "
            f"({', '.join(f + '[.gz]' for f in _FILES[True] + _FILES[False])}); chainrule "
            "never downloads data"
        )
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{name}: directory {str(root)!r} does not exist; it should hold "
            f"{', '.join(f + '[.gz]' for f in _FILES[True] + _FILES[False])} (chainrule never "
            "downloads data)"
        )
    found = []
    for stem in _FILES[train]:
        path = _find(root, stem, folder)
        if path is None:
            raise FileNotFoundError(
                f"{name}: {stem} (or {stem}.gz) not found in {str(root)!r} (also looked in "
                f"{folder}/raw); the {'training' if train else 'test'} part needs "
                f"{' and '.join(_FILES[train])}, raw or gzip-compressed"
            )
        found.append(path)
    images, labels = (read_idx(p) for p in found)
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{name}: {found[0].name} holds shape {list(images.shape)} and {found[1].name} shape "
            f"{list(labels.shape)}; expected [N, rows, cols] images and N labels"
        )
    return images._data, labels._data


def _to_inputs(images, flatten: bool):
    x = images.astype(backend.float32.np) / 255.0
    n = x.shape[0]
    return x.reshape(n, -1) if flatten else x.reshape(n, 1, *x.shape[1:])


class MNIST(TensorDataset):
    """One part of MNIST (``train=True``: the 60,000 training images, else the 10,000 test
    images) read from IDX files in ``root``; samples are ``(image, label)`` with float32
    images in [0, 1] of shape ``(1, 28, 28)`` (``(784,)`` with ``flatten=True``).

    ``root`` holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each possibly ``.gz``
    (torchvision's ``root/MNIST/raw`` layout works too). Nothing is downloaded.
    """

    _name = "MNIST"
    classes = tuple(str(d) for d in range(10))

    def __init__(self, root: str | os.PathLike, train: bool = True, flatten: bool = False):
        images, labels = _read_part(type(self).__name__, self._name, root, train)
        self.root = root
        self.train = train
        super().__init__(
            Tensor._make(_to_inputs(images, flatten)),
            Tensor._make(labels.astype(backend.int64.np)),
        )


class FashionMNIST(MNIST):
    """One part of Fashion-MNIST (Zalando's clothing images, MNIST's file names and format);
    see :class:`MNIST`."""

    _name = "FashionMNIST"
    classes = _FASHION_CLASSES


def _split(cls, name: str, root, flatten: bool, description: str) -> DatasetSplit:
    train = cls(root, train=True, flatten=flatten)
    test = cls(root, train=False, flatten=flatten)
    return DatasetSplit(
        name=name,
        train=train,
        test=test,
        input_shape=tuple(train.tensors[0].shape[1:]),
        num_classes=10,
        classes=cls.classes,
        description=description,
    )


def mnist(root: str | os.PathLike | None = None, *, flatten: bool = False) -> DatasetSplit:
    """MNIST handwritten digits from the IDX files in ``root`` (see :class:`MNIST`), with the
    official split: 60,000 training and 10,000 test images."""
    return _split(MNIST, "mnist", root, flatten, "28x28 grayscale handwritten digits")


def fashion_mnist(root: str | os.PathLike | None = None, *, flatten: bool = False) -> DatasetSplit:
    """Fashion-MNIST from the IDX files in ``root`` (see :class:`FashionMNIST`), with the
    official split: 60,000 training and 10,000 test images."""
    return _split(
        FashionMNIST, "fashion_mnist", root, flatten, "28x28 grayscale images of clothing"
    )
