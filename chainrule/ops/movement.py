"""Shape and movement primitives: reshape, broadcast, permute, concatenate, split, flip...

Most are views of the input's memory (``is_view``), so in-place changes through them bump the
input's version counter. Their backward rules move the gradient back into the input's layout.
"""

from __future__ import annotations

from chainrule import backend
from chainrule.ops.elementwise import cast, inplace
from chainrule.tensor import Node, Tensor, wrap_dim

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
    "flatten",
    "unflatten",
    "ravel",
    "squeeze",
    "unsqueeze",
    "movedim",
    "moveaxis",
    "tile",
    "flip",
    "roll",
    "cat",
    "concat",
    "concatenate",
    "stack",
    "split",
    "chunk",
    "unbind",
    "narrow",
    "select",
    "tril",
    "triu",
    "clone",
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


def _dims_arg(dims) -> tuple:
    """An int or a sequence of ints (``flip(x, 0)``, ``flip(x, (0, 1))``) as a tuple."""
    if isinstance(dims, (tuple, list)):
        return tuple(int(d) for d in dims)
    return (int(dims),)


def _unique_dims(dims, ndim: int, op: str) -> tuple:
    dims = tuple(wrap_dim(d, ndim, op) for d in _dims_arg(dims))
    for d in dims:
        if dims.count(d) > 1:
            raise RuntimeError(f"{op}: dim {d} appears multiple times in the list of dims")
    return dims


