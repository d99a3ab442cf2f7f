"""Shape and movement primitives: reshape, broadcast, permute, concatenate, split, flip...

Most are views of the input's memory (``is_view``), so in-place changes through them bump the
input's version counter. Their backward rules move the gradient back into the input's layout.
"""

from __future__ import annotations

from chainrule.tensor import Node, wrap_dim

__all__ = [
    "reshape",
    "view",
    "broadcast_to",
    "expand",
    "expand_as",
    "permute",
    "transpose",
    "swapaxes",
    "swapdims",
    "t",
]


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple(int(s) for s in shape)


def _infer_shape(shape: tuple, numel: int, in_shape: tuple, op: str) -> tuple:
    if -1 in shape:
        if shape.count(-1) > 1:
            raise RuntimeError(f"{op}: only one dimension can be inferred")
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if known == 0 or numel % known:
            raise RuntimeError(
                f"{op}: shape '{list(shape)}' is invalid for input of size {numel} "
                f"(input shape {list(in_shape)})"
            )
        shape = tuple(numel // known if s == -1 else s for s in shape)
    total = 1
    for s in shape:
        total *= s
    if total != numel:
        raise RuntimeError(
            f"{op}: shape '{list(shape)}' is invalid for input of size {numel} "
            f"(input shape {list(in_shape)})"
        )
    return shape


class Reshape(Node):
    __slots__ = ("in_shape",)
    is_view = True

    def forward(self, xp, a, shape=()):
        self.in_shape = a.shape
        return a.reshape(shape)

    def backward(self, g):
        return reshape(g, self.in_shape)


def reshape(input, *shape):
    """The same elements in a new shape (one dimension may be -1)."""
    shape = _shape_arg(shape)
    shape = _infer_shape(shape, input._data.size, input._data.shape, "reshape")
    if shape == input._data.shape:
        return input if not input.requires_grad else Reshape.apply(input, shape=shape)
    return Reshape.apply(input, shape=shape)


def view(input, *shape):
    """Like :func:`reshape` (chainrule copies when a view is impossible)."""
    return reshape(input, *shape)


class BroadcastTo(Node):
    """A read-only view repeating size-1 dimensions; the engine sums the gradient back."""

    __slots__ = ()
    is_view = True

    def forward(self, xp, a, shape=()):
        return xp.broadcast_to(a, shape)

    def backward(self, g):
        return g


def broadcast_to(input, *shape):
    """View ``input`` with ``shape`` by repeating size-1 (and new leading) dimensions."""
    shape = _shape_arg(shape)
    nd = len(shape)
    in_shape = input._data.shape
    if nd < len(in_shape):
        raise RuntimeError(
            f"expand: the number of sizes provided ({nd}) must be greater or equal to the number "
            f"of dimensions in the tensor ({len(in_shape)})"
        )
    lead = nd - len(in_shape)
    full = []
    for i, s in enumerate(shape):
        if s == -1:
            if i < lead:
                raise RuntimeError("expand: -1 is not allowed in a leading, non-existing dimension")
            s = in_shape[i - lead]
        elif i >= lead and in_shape[i - lead] not in (1, s):
            raise RuntimeError(
                f"expand: the expanded size of the tensor ({s}) must match the existing size "
                f"({in_shape[i - lead]}) at non-singleton dimension {i}. Target sizes: "
                f"{list(shape)}. Tensor sizes: {list(in_shape)}"
            )
        full.append(s)
    full = tuple(full)
    if full == in_shape:
        return input
    return BroadcastTo.apply(input, shape=full)


def expand(input, *sizes):
    """Broadcast to ``sizes`` (-1 keeps a dimension) without copying."""
    return broadcast_to(input, *sizes)


def expand_as(input, other):
    """``expand(other.shape)``."""
    return broadcast_to(input, other._data.shape)


class Permute(Node):
    __slots__ = ("dims",)
    is_view = True

    def forward(self, xp, a, dims=()):
        self.dims = dims
        return a.transpose(dims)

    def backward(self, g):
        inverse = [0] * len(self.dims)
        for i, d in enumerate(self.dims):
            inverse[d] = i
        return Permute.apply(g, dims=tuple(inverse))


def permute(input, *dims):
    """Reorder dimensions."""
    dims = _shape_arg(dims)
    nd = input._data.ndim
    if len(dims) != nd:
        raise RuntimeError(
            f"permute(sparse_coo): number of dimensions in the tensor input does not match the "
            f"length of the desired ordering of dimensions i.e. input.dim() = {nd} is not equal "
            f"to len(dims) = {len(dims)}"
        )
    dims = tuple(wrap_dim(d, nd, "permute") for d in dims)
    if len(set(dims)) != nd:
        raise RuntimeError(f"permute: repeated dim in {list(dims)}")
    return Permute.apply(input, dims=dims)


def transpose(input, dim0: int, dim1: int):
    """Swap two dimensions."""
    nd = input._data.ndim
    if nd == 0:
        return input
    d0 = wrap_dim(dim0, nd, "transpose")
    d1 = wrap_dim(dim1, nd, "transpose")
    if d0 == d1:
        return input
    dims = list(range(nd))
    dims[d0], dims[d1] = d1, d0
    return Permute.apply(input, dims=tuple(dims))


swapaxes = swapdims = transpose


def t(input):
    """Transpose a matrix (0-d and 1-d tensors are returned as they are)."""
    if input._data.ndim > 2:
        raise RuntimeError(
            f"t() expects a tensor with <= 2 dimensions, but self is {input._data.ndim}D"
        )
    return transpose(input, 0, 1) if input._data.ndim == 2 else input


# Tensor methods (bound in ops/__init__.py)
METHODS = {
    "reshape": reshape,
    "view": view,
    "expand": expand,
    "expand_as": expand_as,
    "broadcast_to": broadcast_to,
    "permute": permute,
    "transpose": transpose,
    "swapaxes": transpose,
    "swapdims": transpose,
    "t": t,
}
