"""Fused sequence kernels: a whole recurrent layer, or one attention call, as ONE primitive.

Why fused (for speed): a recurrent layer written with small ops records ~20 graph nodes per
time step, and the engine then spends more time on bookkeeping than on arithmetic. Here each
layer-direction is one :class:`Node`, as cuDNN does for PyTorch on GPUs:

* forward: a loop over time does one matmul per step and the gate arithmetic, writing into
  preallocated arrays (the activated gates and cell states are kept for the backward). The
  GRU and RNN kernels project the inputs of *all* steps with one big matmul first; the LSTM
  kernel stacks each step's input and hidden state so that its per-step matmul does both
  (see :class:`LSTMSequence`);
* backward: a hand-written backpropagation through time (BPTT) runs the loop in reverse,
  collects the gate gradients of every step in one array, and turns them into the input and
  weight gradients with one big matmul each.

Attention (:class:`Attention`) is fused the same way: scores, mask, softmax, dropout and the
weighted sum in one node whose backward is the softmax Jacobian written out by hand.

Gate order and formulas are PyTorch's (LSTM ``i, f, g, o``; GRU ``r, z, n`` with ``b_hn``
inside the reset product), so PyTorch weights give the same numbers.

Higher-order gradients: when a backward must itself be differentiable (``create_graph=True``,
which is exactly when grad mode is on inside a backward rule) the fused nodes do not use their
array code. They recompute the forward from the saved inputs with ordinary chainrule ops and
run the same BPTT written with chainrule ops (the ``_*_backward_ops`` functions), so every
gradient they return is recorded. That path is slow (many small nodes) but exact.

The public functions follow PyTorch's low-level ``torch.lstm`` / ``torch.gru`` /
``torch.rnn_tanh`` / ``torch.lstm_cell``... signatures; ``chainrule.nn.LSTM`` and friends are
thin modules over them. :func:`scaled_dot_product_attention` is exported by
``chainrule.nn.functional``.
"""

from __future__ import annotations

import math

from chainrule import backend
from chainrule.backend import array_module
from chainrule.ops import elementwise as ew
from chainrule.ops import movement as mv
from chainrule.ops import reduce as rd
from chainrule.ops.linalg import matmul
from chainrule.tensor import BufferedNode, Tensor, modes

__all__ = [
    "rnn_tanh",
    "rnn_relu",
    "lstm",
    "gru",
    "rnn_tanh_cell",
    "rnn_relu_cell",
    "lstm_cell",
    "gru_cell",
]

# ---------------------------------------------------------------------------------------------
# array helpers shared by the recurrent kernels
# ---------------------------------------------------------------------------------------------


def _time_major(xp, a, batch_first: bool):
    """``a`` as a C-contiguous ``(T, B, ...)`` array: a copy when it is stored batch-first
    (or is not contiguous), else ``a`` itself.

    Why (speed): the kernels touch one time step at a time. Batch-first, a step's B rows lie
    ``T * features`` elements apart; when that stride is a power of two (T = 64, 4H = 1024)
    every row maps to the same cache sets and the step's small passes keep missing. Time-major,
    a step is one contiguous block; the copy at the layer's edge costs far less.
    """
    return xp.ascontiguousarray(a.swapaxes(0, 1) if batch_first else a)


def _caller_layout(xp, a, batch_first: bool):
    """A time-major ``(T, B, ...)`` array back in the caller's layout (a new array when
    ``batch_first``, else ``a`` itself)."""
    return xp.ascontiguousarray(a.swapaxes(0, 1)) if batch_first else a


def _project(xp, x, w, bias, out):
    """``x @ w.T + bias`` for all time steps with ONE matmul into ``out`` (rows, G), returned
    in ``x``'s own layout."""
    xp.matmul(x.reshape(-1, x.shape[-1]), w.T, out=out)
    if bias is not None:
        out += bias
    return out.reshape(*x.shape[:-1], w.shape[0])


def _gate_factors(xp, n_sigmoid: int, n: int, dtype):
    """Row factors folded into copies of the gate weights: -1 (sigmoid gates), -2 (tanh gate).

    With them, ONE ``exp`` call per step serves every gate (see :func:`_activate_`).
    Multiplying by -1 or -2 is exact in floating point, so nothing is lost.
    """
    factors = xp.full((n, 1), -2.0, dtype)
    factors[:n_sigmoid] = -1.0
    return factors


def _activate_(xp, a, n_sigmoid: int):
    """Gates from pre-activations scaled by :func:`_gate_factors`, in place.

    ``a`` is ``(B, gate features)``, the first ``n_sigmoid`` columns sigmoid gates and the
    rest a tanh gate (the LSTM kernel passes its hidden-major block transposed, a view).
    ``1 / (1 + exp(a))`` is ``sigmoid(x)`` on the sigmoid columns (``a = -x``) and
    ``sigmoid(2x)`` on the others, where ``tanh(x) = 2 sigmoid(2x) - 1``. NumPy's ``exp`` is
    about twice as fast as its ``tanh``, and ``exp`` overflowing to ``inf`` gives the right
    limit 0 (the callers silence that warning).
    """
    xp.exp(a, out=a)
    a += 1
    xp.divide(1, a, out=a)  # NumPy's divide is faster than its reciprocal here
    g = a[:, n_sigmoid:]
    g *= 2
    g -= 1


def _steps(n_t: int, reverse: bool) -> list:
    """Time indices in the order the recurrence visits them."""
    return list(range(n_t - 1, -1, -1)) if reverse else list(range(n_t))


def _grad_array(g, xp, shape, dtype):
    """A fresh copy of an incoming gradient's array (the BPTT adds into it), or zeros."""
    if g is None:
        return xp.zeros(shape, dtype)
    return xp.array(g._data, dtype=dtype, copy=True)


def _t(a) -> Tensor | None:
    return None if a is None else Tensor._make(a)


def _flat(a):
    return a.reshape(-1, a.shape[-1])


class _ScratchPool:
    """Large scratch arrays of the fused kernels, reused from one call to the next (speed).

    A training step needs the same big arrays every time (gate activations, cell states, gate
    gradients). Memory fresh from the operating system costs a page fault per 4 KiB page when
    first written, about a sixth of a step at the benchmark sizes; warm arrays avoid that. A
    node gives its arrays back when it no longer needs them (right after its backward, see
    :class:`_FusedNode`); at most ``limit`` bytes wait here, the least recently returned
    dropped first. Arrays handed to the user (outputs, gradients) never come from here.
    """

    min_bytes = 1 << 16  # smaller arrays are cheap to allocate
    limit = 256 << 20

    def __init__(self):
        self.idle: dict = {}  # (array module, shape, dtype) -> arrays
        self.bytes = 0

    def take(self, xp, shape, dtype):
        key = (xp, tuple(shape), dtype)
        stack = self.idle.get(key)
        if not stack:
            return xp.empty(shape, dtype)
        a = stack.pop()
        if not stack:
            del self.idle[key]
        self.bytes -= a.nbytes
        return a

    def give(self, arrays) -> None:
        for a in arrays:
            if a is None or a.nbytes < self.min_bytes:
                continue
            key = (array_module(a), a.shape, a.dtype)
            stack = self.idle.pop(key, [])
            stack.append(a)
            self.idle[key] = stack  # (re)inserted last: the most recently used
            self.bytes += a.nbytes
        while self.bytes > self.limit:
            key = next(iter(self.idle))
            stack = self.idle[key]
            self.bytes -= stack.pop(0).nbytes
            if not stack:
                del self.idle[key]


_POOL = _ScratchPool()


class _FusedNode(BufferedNode):
    """A fused primitive whose buffers (see :class:`~chainrule.tensor.BufferedNode`) include
    scratch arrays taken from the pool: released with the buffers, they go back to it."""

    __slots__ = ("scratch",)

    def _take(self, xp, shape, dtype):
        """A scratch array from the pool, returned to it when this node is released."""
        a = _POOL.take(xp, shape, dtype)
        self.scratch.append(a)
        return a

    def release(self) -> None:
        super().release()
        _POOL.give(self.scratch)
        self.scratch = []


