"""Op-table rows for the nn family (see op_table.py).

Shapes are tiny on purpose: every row is checked by finite differences to second order.
Pooling rows use ``distinct`` inputs so that no two window elements are close enough for a
finite-difference step to change which one is the maximum.
"""

from tests.ops.op_table import A, C, OpSpec
from tests.ops.table_indexing import I

_GELU_POINTS = [-30.0, -9.0, -5.0, -2.5, -0.75, -0.1, 0.0, 0.3, 1.0, 2.5, 6.0, 30.0]


def _f(m):
    """``nn.functional`` of either framework."""
    return m.nn.functional


ROWS = [
    OpSpec(
        "conv1d",
        lambda m, x, w, b, **kw: m.conv1d(x, w, b, **kw),
        [
            C(A(2, 2, 5), A(3, 2, 2), A(3)),
            C(A(1, 2, 7), A(2, 1, 3), A(2), stride=2, padding=1, groups=2, note="groups"),
            C(A(1, 2, 6), A(2, 2, 2), A(2), padding="same", dilation=2, note="same"),
            C(A(2, 5), A(3, 2, 2), A(3), note="unbatched"),
        ],
    ),
    OpSpec(
        "conv2d",
        lambda m, x, w, b, **kw: m.conv2d(x, w, b, **kw),
        [
            C(A(2, 2, 4, 4), A(3, 2, 2, 2), A(3)),
            C(A(1, 2, 5, 4), A(2, 2, 3, 2), A(2), stride=2, padding=1, note="stride-pad"),
            C(A(1, 2, 5, 5), A(2, 2, 2, 2), A(2), dilation=2, padding=(1, 0), note="dilation"),
            C(A(1, 4, 3, 3), A(4, 2, 2, 2), A(4), groups=2, note="groups"),
            C(A(1, 1, 4, 3), A(2, 1, 2, 2), A(2), padding="same", note="same"),
            C(A(1, 2, 5, 4, noncontig=True), A(2, 2, 2, 2), A(2), note="noncontig"),
        ],
    ),
    OpSpec(
        "conv3d",
        lambda m, x, w, b: m.conv3d(x, w, b, padding=1, stride=2),
        [C(A(1, 2, 3, 3, 3), A(2, 2, 2, 2, 2), A(2))],
    ),
    OpSpec(
        "conv_transpose1d",
        lambda m, x, w, b, **kw: m.conv_transpose1d(x, w, b, **kw),
        [
            C(A(2, 2, 3), A(2, 3, 2), A(3)),
            C(A(1, 2, 3), A(2, 1, 3), A(2), stride=2, padding=1, output_padding=1, groups=2),
        ],
    ),
    OpSpec(
        "conv_transpose2d",
        lambda m, x, w, b, **kw: m.conv_transpose2d(x, w, b, **kw),
        [
            C(A(1, 2, 3, 2), A(2, 2, 2, 2), A(2)),
            C(A(1, 2, 2, 3), A(2, 1, 3, 2), A(2), stride=2, padding=1, output_padding=1, groups=2),
            C(A(1, 1, 2, 2), A(1, 2, 2, 2), A(2), stride=3, dilation=2, output_padding=2),
        ],
    ),
    OpSpec(
        "conv2d_functional",
        lambda m, x, w: _f(m).conv2d(x, w, stride=(2, 1), padding="valid"),
        [C(A(1, 2, 5, 3), A(2, 2, 2, 2))],
    ),
    OpSpec(
        "max_pool1d",
        lambda m, x, **kw: m.max_pool1d(x, 3, **kw),
        [
            C(A(2, 2, 7, kind="distinct")),
            C(A(1, 2, 8, kind="distinct"), stride=2, padding=1, ceil_mode=True, note="ceil"),
        ],
        second_order=True,
    ),
    OpSpec(
        "max_pool2d",
        lambda m, x, *a, **kw: m.max_pool2d(x, *a, **kw),
        [
            C(A(1, 2, 4, 4, kind="distinct"), 2),
            C(A(1, 1, 5, 6, kind="distinct"), 3, 2, 1, note="pad"),
            C(A(1, 1, 5, 5, kind="distinct"), (2, 3), 1, 0, 2, note="dilation-overlap"),
            C(A(1, 1, 5, 5, kind="distinct"), 2, 2, 1, 1, True, note="ceil"),
            C(A(2, 4, 4, kind="distinct"), 2, note="unbatched"),
        ],
    ),
    OpSpec(
        "max_pool2d_indices",
        lambda m, x: _f(m).max_pool2d(x, 3, 2, 1, return_indices=True),
        [C(A(1, 2, 5, 5, kind="distinct"))],
    ),
    OpSpec(
        "avg_pool1d",
        lambda m, x, *a: m.avg_pool1d(x, *a),
        [
            C(A(2, 2, 7), 3),
            C(A(1, 2, 8), 3, 2, 1, True, False, note="ceil-exclude-pad"),
        ],
    ),
    OpSpec(
        "avg_pool2d",
        lambda m, x, **kw: _f(m).avg_pool2d(x, **kw),
        [
            C(A(1, 2, 4, 4), kernel_size=2),
            C(A(1, 1, 5, 6), kernel_size=3, stride=2, padding=1, note="pad"),
            C(
                A(1, 1, 5, 6),
                kernel_size=3,
                stride=2,
                padding=1,
                ceil_mode=True,
                count_include_pad=False,
                note="ceil-exclude",
            ),
            C(A(1, 1, 4, 4), kernel_size=2, stride=1, divisor_override=3, note="override"),
        ],
    ),
    OpSpec(
        "adaptive_avg_pool1d",
        lambda m, x: m.adaptive_avg_pool1d(x, 3),
        [C(A(2, 2, 7))],
    ),
    OpSpec(
        "adaptive_avg_pool2d",
        lambda m, x, size: _f(m).adaptive_avg_pool2d(x, size),
        [C(A(1, 2, 5, 7), (3, 2)), C(A(1, 1, 4, 4), (None, 2), note="none")],
    ),
    OpSpec(
        "unfold",
        lambda m, x: _f(m).unfold(x, (2, 3), dilation=(1, 2), padding=1, stride=2),
        [C(A(1, 2, 4, 5))],
    ),
    OpSpec(
        "fold",
        lambda m, x: _f(m).fold(x, (3, 4), (2, 2), padding=1, stride=2),
        [C(A(1, 8, 6))],
    ),
    OpSpec(
        "batch_norm",
        lambda m, x, w, b: m.batch_norm(x, w, b, None, None, True, 0.1, 1e-5, False),
        [C(A(3, 2, 2), A(2), A(2)), C(A(4, 3), A(3), A(3), note="2d")],
    ),
    OpSpec(
        "batch_norm",
        lambda m, x, w, b, rm, rv: m.batch_norm(x, w, b, rm, rv, False, 0.1, 1e-5, False),
        [C(A(3, 2, 2), A(2), A(2), A(2, grad=False), A(2, kind="positive", grad=False))],
    ),
    OpSpec(
        "layer_norm",
        lambda m, x, w, b: m.layer_norm(x, (3,), w, b),
        [C(A(2, 3), A(3), A(3)), C(A(2, 2, 3), A(3), A(3), note="3d")],
    ),
    OpSpec(
        "layer_norm",
        lambda m, x: m.layer_norm(x, (2, 3), None, None, 1e-3),
        [C(A(2, 2, 3))],
    ),
    OpSpec(
        "group_norm",
        lambda m, x, w, b: m.group_norm(x, 2, w, b),
        [C(A(2, 4, 3), A(4), A(4))],
    ),
    OpSpec(
        "rms_norm",
        lambda m, x, w: m.rms_norm(x, (3,), w, 1e-6),
        [C(A(2, 3), A(3)), C(A(2, 2, 3), A(3), note="3d")],
    ),
    OpSpec(
        "constant_pad_nd",
        lambda m, x: m.constant_pad_nd(x, (1, 2, -1, 1), 0.5),
        [C(A(2, 3, 4))],
    ),
    OpSpec(
        "pad",
        lambda m, x, **kw: _f(m).pad(x, **kw),
        [
            C(A(1, 2, 3, 4), pad=(1, 2, 2, 1), mode="reflect", note="reflect"),
            C(A(1, 2, 3, 4), pad=(1, 2, 2, 1), mode="replicate", note="replicate"),
            C(A(1, 2, 3, 4), pad=(1, 2, 2, 1), mode="circular", note="circular"),
            C(A(1, 2, 5), pad=(2, 1), mode="reflect", note="1d"),
        ],
    ),
    OpSpec(
        "linear",
        lambda m, x, w, b: _f(m).linear(x, w, b),
        [
            C(A(3, 4), A(2, 4), A(2)),
            C(A(2, 3, 4), A(2, 4), A(2), note="3d"),
            C(A(4), A(2, 4), A(2)),
        ],
    ),
    OpSpec(
        "bilinear",
        lambda m, x, y, w, b: _f(m).bilinear(x, y, w, b),
        [C(A(3, 2), A(3, 4), A(2, 2, 4), A(2))],
    ),
    OpSpec(
        "embedding",
        lambda m, w, i, **kw: _f(m).embedding(i, w, **kw),
        [C(A(5, 3), A(2, 4, kind="index", high=5))],
    ),
    # padding_idx and scale_grad_by_freq change the gradient on purpose (it is not the
    # derivative), so only their values are checked here; tests/nn compares their gradients
    # with PyTorch's
    OpSpec(
        "embedding_options",
        lambda m, w, i, **kw: _f(m).embedding(i, w, **kw),
        [
            C(A(5, 3), A(7, kind="index", high=5), padding_idx=1, note="padding"),
            C(A(5, 3), A(9, kind="index", high=3), scale_grad_by_freq=True, note="freq"),
        ],
        grad=False,
    ),
    OpSpec(
        "gelu",
        lambda m, x, **kw: _f(m).gelu(x, **kw),
        [
            C(A(3, 4)),
            C(A(3, 4), approximate="tanh", note="tanh"),
            C(A(), note="scalar"),
            C(A(4, 3, noncontig=True), note="noncontig"),
            C(A(0, 2), approximate="tanh", note="empty"),
        ],
    ),
    # fixed points from deep in the lower tail to large positive values (a small random
    # offset keeps the finite differences off exact points): both branches of the CDF
    OpSpec(
        "gelu",
        lambda m, x, c, **kw: _f(m).gelu(x * 0.01 + m.tensor(c, dtype=x.dtype), **kw),
        [
            C(A(len(_GELU_POINTS)), _GELU_POINTS, note="points"),
            C(A(len(_GELU_POINTS)), _GELU_POINTS, approximate="tanh", note="points-tanh"),
        ],
    ),
    # class indices on 2-D logits: the fused SoftmaxCrossEntropy node
    OpSpec(
        "cross_entropy",
        lambda m, x, t, **kw: _f(m).cross_entropy(x, t, **kw),
        [
            C(A(4, 5), I(4, high=5)),
            C(A(3, 4), I(3, high=4), reduction="sum", note="sum"),
            C(A(3, 4), I(3, high=4), reduction="none", note="none"),
            C(A(5, 3, noncontig=True), I(5, high=3), ignore_index=1, note="ignore-noncontig"),
        ],
    ),
    OpSpec(
        "binary_cross_entropy",
        lambda m, x, y: _f(m).binary_cross_entropy(m.sigmoid(x), m.sigmoid(y), reduction="none"),
        [C(A(3, 4), A(3, 4))],
    ),
    OpSpec(
        "interpolate",
        lambda m, x, **kw: _f(m).interpolate(x, **kw),
        [
            C(A(1, 2, 3, 4), size=(5, 7), mode="nearest", note="nearest"),
            C(A(1, 2, 3, 4), scale_factor=2, mode="bilinear", note="bilinear"),
            C(A(1, 1, 4, 3), size=(3, 5), mode="bilinear", align_corners=True, note="align"),
            C(A(1, 2, 5), size=3, mode="linear", note="linear"),
        ],
    ),
]
