"""Optimisers and learning-rate schedules (``chainrule.optim``), PyTorch's names and numbers.

>>> import chainrule as cr
>>> w = cr.nn.Parameter(cr.tensor([2.0]))
>>> opt = cr.optim.Adam([w], lr=0.1)
>>> sched = cr.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
>>> for _ in range(3):
...     opt.zero_grad()
...     (w * w).sum().backward()
...     opt.step()
...     sched.step()
>>> sched.get_last_lr()
[0.0125]
"""

from chainrule.optim import lr_scheduler
from chainrule.optim.adadelta import Adadelta
from chainrule.optim.adagrad import Adagrad
from chainrule.optim.adam import Adam, AdamW
from chainrule.optim.adamax import Adamax
from chainrule.optim.lbfgs import LBFGS
from chainrule.optim.nadam import NAdam
from chainrule.optim.optimizer import Optimizer
from chainrule.optim.rmsprop import RMSprop
from chainrule.optim.sgd import SGD

__all__ = [
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "Adadelta",
    "Adamax",
    "NAdam",
    "LBFGS",
    "lr_scheduler",
]
