"""Garbage-collector settings for the long-running processes (worker and serve)."""

from __future__ import annotations

import gc

GC_YOUNG = 20_000  # allocations between young collections (CPython's default: 700)


def tune_gc() -> None:
    """Freeze what start-up loaded (jieba's dictionary, lexicons, models, libraries: never
    garbage) and collect the young generation less often. Every event allocates dozens of
    short-lived dicts, and the default thresholds also kept walking long-lived state; this
    cut the worker's CPU per event by about a tenth here (see BENCHMARKS.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG, 20, 20)
