"""Op-table rows for the elementwise family (see op_table.py)."""

from tests.ops.op_table import A, C, OpSpec

# shapes every binary op is checked on: same shape, broadcasting both ways, scalars, size-1
# dimensions, non-contiguous inputs and empty tensors
BINARY = [
    C(A(3, 4), A(3, 4)),
    C(A(3, 1), A(1, 4), note="broadcast"),
    C(A(2, 3, 4), A(4), note="lead"),
    C(A(), A(2, 3), note="scalar-tensor"),
    C(A(4, 3, noncontig=True), A(4, 3), note="noncontig"),
    C(A(0, 3), A(3), note="empty"),
]
_ERF_POINTS = [-6.5, -3.0, -1.5, -1.0, -0.3, 0.0, 1e-3, 0.7, 1.0, 1.3, 3.0, 6.0]
UNARY = [
    C(A(3, 4)),
    C(A()),
    C(A(1, 5)),
    C(A(5, 4, noncontig=True), note="noncontig"),
    C(A(0, 2), note="empty"),
]


def _unary(kind):
    return [
        C(A(*c.args[0].shape, kind=kind, noncontig=c.args[0].noncontig), note=c.note) for c in UNARY
    ]


def _binary(kind_a="float", kind_b="float"):
    out = []
    for c in BINARY:
        a, b = c.args
        out.append(
            C(
                A(*a.shape, kind=kind_a, noncontig=a.noncontig),
                A(*b.shape, kind=kind_b, noncontig=b.noncontig),
                note=c.note,
            )
        )
    return out