def _numel(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


# ---- reshaping composites (each is one Reshape node) -----------------------------------------


def flatten(input, start_dim: int = 0, end_dim: int = -1):
    """Merge dimensions ``start_dim..end_dim`` into one (a 0-d tensor becomes shape ``(1,)``).

    >>> import chainrule as cr
    >>> cr.zeros(2, 3, 4).flatten(1).shape
    chainrule.Size([2, 12])
    """
    shape = input._data.shape
    nd = len(shape)
    if nd == 0:
        return Reshape.apply(input, shape=(1,))
    s = wrap_dim(start_dim, nd, "flatten")
    e = wrap_dim(end_dim, nd, "flatten")
    if s > e:
        raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
    if s == e:
        return input
    return Reshape.apply(input, shape=shape[:s] + (_numel(shape[s : e + 1]),) + shape[e + 1 :])


def ravel(input):
    """All elements in one dimension (``flatten()``)."""
    return reshape(input, -1)


def unflatten(input, dim: int, sizes):
    """Split dimension ``dim`` into ``sizes`` (one entry may be -1).

    >>> import chainrule as cr
    >>> cr.zeros(2, 12).unflatten(1, (3, -1)).shape
    chainrule.Size([2, 3, 4])
    """
    shape = input._data.shape
    d = wrap_dim(dim, len(shape), "unflatten")
    sizes = _shape_arg((sizes,) if isinstance(sizes, int) else tuple(sizes))
    if not sizes:
        raise RuntimeError("unflatten: sizes must be non-empty")
    known = _numel(s for s in sizes if s != -1)
    n = shape[d]
    if sizes.count(-1) > 1:
        raise RuntimeError("unflatten: only one dimension can be inferred")
    if (-1 in sizes and (known == 0 or n % known)) or (-1 not in sizes and known != n):
        raise RuntimeError(
            f"unflatten: Provided sizes {list(sizes)} don't multiply up to the size of dim {d} "
            f"({n}) in the input tensor"
        )
    if -1 in sizes:
        sizes = tuple(n // known if s == -1 else s for s in sizes)
    return Reshape.apply(input, shape=shape[:d] + sizes + shape[d + 1 :])


def squeeze(input, dim=None):
    """Remove size-1 dimensions (all of them, or those in ``dim``; others are left alone).

    >>> import chainrule as cr
    >>> cr.zeros(2, 1, 3, 1).squeeze().shape, cr.zeros(2, 1, 3, 1).squeeze((1, 0)).shape
    (chainrule.Size([2, 3]), chainrule.Size([2, 3, 1]))
    """
    shape = input._data.shape
    if dim is None:
        new = tuple(s for s in shape if s != 1)
    else:
        dims = {wrap_dim(d, len(shape), "squeeze") for d in _dims_arg(dim)}
        new = tuple(s for i, s in enumerate(shape) if s != 1 or i not in dims)
    if len(new) == len(shape):
        return input
    return Reshape.apply(input, shape=new)


def unsqueeze(input, dim: int):
    """Insert a size-1 dimension at ``dim`` (``-1`` appends one)."""
    shape = input._data.shape
    d = wrap_dim(dim, len(shape) + 1, "unsqueeze")
    return Reshape.apply(input, shape=shape[:d] + (1,) + shape[d:])


def reshape_as(input, other):
    """``reshape(other.shape)``."""
    return reshape(input, other._data.shape)


def movedim(input, source, destination):
    """Move dimensions ``source`` to positions ``destination`` (ints or tuples of ints)."""
    nd = input._data.ndim
    src = _unique_dims(source, nd, "movedim")
    dst = _unique_dims(destination, nd, "movedim")
    if len(src) != len(dst):
        raise RuntimeError(
            f"movedim: Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)"
        )
    order = [d for d in range(nd) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    if order == list(range(nd)):
        return input
    return Permute.apply(input, dims=tuple(order))


moveaxis = movedim


# ---- copies that rearrange elements -----------------------------------------------------------


class Repeat(Node):
    """Tile the input; the gradient sums the copies (``g`` viewed as ``(r0, s0, r1, s1, ...)``)."""

    __slots__ = ("in_shape", "reps")

    def forward(self, xp, a, reps=()):
        self.in_shape, self.reps = a.shape, reps
        return xp.tile(a.reshape((1,) * (len(reps) - a.ndim) + a.shape), reps)

    def backward(self, g):
        padded = (1,) * (len(self.reps) - len(self.in_shape)) + self.in_shape
        pairs = []
        for r, s in zip(self.reps, padded):
            pairs += [r, s]
        summed = reshape(g, pairs).sum(tuple(range(0, len(pairs), 2)))
        return reshape(summed, self.in_shape)


def repeat(input, *sizes):
    """Tensor.repeat: tile the tensor ``sizes[i]`` times along each dimension.

    >>> import chainrule as cr
    >>> cr.tensor([1, 2]).repeat(2, 2)
    tensor([[1, 2, 1, 2],
            [1, 2, 1, 2]])
    """
    reps = _shape_arg(sizes)
    if len(reps) < input._data.ndim:
        raise RuntimeError(
            "Number of dimensions of repeat dims can not be smaller than number of dimensions "
            f"of tensor (repeat dims {list(reps)}, tensor shape {list(input._data.shape)})"
        )
    if any(r < 0 for r in reps):
        raise RuntimeError(f"repeat: repeats can not be negative, got {list(reps)}")
    return Repeat.apply(input, reps=reps)


def tile(input, *dims):
    """Like ``repeat``; a ``dims`` shorter than the tensor's rank is padded with ones in front."""
    dims = _dims_arg(dims[0] if len(dims) == 1 else dims)
    nd = input._data.ndim
    if len(dims) < nd:
        dims = (1,) * (nd - len(dims)) + dims
    return repeat(input, dims)


class Flip(Node):
    __slots__ = ("dims",)

    def forward(self, xp, a, dims=()):
        self.dims = dims
        # a copy, as in PyTorch: NumPy's flip is a negative-stride view that other libraries
        # (and in-place writes through the result) would trip over
        return xp.flip(a, axis=dims).copy() if dims else a.copy()

    def backward(self, g):
        return Flip.apply(g, dims=self.dims)


def flip(input, *dims):
    """Reverse the order of elements along ``dims`` (an int, a tuple, or several ints)."""
    dims = dims[0] if len(dims) == 1 else dims
    return Flip.apply(input, dims=_unique_dims(dims, input._data.ndim, "flip"))


class Roll(Node):
    __slots__ = ("shifts", "dims")

    def forward(self, xp, a, shifts=(), dims=()):
        self.shifts, self.dims = shifts, dims
        return xp.roll(a, shifts, axis=dims)

    def backward(self, g):
        return Roll.apply(g, shifts=tuple(-s for s in self.shifts), dims=self.dims)


def roll(input, shifts, dims=None):
    """Rotate elements along ``dims`` by ``shifts``; with ``dims=None`` over the flattened tensor.

    >>> import chainrule as cr
    >>> cr.tensor([1, 2, 3, 4]).roll(1)
    tensor([4, 1, 2, 3])
    """
    shifts = _dims_arg(shifts)
    if dims is None:
        if len(shifts) != 1:
            raise RuntimeError(
                f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:0"
            )
        shape = input._data.shape
        return reshape(Roll.apply(reshape(input, -1), shifts=shifts, dims=(0,)), shape)
    dims = tuple(wrap_dim(d, input._data.ndim, "roll") for d in _dims_arg(dims))
    if len(shifts) != len(dims):
        raise RuntimeError(
            f"roll: shifts and dimensions must align. shifts: {len(shifts)}, dims:{len(dims)}"
        )
    return Roll.apply(input, shifts=shifts, dims=dims)


class Tril(Node):
    __slots__ = ("diagonal",)

    def forward(self, xp, a, diagonal=0):
        self.diagonal = diagonal
        return xp.tril(a, diagonal)

    def backward(self, g):
        return Tril.apply(g, diagonal=self.diagonal)


class Triu(Node):
    __slots__ = ("diagonal",)

    def forward(self, xp, a, diagonal=0):
        self.diagonal = diagonal
        return xp.triu(a, diagonal)

    def backward(self, g):
        return Triu.apply(g, diagonal=self.diagonal)


def _check_matrix(input, op: str) -> None:
    if input._data.ndim < 2:
        raise RuntimeError(
            f"{op}: input tensor must have at least 2 dimensions (got shape "
            f"{list(input._data.shape)})"
        )


def tril(input, diagonal: int = 0):
    """Zero the elements above the ``diagonal``-th diagonal of the last two dimensions."""
    _check_matrix(input, "tril")
    return Tril.apply(input, diagonal=int(diagonal))


def triu(input, diagonal: int = 0):
    """Zero the elements below the ``diagonal``-th diagonal of the last two dimensions."""
    _check_matrix(input, "triu")
    return Triu.apply(input, diagonal=int(diagonal))


def _tril_(self, diagonal: int = 0):
    """In-place :func:`tril`; returns ``self``."""
    _check_matrix(self, "tril_")
    return inplace(self, lambda t: tril(t, diagonal), "tril_")


def _triu_(self, diagonal: int = 0):
    """In-place :func:`triu`; returns ``self``."""
    _check_matrix(self, "triu_")
    return inplace(self, lambda t: triu(t, diagonal), "triu_")


class Clone(Node):
    __slots__ = ()

    def forward(self, xp, a, order="K"):
        return a.copy(order=order)

    def backward(self, g):
        return g


def clone(input, *, memory_format=None):
    """A copy with its own memory; gradients flow back unchanged."""
    return Clone.apply(input)


def contiguous(input, memory_format=None):
    """Tensor.contiguous: ``self`` when already row-major contiguous, otherwise a copy."""
    if input._data.flags.c_contiguous:
        return input
    return Clone.apply(input, order="C")


def is_contiguous(input, memory_format=None) -> bool:
    """True when the elements are laid out row-major without gaps."""
    return bool(input._data.flags.c_contiguous)


# ---- basic slicing (the view behind narrow, select and ``t[1:, 0]``) -------------------------


class Slice(Node):
    """Basic indexing with a key of ints, positive-step slices and None: a view.

    The key always ends with ``...`` so that NumPy returns an array (a 0-d view), never a
    scalar, even when every dimension is indexed by an int.
    """

    __slots__ = ("key", "in_shape")
    is_view = True

    def forward(self, xp, a, key=()):
        self.key, self.in_shape = key, a.shape
        return a[key]

    def backward(self, g):
        return SliceBackward.apply(g, key=self.key, shape=self.in_shape)


class SliceBackward(Node):
    """Zeros of the sliced tensor's shape with ``g`` written at the sliced positions."""

    __slots__ = ("key",)

    def forward(self, xp, g, key=(), shape=()):
        self.key = key
        out = xp.zeros(shape, dtype=g.dtype)
        out[key] = g
        return out

    def backward(self, gg):
        return Slice.apply(gg, key=self.key)


def narrow(input, dim: int, start, length: int):
    """The view of ``length`` elements of dimension ``dim`` starting at ``start``."""
    shape = input._data.shape
    if not shape:
        raise RuntimeError("narrow() cannot be applied to a 0-dim tensor.")
    d = wrap_dim(dim, len(shape), "narrow")
    size = shape[d]
    start = int(start)
    length = int(length)
    if not -size <= start <= size:
        raise IndexError(
            f"narrow: start ({start}) out of range for dimension {d} of size {size} "
            f"(shape {list(shape)})"
        )
    if start < 0:
        start += size
    if length < 0 or start + length > size:
        raise RuntimeError(
            f"narrow: start ({start}) + length ({length}) exceeds dimension size ({size}) "
            f"of dimension {d} (shape {list(shape)})."
        )
    key = (slice(None),) * d + (slice(start, start + length), Ellipsis)
    return Slice.apply(input, key=key)


def select(input, dim: int, index: int):
    """The view at position ``index`` of dimension ``dim`` (that dimension removed)."""
    shape = input._data.shape
    if not shape:
        raise IndexError("select() cannot be applied to a 0-dim tensor.")
    d = wrap_dim(dim, len(shape), "select")
    index = int(index)
    if not -shape[d] <= index < shape[d]:
        raise IndexError(
            f"select(): index {index} out of range for tensor of size {list(shape)} at "
            f"dimension {d}"
        )
    return Slice.apply(input, key=(slice(None),) * d + (index, Ellipsis))


# ---- concatenating and splitting --------------------------------------------------------------


class Cat(Node):
    """Join along ``dim``; the gradient is split back into the inputs' pieces."""

    __slots__ = ("dim", "sizes", "skip")

    def forward(self, xp, *arrays, dim=0, skip=()):
        parts = [a for a, s in zip(arrays, skip) if not s]
        self.dim, self.skip = dim, skip
        self.sizes = tuple(a.shape[dim] for a in parts)
        return xp.concatenate(parts, axis=dim)

    def backward(self, g):
        pieces = iter(split(g, self.sizes, self.dim))
        xp = backend.array_module(g._data)
        # legacy-skipped 1-d empty inputs get empty gradients, as in PyTorch
        return tuple(
            Tensor._make(xp.zeros((0,), dtype=g._data.dtype)) if s else next(pieces)
            for s in self.skip
        )


def _promoted(tensors, op: str) -> list:
    """Cast ``tensors`` to their common dtype (PyTorch's promotion)."""
    target = None
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(
                f"{op}(): expected a sequence of Tensors, but element {i} is {type(t).__name__}"
            )
        target = t.dtype if target is None else backend.promote_types(target, t.dtype)
    return [t if t._data.dtype == target.np else cast(t, target) for t in tensors]


def cat(tensors, dim: int = 0):
    """Concatenate tensors along an existing dimension (dtypes are promoted).

    All shapes must match except along ``dim``. As in PyTorch, 1-d empty tensors are skipped
    whatever the others' shapes.

    >>> import chainrule as cr
    >>> cr.cat([cr.zeros(2, 3), cr.ones(1, 3)]).shape
    chainrule.Size([3, 3])
    """
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("cat(): expected a non-empty list of Tensors")
    tensors = _promoted(tensors, "cat")
    for i, t in enumerate(tensors):
        if t._data.ndim == 0:
            raise RuntimeError(
                f"cat(): zero-dimensional tensor (at position {i}) cannot be concatenated"
            )
    ref = next((t for t in tensors if t._data.shape != (0,)), tensors[0])
    ref_shape = ref._data.shape
    nd = len(ref_shape)
    d = wrap_dim(dim, nd, "cat")
    skip = tuple(nd != 1 and t._data.shape == (0,) for t in tensors)
    for i, t in enumerate(tensors):
        shape = t._data.shape
        if skip[i] or shape == ref_shape:
            continue
        if len(shape) != nd:
            raise RuntimeError(
                f"cat(): Tensors must have same number of dimensions: got {nd} and {len(shape)} "
                f"(shapes {list(ref_shape)} and {list(shape)})"
            )
        for k in range(nd):
            if k != d and shape[k] != ref_shape[k]:
                raise RuntimeError(
                    f"cat(): Sizes of tensors must match except in dimension {d}. Expected size "
                    f"{ref_shape[k]} but got size {shape[k]} for tensor number {i} in the list "
                    f"(shapes {list(ref_shape)} and {list(shape)})"
                )
    return Cat.apply(*tensors, dim=d, skip=skip)


concat = concatenate = cat


class Stack(Node):
    """Join along a new dimension; the gradient is unbound back into the inputs."""

    __slots__ = ("dim",)

    def forward(self, xp, *arrays, dim=0):
        self.dim = dim
        return xp.stack(arrays, axis=dim)

    def backward(self, g):
        return unbind(g, self.dim)


def stack(tensors, dim: int = 0):
    """Join equally shaped tensors along a new dimension ``dim``."""
    tensors = list(tensors)
    if not tensors:
        raise RuntimeError("stack expects a non-empty TensorList")
    tensors = _promoted(tensors, "stack")
    shape = tensors[0]._data.shape
    for i, t in enumerate(tensors):
        if t._data.shape != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 "
                f"and {list(t._data.shape)} at entry {i}"
            )
    d = wrap_dim(dim, len(shape) + 1, "stack")
    return Stack.apply(*tensors, dim=d)


class Split(Node):
    """Views of consecutive pieces along ``dim`` (``squeeze``: single positions, for unbind).

    One primitive with several outputs rather than one slice per piece: the backward runs once,
    joining the pieces' gradients (zeros for pieces that got none).
    """

    __slots__ = ("dim", "sizes", "squeeze", "in_shape")
    n_outputs = 2  # the real count is set by the subclass ``_split_node(k)`` creates

    def forward(self, xp, a, sizes=(), dim=0, squeeze=False):
        self.dim, self.sizes, self.squeeze, self.in_shape = dim, sizes, squeeze, a.shape
        pre = (slice(None),) * dim
        if squeeze:
            return tuple(a[pre + (i, Ellipsis)] for i in range(len(sizes)))
        out = []
        start = 0
        for s in sizes:
            out.append(a[pre + (slice(start, start + s),)])
            start += s
        return tuple(out)

    def backward(self, grads):
        like = next(g for g in grads if g is not None)
        xp = backend.array_module(like._data)
        full = []
        for size, g in zip(self.sizes, grads):
            if g is None:
                shape = list(self.in_shape)
                if self.squeeze:
                    del shape[self.dim]
                else:
                    shape[self.dim] = size
                g = Tensor._make(xp.zeros(tuple(shape), dtype=like._data.dtype))
            full.append(g)
        return stack(full, self.dim) if self.squeeze else cat(full, self.dim)


_SPLIT_NODES: dict = {}


def _split_node(k: int) -> type:
    """The ``Split`` subclass with ``k`` outputs (``Node.apply`` reads ``n_outputs`` there)."""
    cls = _SPLIT_NODES.get(k)
    if cls is None:
        cls = _SPLIT_NODES[k] = type("Split", (Split,), {"__slots__": (), "n_outputs": k})
    return cls


def _split(input, sizes: tuple, dim: int, squeeze: bool = False) -> tuple:
    if len(sizes) == 1:  # one piece: a plain view (Node.apply returns a tuple only for k > 1)
        key = (slice(None),) * dim + ((0 if squeeze else slice(None)), Ellipsis)
        return (Slice.apply(input, key=key),)
    if not sizes:
        return ()
    outs = _split_node(len(sizes)).apply(input, sizes=sizes, dim=dim, squeeze=squeeze)
    for o in outs:  # views: they share the input's version counter
        o._vc = input._vc
    return outs


def _dim_of(input, dim: int, op: str) -> int:
    if input._data.ndim == 0:
        raise RuntimeError(f"{op} expects at least a 1-dimensional tensor")
    return wrap_dim(dim, input._data.ndim, op)


def split(tensor, split_size_or_sections, dim: int = 0) -> tuple:
    """Views of pieces along ``dim``: of size ``split_size`` each (the last may be smaller), or
    of the listed sizes.

    >>> import chainrule as cr
    >>> x = cr.arange(5)
    >>> [len(p) for p in x.split(2)], [len(p) for p in x.split([1, 4])]
    ([2, 2, 1], [1, 4])
    """
    d = _dim_of(tensor, dim, "split")
    n = tensor._data.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = tuple(int(s) for s in split_size_or_sections)
        if sum(sizes) != n or any(s < 0 for s in sizes):
            raise RuntimeError(
                f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's size "
                f"at dimension {d}), but got split_sizes={list(sizes)}"
            )
        return _split(tensor, sizes, d)
    size = int(split_size_or_sections)
    if size < 0 or (size == 0 and n != 0):
        raise RuntimeError(
            f"split_size can only be 0 if dimension size is 0, but got dimension size of {n}"
        )
    if n == 0:
        return _split(tensor, (0,), d)
    sizes = (size,) * (n // size) + ((n % size,) if n % size else ())
    return _split(tensor, sizes, d)


def chunk(input, chunks: int, dim: int = 0) -> tuple:
    """Split into ``chunks`` pieces of ``ceil(size / chunks)`` (fewer when they run out)."""
    if chunks <= 0:
        raise RuntimeError(f"chunk expects `chunks` to be greater than 0, got: {chunks}")
    d = _dim_of(input, dim, "chunk")
    n = input._data.shape[d]
    if n == 0:
        return _split(input, (0,) * chunks, d)
    return split(input, -(-n // chunks), d)


def unbind(input, dim: int = 0) -> tuple:
    """The slices along ``dim``, each with that dimension removed (views)."""
    d = _dim_of(input, dim, "unbind")
    return _split(input, (1,) * input._data.shape[d], d, squeeze=True)


# Tensor methods (bound in ops/__init__.py)
METHODS = {
    "reshape": reshape,
    "view": view,
    "reshape_as": reshape_as,
    "view_as": reshape_as,
    "expand": expand,
    "expand_as": expand_as,
    "broadcast_to": broadcast_to,
    "permute": permute,
    "transpose": transpose,
    "swapaxes": transpose,
    "swapdims": transpose,
    "t": t,
    "flatten": flatten,
    "unflatten": unflatten,
    "ravel": ravel,
    "squeeze": squeeze,
    "unsqueeze": unsqueeze,
    "movedim": movedim,
    "moveaxis": movedim,
    "repeat": repeat,
    "tile": tile,
    "flip": flip,
    "roll": roll,
    "split": split,
    "chunk": chunk,
    "unbind": unbind,
    "narrow": narrow,
    "select": select,
    "tril": tril,
    "triu": triu,
    "tril_": _tril_,
    "triu_": _triu_,
    "clone": clone,
    "contiguous": contiguous,
    "is_contiguous": is_contiguous,
}
