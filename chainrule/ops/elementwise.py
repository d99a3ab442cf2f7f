"""Elementwise primitives: each block is the array computation and its derivative.

Binary ops accept tensors or Python scalars on either side; ``_binary`` applies PyTorch's type
promotion first, so the primitives below always see operands of one dtype. The engine sums
gradients back over broadcast dimensions, so no rule here does that by hand.
"""

from __future__ import annotations

import math

from chainrule import backend
from chainrule.backend import result_type
from chainrule.tensor import Node, Tensor, modes, user_frame

__all__ = [
    "cast",
    "add",
    "sub",
    "subtract",
    "rsub",
    "mul",
    "multiply",
    "div",
    "divide",
    "true_divide",
    "neg",
    "negative",
    "pow",
    "float_power",
    "remainder",
    "fmod",
    "floor_divide",
    "exp",
    "expm1",
    "log",
    "log1p",
    "log2",
    "log10",
    "sqrt",
    "rsqrt",
    "reciprocal",
    "square",
    "sin",
    "cos",
    "tan",
    "atan",
    "arctan",
    "tanh",
    "sigmoid",
    "relu",
    "abs",
    "absolute",
    "erf",
    "atan2",
    "arctan2",
    "sign",
    "floor",
    "ceil",
    "round",
    "trunc",
    "fix",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "bitwise_and",
    "bitwise_or",
    "bitwise_xor",
    "bitwise_not",
    "isnan",
    "isinf",
    "isfinite",
    "equal",
    "allclose",
    "isclose",
    "maximum",
    "minimum",
    "where",
    "clamp",
    "clip",
    "clamp_min",
    "clamp_max",
    "lerp",
    "addcmul",
    "addcdiv",
]

_SCALARS = (int, float, bool)
_IGNORE = {"all": "ignore"}


def _as_operand(x):
    """Tensors and Python scalars pass through; arrays and NumPy scalars become tensors."""
    if isinstance(x, Tensor) or type(x) in _SCALARS:
        return x
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0 and not backend.is_array(x):
        return x.item()  # a NumPy scalar behaves like the Python number it holds
    return Tensor(x)


def _binary(cls, a, b):
    """Promote ``a`` and ``b`` to PyTorch's result dtype, then apply primitive ``cls``."""
    a = _as_operand(a)
    b = _as_operand(b)
    ta = isinstance(a, Tensor)
    tb = isinstance(b, Tensor)
    if ta and tb:
        if a._data.dtype != b._data.dtype:
            target = result_type((a, b))
            a = cast(a, target)
            b = cast(b, target)
        return cls.apply(a, b)
    t = a if ta else b
    s = b if ta else a
    # A Python scalar changes the dtype only when it is of a higher category (float scalar
    # with an integer tensor): then the tensor is converted first, as PyTorch does.
    kind = t._data.dtype.kind
    if (type(s) is float and kind in "biu") or (type(s) is int and kind == "b"):
        t = cast(t, result_type((t, s)))
        a, b = (t, s) if ta else (s, t)
    return cls.apply(a, b)


def _zeros_like(x: Tensor) -> Tensor:
    return Tensor._make(backend.array_module(x._data).zeros_like(x._data))


class Cast(Node):
    """Change dtype; the engine casts the gradient back to the input dtype."""

    __slots__ = ()

    def forward(self, xp, a, dtype=None):
        return a.astype(dtype.np)

    def backward(self, g):
        return g


def cast(x: Tensor, dtype) -> Tensor:
    """``x`` converted to ``dtype`` (differentiable between float dtypes)."""
    dtype = backend.as_dtype(dtype)
    if x._data.dtype == dtype.np:
        return x
    return Cast.apply(x, dtype=dtype)


# ---- arithmetic ------------------------------------------------------------------------------


class Add(Node):
    __slots__ = ()

    def forward(self, xp, a, b):
        return a + b

    def backward(self, g):
        return g, g


class Sub(Node):
    __slots__ = ()

    def forward(self, xp, a, b):
        return a - b

    def backward(self, g):
        return g, (-g if self.edges[1] else None)


class Mul(Node):
    __slots__ = ()
    saves = (0, 1)

    def forward(self, xp, a, b):
        return a * b

    def backward(self, g, a, b):
        return (g * b if self.edges[0] else None), (g * a if self.edges[1] else None)


