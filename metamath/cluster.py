"""Run a job function over many items on a Ray cluster: the cluster twin of the local fork pool.

A job is ``fn(shared, item) -> result``, the same function
:func:`metamath.parallel.imap_jobs` runs in local forked processes. On Ray
the big, read-only ``shared`` state (a database; a corpus with a prover's
networks; an attribution context) goes into Ray's object store once
(``ray.put``), and one actor per CPU of the cluster (at most one per chunk
of items) takes it from there once, when it starts, and keeps it; after
that only chunks of items go out and results come back, so no task
pickles the state again.

Ray is an optional extra (``pip install 'mmrefactor[ray]'``; ``make
setup`` installs it). Without it, :func:`connect` raises an
:class:`~metamath.errors.MMError` naming the extra (the command line: exit
2). Ray ships the job function and the state by reference to their
modules, not the code: every node of a cluster needs this package
installed (a local instance's workers see the driver's ``sys.path``).
"""
from __future__ import annotations

import logging
import sys
from typing import Any, Callable, Iterable, Iterator, TypeVar

from .errors import MMError

I = TypeVar("I")
T = TypeVar("T")

EXTRA = "pip install 'mmrefactor[ray]'"


def require_ray():
    """The ``ray`` module, or MMError naming the extra to install."""
    try:
        import ray
    except ImportError:
        raise MMError(f"--ray needs Ray, an optional extra: {EXTRA} (make setup installs it)",
                      "<options>") from None
    return ray


def connect(address: str):
    """Join the Ray cluster at ``address`` (once per process) and return the ``ray`` module.

    ``auto``: the cluster ``RAY_ADDRESS`` names, else the one ``ray start`` made on this machine,
    else a new local instance on this machine's CPUs; anything else is a cluster address
    (``HOST:PORT`` or ``ray://HOST:PORT``). A process that already joined one keeps it."""
    ray = require_ray()
    if ray.is_initialized():
        return ray
    try:
        ray.init(address=None if address == "auto" else address, include_dashboard=False,
                 log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as exc:
        raise MMError(f"cannot join the Ray cluster {address!r}: {exc}", "<options>") from None
    return ray


class _Worker:
    """One actor: the job function and the shared state, taken from the object store once."""

    def __init__(self, payload: tuple):
        self.fn, self.shared = payload
        if "torch" in sys.modules:  # one search or training per CPU, as the local workers do
            sys.modules["torch"].set_num_threads(1)

    def run(self, chunk: list) -> list:
        return [(item, self.fn(self.shared, item)) for item in chunk]


def imap(fn: Callable[[Any, I], T], shared: Any, items: Iterable[I], chunk: int | None = None,
         ordered: bool = True, desc: str | None = None) -> Iterator[tuple[I, T]]:
    """Yield ``(item, fn(shared, item))`` for every item, computed on the joined Ray cluster
    (:func:`connect` first): in item order, or with ``ordered=False`` each chunk as soon as it is done.

    ``chunk``: items per call to an actor (default: about four calls per CPU, at most 500).
    An exception in a job is raised here (Ray keeps its type). The actors are ended at the end."""
    ray = require_ray()
    from ray.util import ActorPool

    items = list(items)
    if not items:
        return
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    size = chunk or max(1, min(500, len(items) // (cpus * 4) + 1))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    ref = ray.put((fn, shared))  # once; each actor reads it when it starts
    worker = ray.remote(num_cpus=1)(_Worker)
    actors = [worker.remote(ref) for _ in range(min(cpus, len(chunks)))]
    bar = None
    if desc:
        from tqdm import tqdm

        bar = tqdm(total=len(items), desc=desc, unit="job", leave=False, mininterval=0.5)
    try:
        pool = ActorPool(actors)
        submit = lambda actor, c: actor.run.remote(c)  # noqa: E731
        for res in (pool.map if ordered else pool.map_unordered)(submit, chunks):
            yield from res
            if bar:
                bar.update(len(res))
    finally:
        if bar:
            bar.close()
        for a in actors:
            ray.kill(a)