class _Recurrent(_FusedNode):
    """What the recurrent kernels share: layout flags, the step order, and the time-major
    arrays the GRU and RNN kernels work in (see :func:`_time_major`; the LSTM kernel works
    hidden-major, see :class:`LSTMSequence`)."""

    __slots__ = ("reverse", "batch_first", "prev", "x_tm")

    def _input(self, xp, x):
        """The input time-major, kept for ``dW_ih`` (a scratch copy unless ``x`` already is)."""
        view = x.swapaxes(0, 1) if self.batch_first else x
        if view.flags.c_contiguous:
            self.x_tm = view
        else:
            self.x_tm = self._take(xp, view.shape, x.dtype)
            self.x_tm[...] = view
        return self.x_tm

    def _hidden_states(self, xp, h0, n_t: int):
        """Scratch ``(T + 1, B, P)`` for every hidden state of the recurrence, ``h0``
        included, time-major; returns ``out`` where ``out[t]`` is step ``t``'s output.

        ``prev[t]``, the state step ``t`` started from, is a view of the same array, so
        ``dW_hh`` is ONE matmul of all gate gradients with it and no copy is needed.
        """
        states = self._take(xp, (n_t + 1, *h0.shape), h0.dtype)
        if self.reverse:
            states[n_t] = h0
            out, self.prev = states[:n_t], states[1:]
        else:
            states[0] = h0
            out, self.prev = states[1:], states[:n_t]
        return out

    def _output(self, xp, out):
        """The output handed to the caller: a new array in its layout (the kernel keeps the
        states it saved for the backward to itself)."""
        return _caller_layout(xp, out, self.batch_first) if self.batch_first else out.copy()

    def _input_grad(self, xp, flat, w_ih):
        """``dx`` in the caller's layout from the time-major gate gradients ``flat``."""
        n_t, n_b = self.prev.shape[:2]
        return _caller_layout(xp, (flat @ w_ih).reshape(n_t, n_b, -1), self.batch_first)

    def _grad_out(self, xp, g_out):
        """The output's gradient time-major (None stays None)."""
        return None if g_out is None else _time_major(xp, g_out._data, self.batch_first)


# ---------------------------------------------------------------------------------------------
# LSTM
# ---------------------------------------------------------------------------------------------


def _lstm_perm(xp, n_h: int):
    """Row order of the LSTM kernel: ``o, i, f, g`` instead of PyTorch's ``i, f, g, o``.

    The sigmoid gates (o, i, f) are then adjacent (one slice to activate in the forward), and
    so are the gates whose gradients are the cell gradient times a factor (i, f, g): one
    broadcast product per step in the backward.
    """
    return xp.concatenate([xp.arange(3 * n_h, 4 * n_h), xp.arange(0, 3 * n_h)])


def _steps_to_hidden_major(xp, a, batch_first: bool, out) -> None:
    """Copy ``a`` (``(T, B, F)``, or ``(B, T, F)`` when ``batch_first``) into ``out``, whose
    ``out[t]`` are ``(F, B)`` blocks.

    For speed: a whole-array transposing copy fetches almost every element from a different
    cache line. Here batch-first input first becomes time-major (whole feature rows move),
    then each step is one small transpose of a contiguous block that stays in L1.
    """
    a = _time_major(xp, a, batch_first)
    for t in range(a.shape[0]):
        out[t] = a[t].T


def _hidden_major_to_steps(xp, a, batch_first: bool):
    """A new array in the caller's layout (``(T, B, F)`` or ``(B, T, F)``) from a hidden-major
    ``(F, T, B)`` one (the reverse of :func:`_steps_to_hidden_major`, and for the same
    reason one step at a time)."""
    n_f, n_t, n_b = a.shape
    out = xp.empty((n_t, n_b, n_f), a.dtype)
    for t in range(n_t):
        out[t] = a[:, t].T
    return _caller_layout(xp, out, batch_first)


def _lstm_gates(gt, n_h: int) -> tuple:
    """The four gates of one step (rows of a hidden-major ``(4H, B)`` block), kernel order."""
    return gt[:n_h], gt[n_h : 2 * n_h], gt[2 * n_h : 3 * n_h], gt[3 * n_h :]


def _columns(n: int, n_b: int, itemsize: int) -> int:
    """How many time columns a hidden-major ``(F, columns, B)`` array gets: at least ``n``,
    one more while a feature row would span a multiple of 4 KiB (rows a power of two apart
    share cache sets, and a step's block reads one piece of every row)."""
    row = n_b * itemsize
    while row % 4096 and (n * row) % 4096 == 0:
        n += 1
    return n


