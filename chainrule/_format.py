"""PyTorch-style ``repr`` for tensors."""

from __future__ import annotations

from chainrule import backend


def tensor_repr(t) -> str:
    arr = backend.to_numpy(t._data)
    np = backend.np
    dt = backend.from_np(arr.dtype)
    if dt is backend.bfloat16:
        arr = arr.astype(np.float32)
    prefix = "tensor("
    if arr.size == 0:
        body = "[]" if arr.ndim == 1 else f"size={tuple(arr.shape)}"
    elif dt.is_floating_point:
        finite = arr[np.isfinite(arr)]
        integral = finite.size == 0 or bool((finite == np.round(finite)).all())
        big = finite.size and (
            np.abs(finite).max() >= 1e8
            or (np.abs(finite[finite != 0]).min() < 1e-4 if (finite != 0).any() else False)
        )
        body = np.array2string(
            arr,
            precision=4,
            separator=", ",
            floatmode="maxprec" if integral and not big else "fixed",
            prefix=prefix,
            threshold=1000,
            edgeitems=3,
            max_line_width=80,
            suppress_small=False,
            sign="-",
        )
    else:
        body = np.array2string(
            arr, separator=", ", prefix=prefix, threshold=1000, edgeitems=3, max_line_width=80
        )
    extras = []
    default_dtypes = (backend.get_default_dtype(), backend.int64, backend.bool_)
    if dt not in default_dtypes:
        extras.append(f"dtype={dt!r}")
    if backend.device_of(t._data) != "cpu":
        extras.append("device='cuda:0'")
    if t.grad_fn is not None:
        extras.append(f"grad_fn=<{t.grad_fn.name}>")
    elif t.requires_grad:
        extras.append("requires_grad=True")
    if arr.size == 0 and arr.ndim != 1:
        return f"tensor([], {body}" + "".join(", " + e for e in extras) + ")"
    return prefix + body + "".join(", " + e for e in extras) + ")"