class Div(Node):
    __slots__ = ()
    saves = (1,)
    save_output = True

    def forward(self, xp, a, b):
        with backend.errstate(**_IGNORE):
            return a / b

    def backward(self, g, b, out):
        ga = g / b
        return ga, (-ga * out if self.edges[1] else None)


class Neg(Node):
    __slots__ = ()

    def forward(self, xp, a):
        return -a

    def backward(self, g):
        return -g


class Pow(Node):
    """``a ** b`` for tensor/scalar combinations; both gradients follow PyTorch at zero."""

    __slots__ = ()
    saves = (0, 1)
    save_output = True

    def forward(self, xp, a, b):
        with backend.errstate(**_IGNORE):
            out = xp.power(a, b)
        return out

    def backward(self, g, a, b, out):
        ga = gb = None
        if self.edges[0]:
            if isinstance(b, Tensor):
                ga = where(b == 0, 0.0, g * b * a ** (b - 1))
            elif b == 0:
                ga = _zeros_like(g)
            else:
                ga = g * b * a ** (b - 1)
        if self.edges[1]:
            if isinstance(a, Tensor):
                # d/db a**b = a**b log(a); PyTorch defines it as 0 where a == 0 and b >= 0
                gb = where((a == 0) & (b >= 0), 0.0, g * out * log(a))
            elif a == 0:
                gb = where(b >= 0, 0.0, g * out * -math.inf)
            else:
                gb = g * out * math.log(a)
        return ga, gb


class Remainder(Node):
    """Python-style modulus (sign of the divisor), like ``torch.remainder``."""

    __slots__ = ()
    saves = (0, 1)

    def forward(self, xp, a, b):
        with backend.errstate(**_IGNORE):
            return xp.remainder(a, b)

    def backward(self, g, a, b):
        gb = -g * floor(a / b) if self.edges[1] else None
        return g, gb


