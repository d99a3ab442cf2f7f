"""chainrule.save / chainrule.load: round trips, safety against code in files, atomic writes."""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import serialization
from chainrule.serialization import CheckpointError

REPO = Path(cr.__file__).resolve().parent.parent

DTYPES = [
    cr.bool,
    cr.uint8,
    cr.int8,
    cr.int16,
    cr.int32,
    cr.int64,
    cr.float16,
    cr.bfloat16,
    cr.float32,
    cr.float64,
]


def roundtrip(obj, tmp_path, name="ckpt.safetensors"):
    path = tmp_path / name
    cr.save(obj, path)
    return cr.load(path)


def assert_tensor_equal(a, b):
    assert isinstance(a, cr.Tensor) and isinstance(b, cr.Tensor)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.requires_grad == b.requires_grad
    np.testing.assert_array_equal(
        np.asarray(a.detach().numpy(), dtype=np.float64),
        np.asarray(b.detach().numpy(), dtype=np.float64),
    )


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("shape", [(), (0,), (3,), (2, 0, 3), (4, 5)])
def test_tensor_roundtrip_every_dtype_and_shape(dtype, shape, tmp_path):
    values = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) - 2
    t = cr.tensor(values).to(dtype)
    assert_tensor_equal(roundtrip(t, tmp_path), t)


def test_nested_structure_roundtrip(tmp_path):
    w = cr.randn(3, 4)
    obj = {
        "model": {"layer.weight": w, "layer.bias": cr.zeros(4)},
        "optimizer": {
            "state": {0: {"step": cr.tensor(3.0), "exp_avg": cr.ones(3, 4)}, 1: {}},
            "param_groups": [
                {"lr": 1e-3, "betas": (0.9, 0.999), "params": [0, 1], "amsgrad": False}
            ],
        },
        "epoch": 7,
        "big": 2**80,
        "loss": float("nan"),
        "limits": (float("inf"), float("-inf"), -0.0),
        "name": "résumé ✓",
        "nothing": None,
        "keys": {(1, "a"): "tuple key", None: 0, 2.5: "float key", True: "bool key"},
        "array": np.arange(5, dtype=np.uint16),
        "scalar": np.float32(1.5),
        "dtype": cr.bfloat16,
        "empty": {"list": [], "tuple": (), "dict": {}},
    }
    got = roundtrip(obj, tmp_path)
    assert list(got) == list(obj)
    assert_tensor_equal(got["model"]["layer.weight"], w)
    opt = got["optimizer"]
    assert list(opt["state"]) == [0, 1] and opt["state"][1] == {}
    assert_tensor_equal(opt["state"][0]["exp_avg"], cr.ones(3, 4))
    assert opt["param_groups"] == obj["optimizer"]["param_groups"]
    assert isinstance(opt["param_groups"][0]["betas"], tuple)
    assert got["epoch"] == 7 and got["big"] == 2**80 and np.isnan(got["loss"])
    assert got["limits"] == (float("inf"), float("-inf"), -0.0)
    assert str(got["limits"][2]) == "-0.0"
    assert got["name"] == obj["name"] and got["nothing"] is None
    assert got["keys"] == obj["keys"]
    assert got["array"].dtype == np.uint16 and got["array"].tolist() == [0, 1, 2, 3, 4]
    assert type(got["scalar"]) is np.float32 and got["scalar"] == 1.5
    assert got["dtype"] is cr.bfloat16
    assert got["empty"] == {"list": [], "tuple": (), "dict": {}}


def test_non_contiguous_tensors_parameters_and_shared_tensors(tmp_path):
    base = cr.tensor(np.arange(12.0).reshape(3, 4))
    t = cr.Tensor._make(base.numpy().T)  # a transposed (non-contiguous) view
    p = cr.nn.Parameter(cr.ones(2))
    g = cr.ones(3, requires_grad=True)
    got = roundtrip({"t": t, "p": p, "g": g, "tied_a": base, "tied_b": base}, tmp_path)
    assert_tensor_equal(got["t"], t)
    assert isinstance(got["p"], cr.nn.Parameter) and got["p"].requires_grad
    assert got["g"].requires_grad and got["g"].is_leaf
    assert got["tied_a"] is got["tied_b"]


