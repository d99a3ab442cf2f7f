"""Memory: saved values are released by backward, graphs die with their outputs (no reference
cycles, so no garbage collector needed), long chains need no recursion, training is flat."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np
import pytest

import chainrule as cr


@pytest.fixture
def no_gc():
    """Reference counting alone must free everything: a cycle would survive this."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_backward_releases_saved_intermediates(no_gc):
    x = cr.randn(4, requires_grad=True)
    h = x * 2  # held only by the graph once the name is gone
    ref = weakref.ref(h)
    arr = weakref.ref(h._data)
    y = (h * h).sum()  # Mul saves h
    del h
    assert ref() is not None
    y.backward()
    assert ref() is None and arr() is None
    assert y.grad_fn is not None  # the structure remains; only saved values went


def test_backward_releases_saved_outputs(no_gc):
    x = cr.randn(4, requires_grad=True)
    e = x.exp()  # Exp saves its output's array
    arr = weakref.ref(e._data)
    y = e.sum()
    del e
    assert arr() is not None
    y.backward()
    assert arr() is None


def test_retain_graph_keeps_saved_values(no_gc):
    x = cr.randn(3, requires_grad=True)
    h = x * 2
    ref = weakref.ref(h)
    y = (h * h).sum()
    del h
    y.backward(retain_graph=True)
    assert ref() is not None
    y.backward()
    assert ref() is None


def test_deleting_the_output_frees_the_whole_graph(no_gc):
    x = cr.randn(3, requires_grad=True)
    a = x.exp()
    b = a.sin() * x
    y = (b * a).sum()
    refs = [weakref.ref(t) for t in (a, b)] + [weakref.ref(n) for n in (a.grad_fn, y.grad_fn)]
    del a, b
    assert all(r() is not None for r in refs)
    del y
    assert all(r() is None for r in refs)
    assert x.grad is None  # the leaf itself is untouched


def test_deleting_the_output_with_hooks_and_retain_grad(no_gc):
    x = cr.randn(3, requires_grad=True)
    h = x * 3
    h.retain_grad()
    h.register_hook(lambda g: g)
    y = (h * h).sum()
    refs = [weakref.ref(h), weakref.ref(h.grad_fn)]
    y.backward()
    del h, y
    assert all(r() is None for r in refs)


def test_grad_with_create_graph_frees_with_its_results(no_gc):
    x = cr.randn(3, requires_grad=True)
    s = x.sin()
    y = (s * x).sum()
    (g,) = cr.autograd.grad(y, x, create_graph=True)
    ref = weakref.ref(s.grad_fn)
    del s, y
    assert ref() is not None  # g = x cos(x) + sin(x): its graph uses the forward's SinBackward
    del g
    assert ref() is None


def test_150000_op_chain_builds_backpropagates_and_frees_without_recursion(no_gc):
    n = 150_000
    x = cr.tensor([1.0], dtype=cr.float64, requires_grad=True)
    y = x
    for _ in range(n):
        y = y * 1.0001
    first = weakref.ref(y.grad_fn)
    y.backward()
    assert x.grad.item() == pytest.approx(1.0001**n, rel=1e-9)
    del y
    assert first() is None


def test_150000_op_chain_freed_without_backward(no_gc):
    x = cr.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(150_000):
        y = y * 1.0001  # every Mul node holds the previous tensor
    ref = weakref.ref(y.grad_fn)
    del y
    assert ref() is None


def test_memory_stays_flat_over_1000_training_steps():
    rng = np.random.default_rng(0)
    data = cr.tensor(rng.standard_normal((32, 8)).astype(np.float32))
    target = cr.tensor(rng.standard_normal((32, 1)).astype(np.float32))
    w1 = cr.tensor(rng.standard_normal((8, 16)).astype(np.float32) * 0.3, requires_grad=True)
    b1 = cr.zeros(16, requires_grad=True)
    w2 = cr.tensor(rng.standard_normal((16, 1)).astype(np.float32) * 0.3, requires_grad=True)
    b2 = cr.zeros(1, requires_grad=True)
    params = [w1, b1, w2, b2]

    def step():
        hidden = (data @ w1 + b1).tanh()
        loss = ((hidden @ w2 + b2 - target) ** 2).mean()
        for p in params:
            p.grad = None
        loss.backward()
        with cr.no_grad():
            for p in params:
                p -= 0.05 * p.grad
        return loss.item()

    tracemalloc.start()
    try:
        first_loss = step()
        for i in range(1, 1000):
            if i == 100:
                start_100 = tracemalloc.get_traced_memory()[0]
            if i == 200:
                growth_early = tracemalloc.get_traced_memory()[0] - start_100
            if i == 900:
                start_900 = tracemalloc.get_traced_memory()[0]
            last_loss = step()
        growth_late = tracemalloc.get_traced_memory()[0] - start_900
    finally:
        tracemalloc.stop()
    assert last_loss < first_loss * 0.5  # it trained
    # A graph kept alive per step (``total = total + loss``) costs kilobytes per step, hundreds
    # of kilobytes per 100 steps; early steps may still fill caches, late ones must not grow.
    assert growth_late < 20_000, (growth_early, growth_late)
    assert growth_late <= max(growth_early, 0) + 5_000, (growth_early, growth_late)