def add(input, other, *, alpha=1):
    """``input + alpha * other`` with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Add, input, other)


def sub(input, other, *, alpha=1):
    """``input - alpha * other`` with broadcasting."""
    if alpha != 1:
        other = mul(other, alpha)
    return _binary(Sub, input, other)


subtract = sub


def rsub(input, other, *, alpha=1):
    """``other - alpha * input``."""
    return sub(other, input, alpha=alpha)


def mul(input, other):
    """Elementwise product with broadcasting."""
    return _binary(Mul, input, other)


multiply = mul


def div(input, other, *, rounding_mode: str | None = None):
    """True division (integers become floats); ``rounding_mode`` 'trunc' or 'floor'."""
    if rounding_mode == "floor":
        return floor_divide(input, other)
    if rounding_mode == "trunc":
        return trunc(div(input, other)) if _is_float(input, other) else _int_div_trunc(input, other)
    if rounding_mode is not None:
        raise ValueError(
            f"div: rounding_mode must be None, 'trunc' or 'floor', not {rounding_mode!r}"
        )
    input = _as_operand(input)
    other = _as_operand(other)
    if not _is_float(input, other):
        dt = backend.get_default_dtype()
        input = cast(input, dt) if isinstance(input, Tensor) else float(input)
        other = cast(other, dt) if isinstance(other, Tensor) else float(other)
    return _binary(Div, input, other)


divide = true_divide = div


def _is_float(*xs) -> bool:
    for x in xs:
        if isinstance(x, Tensor):
            if x._data.dtype in backend.FLOAT_NP_DTYPES:
                return True
        elif isinstance(x, float):
            return True
    return False


def _int_div_trunc(a, b):
    a = _as_operand(a)
    b = _as_operand(b)
    q = floor_divide(a, b)
    r = remainder(a, b)
    fix = (r != 0) & ((q < 0) | ((q == 0) & (r != 0) & _neg_sign(a, b)))
    return where(fix, q + 1, q)


def _neg_sign(a, b):
    return (a < 0) != (b < 0)


def neg(input):
    """``-input``."""
    return Neg.apply(input)


negative = neg


def pow(input, exponent):
    """``input ** exponent`` (either may be a Python scalar)."""
    input = _as_operand(input)
    exponent = _as_operand(exponent)
    if isinstance(input, Tensor) and type(exponent) in _SCALARS:
        if exponent == 1:
            return input * 1
        if exponent == 2:
            return Mul.apply(input, input) if _is_float(input) else _binary(Mul, input, input)
        if type(exponent) is int and input._data.dtype.kind in "iu" and exponent < 0:
            raise RuntimeError("pow: integers to negative integer powers are not allowed.")
    return _binary(Pow, input, exponent)


def float_power(input, exponent):
    """``input ** exponent`` computed in float64."""
    input = cast(_as_operand(input), backend.float64) if isinstance(input, Tensor) else input
    exponent = cast(exponent, backend.float64) if isinstance(exponent, Tensor) else exponent
    return pow(input, exponent)


def remainder(input, other):
    """``input - floor(input / other) * other`` (result has the sign of ``other``)."""
    return _binary(Remainder, input, other)


def fmod(input, other):
    """C-style remainder (result has the sign of ``input``)."""
    return (
        input - trunc(input / other) * other
        if _is_float(input, other)
        else sub(input, mul(_int_div_trunc(input, other), other))
    )


def floor_divide(input, other):
    """``floor(input / other)``; not differentiable (its derivative is zero)."""
    input = _as_operand(input)
    other = _as_operand(other)
    target = result_type((input, other))
    xp = _xp(input, other)
    with backend.errstate(**_IGNORE):
        out = xp.floor_divide(_arr(input), _arr(other))
    return Tensor._make(xp.asarray(out).astype(target.np, copy=False))


def _xp(*xs):
    for x in xs:
        if isinstance(x, Tensor):
            return backend.array_module(x._data)
    return backend.np


def _arr(x):
    return x._data if isinstance(x, Tensor) else x


# ---- unary math ------------------------------------------------------------------------------


class Exp(Node):
    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return xp.exp(a)

    def backward(self, g, out):
        return g * out


class Expm1(Node):
    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return xp.expm1(a)

    def backward(self, g, out):
        return g * (out + 1)


class Log(Node):
    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return xp.log(a)

    def backward(self, g, a):
        return g / a


class Log1p(Node):
    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return xp.log1p(a)

    def backward(self, g, a):
        return g / (a + 1)


class Log2(Node):
    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return xp.log2(a)

    def backward(self, g, a):
        return g / (a * math.log(2.0))


class Log10(Node):
    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return xp.log10(a)

    def backward(self, g, a):
        return g / (a * math.log(10.0))


class Sqrt(Node):
    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return xp.sqrt(a)

    def backward(self, g, out):
        return g / (out * 2)


class Rsqrt(Node):
    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return 1 / xp.sqrt(a)

    def backward(self, g, out):
        return g * out**3 * -0.5


class Reciprocal(Node):
    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return 1 / a

    def backward(self, g, out):
        return -g * out * out


class Sin(Node):
    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        return xp.sin(a)

    def backward(self, g, a):
        return g * cos(a)


class Cos(Node):
    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        return xp.cos(a)

    def backward(self, g, a):
        return -g * sin(a)


class Tan(Node):
    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        with backend.errstate(**_IGNORE):
            return xp.tan(a)

    def backward(self, g, out):
        return g * (out * out + 1)


class Tanh(Node):
    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        return xp.tanh(a)

    def backward(self, g, out):
        return TanhBackward.apply(g, out)


class TanhBackward(Node):
    """``g * (1 - y²)`` as one primitive: a speed primitive (one node instead of three)."""

    __slots__ = ()
    saves = (0, 1)

    def forward(self, xp, g, y):
        return g * (1 - y * y)

    def backward(self, gg, g, y):
        return gg * (1 - y * y), (gg * g * y * -2 if self.edges[1] else None)


class Sigmoid(Node):
    """``1 / (1 + exp(-x))`` computed without overflow for large ``|x|``."""

    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        e = xp.exp(-xp.abs(a))  # in (0, 1]: never overflows
        return xp.where(a >= 0, 1 / (1 + e), e / (1 + e)).astype(a.dtype, copy=False)

    def backward(self, g, out):
        return g * out * (1 - out)


class Relu(Node):
    __slots__ = ()
    save_output = True

    def forward(self, xp, a):
        return xp.maximum(a, 0)

    def backward(self, g, out):
        return g * (out > 0)


class Abs(Node):
    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        return xp.abs(a)

    def backward(self, g, a):
        return g * sign(a)


class Erf(Node):
    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        return _erf(xp, a)

    def backward(self, g, a):
        with backend.errstate(over="ignore"):  # a * a -> inf for huge |a|; exp(-inf) = 0 is right
            return g * exp(-(a * a)) * (2.0 / math.sqrt(math.pi))


# ---- erf without SciPy -------------------------------------------------------------------
#
# Branch-free: both approximations below run on every element and a 0/1 mask picks one, so
# there is no boolean-mask scatter and no data-dependent loop. Coefficients were fitted for
# this module (minimax in relative error: Lawson-reweighted linear least squares in 50-digit
# arithmetic; Sanathanan-Koerner iterations for the ratios), one set per precision, listed
# from the constant term up:
#
# * ``|x| <= 1``: ``erf(u) = u + u * S(u*u)`` with a polynomial ``S``. Keeping the leading
#   ``u`` apart leaves the rounding of ``S`` (at most 0.16 of the result) mostly out of it.
# * ``|x| > 1``: ``erf(u) = 1 - exp(-u*u) * R(u)``, where ``R(u) = exp(u*u) * erfc(u)`` (the
#   scaled complementary error function) is smooth, falls like ``1 / (u sqrt(pi))`` and is a
#   ratio ``P(u) / Q(u)`` with positive coefficients (Horner's rule then never cancels). There
#   ``erfc(u) / erf(u) < 0.19``, so the error of ``R`` is shrunk five-fold in ``erf``.
#
# float64: ``S`` of degree 11 (relative error below 8e-18), ``R = P9 / Q10`` on [0, 27]
# (5e-17; past 27, ``exp(-u*u)`` underflows). float32: ``S`` of degree 6 (1.3e-9),
# ``R = P4 / Q5`` on [0, 10] (5.7e-9). ``R`` also serves the GELU kernel (nn_kernels.py),
# whose normal CDF needs ``erfc`` with full relative accuracy far into the lower tail.

_ERF_SMALL64 = (
    0.1283791670955125656803,
    -0.3761263890318351973931,
    0.1128379167094418938126,
    -0.02686617064311196592474,
    0.005223977606121391198525,
    -0.0008548325929416559515162,
    0.0001205529357913155327365,
    -0.00001492471233278398314404,
    0.000001644713183253147468159,
    -1.620631501772309354774e-7,
    1.371098316293766121768e-8,
    -7.77946938620077177117e-10,
)
_ERFCX_P64 = (
    0.9999999999999999510427,
    2.1902069080539429781,
    2.373179933359244370943,
    1.63367863974358042598,
    0.7796701183953484319897,
    0.266426140466029204664,
    0.06517953405134345819312,
    0.01104589090440769472656,
    0.001185589285785070899308,
    0.00006229797941425606818778,
)
_ERFCX_Q64 = (
    1.0,
    3.31858607514944183776,
    5.117803324771758166981,
    4.842167995611455666157,
    3.122083877824590243721,
    1.438642392228984420569,
    0.4819619979786209981166,
    0.1165784171444903936042,
    0.01963354202032845214971,
    0.002101402295130503380162,
    0.0001104202935167868224029,
)
_ERF_SMALL32 = (
    0.1283791657299176531136,
    -0.3761262583152529372798,
    0.1128358519474319747337,
    -0.02685381312565983504553,
    0.005188329047951472295646,
    -0.0008010199718584108150762,
    0.0000785386569862151356557,
)
_ERFCX_P32 = (
    1.000000005612940196377,
    1.237590398145729717225,
    0.7307450403876312605572,
    0.2288091975396672001861,
    0.0327104936030719496643,
)
_ERFCX_Q32 = (
    1.0,
    2.365970133248987072824,
    2.400447259090316572428,
    1.323764827988124152571,
    0.4055805541789956369222,
    0.05797712716842504392956,
)


def _scaled_ratio(p: tuple, q: tuple, scale: float = 1.0, factor: float = 1.0) -> tuple:
    """Coefficients of ``factor * P(scale * w) / Q(scale * w)`` for :func:`_ratio`.

    The denominator is made monic and its leading 1 left implicit (one pass fewer)."""
    lead = q[-1] * scale ** (len(q) - 1)
    num = tuple(factor * c * scale**i / lead for i, c in enumerate(p))
    den = tuple(c * scale**i / lead for i, c in enumerate(q[:-1]))
    return num, den


def _polyval(xp, x, coeffs: tuple, monic: bool = False):
    """``sum(coeffs[i] * x**i)`` (plus ``x**len(coeffs)`` when ``monic``) by Horner's rule:
    one new array, updated in place, two passes per coefficient."""
    if monic:
        out = x + coeffs[-1]
        rest = coeffs[:-1]
    else:
        out = x * coeffs[-1]
        out += coeffs[-2]
        rest = coeffs[:-2]
    for c in reversed(rest):
        out *= x
        out += c
    return out


def _ratio(xp, x, num: tuple, den: tuple):
    """``P(x) / Q(x)`` with coefficients from :func:`_scaled_ratio`."""
    out = _polyval(xp, x, num)
    out /= _polyval(xp, x, den, monic=True)
    return out


class _ErfFit:
    """One precision's coefficients; ``one_at`` is where ``erf`` rounds to 1 for good."""

    __slots__ = ("small", "p", "q", "erfcx", "one_at")

    def __init__(self, small, p, q, one_at):
        self.small, self.p, self.q, self.one_at = small, p, q, one_at
        self.erfcx = _scaled_ratio(p, q)


