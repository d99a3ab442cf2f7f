"""Benchmarks comparing chainrule with PyTorch (and JAX when it is installed).

Run ``python -m benchmarks --help`` from the repository root; see ``benchmarks/README.md``.
"""