class LSTMSequence(_Recurrent):
    """One LSTM layer in one direction over a whole sequence (fused for speed).

    Inputs: ``x (T, B, I)`` (``(B, T, I)`` with ``batch_first``), ``h0 (B, P)``, ``c0 (B, H)``,
    ``w_ih (4H, I)``, ``w_hh (4H, P)``, ``b_ih``/``b_hh (4H)`` or None, ``w_hr (P, H)`` or None
    (projections; otherwise ``P = H``). Outputs ``(out, h_n, c_n)``; ``reverse`` runs the
    recurrence from the last step to the first (the backward direction of a bidirectional
    layer).

    Layout (for speed): the kernel works *hidden-major*, a step's values being a ``(features,
    B)`` block. Each time column of ``z (I + P + 1, columns, B)`` holds a step's input, the
    hidden state it starts from and a row of ones, so ONE matmul per step,
    ``w_cat (4H, I + P + 1) @ z[:, column]``, gives all four gates' pre-activations, bias
    included; and after the loop ``dW_ih``, ``dW_hh`` and the bias gradient are ONE matmul of
    the gate gradients with ``z``. Step ``t`` reads column ``t`` and writes ``h_t`` into column
    ``t + 1`` (``t + 1`` and ``t`` when ``reverse``). On the benchmark sizes this orientation
    makes the recurrent matmul about 15% faster than ``(B, P) @ (P, 4H)``, and every gate is a
    contiguous block.
    """

    __slots__ = ("gates", "cells", "tanh_cells", "proj_in", "perm", "z", "through_h")
    _buffers = ("z", "gates", "cells", "tanh_cells", "proj_in", "through_h")
    n_outputs = 3
    saves = (0, 1, 2, 3, 4, 5, 6, 7)

    def forward(
        self, xp, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse=False, batch_first=False
    ):
        self.reverse, self.batch_first, self.scratch = reverse, batch_first, []
        x_steps = x.swapaxes(0, 1) if batch_first else x  # (T, B, I)
        n_t, n_b, n_i = x_steps.shape
        n_h, n_p, dt = c0.shape[-1], h0.shape[-1], x.dtype
        n_k = n_i + n_p + (b_ih is not None)
        perm = self.perm = _lstm_perm(xp, n_h)
        scale = _gate_factors(xp, 3 * n_h, 4 * n_h, dt)  # kernel order: o, i, f are sigmoids
        w_cat = xp.empty((4 * n_h, n_k), dt)
        xp.multiply(w_ih[perm], scale, out=w_cat[:, :n_i])
        xp.multiply(w_hh[perm], scale, out=w_cat[:, n_i : n_i + n_p])
        lo = int(reverse)  # columns lo .. lo + T - 1 are read, 1 - lo .. T - lo written
        z = self.z = self._take(xp, (n_k, _columns(n_t + 1, n_b, dt.itemsize), n_b), dt)
        _steps_to_hidden_major(xp, x, batch_first, z[:n_i, lo : lo + n_t].swapaxes(0, 1))
        z[n_i : n_i + n_p, n_t * lo] = h0.T
        if b_ih is not None:
            w_cat[:, -1] = (b_ih + b_hh)[perm] * scale[:, 0]
            z[-1] = 1
        hidden = z[n_i : n_i + n_p]
        gates = self._take(xp, (n_t, 4 * n_h, n_b), dt)  # gates[k]: the k-th step taken
        # cells[k + 1] is the cell state after the k-th step taken, cells[0] the initial one
        cells = self._take(xp, (n_t + 1, n_h, n_b), dt)
        cells[0] = c0.T
        tanh_cells = self._take(xp, (n_t, n_h, n_b), dt)
        proj_in = None if w_hr is None else self._take(xp, (n_h, z.shape[1], n_b), dt)
        ig = xp.empty((n_h, n_b), dt)
        with backend.errstate(over="ignore"):  # exp -> inf is fine (_activate_)
            for k, t in enumerate(_steps(n_t, reverse)):
                gt, tc, written = gates[k], tanh_cells[k], t + 1 - lo
                xp.matmul(w_cat, z[:, t + lo], out=gt)
                _activate_(xp, gt.T, 3 * n_h)
                o, i, f, g = _lstm_gates(gt, n_h)
                c = cells[k + 1]
                xp.multiply(f, cells[k], out=c)
                xp.multiply(i, g, out=ig)
                c += ig
                xp.tanh(c, out=tc)
                if w_hr is None:
                    xp.multiply(o, tc, out=hidden[:, written])
                else:
                    xp.multiply(o, tc, out=proj_in[:, written])
                    xp.matmul(w_hr, proj_in[:, written], out=hidden[:, written])
        self.gates, self.cells, self.tanh_cells, self.proj_in = gates, cells, tanh_cells, proj_in
        self.through_h = None  # made by the first backward (_factors)
        out = _hidden_major_to_steps(xp, hidden[:, 1 - lo : 1 - lo + n_t], batch_first)
        return out, hidden[:, n_t * (1 - lo)].T.copy(), cells[n_t].T.copy()

    def _factors(self, xp) -> None:
        """Turn the saved activations into the step-independent factors of the BPTT.

        With ``dh`` and ``dc`` the gradients reaching step ``k``'s outputs, the step's gate
        gradients are ``d_o = dh * tanh(c) o (1 - o)``, ``dc += dh * o (1 - tanh(c)^2)``,
        then ``d_i = dc * g i (1 - i)``, ``d_f = dc * c_prev f (1 - f)``,
        ``d_g = dc * i (1 - g^2)``, and ``dc * f`` goes on to step ``k - 1``. Everything but
        ``dh`` and ``dc`` is known after the forward, so it is computed here for many steps at
        a time (for speed: a few large NumPy calls instead of a dozen small ones per step;
        chunks of 8 steps, whose arrays stay in the L2 cache across the passes), in place:
        ``gates[k]`` becomes the four factors of ``d_o, d_i, d_f, d_g``, ``tanh_cells[k]``
        becomes ``f`` and ``through_h[k]`` is ``o (1 - tanh(c)^2)``. Done once, so a second
        backward (``retain_graph``) finds the same factors.
        """
        gates, tanh_c, cells = self.gates, self.tanh_cells, self.cells
        n_t, n_h, n_b = tanh_c.shape
        dt, chunk = tanh_c.dtype, 8
        self.through_h = self._take(xp, tanh_c.shape, dt)
        spare, spare2 = xp.empty((chunk, n_h, n_b), dt), xp.empty((chunk, 2 * n_h, n_b), dt)
        for k in range(0, n_t, chunk):
            steps = slice(k, k + chunk)
            g4, tc, through_h = gates[steps], tanh_c[steps], self.through_h[steps]
            s1, s2 = spare[: len(tc)], spare2[: len(tc)]
            o, i, f, g = (g4[:, j * n_h : (j + 1) * n_h] for j in range(4))  # (T, H, B) each
            xp.multiply(tc, tc, out=through_h)
            xp.subtract(1, through_h, out=through_h)
            through_h *= o
            xp.subtract(1, o, out=s1)
            o *= s1
            o *= tc
            tc[...] = f
            xp.multiply(g, g, out=s1)
            xp.subtract(1, s1, out=s1)
            s1 *= i  # the factor of d_g, stored once i is no longer needed
            i_f = g4[:, n_h : 3 * n_h]
            xp.subtract(1, i_f, out=s2)
            i_f *= s2
            i *= g
            f *= cells[k : k + len(tc)]  # c_prev of each step
            g[...] = s1

    def backward(self, grads, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
        if modes.grad_enabled:  # create_graph: the differentiable path (module docstring)
            return _lstm_backward_ops(self, grads, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr)
        g_out, g_h, g_c = grads
        z, gates, cells = self.z, self.gates, self.cells
        xp = array_module(z)
        dt = z.dtype
        n_t, n_b = gates.shape[0], gates.shape[2]
        n_h, n_p, n_i = cells.shape[1], h0.shape[-1], x.shape[-1]
        lo = int(self.reverse)
        perm = self.perm
        w_hh_kt = w_hh._data[perm].T  # (P, 4H), kernel order (a transposed view: BLAS reads
        # it as is, where a transposing copy would cost as much as three steps)
        # gradient w.r.t. every gate's pre-activation, in the column its step read (kernel order)
        dgates = _POOL.take(xp, (4 * n_h, *z.shape[1:]), dt)
        gout = None
        if g_out is not None:  # gout[t]: (P, B)
            gout = _POOL.take(xp, (n_t, n_p, n_b), dt)
            _steps_to_hidden_major(xp, g_out._data, self.batch_first, gout)
        dh = xp.zeros((n_p, n_b), dt) if g_h is None else xp.array(g_h._data.T, dt, order="C")
        dc = xp.zeros((n_h, n_b), dt) if g_c is None else xp.array(g_c._data.T, dt, order="C")
        dh_all = None if w_hr is None else _POOL.take(xp, (n_p, *z.shape[1:]), dt)
        dhr = dh if w_hr is None else xp.empty((n_h, n_b), dt)
        if self.through_h is None:
            self._factors(xp)
        through_h, factors, forget = self.through_h, self.gates, self.tanh_cells
        tmp = xp.empty((n_h, n_b), dt)
        steps = _steps(n_t, self.reverse)
        for k in range(n_t - 1, -1, -1):
            t = steps[k]
            d = dgates[:, t + lo]
            if gout is not None:
                dh += gout[t]
            if w_hr is not None:  # h = w_hr @ proj_in
                dh_all[:, t + 1 - lo] = dh
                xp.matmul(w_hr._data.T, dh, out=dhr)
            xp.multiply(dhr, through_h[k], out=tmp)  # h = o * tanh(c): dc gets a share
            dc += tmp
            xp.multiply(dhr, factors[k, :n_h], out=d[:n_h])  # d_o
            # d_i, d_f, d_g: dc times their three factors, in one broadcast product
            xp.multiply(dc, factors[k, n_h:].reshape(3, n_h, n_b), out=d[n_h:].reshape(3, n_h, -1))
            dc *= forget[k]  # c = f * c_prev + ...
            xp.matmul(w_hh_kt, d, out=dh)  # into the previous step
        # the weights, bias and input: one matmul each over all steps
        edges = self.edges
        flat = dgates[:, lo : lo + n_t].reshape(4 * n_h, -1)  # (4H, T * B), a view

        def unperm(a):  # kernel row order back to PyTorch's
            out = xp.empty_like(a)
            out[perm] = a
            return out

        dx = dw_ih = dw_hh = db = dw_hr = None
        if edges[0]:  # rows in (t, b) order: time-major, no transposing copy
            dx = (flat.T @ w_ih._data[perm]).reshape(n_t, n_b, n_i)
            dx = _caller_layout(xp, dx, self.batch_first)
        if any(edges[3:7]):
            dw = flat @ z[:, lo : lo + n_t].reshape(z.shape[0], -1).T  # (4H, I + P + 1)
            dw_ih, dw_hh = unperm(dw[:, :n_i]), unperm(dw[:, n_i : n_i + n_p])
            db = None if b_ih is None else unperm(dw[:, -1])
        if w_hr is not None and edges[7]:
            cols = slice(1 - lo, 1 - lo + n_t)
            dw_hr = dh_all[:, cols].reshape(n_p, -1) @ self.proj_in[:, cols].reshape(n_h, -1).T
        _POOL.give((dgates, dh_all, gout))
        return (
            _t(dx),
            _t(dh.T.copy()),
            _t(dc.T.copy()),
            _t(dw_ih),
            _t(dw_hh),
            _t(db),
            _t(db),
            _t(dw_hr),
        )


def _zeros(like: Tensor) -> Tensor:
    return Tensor._make(array_module(like._data).zeros_like(like._data))


def _finish_ops(x, d_in, d_hid, prevs, w_ih, batch_first):
    """Input, weight and bias gradients from the per-step gate gradients (written with ops).

    ``d_in[t]`` is the gradient of step t's input projection, ``d_hid[t]`` that of its
    hidden-state projection (the same tensor except in the GRU).
    """
    dgi, dgh = mv.stack(d_in, 0), mv.stack(d_hid, 0)  # (T, B, G)
    xs = mv.transpose(x, 0, 1) if batch_first else x
    dx = matmul(dgi, w_ih)
    fi, fh = mv.reshape(dgi, (-1, dgi.shape[-1])), mv.reshape(dgh, (-1, dgh.shape[-1]))
    hp = mv.stack(prevs, 0)
    return (
        mv.transpose(dx, 0, 1) if batch_first else dx,
        matmul(mv.t(fi), mv.reshape(xs, (-1, xs.shape[-1]))),
        matmul(mv.t(fh), mv.reshape(hp, (-1, hp.shape[-1]))),
        rd.sum(fi, 0),
        rd.sum(fh, 0),
    )


def _unbind_time(a: Tensor | None, batch_first: bool):
    if a is None:
        return None
    return mv.unbind(mv.transpose(a, 0, 1) if batch_first else a, 0)


def _stack_time(steps: list, batch_first: bool) -> Tensor:
    out = mv.stack(steps, 0)
    return mv.transpose(out, 0, 1) if batch_first else out


def _lstm_forward_ops(x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse, batch_first, record=None):
    """The LSTM layer written with ordinary ops (one node per op): the unfused reference.

    With ``record`` (a list), every step appends the values its backward needs.
    """
    pre = _unbind_time(
        matmul(x, mv.t(w_ih)) if b_ih is None else matmul(x, mv.t(w_ih)) + b_ih + b_hh, batch_first
    )
    outs = [None] * len(pre)
    h, c = h0, c0
    for t in _steps(len(pre), reverse):
        i, f, g, o = mv.chunk(pre[t] + matmul(h, mv.t(w_hh)), 4, 1)
        i, f, g, o = ew.sigmoid(i), ew.sigmoid(f), ew.tanh(g), ew.sigmoid(o)
        c_next = f * c + i * g
        tc = ew.tanh(c_next)
        hr = o * tc
        if record is not None:
            record.append((t, i, f, g, o, c, tc, h, hr))
        h, c = (hr if w_hr is None else matmul(hr, mv.t(w_hr))), c_next
        outs[t] = h
    return _stack_time(outs, batch_first), h, c


def _lstm_backward_ops(node, grads, x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr):
    """BPTT of :class:`LSTMSequence` written with ops, so that it can be differentiated."""
    g_out, g_h, g_c = grads
    record: list = []
    _lstm_forward_ops(
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, node.reverse, node.batch_first, record
    )
    gouts = _unbind_time(g_out, node.batch_first)
    dh = _zeros(h0) if g_h is None else g_h
    dc = _zeros(c0) if g_c is None else g_c
    dgates, prevs = [None] * len(record), [None] * len(record)
    dw_hr = None
    for t, i, f, g, o, c_prev, tc, h_prev, hr in reversed(record):
        if gouts is not None:
            dh = dh + gouts[t]
        if w_hr is not None:  # h = hr @ w_hr.T
            step = matmul(mv.t(dh), hr)
            dw_hr = step if dw_hr is None else dw_hr + step
            dh = matmul(dh, w_hr)
        d_o = dh * tc
        dc = dc + dh * o * (1 - tc * tc)
        di, df, dg = dc * g, dc * c_prev, dc * i
        dc = dc * f
        d = mv.cat([di * i * (1 - i), df * f * (1 - f), dg * (1 - g * g), d_o * o * (1 - o)], 1)
        dgates[t], prevs[t] = d, h_prev
        dh = matmul(d, w_hh)
    dx, dw_ih, dw_hh, db, _ = _finish_ops(x, dgates, dgates, prevs, w_ih, node.batch_first)
    if b_ih is None:
        db = None
    return dx, dh, dc, dw_ih, dw_hh, db, db, dw_hr


# ---------------------------------------------------------------------------------------------
# GRU
# ---------------------------------------------------------------------------------------------


class GRUSequence(_Recurrent):
    """One GRU layer in one direction over a whole sequence (fused for speed).

    PyTorch's formulation: ``r = σ(x W_ir + b_ir + h W_hr + b_hr)``, ``z`` likewise,
    ``n = tanh(x W_in + b_in + r * (h W_hn + b_hn))``, ``h' = (1 - z) * n + z * h``.
    Inputs ``x, h0 (B, H), w_ih (3H, I), w_hh (3H, H), b_ih, b_hh (3H) or None``; outputs
    ``(out, h_n)``. Works time-major (see :func:`_time_major`).
    """

    __slots__ = ("gates", "hidden_n")
    _buffers = ("prev", "x_tm", "gates", "hidden_n")
    n_outputs = 2
    saves = (0, 1, 2, 3, 4, 5)

    def forward(self, xp, x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False, batch_first=False):
        self.reverse, self.batch_first, self.scratch = reverse, batch_first, []
        n_h, dt = h0.shape[-1], x.dtype
        # r and z: sigmoid rows negated for _activate_; n: unscaled (it is not activated
        # before the reset gate multiplies its hidden part)
        scale = xp.ones((3 * n_h, 1), dt)
        scale[: 2 * n_h] = -1.0
        bias = None if b_ih is None else b_ih * scale[:, 0]
        x_tm = self._input(xp, x)
        n_t, n_b = x_tm.shape[:2]
        gates = self._take(xp, (n_t * n_b, 3 * n_h), dt)
        gates = _project(xp, x_tm, w_ih * scale, bias, gates)  # (T, B, 3H)
        w_hh_t = xp.ascontiguousarray((w_hh * scale).T)
        b_hh_h = None if b_hh is None else b_hh * scale[:, 0]
        out = self._hidden_states(xp, h0, n_t)
        hidden_n = self._take(xp, (n_t, n_b, n_h), dt)  # step k's h W_hn + b_hn, for the backward
        hw = xp.empty((n_b, 3 * n_h), dt)
        tmp = xp.empty((n_b, n_h), dt)
        h = h0
        with backend.errstate(over="ignore"):  # exp -> inf is fine (_activate_)
            for k, t in enumerate(_steps(n_t, reverse)):
                gt = gates[t]
                xp.matmul(h, w_hh_t, out=hw)
                if b_hh_h is not None:
                    hw += b_hh_h
                rz = gt[:, : 2 * n_h]
                rz += hw[:, : 2 * n_h]
                _activate_(xp, rz, 2 * n_h)
                r, z, n = gt[:, :n_h], gt[:, n_h : 2 * n_h], gt[:, 2 * n_h :]
                hidden_n[k] = hw[:, 2 * n_h :]
                xp.multiply(r, hidden_n[k], out=tmp)
                n += tmp
                xp.tanh(n, out=n)
                h_next = out[t]  # n + z * (h - n)
                xp.subtract(h, n, out=h_next)
                h_next *= z
                h_next += n
                h = h_next
        self.gates, self.hidden_n = gates, hidden_n
        return self._output(xp, out), h.copy()

    def backward(self, grads, x, h0, w_ih, w_hh, b_ih, b_hh):
        if modes.grad_enabled:  # create_graph: the differentiable path (module docstring)
            return _gru_backward_ops(self, grads, x, h0, w_ih, w_hh, b_ih, b_hh)
        g_out, g_h = grads
        gates, hidden_n, prev = self.gates, self.hidden_n, self.prev
        xp = array_module(gates)
        dt = gates.dtype
        n_t, n_b = gates.shape[:2]
        n_h = h0.shape[-1]
        w_hh_a = w_hh._data
        # gradients of the input projections and of the hidden projections, per step
        d_in = _POOL.take(xp, gates.shape, dt)
        d_hid = _POOL.take(xp, gates.shape, dt)
        gout = self._grad_out(xp, g_out)
        dh = _grad_array(g_h, xp, (n_b, n_h), dt)
        tmp = xp.empty((n_b, n_h), dt)
        dsig = xp.empty((n_b, 2 * n_h), dt)
        steps = _steps(n_t, self.reverse)
        for k in range(n_t - 1, -1, -1):
            t = steps[k]
            gt, di, dhid = gates[t], d_in[t], d_hid[t]
            r, z, n = gt[:, :n_h], gt[:, n_h : 2 * n_h], gt[:, 2 * n_h :]
            if gout is not None:
                dh += gout[t]
            # h' = (1 - z) n + z h
            dn = di[:, 2 * n_h :]
            xp.subtract(1, z, out=tmp)
            xp.multiply(dh, tmp, out=dn)
            xp.subtract(prev[t], n, out=tmp)
            xp.multiply(dh, tmp, out=di[:, n_h : 2 * n_h])
            # n = tanh(x W_in + b_in + r * hidden_n)
            xp.multiply(n, n, out=tmp)
            xp.subtract(1, tmp, out=tmp)
            dn *= tmp
            xp.multiply(dn, r, out=dhid[:, 2 * n_h :])
            xp.multiply(dn, hidden_n[k], out=di[:, :n_h])
            # through the sigmoids of r and z (they see the input and the hidden projections)
            rz = gt[:, : 2 * n_h]
            xp.subtract(1, rz, out=dsig)
            dsig *= rz
            di[:, : 2 * n_h] *= dsig
            dhid[:, : 2 * n_h] = di[:, : 2 * n_h]
            dh *= z
            xp.matmul(dhid, w_hh_a, out=tmp)
            dh += tmp
        edges, fi, fh = self.edges, _flat(d_in), _flat(d_hid)
        dx = dw_ih = dw_hh = db_ih = db_hh = None
        if edges[0]:
            dx = self._input_grad(xp, fi, w_ih._data)
        if edges[2]:
            dw_ih = fi.T @ _flat(self.x_tm)
        if edges[3]:
            dw_hh = fh.T @ _flat(prev)
        if edges[4]:
            db_ih = fi.sum(0)
        if edges[5]:
            db_hh = fh.sum(0)
        _POOL.give((d_in, d_hid))
        return _t(dx), _t(dh), _t(dw_ih), _t(dw_hh), _t(db_ih), _t(db_hh)


def _gru_forward_ops(x, h0, w_ih, w_hh, b_ih, b_hh, reverse, batch_first, record=None):
    """The GRU layer written with ordinary ops: the unfused reference (see the LSTM one)."""
    pre = matmul(x, mv.t(w_ih))
    pre = _unbind_time(pre if b_ih is None else pre + b_ih, batch_first)
    outs = [None] * len(pre)
    h = h0
    for t in _steps(len(pre), reverse):
        hw = matmul(h, mv.t(w_hh))
        if b_hh is not None:
            hw = hw + b_hh
        xr, xz, xn = mv.chunk(pre[t], 3, 1)
        hr, hz, hn = mv.chunk(hw, 3, 1)
        r, z = ew.sigmoid(xr + hr), ew.sigmoid(xz + hz)
        n = ew.tanh(xn + r * hn)
        if record is not None:
            record.append((t, r, z, n, hn, h))
        h = n + z * (h - n)
        outs[t] = h
    return _stack_time(outs, batch_first), h


def _gru_backward_ops(node, grads, x, h0, w_ih, w_hh, b_ih, b_hh):
    """BPTT of :class:`GRUSequence` written with ops, so that it can be differentiated."""
    g_out, g_h = grads
    record: list = []
    _gru_forward_ops(x, h0, w_ih, w_hh, b_ih, b_hh, node.reverse, node.batch_first, record)
    gouts = _unbind_time(g_out, node.batch_first)
    dh = _zeros(h0) if g_h is None else g_h
    d_in, d_hid, prevs = [None] * len(record), [None] * len(record), [None] * len(record)
    for t, r, z, n, hn, h_prev in reversed(record):
        if gouts is not None:
            dh = dh + gouts[t]
        dn = dh * (1 - z) * (1 - n * n)
        dr = dn * hn * r * (1 - r)
        dz = dh * (h_prev - n) * z * (1 - z)
        d_in[t] = mv.cat([dr, dz, dn], 1)
        d_hid[t] = mv.cat([dr, dz, dn * r], 1)
        prevs[t] = h_prev
        dh = dh * z + matmul(d_hid[t], w_hh)
    dx, dw_ih, dw_hh, db_ih, db_hh = _finish_ops(x, d_in, d_hid, prevs, w_ih, node.batch_first)
    if b_ih is None:
        db_ih = db_hh = None
    return dx, dh, dw_ih, dw_hh, db_ih, db_hh


# ---------------------------------------------------------------------------------------------
# Elman RNN (tanh or relu)
# ---------------------------------------------------------------------------------------------


class RNNSequence(_Recurrent):
    """One Elman RNN layer in one direction: ``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)``.

    ``nonlinearity`` is ``'tanh'`` or ``'relu'``; outputs ``(out, h_n)``. Works time-major (see
    :func:`_time_major`).
    """

    __slots__ = ("acts", "relu")
    _buffers = ("prev", "x_tm", "acts")
    n_outputs = 2
    saves = (0, 1, 2, 3, 4, 5)

    def forward(
        self,
        xp,
        x,
        h0,
        w_ih,
        w_hh,
        b_ih,
        b_hh,
        nonlinearity="tanh",
        reverse=False,
        batch_first=False,
    ):
        self.reverse, self.batch_first, self.scratch = reverse, batch_first, []
        self.relu = nonlinearity == "relu"
        x_tm = self._input(xp, x)
        n_t, n_b = x_tm.shape[:2]
        pre_full = _POOL.take(xp, (n_t * n_b, w_ih.shape[0]), x.dtype)
        pre = _project(xp, x_tm, w_ih, None if b_ih is None else b_ih + b_hh, pre_full)
        w_hh_t = xp.ascontiguousarray(w_hh.T)
        out = self.acts = self._hidden_states(xp, h0, n_t)  # the activations, kept
        h = h0
        for t in _steps(n_t, reverse):
            a = pre[t]
            xp.matmul(h, w_hh_t, out=out[t])
            a += out[t]
            if self.relu:
                xp.maximum(a, 0, out=out[t])
            else:
                xp.tanh(a, out=out[t])
            h = out[t]
        _POOL.give((pre_full,))
        return self._output(xp, out), h.copy()

    def backward(self, grads, x, h0, w_ih, w_hh, b_ih, b_hh):
        if modes.grad_enabled:  # create_graph: the differentiable path (module docstring)
            return _rnn_backward_ops(self, grads, x, h0, w_ih, w_hh, b_ih, b_hh)
        g_out, g_h = grads
        acts = self.acts
        xp = array_module(acts)
        n_t, n_b, n_h = acts.shape
        dpre = _POOL.take(xp, acts.shape, acts.dtype)
        gout = self._grad_out(xp, g_out)
        dh = _grad_array(g_h, xp, (n_b, n_h), acts.dtype)
        w_hh_a = w_hh._data
        for t in reversed(_steps(n_t, self.reverse)):
            a, d = acts[t], dpre[t]
            if gout is not None:
                dh += gout[t]
            if self.relu:  # relu' = [a > 0]
                xp.greater(a, 0, out=d)
                d *= dh
            else:  # tanh' = 1 - a^2
                xp.multiply(a, a, out=d)
                xp.subtract(1, d, out=d)
                d *= dh
            xp.matmul(d, w_hh_a, out=dh)
        edges, flat = self.edges, _flat(dpre)
        dx = dw_ih = dw_hh = db = None
        if edges[0]:
            dx = self._input_grad(xp, flat, w_ih._data)
        if edges[2]:
            dw_ih = flat.T @ _flat(self.x_tm)
        if edges[3]:
            dw_hh = flat.T @ _flat(self.prev)
        if b_ih is not None and (edges[4] or edges[5]):
            db = flat.sum(0)
        _POOL.give((dpre,))
        return _t(dx), _t(dh), _t(dw_ih), _t(dw_hh), _t(db), _t(db)


def _rnn_forward_ops(
    x, h0, w_ih, w_hh, b_ih, b_hh, nonlinearity, reverse, batch_first, record=None
):
    """The Elman RNN layer written with ordinary ops: the unfused reference."""
    pre = matmul(x, mv.t(w_ih))
    pre = _unbind_time(pre if b_ih is None else pre + b_ih + b_hh, batch_first)
    act = ew.relu if nonlinearity == "relu" else ew.tanh
    outs = [None] * len(pre)
    h = h0
    for t in _steps(len(pre), reverse):
        h_next = act(pre[t] + matmul(h, mv.t(w_hh)))
        if record is not None:
            record.append((t, h_next, h))
        h = outs[t] = h_next
    return _stack_time(outs, batch_first), h


def _rnn_backward_ops(node, grads, x, h0, w_ih, w_hh, b_ih, b_hh):
    """BPTT of :class:`RNNSequence` written with ops, so that it can be differentiated."""
    g_out, g_h = grads
    record: list = []
    nl = "relu" if node.relu else "tanh"
    _rnn_forward_ops(x, h0, w_ih, w_hh, b_ih, b_hh, nl, node.reverse, node.batch_first, record)
    gouts = _unbind_time(g_out, node.batch_first)
    dh = _zeros(h0) if g_h is None else g_h
    dpre, prevs = [None] * len(record), [None] * len(record)
    for t, a, h_prev in reversed(record):
        if gouts is not None:
            dh = dh + gouts[t]
        if node.relu:
            d = dh * ew.gt(a, 0).to(a.dtype)
        else:
            d = dh * (1 - a * a)
        dpre[t], prevs[t] = d, h_prev
        dh = matmul(d, w_hh)
    dx, dw_ih, dw_hh, db, _ = _finish_ops(x, dpre, dpre, prevs, w_ih, node.batch_first)
    if b_ih is None:
        db = None
    return dx, dh, dw_ih, dw_hh, db, db


# ---------------------------------------------------------------------------------------------
# the public recurrent functions (PyTorch's torch.lstm / torch.gru / torch.rnn_* signatures)
# ---------------------------------------------------------------------------------------------


def _check_layer_args(op: str, input: Tensor, hiddens, w_ih: Tensor, w_hh: Tensor, gates: int):
    if input._data.ndim != 3:
        raise RuntimeError(
            f"{op}: expected input to be 3-D (seq_len, batch, input_size) or (batch, seq_len, "
            f"input_size) with batch_first, but got shape {list(input.shape)}"
        )
    for name, t in (("weight_ih", w_ih), ("weight_hh", w_hh), *hiddens):
        if t._data.dtype != input._data.dtype:
            raise RuntimeError(
                f"{op}: input and {name} must have the same dtype, got {input.dtype} and {t.dtype}"
            )
    if w_ih._data.ndim != 2 or w_ih._data.shape[1] != input._data.shape[-1]:
        raise RuntimeError(
            f"{op}: input.size(-1) must be equal to input_size. Expected {w_ih.shape[-1]}, "
            f"got {input.shape[-1]} (input shape {list(input.shape)}, weight_ih shape "
            f"{list(w_ih.shape)})"
        )
    if w_ih._data.shape[0] % gates or w_hh._data.shape[0] != w_ih._data.shape[0]:
        raise RuntimeError(
            f"{op}: weight_ih {list(w_ih.shape)} and weight_hh {list(w_hh.shape)} must both have "
            f"{gates} * hidden_size rows"
        )


def _keep_mask(shape, p: float, dtype):
    """Dropout's multiplier: 0 with probability ``p``, else ``1 / (1 - p)`` (all 0 at p=1)."""
    keep = backend.default_generator.bernoulli(shape, 1.0 - p).astype(dtype)
    return keep * (1.0 / (1.0 - p)) if p < 1.0 else keep


def _dropout_between_layers(x: Tensor, p: float) -> Tensor:
    """Dropout on the output of a non-final layer (training only), as PyTorch's RNNs do."""
    xp = array_module(x._data)
    mask = xp.asarray(_keep_mask(x._data.shape, p, x._data.dtype))
    return x * Tensor._make(mask)


def _stacked(
    op,
    layer,
    input,
    hidden,
    params,
    has_biases,
    num_layers,
    dropout,
    train,
    bidirectional,
    batch_first,
):
    """Run ``layer`` over ``num_layers`` x (1 or 2 directions); ``hidden`` is a list of
    (L*D, B, H) state tensors; returns the output and the list of final-state stacks."""
    dirs = 2 if bidirectional else 1
    params = list(params)
    per = len(params) // (num_layers * dirs) if params else 0
    if per * num_layers * dirs != len(params) or per not in ((4, 5) if has_biases else (2, 3)):
        raise RuntimeError(
            f"{op}: got {len(params)} weight tensors for num_layers={num_layers}, "
            f"bidirectional={bidirectional}, has_biases={has_biases}"
        )
    if input._data.shape[1 if batch_first else 0] == 0:
        raise RuntimeError(f"{op}: expected sequence length to be larger than 0 in RNN")
    states = [mv.unbind(h, 0) for h in hidden]
    for h in hidden:
        if h._data.shape[0] != num_layers * dirs:
            raise RuntimeError(
                f"{op}: expected hidden size ({num_layers * dirs}, batch, hidden), got "
                f"{list(h.shape)}"
            )
    finals = [[] for _ in hidden]
    x = input
    for layer_index in range(num_layers):
        outs = []
        for d in range(dirs):
            k = layer_index * dirs + d
            w = params[k * per : (k + 1) * per]
            out, *last = layer(x, [s[k] for s in states], w, has_biases, d == 1, batch_first)
            outs.append(out)
            for f, h in zip(finals, last):
                f.append(h)
        x = outs[0] if dirs == 1 else mv.cat(outs, -1)
        if dropout and train and layer_index < num_layers - 1:
            x = _dropout_between_layers(x, dropout)
    return x, [mv.stack(f, 0) for f in finals]


def _split_weights(w, has_biases):
    w_ih, w_hh = w[0], w[1]
    b_ih, b_hh = (w[2], w[3]) if has_biases else (None, None)
    extra = w[4 if has_biases else 2] if len(w) in (3, 5) else None
    return w_ih, w_hh, b_ih, b_hh, extra


def _lstm_layer(x, hc, w, has_biases, reverse, batch_first):
    w_ih, w_hh, b_ih, b_hh, w_hr = _split_weights(w, has_biases)
    h0, c0 = hc
    _check_layer_args("lstm", x, (("h0", h0), ("c0", c0)), w_ih, w_hh, 4)
    return LSTMSequence.apply(
        x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr, reverse=reverse, batch_first=batch_first
    )


def _gru_layer(x, hs, w, has_biases, reverse, batch_first):
    w_ih, w_hh, b_ih, b_hh, _ = _split_weights(w, has_biases)
    _check_layer_args("gru", x, (("hx", hs[0]),), w_ih, w_hh, 3)
    return GRUSequence.apply(
        x, hs[0], w_ih, w_hh, b_ih, b_hh, reverse=reverse, batch_first=batch_first
    )


def _rnn_layer(nonlinearity):
    def layer(x, hs, w, has_biases, reverse, batch_first):
        w_ih, w_hh, b_ih, b_hh, _ = _split_weights(w, has_biases)
        _check_layer_args(f"rnn_{nonlinearity}", x, (("hx", hs[0]),), w_ih, w_hh, 1)
        return RNNSequence.apply(
            x,
            hs[0],
            w_ih,
            w_hh,
            b_ih,
            b_hh,
            nonlinearity=nonlinearity,
            reverse=reverse,
            batch_first=batch_first,
        )

    return layer


def lstm(
    input: Tensor,
    hx,
    params,
    has_biases: bool,
    num_layers: int,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_first: bool,
) -> tuple:
    """A multi-layer LSTM over a sequence: ``torch.lstm``'s low-level form.

    ``hx = (h0, c0)`` of shapes ``(num_layers * D, B, P)`` and ``(num_layers * D, B, H)``;
    ``params`` lists per layer and direction ``w_ih, w_hh[, b_ih, b_hh][, w_hr]``. Returns
    ``(output, h_n, c_n)``. Each layer-direction is one fused node (module docstring).

    >>> import chainrule as cr
    >>> x, h, c = cr.zeros(5, 2, 3), cr.zeros(1, 2, 4), cr.zeros(1, 2, 4)
    >>> w = [cr.randn(16, 3), cr.randn(16, 4), cr.zeros(16), cr.zeros(16)]
    >>> [tuple(t.shape) for t in cr.lstm(x, (h, c), w, True, 1, 0.0, False, False, False)]
    [(5, 2, 4), (1, 2, 4), (1, 2, 4)]
    """
    out, (h_n, c_n) = _stacked(
        "lstm",
        _lstm_layer,
        input,
        list(hx),
        params,
        has_biases,
        num_layers,
        dropout,
        train,
        bidirectional,
        batch_first,
    )
    return out, h_n, c_n


def gru(
    input: Tensor,
    hx: Tensor,
    params,
    has_biases: bool,
    num_layers: int,
    dropout: float,
    train: bool,
    bidirectional: bool,
    batch_first: bool,
) -> tuple:
    """A multi-layer GRU over a sequence: ``torch.gru``'s low-level form; returns
    ``(output, h_n)``. ``params``: per layer and direction ``w_ih, w_hh[, b_ih, b_hh]``."""
    out, (h_n,) = _stacked(
        "gru",
        _gru_layer,
        input,
        [hx],
        params,
        has_biases,
        num_layers,
        dropout,
        train,
        bidirectional,
        batch_first,
    )
    return out, h_n


def _rnn_function(nonlinearity: str):
    def fn(
        input: Tensor,
        hx: Tensor,
        params,
        has_biases: bool,
        num_layers: int,
        dropout: float,
        train: bool,
        bidirectional: bool,
        batch_first: bool,
    ) -> tuple:
        out, (h_n,) = _stacked(
            f"rnn_{nonlinearity}",
            _rnn_layer(nonlinearity),
            input,
            [hx],
            params,
            has_biases,
            num_layers,
            dropout,
            train,
            bidirectional,
            batch_first,
        )
        return out, h_n

    fn.__name__ = f"rnn_{nonlinearity}"
    fn.__qualname__ = fn.__name__
    fn.__doc__ = (
        f"A multi-layer Elman RNN with {nonlinearity}: ``torch.rnn_{nonlinearity}``'s low-level "
        "form; returns ``(output, h_n)`` (see :func:`gru` for the arguments)."
    )
    return fn


rnn_tanh = _rnn_function("tanh")
rnn_relu = _rnn_function("relu")


def _as_step(op: str, input: Tensor, hidden: Tensor) -> Tensor:
    if input._data.ndim != 2 or hidden._data.ndim != 2:
        raise RuntimeError(
            f"{op}: expected 2-D input (batch, input_size) and hidden state (batch, hidden_size), "
            f"got {list(input.shape)} and {list(hidden.shape)}"
        )
    return mv.unsqueeze(input, 0)


def lstm_cell(input: Tensor, hx, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None) -> tuple:
    """One LSTM step: ``torch.lstm_cell``; ``hx = (h, c)`` of shape (B, H); returns ``(h', c')``.

    It is the fused sequence kernel run for one step.
    """
    h0, c0 = hx
    x = _as_step("lstm_cell", input, h0)
    _check_layer_args("lstm_cell", x, (("hx", h0), ("cx", c0)), w_ih, w_hh, 4)
    _, h, c = LSTMSequence.apply(x, h0, c0, w_ih, w_hh, b_ih, b_hh, None)
    return h, c


def gru_cell(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None):
    """One GRU step: ``torch.gru_cell``; returns the next hidden state (B, H)."""
    x = _as_step("gru_cell", input, hx)
    _check_layer_args("gru_cell", x, (("hx", hx),), w_ih, w_hh, 3)
    return GRUSequence.apply(x, hx, w_ih, w_hh, b_ih, b_hh)[1]


def _rnn_cell_function(nonlinearity: str):
    def fn(input: Tensor, hx: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih=None, b_hh=None):
        op = f"rnn_{nonlinearity}_cell"
        x = _as_step(op, input, hx)
        _check_layer_args(op, x, (("hx", hx),), w_ih, w_hh, 1)
        return RNNSequence.apply(x, hx, w_ih, w_hh, b_ih, b_hh, nonlinearity=nonlinearity)[1]

    fn.__name__ = fn.__qualname__ = f"rnn_{nonlinearity}_cell"
    fn.__doc__ = (
        f"One Elman RNN step with {nonlinearity}: ``torch.rnn_{nonlinearity}_cell``; returns "
        "the next hidden state (B, H)."
    )
    return fn


rnn_tanh_cell = _rnn_cell_function("tanh")
rnn_relu_cell = _rnn_cell_function("relu")


# ---------------------------------------------------------------------------------------------
# attention
# ---------------------------------------------------------------------------------------------


class Attention(_FusedNode):
    """``softmax(q k^T * scale + mask) v`` with optional causal mask and dropout, fused.

    Inputs ``q (..., L, E)``, ``k (..., S, E)``, ``v (..., S, Ev)`` and ``mask`` (None, a
    boolean array where True means "may attend", or a float array added to the scores).
    The attention probabilities (before dropout) and the dropout mask are kept for the
    backward, which is the softmax Jacobian written out:
    ``ds = p * (dp - sum(dp * p, -1))``.

    Rows whose every score is masked give zeros (PyTorch's ``scaled_dot_product_attention``)
    unless ``nan_rows`` (PyTorch's ``MultiheadAttention`` with ``need_weights``: NaN).
    """

    __slots__ = ("probs", "keep", "scale", "causal", "nan_rows")
    _buffers = ("probs", "keep")
    saves = (0, 1, 2, 3)

    def forward(self, xp, q, k, v, mask, scale=1.0, causal=False, dropout_p=0.0, nan_rows=False):
        self.scale, self.causal, self.nan_rows, self.scratch = scale, causal, nan_rows, []
        s = xp.matmul(q, xp.swapaxes(k, -1, -2))
        s *= scale
        n_q, n_k = s.shape[-2:]
        masked = mask is not None or causal
        if mask is not None:
            full = backend.np.broadcast_shapes(s.shape, mask.shape)
            if full != s.shape:  # the mask adds batch dimensions
                s = xp.array(xp.broadcast_to(s, full))
            if mask.dtype == bool:
                xp.copyto(s, -xp.inf, where=~mask)
            else:
                s += mask
        if causal:  # query i sees keys 0..i (top-left aligned, as PyTorch)
            xp.copyto(s, -xp.inf, where=~xp.tri(n_q, n_k, dtype=bool))
        top = s.max(-1, keepdims=True)
        if masked and not nan_rows:
            top[~xp.isfinite(top)] = 0  # a fully masked row: exp(-inf) = 0 everywhere
        s -= top
        xp.exp(s, out=s)
        total = s.sum(-1, keepdims=True)
        if masked and not nan_rows:
            total[total == 0] = 1
        s /= total
        self.probs = s
        self.keep = None
        if dropout_p > 0.0:
            self.keep = xp.asarray(_keep_mask(s.shape, dropout_p, s.dtype))
            s = s * self.keep
        return self._outputs(xp, xp.matmul(s, v), s)

    def _outputs(self, xp, out, weights):
        return out

    def _weights_grad(self, grads):
        return grads, None

    def backward(self, grads, q, k, v, mask):
        g_out, g_w = self._weights_grad(grads)
        if modes.grad_enabled:  # create_graph: the differentiable path (module docstring)
            return _attention_backward_ops(self, g_out, g_w, q, k, v, mask)
        xp = array_module(q._data)
        p, keep, edges = self.probs, self.keep, self.edges
        pd = p if keep is None else p * keep
        dv = None
        dpd = None
        if g_out is not None:
            go = g_out._data
            if edges[2]:
                dv = xp.matmul(xp.swapaxes(pd, -1, -2), go)
            dpd = xp.matmul(go, xp.swapaxes(v._data, -1, -2))
        if g_w is not None:
            dpd = g_w._data if dpd is None else dpd + g_w._data
        dq = dk = dmask = None
        if dpd is not None and (edges[0] or edges[1] or edges[3]):
            ds = dpd * keep if keep is not None else dpd.copy()
            # softmax backward: ds = p * (dp - sum(dp * p))
            ds -= (ds * p).sum(-1, keepdims=True)
            ds *= p
            if edges[3]:
                dmask = ds
            if edges[0]:
                dq = xp.matmul(ds, k._data)
                dq *= self.scale
            if edges[1]:
                dk = xp.matmul(xp.swapaxes(ds, -1, -2), q._data)
                dk *= self.scale
        return _t(dq), _t(dk), _t(dv), _t(dmask)


class AttentionWithWeights(Attention):
    """:class:`Attention` that also returns the attention weights (after dropout)."""

    __slots__ = ()
    n_outputs = 2

    def _outputs(self, xp, out, weights):
        return out, (weights.copy() if weights is self.probs else weights)

    def _weights_grad(self, grads):
        return grads[0], grads[1]


def _attention_backward_ops(node, g_out, g_w, q, k, v, mask):
    """The backward of :class:`Attention` written with ops, so that it can be differentiated."""
    s = matmul(q, mv.transpose(k, -1, -2)) * node.scale
    if mask is not None:
        s = ew.where(mask, s, -math.inf) if mask._data.dtype == bool else s + mask
    if node.causal:
        xp = array_module(s._data)
        n_q, n_k = s._data.shape[-2:]
        s = ew.where(Tensor._make(xp.tri(n_q, n_k, dtype=bool)), s, -math.inf)
    # softmax; the shift by the row maximum is a constant (softmax does not depend on it)
    xp = array_module(s._data)
    top = s._data.max(-1, keepdims=True)
    masked = mask is not None or node.causal
    if masked and not node.nan_rows:
        top = xp.where(xp.isfinite(top), top, 0)
    e = ew.exp(s - Tensor._make(top))
    total = rd.sum(e, -1, keepdim=True)
    if masked and not node.nan_rows:
        total = ew.where(ew.eq(total, 0), 1.0, total)
    p = e / total
    keep = None if node.keep is None else Tensor._make(node.keep)
    pd = p if keep is None else p * keep
    dv = dpd = None
    if g_out is not None:
        dv = matmul(mv.transpose(pd, -1, -2), g_out)
        dpd = matmul(g_out, mv.transpose(v, -1, -2))
    if g_w is not None:
        dpd = g_w if dpd is None else dpd + g_w
    if dpd is None:
        return None, None, dv, None
    dp = dpd if keep is None else dpd * keep
    ds = p * (dp - rd.sum(dp * p, -1, keepdim=True))
    dq = matmul(ds, k) * node.scale
    dk = matmul(mv.transpose(ds, -1, -2), q) * node.scale
    return dq, dk, dv, ds


def _attention_inputs(query, key, value, attn_mask, is_causal, scale, enable_gqa, op):
    for name, t in (("key", key), ("value", value)):
        if t._data.dtype != query._data.dtype:
            raise RuntimeError(
                f"{op}: Expected query, key, and value to have the same dtype, but got "
                f"query.dtype: {query.dtype} and {name}.dtype: {t.dtype} instead."
            )
    if query._data.ndim < 2 or key._data.shape[-1] != query._data.shape[-1]:
        raise RuntimeError(
            f"{op}: query (..., L, E) and key (..., S, E) must agree in E, got shapes "
            f"{list(query.shape)} and {list(key.shape)}"
        )
    if key._data.shape[-2] != value._data.shape[-2]:
        raise RuntimeError(
            f"{op}: key (..., S, E) and value (..., S, Ev) must agree in S, got shapes "
            f"{list(key.shape)} and {list(value.shape)}"
        )
    if attn_mask is not None:
        if not isinstance(attn_mask, Tensor):
            attn_mask = Tensor(attn_mask)
        kind = attn_mask._data.dtype
        if kind.kind != "b" and kind != query._data.dtype:
            raise RuntimeError(
                f"{op}: Expected attn_mask dtype to be bool or float or to match query dtype, "
                f"but got attn_mask.dtype: {attn_mask.dtype} and query.dtype: {query.dtype}"
            )
    if enable_gqa and query._data.ndim >= 3 and key._data.shape[-3] != query._data.shape[-3]:
        # grouped-query attention: each key/value head serves a group of query heads
        groups = query._data.shape[-3] // key._data.shape[-3]

        def repeat_heads(t):
            *lead, hk, n, e = t._data.shape
            t = mv.expand(mv.unsqueeze(t, -3), *lead, hk, groups, n, e)
            return mv.reshape(t, (*lead, hk * groups, n, e))

        key, value = repeat_heads(key), repeat_heads(value)
    if scale is None:
        scale = 1.0 / math.sqrt(query._data.shape[-1])
    return key, value, attn_mask, float(scale)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(query @ key^T * scale + mask) @ value``, as one fused node.

    ``attn_mask`` is boolean (True: may attend) or float (added to the scores) and broadcasts
    to ``(..., L, S)``; ``is_causal`` lets query i see keys ``0..i`` (combined with
    ``attn_mask`` when both are given); ``scale`` defaults to ``1 / sqrt(E)``; ``dropout_p``
    drops attention weights (always, as PyTorch: pass 0 in evaluation). Rows with every key
    masked give zeros.

    >>> import chainrule as cr
    >>> q = cr.randn(2, 4, 5, 8)
    >>> cr.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True).shape
    chainrule.Size([2, 4, 5, 8])
    """
    key, value, attn_mask, scale = _attention_inputs(
        query, key, value, attn_mask, is_causal, scale, enable_gqa, "scaled_dot_product_attention"
    )
    return Attention.apply(
        query,
        key,
        value,
        attn_mask,
        scale=scale,
        causal=bool(is_causal),
        dropout_p=float(dropout_p),
        nan_rows=False,
    )


def attention_with_weights(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
) -> tuple:
    """Like :func:`scaled_dot_product_attention`, also returning the attention weights
    (after dropout); fully masked rows give NaN, as in PyTorch's ``MultiheadAttention``."""
    key, value, attn_mask, scale = _attention_inputs(
        query, key, value, attn_mask, is_causal, scale, False, "multi_head_attention_forward"
    )
    return AttentionWithWeights.apply(
        query,
        key,
        value,
        attn_mask,
        scale=scale,
        causal=bool(is_causal),
        dropout_p=float(dropout_p),
        nan_rows=True,
    )


# Tensor methods (bound in ops/__init__.py)
METHODS: dict = {}