# erfc(6) = 2.2e-17 and erfc(4) = 1.5e-8 are below half an ulp of 1 in float64 and float32
_ERF64 = _ErfFit(_ERF_SMALL64, _ERFCX_P64, _ERFCX_Q64, 6.0)
_ERF32 = _ErfFit(_ERF_SMALL32, _ERFCX_P32, _ERFCX_Q32, 4.0)


def _erf_fit(dtype) -> _ErfFit:
    """The coefficients for arrays of ``dtype`` (float64, or float32 for every narrower type)."""
    return _ERF64 if dtype.itemsize == 8 else _ERF32


def _erf(xp, a):
    """erf of a float array, to within 2 ulp in float32 and float64 (see the notes above).

    float16 and bfloat16 are computed in float32. ``erf(+-inf) = +-1``, NaN stays NaN."""
    if a.ndim == 0:  # ufuncs return scalars for 0-d arrays; the in-place passes need arrays
        return _erf(xp, a.reshape(1)).reshape(())
    x = a if a.dtype.itemsize >= 4 else a.astype("float32")
    fit = _erf_fit(x.dtype)
    u = xp.abs(x)
    xp.minimum(u, fit.one_at, out=u)  # keeps NaN; +-inf becomes a finite point where erf = 1
    v = u * u
    near = _polyval(xp, v, fit.small)
    near *= u
    near += u
    far = _ratio(xp, u, *fit.erfcx)
    xp.negative(v, out=v)
    far *= xp.exp(v, out=v)
    xp.subtract(1.0, far, out=far)
    # pick one of the two by multiplying with an exact 1 or 0 (both are finite everywhere):
    # xp.where is several times slower when the mask changes from element to element
    mask = u <= 1.0
    near *= mask
    xp.logical_not(mask, out=mask)
    far *= mask
    near += far
    xp.copysign(near, x, out=near)
    return near if near.dtype == a.dtype else near.astype(a.dtype)