def test_generator_state_roundtrip(tmp_path):
    g = cr.Generator().manual_seed(123)
    g.normal((5,))
    state = roundtrip(g.get_state(), tmp_path)
    expected = g.normal((4,))
    h = cr.Generator()
    h.set_state(state)
    np.testing.assert_array_equal(h.normal((4,)), expected)


def test_file_objects_and_keywords(tmp_path):
    buf = io.BytesIO()
    cr.save({"a": cr.arange(3)}, buf)
    buf.seek(0)
    got = cr.load(buf, map_location="cpu", weights_only=False)
    assert got["a"].tolist() == [0, 1, 2]
    path = tmp_path / "x.ckpt"
    cr.save([1, 2], str(path))
    assert cr.load(str(path), map_location={"cuda": "cpu"}) == [1, 2]
    with pytest.raises(TypeError, match="map_location"):
        cr.load(path, map_location=lambda storage, loc: storage)
    with pytest.raises(TypeError, match="never unpickles"):
        cr.load(path, pickle_module=pickle)


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"cannot store a set \(at opt/x\)"):
        cr.save({"opt": {"x": {1, 2}}}, tmp_path / "a")
    with pytest.raises(TypeError, match="cannot store a function"):
        cr.save([lambda: 0], tmp_path / "a")
    loop: list = []
    loop.append(loop)
    with pytest.raises(ValueError, match="contains itself"):
        cr.save(loop, tmp_path / "a")
    with pytest.raises(TypeError, match="complex"):
        cr.save(np.zeros(2, dtype=np.complex64), tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_save_without_safetensors_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install 'chainrule\[save\]'"):
        cr.save({"a": 1}, tmp_path / "a")


# ---- files that must not load ----------------------------------------------------------------


class _RunsCode:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.pt"
    for protocol in (2, 4, 5):
        path.write_bytes(pickle.dumps({"weights": _RunsCode(marker)}, protocol=protocol))
        with pytest.raises(CheckpointError, match="Python pickle.*never unpickles") as info:
            cr.load(path)
        assert str(path) in str(info.value)
        assert not marker.exists()
    path.write_bytes(pickle.dumps(_RunsCode(marker), protocol=0))
    with pytest.raises(CheckpointError):
        cr.load(path)
    assert not marker.exists()
    # the payload really does run code when unpickled: the test would catch an unpickler
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_a_torch_save_file_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="ZIP archive, the format of torch.save"):
        cr.load(path)


@pytest.fixture
def good_file(tmp_path):
    path = tmp_path / "good.safetensors"
    cr.save({"w": cr.arange(1000.0), "b": cr.ones(10), "meta": {"step": 5}}, path)
    return path


@pytest.mark.parametrize("keep", [0, 3, 8, 20, -4000, -100, -1])
def test_truncated_files_raise_clear_errors(good_file, tmp_path, keep):
    data = good_file.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[:keep] if keep >= 0 else data[: len(data) + keep])
    with pytest.raises(CheckpointError, match=r"empty|only \d+ bytes|truncated") as info:
        cr.load(bad)
    assert str(bad) in str(info.value)


def test_corrupted_files_raise_clear_errors(good_file, tmp_path):
    data = bytearray(good_file.read_bytes())
    bad = tmp_path / "bad.safetensors"

    flipped = bytearray(data)
    flipped[-50] ^= 0xFF  # inside tensor data
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="checksum"):
        cr.load(bad)

    flipped = bytearray(data)
    flipped[8] = ord("#")  # the JSON header's opening brace
    bad.write_bytes(bytes(flipped))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        cr.load(bad)

    bad.write_bytes(bytes(data) + b"\0" * 8)
    with pytest.raises(CheckpointError, match="unexpected bytes"):
        cr.load(bad)

    bad.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        cr.load(bad)

    with pytest.raises(FileNotFoundError, match="no such file"):
        cr.load(tmp_path / "missing.safetensors")