ROWS = (
    [
        OpSpec("add", lambda m, a, b: m.add(a, b), _binary()),
        OpSpec("add", lambda m, a, b: a + 2.5 * b - 1, BINARY[:3]),
        OpSpec("add", lambda m, a, b: m.add(a, b, alpha=-2), BINARY[:2]),
        OpSpec("sub", lambda m, a, b: m.sub(a, b), _binary()),
        OpSpec("rsub", lambda m, a: 3 - a, UNARY),
        OpSpec("mul", lambda m, a, b: m.mul(a, b), _binary()),
        OpSpec("mul", lambda m, a: a * 2 * a, UNARY[:2]),
        OpSpec("div", lambda m, a, b: m.div(a, b), _binary("float", "positive")),
        OpSpec("div", lambda m, a: 2.0 / a, _unary("positive")),
        OpSpec("pow", lambda m, a, b: m.pow(a, b), _binary("positive", "float")),
        OpSpec("pow", lambda m, a: a**3, UNARY),
        OpSpec("pow", lambda m, a: a**0.5 + a**-1.5, _unary("positive")),
        OpSpec("pow", lambda m, a: 2.0**a, UNARY),
        OpSpec("float_power", lambda m, a: m.float_power(a, 2), UNARY[:2]),
        OpSpec(
            "remainder",
            lambda m, a, b: m.remainder(a, b) * 1.0,
            [C(A(3, 4, kind="distinct"), A(3, 4, kind="positive"))],
            second_order=False,
        ),
        OpSpec("fmod", lambda m, a: m.fmod(a, 1.5), [C(A(3, 4, kind="distinct"))]),
        OpSpec(
            "floor_divide",
            lambda m, a, b: m.floor_divide(a, b),
            [C(A(3, 4), A(3, 4, kind="positive"))],
            grad=False,
        ),
        OpSpec("neg", lambda m, a: m.neg(a), UNARY),
        OpSpec("abs", lambda m, a: m.abs(a), _unary("distinct"), second_order=True),
        OpSpec("exp", lambda m, a: m.exp(a), UNARY),
        OpSpec("expm1", lambda m, a: m.expm1(a), UNARY),
        OpSpec("log", lambda m, a: m.log(a), _unary("positive")),
        OpSpec("log1p", lambda m, a: m.log1p(a), _unary("positive")),
        OpSpec("log2", lambda m, a: m.log2(a), _unary("positive")),
        OpSpec("log10", lambda m, a: m.log10(a), _unary("positive")),
        OpSpec("sqrt", lambda m, a: m.sqrt(a), _unary("positive")),
        OpSpec("rsqrt", lambda m, a: m.rsqrt(a), _unary("positive")),
        OpSpec("square", lambda m, a: m.square(a), UNARY),
        OpSpec("sign", lambda m, a: m.sign(a), _unary("distinct")),
        OpSpec("sin", lambda m, a: m.sin(a), UNARY),
        OpSpec("cos", lambda m, a: m.cos(a), UNARY),
        OpSpec("tan", lambda m, a: m.tan(a), _unary("unit")),
        OpSpec("atan", lambda m, a: m.atan(a), UNARY),
        OpSpec("tanh", lambda m, a: m.tanh(a), UNARY),
        OpSpec("sigmoid", lambda m, a: m.sigmoid(a), UNARY),
        OpSpec("relu", lambda m, a: m.relu(a), _unary("distinct")),
        OpSpec("clamp", lambda m, a: m.clamp(a, -0.5, 0.7), _unary("distinct")),
        OpSpec("clamp", lambda m, a: m.clamp(a, min=0.1), _unary("distinct")),
        OpSpec(
            "clamp",
            lambda m, a, lo, hi: m.clamp(a, lo, hi),
            [C(A(3, 4, kind="distinct"), A(3, 4, kind="distinct"), A(3, 4, kind="distinct"))],
        ),
        OpSpec("clamp_min", lambda m, a: m.clamp_min(a, 0.2), _unary("distinct")),
        OpSpec("clamp_max", lambda m, a: m.clamp_max(a, 0.2), _unary("distinct")),
        OpSpec("clip", lambda m, a: m.clip(a, -1.0, 1.0), _unary("distinct")),
        OpSpec("maximum", lambda m, a, b: m.maximum(a, b), _binary("distinct", "distinct")),
        OpSpec("minimum", lambda m, a, b: m.minimum(a, b), _binary("distinct", "distinct")),
        OpSpec(
            "where",
            lambda m, c, a, b: m.where(c, a, b),
            [
                C(A(3, 4, kind="bool"), A(3, 4), A(3, 4)),
                C(A(3, 1, kind="bool"), A(1, 4), A(3, 4), note="broadcast"),
            ],
        ),
        OpSpec("where", lambda m, c, a: m.where(c, a, 0.5), [C(A(3, 4, kind="bool"), A(3, 4))]),
        OpSpec("reciprocal", lambda m, a: m.reciprocal(a), _unary("positive")),
        OpSpec("floor", lambda m, a: m.floor(a), _unary("distinct")),
        OpSpec("ceil", lambda m, a: m.ceil(a), _unary("distinct")),
        OpSpec("round", lambda m, a: m.round(a), _unary("distinct")),
        OpSpec("trunc", lambda m, a: m.trunc(a), _unary("distinct")),
        OpSpec("erf", lambda m, a: m.erf(a), UNARY),
        # both approximations (|x| <= 1 and |x| > 1), the switch at 1, and |x| where erf is
        # +-1 to the last bit; a small random offset keeps finite differences off the points
        OpSpec(
            "erf",
            lambda m, a, c: m.erf(a * 0.01 + m.tensor(c, dtype=a.dtype)),
            [C(A(len(_ERF_POINTS)), _ERF_POINTS, note="points")],
        ),
        OpSpec("atan2", lambda m, a, b: m.atan2(a, b), _binary("positive", "positive")),
        OpSpec(
            "lerp",
            lambda m, a, b, w: m.lerp(a, b, w),
            [C(A(3, 4), A(3, 4), A(3, 4)), C(A(3, 4), A(4), A(3, 1))],
        ),
        OpSpec("lerp", lambda m, a, b: m.lerp(a, b, 0.3), [C(A(3, 4), A(3, 4))]),
        OpSpec(
            "addcmul", lambda m, a, b, c: m.addcmul(a, b, c, value=0.5), [C(A(3, 4), A(3, 4), A(4))]
        ),
        OpSpec(
            "addcdiv",
            lambda m, a, b, c: m.addcdiv(a, b, c, value=0.5),
            [C(A(3, 4), A(3, 4), A(4, kind="positive"))],
        ),
        # float32 -> float64 when the table runs in float32; the gradient comes back as float32
        OpSpec("cast", lambda m, a: a.to(m.float64) * 2, UNARY),
    ]
    + [
        OpSpec(
            name,
            (lambda op: lambda m, a, b: getattr(m, op)(a, b))(name),
            [
                C(A(3, 4, kind="distinct"), A(3, 4, kind="distinct")),
                C(A(3, 1, kind="distinct"), A(4, kind="distinct")),
            ],
            grad=False,
        )
        for name in ("eq", "ne", "lt", "le", "gt", "ge")
    ]
    + [
        OpSpec(
            name,
            (lambda op: lambda m, a, b: getattr(m, op)(a, b))(name),
            [C(A(3, 4, kind="bool"), A(3, 4, kind="bool"))],
            grad=False,
        )
        for name in (
            "logical_and",
            "logical_or",
            "logical_xor",
            "bitwise_and",
            "bitwise_or",
            "bitwise_xor",
        )
    ]
    + [
        OpSpec(
            name,
            (lambda op: lambda m, a: getattr(m, op)(a))(name),
            [C(A(3, 4, kind="bool"))],
            grad=False,
        )
        for name in ("logical_not", "bitwise_not")
    ]
    + [
        OpSpec(
            name,
            (lambda op: lambda m, a: getattr(m, op)(a / (a - a.round())))(name),
            [C(A(3, 4, kind="float"))],
            grad=False,
        )
        for name in ("isnan", "isinf", "isfinite")
    ]
    + [
        OpSpec(
            "equal",
            lambda m, a, b: m.tensor(m.equal(a, a)) & m.tensor(not m.equal(a, b)),
            [C(A(3, 4), A(3, 4))],
            grad=False,
        ),
        OpSpec(
            "allclose",
            lambda m, a, b: m.tensor(m.allclose(a, a + 1e-9)),
            [C(A(3, 4), A(3, 4))],
            grad=False,
        ),
        OpSpec("isclose", lambda m, a, b: m.isclose(a, b), [C(A(3, 4), A(3, 4))], grad=False),
    ]
)
