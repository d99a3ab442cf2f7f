"""The layer classes of ``chainrule.nn``, one family per file."""

from chainrule.nn.modules import (
    activation,
    container,
    conv,
    dropout,
    flatten,
    linear,
    loss,
    module,
    normalization,
    padding,
    pooling,
    rnn,
    sampling,
    sparse,
    transformer,
)
from chainrule.nn.modules.activation import *
from chainrule.nn.modules.container import *
from chainrule.nn.modules.conv import *
from chainrule.nn.modules.dropout import *
from chainrule.nn.modules.flatten import *
from chainrule.nn.modules.linear import *
from chainrule.nn.modules.loss import *
from chainrule.nn.modules.module import *
from chainrule.nn.modules.normalization import *
from chainrule.nn.modules.padding import *
from chainrule.nn.modules.pooling import *
from chainrule.nn.modules.rnn import *
from chainrule.nn.modules.sampling import *
from chainrule.nn.modules.sparse import *
from chainrule.nn.modules.transformer import *

__all__ = [
    name
    for m in (
        activation,
        container,
        conv,
        dropout,
        flatten,
        linear,
        loss,
        module,
        normalization,
        padding,
        pooling,
        rnn,
        sampling,
        sparse,
        transformer,
    )
    for name in m.__all__
]
