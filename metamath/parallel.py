"""Run a function over many theorems of one database on all cores (fork).

The database and the function are handed to the workers by ``fork``
(copy-on-write), never pickled; only labels go out and small results come
back. So the function may be any callable (a closure, a
``functools.partial``, a callable object) carrying whatever context it
needs: callers pass their context in it, not through module globals.
"""
from __future__ import annotations

import os
from typing import Callable, Iterable, TypeVar

from .database import Database

T = TypeVar("T")
_STATE: tuple | None = None  # (db, fn) while a pool runs: what the forked workers inherit


def _run_chunk(chunk: list[str]) -> list:
    db, fn = _STATE
    return [(l, fn(db, l)) for l in chunk]


def imap_theorems(db: Database, fn: Callable[[Database, str], T], labels: Iterable[str],
                  jobs: int | None = None, desc: str | None = None, min_parallel: int = 2000,
                  chunk: int | None = None, ordered: bool = True):
    """Yield ``(label, fn(db, label))`` in label order, in parallel when it pays.

    ``chunk``: labels per task sent to a worker (default: about four tasks
    per worker, at most 500); ``ordered=False`` yields each result as soon
    as it is done (with ``chunk=1``: one label at a time, for long,
    uneven jobs whose results are saved as they come).

    Results stream back as they are done, so a caller can write them out
    instead of holding them all. ``fn`` may be any callable: the workers are
    forked after it is set, so they inherit it, state included (each worker
    then has its own copy: what ``fn`` caches stays in that worker); the
    results must pickle. A progress bar goes to stderr when ``desc`` is
    given.
    """
    global _STATE
    labels = list(labels)
    if jobs is None:
        jobs = min(os.cpu_count() or 1, 8) if len(labels) > min_parallel else 1
    bar = None
    if desc:
        from tqdm import tqdm

        bar = tqdm(total=len(labels), desc=desc, unit="proof", leave=False, mininterval=0.5)
    try:
        if jobs <= 1 or not hasattr(os, "fork"):
            for l in labels:
                yield l, fn(db, l)
                if bar:
                    bar.update()
        else:
            import multiprocessing as mp

            size = chunk or max(1, min(500, len(labels) // (jobs * 4) + 1))
            chunks = [labels[i : i + size] for i in range(0, len(labels), size)]
            _STATE = (db, fn)
            try:
                with mp.get_context("fork").Pool(jobs) as pool:
                    for res in (pool.imap if ordered else pool.imap_unordered)(_run_chunk, chunks):
                        yield from res
                        if bar:
                            bar.update(len(res))
            finally:
                _STATE = None
    finally:
        if bar:
            bar.close()


def map_theorems(db: Database, fn: Callable[[Database, str], T], labels: Iterable[str],
                 jobs: int | None = None, desc: str | None = None) -> dict[str, T]:
    """``{label: fn(db, label)}`` for every label (see :func:`imap_theorems`)."""
    return dict(imap_theorems(db, fn, labels, jobs=jobs, desc=desc))
