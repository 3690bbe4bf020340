"""Symbolic baselines for extraction: frequent proof subtrees and Stitch.

Both propose *shapes* (see :mod:`refactor.generalize`) that then go through
the same generalise / verify / dedupe / rank path as the GNN's fragments
(:func:`refactor.extract.extract`).
"""
