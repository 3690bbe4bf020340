"""Run a job function over many items on all cores (fork), or on a Ray cluster.

A job is ``fn(shared, item) -> result`` (:func:`imap_jobs`); for theorems
of one database, ``fn(db, label)`` (:func:`imap_theorems`). Locally the
shared state and the function are handed to the workers by ``fork``
(copy-on-write), never pickled; only items go out and small results come
back. So the function may be any callable (a closure, a
``functools.partial``, a callable object) carrying whatever context it
needs: callers pass their context in it or in ``shared``, not through
module globals. With ``ray=ADDRESS`` (``auto`` or a cluster address) the
same function runs on a Ray cluster instead (:mod:`metamath.cluster`: the
shared state goes into the object store once and each actor keeps it).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable, TypeVar

from .database import Database

I = TypeVar("I")
T = TypeVar("T")
_STATE: tuple | None = None  # (shared, fn) while a pool runs: what the forked workers inherit


def _run_chunk(chunk: list) -> list:
    shared, fn = _STATE
    return [(x, fn(shared, x)) for x in chunk]


def imap_jobs(fn: Callable[[Any, I], T], shared: Any, items: Iterable[I], jobs: int | None = None,
              desc: str | None = None, min_parallel: int = 2000, chunk: int | None = None,
              ordered: bool = True, ray: str | None = None, unit: str = "job"):
    """Yield ``(item, fn(shared, item))`` in item order, in parallel when it pays.

    ``jobs``: local processes (default: all cores, at most 8, when there are more than
    ``min_parallel`` items, else one). ``chunk``: items per task sent to a worker (default: about
    four tasks per worker, at most 500); ``ordered=False`` yields each result as soon as it is done
    (with ``chunk=1``: one item at a time, for long, uneven jobs whose results are saved as they
    come). ``ray``: run on that Ray cluster instead (``jobs`` and ``min_parallel`` are then unused:
    one actor per CPU of the cluster).

    Results stream back as they are done, so a caller can write them out instead of holding them
    all. Locally the workers are forked after ``fn`` and ``shared`` are set, so they inherit them
    (each worker then has its own copy: what ``fn`` caches stays in that worker); the results must
    pickle (on Ray, ``fn`` and ``shared`` too). A progress bar goes to stderr when ``desc`` is given.
    """
    global _STATE
    items = list(items)
    if ray:
        from .cluster import connect, imap

        connect(ray)
        yield from imap(fn, shared, items, chunk=chunk, ordered=ordered, desc=desc)
        return
    if jobs is None:
        jobs = min(os.cpu_count() or 1, 8) if len(items) > min_parallel else 1
    bar = None
    if desc:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc=desc, unit=unit, leave=False, mininterval=0.5)
    try:
        if jobs <= 1 or not hasattr(os, "fork"):
            for x in items:
                yield x, fn(shared, x)
                if bar:
                    bar.update()
        else:
            import multiprocessing as mp

            size = chunk or max(1, min(500, len(items) // (jobs * 4) + 1))
            chunks = [items[i : i + size] for i in range(0, len(items), size)]
            _STATE = (shared, fn)
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


def imap_theorems(db: Database, fn: Callable[[Database, str], T], labels: Iterable[str],
                  jobs: int | None = None, desc: str | None = None, min_parallel: int = 2000,
                  chunk: int | None = None, ordered: bool = True, ray: str | None = None):
    """Yield ``(label, fn(db, label))`` in label order (see :func:`imap_jobs`; ``db`` is the shared state)."""
    return imap_jobs(fn, db, labels, jobs=jobs, desc=desc, min_parallel=min_parallel, chunk=chunk,
                     ordered=ordered, ray=ray, unit="proof")


def map_theorems(db: Database, fn: Callable[[Database, str], T], labels: Iterable[str],
                 jobs: int | None = None, desc: str | None = None, ray: str | None = None) -> dict[str, T]:
    """``{label: fn(db, label)}`` for every label (see :func:`imap_theorems`)."""
    return dict(imap_theorems(db, fn, labels, jobs=jobs, desc=desc, ray=ray))