class Atan2(Node):
    __slots__ = ()
    saves = (0, 1)

    def forward(self, xp, a, b):
        return xp.arctan2(a, b)

    def backward(self, g, a, b):
        denom = a * a + b * b
        return g * b / denom, (-g * a / denom if self.edges[1] else None)


class Atan(Node):
    __slots__ = ()
    saves = (0,)

    def forward(self, xp, a):
        return xp.arctan(a)

    def backward(self, g, a):
        return g / (a * a + 1)


class ZeroGrad(Node):
    """Piecewise-constant functions (sign, floor, ceil, round, trunc): derivative zero."""

    __slots__ = ("fn",)

    def forward(self, xp, a, fn=None, decimals=0):
        self.fn = fn
        if fn == "round" and decimals:
            return xp.round(a, decimals)
        return getattr(xp, fn)(a)

    def backward(self, g):
        return _zeros_like(g)


def exp(input):
    """``e ** input``."""
    return Exp.apply(_float_input(input, "exp"))


def expm1(input):
    """``exp(input) - 1``, accurate near zero."""
    return Expm1.apply(_float_input(input, "expm1"))


def log(input):
    """Natural logarithm."""
    return Log.apply(_float_input(input, "log"))


def log1p(input):
    """``log(1 + input)``, accurate near zero."""
    return Log1p.apply(_float_input(input, "log1p"))


def log2(input):
    """Base-2 logarithm."""
    return Log2.apply(_float_input(input, "log2"))


def log10(input):
    """Base-10 logarithm."""
    return Log10.apply(_float_input(input, "log10"))


def sqrt(input):
    """Square root."""
    return Sqrt.apply(_float_input(input, "sqrt"))


def rsqrt(input):
    """``1 / sqrt(input)``."""
    return Rsqrt.apply(_float_input(input, "rsqrt"))


def reciprocal(input):
    """``1 / input``."""
    return Reciprocal.apply(_float_input(input, "reciprocal"))


def square(input):
    """``input * input``."""
    return pow(input, 2)


