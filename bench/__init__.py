"""Benchmarks of the engine and the service against PyTorch, JAX and bare baselines.

``python -m bench`` runs them all and prints one table of targets; each
``bench_*`` module also runs alone. Torch and JAX are optional (``pip install
.[bench]``); without them their comparisons are reported as skipped.
"""
