"""Built-in datasets: digits, IDX files (MNIST layout), generated data and the registry."""

from __future__ import annotations

import gzip
import struct
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import datasets
from chainrule.datasets import DatasetSplit
from chainrule.utils.data import DataLoader, TensorDataset

GENERATED = ["spirals", "moons", "xor", "circles", "blobs", "sine"]


def _arrays(ds: TensorDataset):
    return [t.numpy() for t in ds.tensors]


# ---- generated -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATED)
def test_generated_datasets_are_deterministic(name):
    a = datasets.load(name, n_samples=120, seed=3)
    b = datasets.load(name, n_samples=120, seed=3)
    c = datasets.load(name, n_samples=120, seed=4)
    for part in ("train", "test"):
        for x, y in zip(_arrays(getattr(a, part)), _arrays(getattr(b, part))):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(_arrays(a.train)[0], _arrays(c.train)[0])


@pytest.mark.parametrize("name", GENERATED)
def test_generated_dataset_metadata(name):
    data = datasets.load(name, n_samples=100, test_fraction=0.25)
    assert isinstance(data, DatasetSplit) and data.name == name
    assert (len(data.train), len(data.test)) == (75, 25)
    x, y = data.train.tensors
    assert x.dtype == cr.float32 and tuple(x.shape[1:]) == data.input_shape
    assert data.in_features == int(np.prod(data.input_shape))
    assert np.isfinite(x.numpy()).all()
    if data.task == "classification":
        assert y.dtype == cr.int64 and y.ndim == 1
        labels = np.concatenate([y.numpy(), data.test.tensors[1].numpy()])
        counts = np.bincount(labels, minlength=data.num_classes)
        assert len(counts) == data.num_classes and counts.min() > 0.6 * 100 / data.num_classes
        assert len(data.classes) == data.num_classes
    else:
        assert data.num_classes is None and y.dtype == cr.float32
        assert tuple(y.shape[1:]) == data.target_shape


def test_generated_shapes_and_labels_make_sense():
    xor = datasets.xor(n_samples=400, noise=0.0)
    x, y = (t.numpy() for t in xor.train.tensors)
    np.testing.assert_array_equal(y, ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int64))
    circles = datasets.circles(n_samples=400, noise=0.0, factor=0.3)
    x, y = (t.numpy() for t in circles.train.tensors)
    np.testing.assert_allclose(np.hypot(x[:, 0], x[:, 1]), np.where(y == 0, 1.0, 0.3), rtol=1e-5)
    sine = datasets.sine(n_samples=50, seq_len=12, step=0.1)
    assert sine.input_shape == (12, 1) and sine.target_shape == (1,) and sine.task == "regression"
    spirals = datasets.spirals(n_samples=300, n_classes=4)
    assert spirals.num_classes == 4 and spirals.input_shape == (2,)
    blobs = datasets.blobs(n_samples=90, centers=5, n_features=3)
    assert blobs.input_shape == (3,) and blobs.num_classes == 5
    with pytest.raises(ValueError, match="test_fraction"):
        datasets.moons(test_fraction=1.5)


def test_loaders():
    data = datasets.moons(n_samples=100)
    train, test = data.loaders(batch_size=16, generator=cr.Generator().manual_seed(0))
    assert isinstance(train, DataLoader) and len(train) == 5 and len(test) == 2
    xb, yb = next(iter(train))
    assert xb.shape == (16, 2) and yb.dtype == cr.int64
    seen = np.concatenate([b[1].numpy() for b in test])
    np.testing.assert_array_equal(seen, data.test.tensors[1].numpy())  # test part in order
    assert "moons" in repr(data) and "num_classes=2" in repr(data)


# ---- registry --------------------------------------------------------------------------------


def test_registry():
    names = datasets.available()
    assert names == sorted(names)
    assert set(GENERATED + ["digits", "mnist", "fashion_mnist"]) <= set(names)
    with pytest.raises(ValueError, match="unknown dataset 'cifar'; available: blobs, circles"):
        datasets.load("cifar")
    with pytest.raises(ValueError, match="pass root="):
        datasets.load("Fashion-MNIST")

    def tiny(seed=0):
        return datasets.xor(n_samples=10, seed=seed)

    datasets.register("tiny_test_set", tiny)
    try:
        assert len(datasets.load("tiny-test-set").train) == 8
        with pytest.raises(ValueError, match="already registered"):
            datasets.register("tiny_test_set", tiny)
    finally:
        datasets._REGISTRY.pop("tiny_test_set")