def sin(input):
    """Sine."""
    return Sin.apply(_float_input(input, "sin"))


def cos(input):
    """Cosine."""
    return Cos.apply(_float_input(input, "cos"))


def tan(input):
    """Tangent."""
    return Tan.apply(_float_input(input, "tan"))


def atan(input):
    """Inverse tangent."""
    return Atan.apply(_float_input(input, "atan"))


arctan = atan


def tanh(input):
    """Hyperbolic tangent."""
    return Tanh.apply(_float_input(input, "tanh"))


def sigmoid(input):
    """Logistic function ``1 / (1 + exp(-input))``, stable for large inputs."""
    return Sigmoid.apply(_float_input(input, "sigmoid"))


def relu(input):
    """``max(input, 0)``."""
    return Relu.apply(input)


def abs(input):
    """Absolute value (gradient ``sign(input)``, zero at zero)."""
    return Abs.apply(input)


absolute = abs


def erf(input):
    """The error function, ``2 / sqrt(pi)`` times the integral of ``exp(-t^2)`` from 0 to
    ``input``: within 2 ulp of the exact value in float32 and float64 (no SciPy needed).

    >>> import chainrule as cr
    >>> cr.erf(cr.tensor([0.0, 0.5, -3.0]))
    tensor([ 0.0000,  0.5205, -1.0000])
    """
    return Erf.apply(_float_input(input, "erf"))


def atan2(input, other):
    """Angle of the point ``(other, input)``; ``arctan2``."""
    input = _float_input(_as_operand(input), "atan2")
    return _binary(Atan2, input, other)


arctan2 = atan2


def _piecewise(fn: str, input, **kw) -> Tensor:
    if not input.requires_grad:
        xp = backend.array_module(input._data)
        arr = input._data
        out = xp.round(arr, kw["decimals"]) if kw.get("decimals") else getattr(xp, fn)(arr)
        return Tensor._make(out)
    return ZeroGrad.apply(input, fn=fn, **kw)


def sign(input):
    """-1, 0 or 1 by the sign of each element (derivative zero)."""
    return _piecewise("sign", input)


def floor(input):
    """Round down (derivative zero)."""
    return _piecewise("floor", input)


def ceil(input):
    """Round up (derivative zero)."""
    return _piecewise("ceil", input)


def round(input, *, decimals: int = 0):
    """Round half to even, like PyTorch (derivative zero)."""
    return _piecewise("round", input, decimals=decimals)


def trunc(input):
    """Round towards zero (derivative zero)."""
    return _piecewise("trunc", input)


fix = trunc


def _float_input(x, op: str) -> Tensor:
    """Integer tensors are computed in the default float dtype, as PyTorch does."""
    x = _as_operand(x)
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if x._data.dtype not in backend.FLOAT_NP_DTYPES:
        return cast(x, backend.get_default_dtype())
    return x


# ---- comparisons (not differentiable; they return bool tensors) -----------------------------


def _compare(ufunc: str, a, b) -> Tensor:
    a = _as_operand(a)
    b = _as_operand(b)
    if isinstance(a, Tensor) and isinstance(b, Tensor) and a._data.dtype != b._data.dtype:
        target = result_type((a, b)).np
        aa, bb = a._data.astype(target, copy=False), b._data.astype(target, copy=False)
    else:
        aa, bb = _arr(a), _arr(b)
    xp = _xp(a, b)
    with backend.errstate(**_IGNORE):
        return Tensor._make(xp.asarray(getattr(xp, ufunc)(aa, bb)))


def eq(input, other):
    """Elementwise ``==`` as a bool tensor."""
    return _compare("equal", input, other)


def ne(input, other):
    """Elementwise ``!=`` as a bool tensor."""
    return _compare("not_equal", input, other)


def lt(input, other):
    """Elementwise ``<`` as a bool tensor."""
    return _compare("less", input, other)


def le(input, other):
    """Elementwise ``<=`` as a bool tensor."""
    return _compare("less_equal", input, other)


def gt(input, other):
    """Elementwise ``>`` as a bool tensor."""
    return _compare("greater", input, other)


def ge(input, other):
    """Elementwise ``>=`` as a bool tensor."""
    return _compare("greater_equal", input, other)


def logical_and(input, other):
    """Elementwise logical and."""
    return _compare("logical_and", input, other)


def logical_or(input, other):
    """Elementwise logical or."""
    return _compare("logical_or", input, other)