def _rewrite_header(path: Path, edit) -> None:
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n :])


def test_inconsistent_headers_are_refused(good_file):
    def bad_shape(h):
        h["w"]["shape"] = [999]

    def bad_structure(h):
        h["__metadata__"]["chainrule.structure"] = '{"$tensor": "nope"}'

    def bad_tag(h):
        h["__metadata__"]["chainrule.structure"] = '{"$pickle": "os.system"}'

    def future(h):
        h["__metadata__"]["chainrule.format"] = "99"

    for edit, message in [
        (bad_shape, "should take"),
        (bad_structure, "does not hold"),
        (bad_tag, "unknown node"),
        (future, "format '99'"),
    ]:
        good = good_file.read_bytes()
        _rewrite_header(good_file, edit)
        with pytest.raises(CheckpointError, match=message):
            cr.load(good_file)
        good_file.write_bytes(good)


# ---- atomic writes ---------------------------------------------------------------------------


def test_a_failing_write_leaves_the_old_checkpoint(good_file, monkeypatch):
    import safetensors.numpy

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        cr.save({"w": cr.zeros(5)}, good_file)
    assert cr.load(good_file)["meta"] == {"step": 5}
    assert os.listdir(good_file.parent) == [good_file.name]  # no temporary file left behind


_WRITER = """
import sys
import chainrule as cr
big = cr.ones(4_000_000)
for i in range(1000):
    cr.save({"w": big, "i": i}, sys.argv[1])
"""


def test_killing_the_writer_mid_save_leaves_a_loadable_checkpoint(good_file):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(good_file)], env=env)
    try:
        deadline = time.monotonic() + 60
        # wait until a save is under way (its temporary file exists), then kill the writer
        while not any(n.endswith(".tmp") for n in os.listdir(good_file.parent)):
            assert proc.poll() is None and time.monotonic() < deadline, "the writer never started"
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    got = cr.load(good_file)  # the old checkpoint, or a complete new one; never a torn file
    if "meta" in got:
        assert got["meta"] == {"step": 5} and got["w"].shape == (1000,)
    else:
        assert got["w"].shape == (4_000_000,) and bool((got["w"] == 1).all())


# ---- interoperability with safetensors written by PyTorch -------------------------------------


def test_torch_safetensors_weights_load(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    state["half"] = torch.randn(3).to(torch.bfloat16)
    path = tmp_path / "torch.safetensors"
    st_torch.save_file(state, str(path))
    got = cr.load(path)
    assert set(got) == set(state)
    for k, v in state.items():
        assert got[k].dtype.name == str(v.dtype).replace("torch.", "")
        np.testing.assert_array_equal(got[k].float().numpy(), v.float().numpy())


def test_flat_state_dicts_read_back_in_torch(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    state = {"0.weight": cr.randn(3, 4), "0.bias": cr.randn(3), "emb": cr.randn(2).to(cr.bfloat16)}
    path = tmp_path / "ours.safetensors"
    cr.save(state, path)
    theirs = st_torch.load_file(str(path))
    for k, v in state.items():
        assert theirs[k].dtype == getattr(torch, v.dtype.name)
        np.testing.assert_array_equal(theirs[k].float().numpy(), v.float().numpy())


def test_error_class_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)
    assert serialization.save is cr.save and serialization.load is cr.load


def test_torch_weights_load_into_the_same_chainrule_model(tmp_path):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")
    if not all(hasattr(cr.nn, name) for name in ("Sequential", "Linear", "Tanh")):
        pytest.skip("chainrule.nn layers are not available")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    path = tmp_path / "torch.safetensors"
    st_torch.save_file(theirs.state_dict(), str(path))
    ours = cr.nn.Sequential(cr.nn.Linear(4, 8), cr.nn.Tanh(), cr.nn.Linear(8, 3))
    ours.load_state_dict(cr.load(path))
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    np.testing.assert_allclose(ours(cr.tensor(x)).detach().numpy(), expected, rtol=1e-5, atol=1e-6)