# ---- digits ----------------------------------------------------------------------------------


def test_digits():
    pytest.importorskip("sklearn")
    data = datasets.digits(seed=0)
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert len(data.train) + len(data.test) == 1797
    x, y = data.train.tensors
    assert x.dtype == cr.float32 and 0.0 <= float(x.numpy().min()) and float(x.numpy().max()) <= 1.0
    assert sorted(set(y.tolist())) == list(range(10))
    flat = datasets.digits(flatten=True, seed=0)
    assert flat.input_shape == (64,)
    np.testing.assert_array_equal(flat.train.tensors[0].numpy(), x.numpy().reshape(-1, 64))
    other = datasets.digits(seed=1)
    assert not np.array_equal(other.train.tensors[1].numpy(), y.numpy())


def test_digits_without_scikit_learn(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[datasets\]'"):
        datasets.digits()


# ---- IDX files -------------------------------------------------------------------------------


def write_idx(path, array: np.ndarray, gz: bool) -> None:
    """Write ``array`` in the IDX format: magic (0, 0, type code, ndim), sizes, big-endian data."""
    codes = {
        np.uint8: 0x08,
        np.int8: 0x09,
        np.int16: 0x0B,
        np.int32: 0x0C,
        np.float32: 0x0D,
        np.float64: 0x0E,
    }
    code = codes[array.dtype.type]
    raw = struct.pack(">BBBB", 0, 0, code, array.ndim)
    raw += struct.pack(f">{array.ndim}I", *array.shape)
    raw += array.astype(array.dtype.newbyteorder(">")).tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def make_mnist(root, n_train=12, n_test=5, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    parts = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        write_idx(root / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels, gz)
        parts[prefix] = (images, labels)
    return parts


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx(tmp_path, gz, dtype):
    array = (np.arange(60) - 20).reshape(3, 4, 5).astype(dtype)
    write_idx(tmp_path / "data-idx3", array, gz)
    got = datasets.read_idx(tmp_path / ("data-idx3" + (".gz" if gz else "")))
    assert got.shape == (3, 4, 5) and got.numpy().dtype == np.dtype(dtype)
    np.testing.assert_array_equal(got.numpy(), array)


def test_read_idx_rejects_bad_files(tmp_path):
    write_idx(tmp_path / "ok", np.zeros((4, 3), np.uint8), gz=False)
    data = (tmp_path / "ok").read_bytes()
    (tmp_path / "short").write_bytes(data[:-2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        datasets.read_idx(tmp_path / "short")
    (tmp_path / "junk").write_bytes(b"\x89PNG....")
    with pytest.raises(ValueError, match="bad magic number"):
        datasets.read_idx(tmp_path / "junk")


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_from_idx_files(tmp_path, gz):
    parts = make_mnist(tmp_path / "mnist", gz=gz)
    data = datasets.mnist(tmp_path / "mnist")
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert (len(data.train), len(data.test)) == (12, 5)
    x, y = data.train[3]
    np.testing.assert_allclose(x.numpy()[0], parts["train"][0][3] / 255.0, rtol=1e-6)
    assert y.item() == parts["train"][1][3] and y.dtype == cr.int64
    assert datasets.load("mnist", root=tmp_path / "mnist", flatten=True).input_shape == (784,)
    test_part = datasets.MNIST(tmp_path / "mnist", train=False)
    np.testing.assert_array_equal(test_part.tensors[1].numpy(), parts["t10k"][1])


def test_fashion_mnist_in_torchvision_layout(tmp_path):
    make_mnist(tmp_path / "FashionMNIST" / "raw", gz=True)
    data = datasets.fashion_mnist(tmp_path)
    assert data.name == "fashion_mnist" and data.classes[9] == "Ankle boot"
    assert len(data.train) == 12


def test_missing_mnist_files_name_what_is_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*train-images-idx3-ubyte"):
        datasets.mnist(tmp_path / "nowhere")
    make_mnist(tmp_path / "m")
    (tmp_path / "m" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.*not found"):
        datasets.mnist(tmp_path / "m")