def logical_xor(input, other):
    """Elementwise logical xor."""
    return _compare("logical_xor", input, other)


def logical_not(input):
    """Elementwise logical not."""
    xp = backend.array_module(input._data)
    return Tensor._make(xp.logical_not(input._data))


def bitwise_and(input, other):
    """``&`` for bool and integer tensors."""
    return _compare("bitwise_and", input, other)


def bitwise_or(input, other):
    """``|`` for bool and integer tensors."""
    return _compare("bitwise_or", input, other)


def bitwise_xor(input, other):
    """``^`` for bool and integer tensors."""
    return _compare("bitwise_xor", input, other)


def bitwise_not(input):
    """``~`` for bool and integer tensors."""
    xp = backend.array_module(input._data)
    return Tensor._make(xp.invert(input._data))


def isnan(input):
    """True where NaN."""
    return Tensor._make(backend.array_module(input._data).isnan(input._data))


def isinf(input):
    """True where ±inf."""
    return Tensor._make(backend.array_module(input._data).isinf(input._data))


def isfinite(input):
    """True where neither NaN nor ±inf."""
    return Tensor._make(backend.array_module(input._data).isfinite(input._data))


def equal(input, other) -> bool:
    """True when both tensors have the same shape and elements."""
    return input.shape == other.shape and bool(eq(input, other)._data.all())


def allclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False) -> bool:
    """``|input - other| <= atol + rtol * |other|`` everywhere."""
    xp = backend.array_module(input._data)
    return bool(xp.allclose(input._data, _arr(other), rtol=rtol, atol=atol, equal_nan=equal_nan))


