"""``chainrule.save`` / ``chainrule.load``: checkpoints that never run code when read.

A checkpoint is a `safetensors <https://github.com/huggingface/safetensors>`_ file: a JSON
header that lists every array (dtype, shape, byte range), then the raw bytes. Everything that
is not an array -- the nesting of dicts, lists and tuples, numbers, strings, ``None`` -- is
stored as JSON in the header's metadata (``chainrule.structure``), where each tensor appears as
a reference to an array key. Array keys are the path to the tensor (``state/0/exp_avg``); in a
flat state dict they are the parameter names themselves, so the file reads as an ordinary
safetensors file elsewhere (``safetensors.torch.load_file``), and an ordinary safetensors file
(``safetensors.torch.save_file(model.state_dict(), path)``) loads here as a flat dict of
tensors.

Why not pickle (``torch.save``'s format)? Unpickling a file runs whatever code the file names;
reading a checkpoint from the internet would mean trusting its author. Reading JSON and raw
bytes cannot run anything.

Safety of writes: ``save`` writes a temporary file next to the target, flushes it to disk and
renames it over the target (an atomic step), so a crash mid-save leaves the previous checkpoint
as it was. Safety of reads: ``load`` checks the header, every byte range, the file size and a
CRC-32 of each array before returning anything, and raises :class:`CheckpointError` (naming
the file and the problem) for a truncated, corrupted or foreign file.

Writing needs the ``safetensors`` package (``pip install 'chainrule[save]'``); reading does not
(chainrule parses the format itself, which also lets it read bfloat16 arrays into NumPy).
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import zlib
from collections.abc import Mapping
from typing import IO, Any

from chainrule import backend
from chainrule.nn.parameter import Parameter
from chainrule.tensor import Device, Tensor

__all__ = ["save", "load", "CheckpointError"]

FORMAT_VERSION = 1
_FORMAT_KEY = "chainrule.format"
_STRUCTURE_KEY = "chainrule.structure"
_CRC_KEY = "chainrule.crc32"
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header

# safetensors dtype codes -> array dtype names ("bfloat16" needs ml_dtypes)
_CODES = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "I16": "int16",
    "U16": "uint16",
    "I32": "int32",
    "U32": "uint32",
    "I64": "int64",
    "U64": "uint64",
    "F16": "float16",
    "BF16": "bfloat16",
    "F32": "float32",
    "F64": "float64",
}
_SAVABLE = frozenset(_CODES.values())

PathLike = str | os.PathLike


class CheckpointError(ValueError):
    """``chainrule.load`` could not read a file: truncated, corrupted, or not a checkpoint.

    ``path`` is the file; the message says what is wrong with it.
    """

    def __init__(self, path: str, problem: str):
        super().__init__(f"chainrule.load: cannot load {path!r}: {problem}")
        self.path = path


# ---------------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------------


def _np_dtype(name: str):
    if name == "bfloat16":
        d = backend.bfloat16.np
        if d is None:
            raise RuntimeError(
                "bfloat16 arrays need the ml_dtypes package: pip install 'chainrule[bf16]'"
            )
        return d
    return backend.np.dtype(name)


def _path_text(path: tuple) -> str:
    return "/".join(str(p) for p in path) or "<root>"


class _Encoder:
    """Turns an object into JSON-ready structure plus a dict of arrays to store."""

    def __init__(self):
        self.arrays: dict[str, Any] = {}
        self._by_id: dict[int, dict] = {}  # the same tensor object twice is stored once
        self._keep: list = []  # keeps encoded objects alive so their ids stay unique
        self._open: set[int] = set()  # containers being encoded (to catch cycles)

    def _key(self, path: tuple, default: str) -> str:
        base = "/".join(str(p) for p in path) or default
        key = base
        n = 0
        while key in self.arrays or key == "__metadata__":
            n += 1
            key = f"{base}#{n}"
        return key

    def _array(self, arr, path: tuple, default: str) -> str:
        arr = backend.to_numpy(arr)
        if arr.dtype.name not in _SAVABLE:
            raise TypeError(
                f"chainrule.save: cannot store an array of dtype {arr.dtype} (at "
                f"{_path_text(path)}); supported: {', '.join(sorted(_SAVABLE))}"
            )
        key = self._key(path, default)
        # (not ``ascontiguousarray``: it turns 0-d arrays into 1-d ones)
        self.arrays[key] = arr if arr.flags.c_contiguous else arr.copy(order="C")
        return key

    def encode(self, obj: Any, path: tuple) -> Any:
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, float):
            if math.isfinite(obj):
                return float(obj)
            return {"$float": "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")}
        if isinstance(obj, Tensor):
            return self._tensor(obj, path)
        if backend.is_array(obj):
            if id(obj) not in self._by_id:
                self._keep.append(obj)
                self._by_id[id(obj)] = {"$ndarray": self._array(obj, path, "array")}
            return dict(self._by_id[id(obj)])
        if isinstance(obj, backend.np.generic) and obj.dtype.name in _SAVABLE:
            return {"$scalar": self.encode(obj.item(), path), "dtype": obj.dtype.name}
        if isinstance(obj, backend.dtype):
            return {"$dtype": obj.name}
        if isinstance(obj, Device):
            return {"$device": str(obj)}
        if isinstance(obj, (Mapping, list, tuple)):
            if id(obj) in self._open:
                raise ValueError(
                    f"chainrule.save: the object contains itself at {_path_text(path)}"
                )
            self._open.add(id(obj))
            try:
                return self._container(obj, path)
            finally:
                self._open.discard(id(obj))
        raise TypeError(
            f"chainrule.save: cannot store a {type(obj).__name__} (at {_path_text(path)}); a "
            "checkpoint holds tensors, NumPy arrays, numbers, strings, None, dtypes and "
            "dicts/lists/tuples of them"
        )

    def _container(self, obj, path: tuple):
        if isinstance(obj, Mapping):
            if all(type(k) is str for k in obj):
                return {"$map": {k: self.encode(v, (*path, k)) for k, v in obj.items()}}
            return {
                "$dict": [
                    [self._dict_key(k, path), self.encode(v, (*path, k))] for k, v in obj.items()
                ]
            }
        items = [self.encode(v, (*path, i)) for i, v in enumerate(obj)]
        return {"$tuple": items} if isinstance(obj, tuple) else items

    def _dict_key(self, key, path: tuple):
        if isinstance(key, (Tensor, Mapping, list)) or backend.is_array(key):
            raise TypeError(
                f"chainrule.save: dict keys must be numbers, strings, None or tuples of them; "
                f"got a {type(key).__name__} key at {_path_text(path)}"
            )
        return self.encode(key, path)

    def _tensor(self, t: Tensor, path: tuple) -> dict:
        known = self._by_id.get(id(t))
        if known is not None:
            return dict(known)
        node: dict = {"$tensor": self._array(t._data, path, "tensor")}
        if t.requires_grad:
            node["requires_grad"] = True
        if isinstance(t, Parameter):
            node["parameter"] = True
        device = backend.device_of(t._data)
        if device != "cpu":
            node["device"] = device
        self._keep.append(t)
        self._by_id[id(t)] = node
        return dict(node)


def _crc(arr) -> int:
    # viewed as bytes: works for every dtype (bfloat16 has no buffer-protocol format code)
    return zlib.crc32(arr.reshape(-1).view(backend.np.uint8))


def _safetensors_numpy():
    try:
        import safetensors.numpy
    except ImportError as exc:
        raise ImportError(
            "chainrule.save writes safetensors files and needs the safetensors package: "
            "pip install 'chainrule[save]'"
        ) from exc
    return safetensors.numpy


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _atomic_write(path: str, write) -> None:
    """Write through ``write(temp_path)``, then swap the file into place in one rename."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"chainrule.save: directory {directory!r} does not exist")
    tmp = os.path.join(
        directory, f".{os.path.basename(path)}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    )
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    _fsync_directory(directory)


def save(obj: Any, f: PathLike | IO[bytes]) -> None:
    """Save ``obj`` to the file ``f`` (a path, or a binary file object) as a safetensors file.

    ``obj`` is a tensor, a NumPy array, or dicts/lists/tuples nesting tensors, arrays, ints,
    floats, bools, strings, ``None`` and dtypes: the state dicts of models, optimisers,
    schedulers and gradient scalers, and generator states. A tensor that appears twice (tied
    weights) is stored once and loads as one shared tensor. A path is written atomically:
    after a crash, the file holds either the old checkpoint or the new one, never a mix.

    >>> import chainrule as cr, io
    >>> buf = io.BytesIO()
    >>> cr.save({"w": cr.ones(2), "step": 3}, buf)
    >>> cr.load(io.BytesIO(buf.getvalue()))
    {'w': tensor([1., 1.]), 'step': 3}
    """
    st = _safetensors_numpy()
    enc = _Encoder()
    structure = enc.encode(obj, ())
    metadata = {
        _FORMAT_KEY: str(FORMAT_VERSION),
        _STRUCTURE_KEY: json.dumps(structure, separators=(",", ":"), allow_nan=False),
        _CRC_KEY: json.dumps({k: _crc(a) for k, a in enc.arrays.items()}, separators=(",", ":")),
    }
    if hasattr(f, "write"):
        f.write(st.save(enc.arrays, metadata=metadata))
        return
    _atomic_write(os.fspath(f), lambda tmp: st.save_file(enc.arrays, tmp, metadata=metadata))


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------

_FOREIGN = (
    (b"PK\x03\x04", "a ZIP archive, the format of torch.save (a pickle inside)"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x89HDF", "an HDF5 file"),
)
_NO_PICKLE = (
    "; chainrule.load never unpickles, because unpickling runs code named by the file. "
    "Convert it where you trust it, e.g. safetensors.torch.save_file(torch.load(path), "
    "'model.safetensors')"
)


def _sniff(head: bytes) -> str | None:
    """Name a well-known foreign format from a file's first bytes."""
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return "a Python pickle" + _NO_PICKLE
    for magic, what in _FOREIGN:
        if head.startswith(magic):
            return what + (_NO_PICKLE if magic == b"PK\x03\x04" else "")
    return None


def _read_exactly(src, n: int) -> bytes:
    data = src.read(n)
    return data if data is not None else b""


def _parse_header(src, size: int, name: str) -> tuple[dict, dict | None, int]:
    """The tensor table, the metadata and where the data starts, all checked."""
    head = _read_exactly(src, 8)
    if len(head) < 8:
        what = _sniff(head)
        if what:
            raise CheckpointError(name, f"this is {what}")
        raise CheckpointError(
            name, "the file is empty" if size == 0 else f"the file is only {size} bytes long"
        )
    what = _sniff(head)
    if what:
        raise CheckpointError(name, f"this is {what}, not a safetensors file")
    n = int.from_bytes(head, "little")
    if n > size - 8 or n > _MAX_HEADER or n < 2:
        raise CheckpointError(
            name,
            f"not a safetensors file, or truncated: its first 8 bytes give a header of {n} "
            f"bytes but the file has {size} bytes in all",
        )
    raw = _read_exactly(src, n)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(name, f"the header is not valid JSON (corrupted?): {exc}") from None
    if not isinstance(header, dict):
        raise CheckpointError(name, "the header is not a JSON object (corrupted?)")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
    ):
        raise CheckpointError(name, "the header's __metadata__ is not a map of strings")
    data_len = size - 8 - n
    table = {}
    for key, info in header.items():
        try:
            code = info["dtype"]
            shape = tuple(info["shape"])
            begin, end = info["data_offsets"]
            ok = (
                code in _CODES
                and all(type(s) is int and s >= 0 for s in shape)
                and type(begin) is int
                and type(end) is int
                and 0 <= begin <= end
            )
        except (TypeError, KeyError, ValueError):
            ok = False
        if not ok:
            raise CheckpointError(name, f"the header entry for {key!r} is malformed: {info!r}")
        itemsize = 2 if code == "BF16" else backend.np.dtype(_CODES[code]).itemsize
        if math.prod(shape) * itemsize != end - begin:
            raise CheckpointError(
                name,
                f"tensor {key!r} of shape {list(shape)} and dtype {code} should take "
                f"{math.prod(shape) * itemsize} bytes but its byte range holds {end - begin}",
            )
        table[key] = (code, shape, begin, end)
    # the arrays must tile the data region exactly: no gaps, no overlaps, nothing missing
    position = 0
    for key, (_, _, begin, end) in sorted(table.items(), key=lambda kv: kv[1][2:]):
        if begin != position:
            raise CheckpointError(
                name, f"tensor {key!r} starts at byte {begin} of the data, expected {position}"
            )
        position = end
    if position > data_len:
        raise CheckpointError(
            name,
            f"the file is truncated: its tensors need {position} bytes of data but only "
            f"{data_len} follow the header",
        )
    if position < data_len:
        raise CheckpointError(
            name, f"{data_len - position} unexpected bytes follow the last tensor (corrupted?)"
        )
    return table, metadata, 8 + n


def _read_arrays(src, table: dict, start: int, name: str) -> dict:
    arrays = {}
    for key, (code, shape, begin, end) in sorted(table.items(), key=lambda kv: kv[1][2]):
        try:
            dtype = _np_dtype(_CODES[code]).newbyteorder("<")
        except RuntimeError as exc:
            raise CheckpointError(name, f"tensor {key!r}: {exc}") from None
        arr = backend.np.empty(shape, dtype=dtype)
        src.seek(start + begin)
        got = src.readinto(arr.reshape(-1).view(backend.np.uint8)) if end > begin else 0
        if got != end - begin:
            raise CheckpointError(name, f"the file is truncated inside tensor {key!r}")
        if not dtype.isnative:
            arr = arr.astype(dtype.newbyteorder("="))
        arrays[key] = arr
    return arrays


class _Decoder:
    def __init__(self, arrays: dict, name: str, map_location):
        self.arrays = arrays
        self.name = name
        self.map_location = map_location
        self.used: set[str] = set()
        self._tensors: dict[str, Tensor] = {}

    def fail(self, problem: str):
        raise CheckpointError(self.name, f"the structure metadata is invalid: {problem}")

    def array(self, key) -> Any:
        if not isinstance(key, str) or key not in self.arrays:
            self.fail(f"it refers to a tensor {key!r} that the file does not hold")
        self.used.add(key)
        return self.arrays[key]

    def decode(self, node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self.decode(x) for x in node]
        if not isinstance(node, dict) or not node:
            self.fail(f"unexpected node {node!r}")
        tag = next(iter(node))
        value = node[tag]
        if tag == "$map" and isinstance(value, dict):
            return {k: self.decode(v) for k, v in value.items()}
        if tag == "$dict" and isinstance(value, list):
            out = {}
            for pair in value:
                if not (isinstance(pair, list) and len(pair) == 2):
                    self.fail(f"a $dict entry is not a [key, value] pair: {pair!r}")
                key = self.decode(pair[0])
                try:
                    out[key] = self.decode(pair[1])
                except TypeError:
                    self.fail(f"unhashable dict key {key!r}")
            return out
        if tag == "$tuple" and isinstance(value, list):
            return tuple(self.decode(x) for x in value)
        if tag == "$float" and value in ("nan", "inf", "-inf"):
            return float(value)
        if tag == "$tensor":
            return self.tensor(value, node)
        if tag == "$ndarray":
            return self.array(value)
        if tag == "$scalar" and isinstance(node.get("dtype"), str):
            try:
                return _np_dtype(node["dtype"]).type(self.decode(value))
            except (TypeError, ValueError, RuntimeError) as exc:
                self.fail(f"bad scalar {node!r}: {exc}")
        if tag == "$dtype" and isinstance(value, str):
            try:
                return backend.as_dtype(value)
            except (TypeError, RuntimeError) as exc:
                self.fail(f"bad dtype {value!r}: {exc}")
        if tag == "$device" and isinstance(value, str):
            return Device(value)
        self.fail(f"unknown node {node!r}")

    def tensor(self, key, node: dict) -> Tensor:
        if key in self._tensors:  # stored once, shared where it was shared
            return self._tensors[key]
        arr = self.array(key)
        try:
            backend.from_np(arr.dtype)
        except TypeError:
            raise CheckpointError(
                self.name, f"tensor {key!r} has dtype {arr.dtype}, which chainrule tensors lack"
            ) from None
        arr = _place(arr, _target_device(node.get("device", "cpu"), self.map_location), self.name)
        requires_grad = bool(node.get("requires_grad", False))
        if node.get("parameter"):
            t = Parameter(Tensor._make(arr), requires_grad=requires_grad)
        else:
            t = Tensor._make(arr, requires_grad)
        self._tensors[key] = t
        return t


def _target_device(saved: str, map_location) -> str:
    if map_location is None:
        return saved
    if isinstance(map_location, (str, Device)):
        return str(map_location)
    if isinstance(map_location, Mapping):
        for source, target in map_location.items():
            if str(source).split(":")[0] == saved:
                return str(target)
        return saved
    raise TypeError(
        "chainrule.load: map_location must be None, a device or device string, or a dict "
        f"mapping saved devices to devices; got {type(map_location).__name__}"
    )


def _place(arr, device: str, name: str):
    if device.split(":")[0] == "cpu":
        return arr
    try:
        return backend.to_device(arr, device)
    except RuntimeError as exc:
        raise RuntimeError(
            f"chainrule.load: {name!r} holds tensors saved on {device!r}: {exc}; pass "
            "map_location='cpu' to load them on the CPU"
        ) from None


def load(
    f: PathLike | IO[bytes],
    map_location=None,
    pickle_module=None,
    *,
    weights_only: bool | None = True,
    mmap: bool | None = None,
) -> Any:
    """Load what :func:`save` stored in ``f`` (a path, or a binary file object).

    A safetensors file written elsewhere (no chainrule structure) loads as a flat dict
    ``{name: tensor}``: ``model.load_state_dict(chainrule.load("pytorch_weights.safetensors"))``
    loads weights saved with ``safetensors.torch.save_file(model.state_dict(), ...)``.

    ``map_location`` (a device, or a dict from saved device to device) moves tensors as they
    load. ``weights_only`` and ``mmap`` are accepted for PyTorch compatibility: a chainrule
    checkpoint holds only data, so loading is always "weights only", and the file is always
    read into memory. Raises :class:`CheckpointError` for a file that is truncated, corrupted,
    or not a safetensors file (a pickle, for instance, is refused without being unpickled).
    """
    if pickle_module is not None:
        raise TypeError("chainrule.load never unpickles: pickle_module must be None")
    _target_device("cpu", map_location)  # reject a bad map_location before reading anything
    if hasattr(f, "read"):
        name = str(getattr(f, "name", "<file object>"))
        src = io.BytesIO(f.read())
        return _load_from(src, len(src.getbuffer()), name, map_location)
    name = os.fspath(f)
    if not os.path.exists(name):
        raise FileNotFoundError(f"chainrule.load: no such file: {name!r}")
    with open(name, "rb") as src:
        return _load_from(src, os.fstat(src.fileno()).st_size, name, map_location)


def _load_from(src, size: int, name: str, map_location) -> Any:
    table, metadata, start = _parse_header(src, size, name)
    arrays = _read_arrays(src, table, start, name)
    metadata = metadata or {}
    if _FORMAT_KEY not in metadata:
        # a plain safetensors file, e.g. from safetensors.torch.save_file: a flat state dict
        decoder = _Decoder(arrays, name, map_location)
        return {key: decoder.tensor(key, {}) for key in arrays}
    version = metadata[_FORMAT_KEY]
    if version != str(FORMAT_VERSION):
        raise CheckpointError(
            name,
            f"it was written in chainrule checkpoint format {version!r}; this chainrule reads "
            f"format {FORMAT_VERSION} (upgrade chainrule)",
        )
    try:
        structure = json.loads(metadata[_STRUCTURE_KEY])
        crcs = json.loads(metadata[_CRC_KEY])
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            name, f"the chainrule metadata is missing or corrupted ({exc})"
        ) from None
    if not isinstance(crcs, dict) or set(crcs) != set(arrays):
        raise CheckpointError(name, "the checksum table does not match the tensors in the file")
    for key, arr in arrays.items():
        if _crc(arr) != crcs[key]:
            raise CheckpointError(
                name, f"the bytes of tensor {key!r} do not match their checksum (corrupted)"
            )
    decoder = _Decoder(arrays, name, map_location)
    obj = decoder.decode(structure)
    unused = set(arrays) - decoder.used
    if unused:
        raise CheckpointError(
            name, f"tensors {sorted(unused)} are stored but nothing refers to them (corrupted?)"
        )
    return obj
