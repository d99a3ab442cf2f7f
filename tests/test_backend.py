"""The backend's CPU settings: the thread count (with BLAS following it) and aligned arrays."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import backend


@pytest.fixture
def restore_threads():
    override = backend._threads_override
    blas = backend._Blas.get_fn() if backend._Blas.found() else None
    yield
    backend._threads_override = override
    if blas is not None:
        backend._Blas.set_fn(blas)


def test_thread_count_follows_the_environment_then_set_num_threads(monkeypatch, restore_threads):
    monkeypatch.setattr(backend, "_threads_override", None)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cr.get_num_threads() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "64")
    assert cr.get_num_threads() == 8
    monkeypatch.setenv("OMP_NUM_THREADS", "")
    assert 1 <= cr.get_num_threads() <= 8
    cr.set_num_threads(2)
    assert cr.get_num_threads() == 2
    with pytest.raises(ValueError, match="positive number of threads, got 0"):
        cr.set_num_threads(0)
    assert cr.get_num_threads() == 2


def test_set_num_threads_reaches_numpys_openblas(restore_threads):
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if "openblas" not in str(config.get("name", "")).lower():
        pytest.skip(f"NumPy is built with {config.get('name')}, not OpenBLAS")
    assert backend._Blas.found(), "OpenBLAS is loaded but its thread switch was not found"
    cr.set_num_threads(1)
    assert backend._Blas.get_fn() == 1
    cr.set_num_threads(2)
    assert backend._Blas.get_fn() == 2
    # a matrix product still gives the right numbers either way
    a = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal((cr.tensor(a) @ cr.tensor(a.T)).numpy(), a @ a.T)


@pytest.mark.parametrize("shape", [(3, 5), 7, (), (0, 4)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_aligned_empty_starts_on_a_cache_line(shape, dtype):
    arrays = [backend.aligned_empty(np, shape, dtype) for _ in range(8)]
    for arr in arrays:
        assert arr.shape == (shape if isinstance(shape, tuple) else (shape,))
        assert arr.dtype == dtype and arr.flags.c_contiguous and arr.flags.writeable
        assert arr.size == 0 or arr.ctypes.data % backend.ALIGN == 0
        arr[...] = 1  # the whole array is usable memory
        assert arr.sum() == arr.size
