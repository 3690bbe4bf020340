"""Data-parallel training under ``torchrun``: the process group, each rank's share, sums over ranks.

``torchrun`` (``python -m torch.distributed.run``) starts one process per
device and tells each its place through the environment (``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). :func:`session`
reads it: with more than one process it joins the group (NCCL on GPUs, gloo
on CPU) and yields the :class:`Ranks` of this process; without ``torchrun``
(or with one process) it yields the single-process :class:`Ranks`, for which
every helper here is the identity, so a training loop written against it
runs exactly the code it ran before, bit for bit.

The training loops (``provers/train.py``, ``refactor/train.py``) keep the
meaning of their batch size: it is the *global* batch, the same examples a
single process takes in the same order, cut across the ranks
(:meth:`Ranks.share`: rank ``r`` takes positions ``r, r + W, ...``). Each rank
scales its summed loss by ``W / size of the global batch``, so DDP's average
of the ranks' gradients is the single process's mean gradient, up to the
order of float summation. Validation is cut the same way and its counts are
summed over the ranks (:meth:`Ranks.sum`). Only rank 0 writes files.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence, TypeVar

from .errors import MMError

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (one process: world 1, rank 0)."""

    world: int = 1
    rank: int = 0
    local_rank: int = 0
    backend: str | None = None  # "nccl" or "gloo" while a process group is joined, else None

    @property
    def main(self) -> bool:
        """Rank 0: the one that writes checkpoints, metrics and progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's part of ``items``: positions ``rank, rank + world, ...`` (all of them alone)."""
        return list(items) if self.world == 1 else list(items[self.rank :: self.world])

    def sum(self, values: dict) -> dict:
        """``values`` (numbers) summed over the ranks, keys and int/float kinds kept; alone: unchanged.

        Summed in float64, so integer counts below 2**53 come back exact."""
        if not self.distributed:
            return values
        import torch
        import torch.distributed as dist

        keys = sorted(values)
        dev = torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=dev)
        dist.all_reduce(t)
        out = t.tolist()
        return {k: (int(round(v)) if isinstance(values[k], int) else v) for k, v in zip(keys, out)}

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def device(self, name: str):
        """The torch device of this rank: ``cuda:LOCAL_RANK`` for ``cuda``, else ``name``."""
        import torch

        if name == "cuda" and self.distributed:
            return torch.device("cuda", self.local_rank)
        return torch.device(name)

    def wrap(self, module):
        """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel` (alone: unchanged).

        ``find_unused_parameters``: a rank's share of a batch may leave a head without gradient
        (no free slot to choose a term for, no value target)."""
        if not self.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.local_rank] if self.backend == "nccl" else None
        return DistributedDataParallel(module, device_ids=ids, output_device=ids[0] if ids else None,
                                       find_unused_parameters=True)


def from_env() -> Ranks:
    """The ranks ``torchrun`` announces in the environment (no process group is joined here)."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError:
        raise MMError("WORLD_SIZE, RANK and LOCAL_RANK must be integers (as torchrun sets them)",
                      "<environment>") from None
    if world < 1 or not 0 <= rank < world:
        raise MMError(f"RANK {rank} is not within WORLD_SIZE {world}", "<environment>")
    return Ranks(world, rank, local)


def under_torchrun() -> bool:
    """Whether this process is one of several that ``torchrun`` started."""
    return from_env().world > 1


@contextmanager
def session(device: str = "cpu") -> Iterator[Ranks]:
    """Join the ``torchrun`` process group for the duration (NCCL for ``device == "cuda"``, else
    gloo) and yield this process's :class:`Ranks`; alone, yield the single-process Ranks.

    Re-entrant: inside a session that already joined, the group is reused and left joined."""
    env = from_env()
    if env.world == 1:
        yield Ranks()
        return
    import torch
    import torch.distributed as dist

    backend = "nccl" if device == "cuda" else "gloo"
    if dist.is_initialized():
        yield Ranks(env.world, env.rank, env.local_rank, dist.get_backend())
        return
    if backend == "nccl":
        if not torch.cuda.is_available():
            raise MMError("--device cuda asked for, but no CUDA device is available", "<options>")
        torch.cuda.set_device(env.local_rank)
    dist.init_process_group(backend=backend)
    try:
        yield Ranks(env.world, env.rank, env.local_rank, backend)
    finally:
        dist.destroy_process_group()
