"""Function transforms, as in ``torch.func``: ``grad``, ``vjp``, ``jvp``, Jacobians, ``vmap``.

Each takes a function and returns a new function computing a derivative (or a batched
version) of it. They are built on the same tape engine as ``backward()`` and nest freely:
``grad(grad(f))`` is a second derivative and ``vmap(grad(f))`` gives per-example gradients.

>>> import chainrule as cr
>>> from chainrule.func import grad, vmap
>>> f = lambda x: (x.sin() * x).sum()
>>> g = grad(f)(cr.tensor([0.0, 1.0]))
>>> per_row = vmap(grad(f))(cr.zeros(4, 2))  # one gradient per row
>>> per_row.shape
chainrule.Size([4, 2])
"""

from chainrule.func._autodiff import grad, grad_and_value, hessian, jacfwd, jacrev, jvp, vjp
from chainrule.func._vmap import vmap

__all__ = ["grad", "grad_and_value", "vjp", "jvp", "jacrev", "jacfwd", "hessian", "vmap"]