def isclose(input, other, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise :func:`allclose`."""
    xp = backend.array_module(input._data)
    return Tensor._make(
        xp.isclose(input._data, _arr(other), rtol=rtol, atol=atol, equal_nan=equal_nan)
    )


# ---- selection -------------------------------------------------------------------------------


class Maximum(Node):
    """Elementwise max; at ties the gradient is split evenly, as in PyTorch."""

    __slots__ = ()
    saves = (0, 1)

    def forward(self, xp, a, b):
        return xp.maximum(a, b)

    def backward(self, g, a, b):
        share = (a > b) + (a == b) * 0.5
        return g * share, (g * (1 - share) if self.edges[1] else None)


class Minimum(Node):
    """Elementwise min; at ties the gradient is split evenly, as in PyTorch."""

    __slots__ = ()
    saves = (0, 1)

    def forward(self, xp, a, b):
        return xp.minimum(a, b)

    def backward(self, g, a, b):
        share = (a < b) + (a == b) * 0.5
        return g * share, (g * (1 - share) if self.edges[1] else None)


class Where(Node):
    """``cond ? a : b``; the condition is not differentiable."""

    __slots__ = ()
    saves = (0,)

    def forward(self, xp, cond, a, b):
        return xp.where(cond, a, b)

    def backward(self, g, cond):
        ga = where(cond, g, 0.0) if self.edges[1] else None
        gb = where(cond, 0.0, g) if self.edges[2] else None
        return None, ga, gb


class Clamp(Node):
    """Clamp to ``[lo, hi]`` (either may be None, a scalar or a tensor)."""

    __slots__ = ()
    saves = (0, 1, 2)

    def forward(self, xp, a, lo, hi):
        out = a
        if lo is not None:
            out = xp.maximum(out, lo)
        if hi is not None:
            out = xp.minimum(out, hi)
        return out.astype(a.dtype, copy=False) if out is not a else a.copy()

    def backward(self, g, a, lo, hi):
        # PyTorch's convention: x gets the gradient inside [lo, hi]; lo where x < lo (and the
        # bounds don't cross); hi where x > hi, or everywhere the bounds cross (result is hi)
        if lo is None:
            keep = a <= hi
        elif hi is None:
            keep = a >= lo
        else:
            keep = (a >= lo) & (a <= hi)
        glo = ghi = None
        if self.edges[1]:
            glo = where((a < lo) & (lo < hi) if hi is not None else a < lo, g, 0.0)
        if self.edges[2]:
            ghi = where((a > hi) | (hi < lo) if lo is not None else a > hi, g, 0.0)
        return where(keep, g, 0.0), glo, ghi


def maximum(input, other):
    """Elementwise maximum of two tensors."""
    return _binary(Maximum, input, other)


def minimum(input, other):
    """Elementwise minimum of two tensors."""
    return _binary(Minimum, input, other)


def where(condition, input=None, other=None):
    """``input`` where ``condition`` holds, else ``other`` (scalars allowed)."""
    if input is None and other is None:
        from chainrule.ops.indexing import nonzero

        return nonzero(condition, as_tuple=True)
    condition = _as_operand(condition)
    if not isinstance(condition, Tensor):
        condition = Tensor(condition)
    if condition._data.dtype.kind != "b":
        condition = Tensor._make(condition._data.astype(bool))
    a = _as_operand(input)
    b = _as_operand(other)
    target = result_type(tuple(x for x in (a, b)))
    if isinstance(a, Tensor):
        a = cast(a, target)
    if isinstance(b, Tensor):
        b = cast(b, target)
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        xp = backend.array_module(condition._data)
        return Tensor._make(xp.where(condition._data, a, b).astype(target.np))
    return Where.apply(condition, a, b)


def clamp(input, min=None, max=None):
    """Limit values to ``[min, max]``; the gradient passes where ``min <= x <= max``."""
    if min is None and max is None:
        raise RuntimeError("clamp: At least one of 'min' or 'max' must not be None")
    if input._data.dtype.kind in "iub" and (isinstance(min, float) or isinstance(max, float)):
        input = cast(input, backend.get_default_dtype())
    lo = cast(_as_operand(min), input.dtype) if isinstance(min, Tensor) else min
    hi = cast(_as_operand(max), input.dtype) if isinstance(max, Tensor) else max
    return Clamp.apply(input, lo, hi)


clip = clamp


def clamp_min(input, min):
    """``clamp(input, min=min)``."""
    return clamp(input, min=min)


def clamp_max(input, max):
    """``clamp(input, max=max)``."""
    return clamp(input, max=max)


def lerp(input, end, weight):
    """``input + weight * (end - input)``."""
    return input + weight * (end - input)


def addcmul(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 * tensor2``."""
    return input + value * tensor1 * tensor2


def addcdiv(input, tensor1, tensor2, *, value=1):
    """``input + value * tensor1 / tensor2``."""
    return input + value * tensor1 / tensor2


# ---- in-place updates ------------------------------------------------------------------------


def inplace(self: Tensor, compute, op: str, *others) -> Tensor:
    """Make ``self`` hold ``compute(self, *others)``, keeping the graph honest.

    Untracked (no tensor involved requires grad, or grad mode off): the result is written into
    ``self``'s memory. Tracked: a copy of the old value keeps ``self``'s old history, the result
    is written into ``self``'s memory and ``self`` takes the new history. Either way the
    version counter is bumped, so a backward that saved ``self`` before the change raises.
    """
    tracked = modes.grad_enabled and (
        self.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)
    )
    if tracked and self.requires_grad and self.grad_fn is None:
        raise RuntimeError(
            f"a leaf Variable that requires grad is being used in an in-place operation ({op})."
        )
    if tracked:
        old = Tensor._make(self._data.copy(), self.requires_grad, self.grad_fn, self._output_nr)
        old._accumulator = self._accumulator
        result = compute(old, *others)
    else:
        previous = modes.grad_enabled
        modes.grad_enabled = False
        try:
            result = compute(Tensor._make(self._data), *others)
        finally:
            modes.grad_enabled = previous
    _check_inplace_dtype(self, result, op)
    xp = backend.array_module(self._data)
    if result._data.shape != self._data.shape:
        try:
            xp.broadcast_to(result._data, self._data.shape)
        except ValueError:
            raise RuntimeError(
                f"{op}: output with shape {list(self._data.shape)} doesn't match the broadcast "
                f"shape {list(result._data.shape)}"
            ) from None
    self._data[...] = result._data
    if tracked:
        self.grad_fn = result.grad_fn
        self._output_nr = result._output_nr
        self.requires_grad = True
    bump_version(self)
    return self


def bump_version(t: Tensor) -> None:
    """Record an in-place change (and, in anomaly mode, where it happened)."""
    vc = t._vc
    vc[0] += 1
    if modes.anomaly:
        vc[1] = user_frame()
    elif vc[1] is not None:
        vc[1] = None  # a location recorded earlier no longer describes the latest change


def _check_inplace_dtype(self: Tensor, result: Tensor, op: str) -> None:
    src = result._data.dtype
    dst = self._data.dtype
    if src == dst:
        return
    s, d = backend.from_np(src), backend.from_np(dst)
    if s._category > d._category:
        raise RuntimeError(
            f"{op}: result type {s.name} can't be cast to the desired output type {d.name}"
        )
