"""Shared fixtures: the embedded default and Debian's databases (the real data)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "data")
DEBIAN = "/usr/share/metamath/databases"
DEBIAN_DBS = ["set.mm", "iset.mm", "nf.mm", "hol.mm", "ql.mm", "peano.mm", "miu.mm", "demo0.mm", "big-unifier.mm"]


def prover_slice(d) -> tuple[str, str]:
    """data/set-prop.mm cut after `mpbir` (a few hundred theorems: a tiny prover trains in seconds)
    and its prover split (seed 3), written into directory ``d``: (database, split) paths."""
    from refactor.cli import main

    small, split = os.path.join(d, "small.mm"), os.path.join(d, "split.json")
    assert main(["slice", os.path.join(DATA, "set-prop.mm"), "--until", "mpbir", "-o", small]) == 0
    assert main(["prover", "split", small, "--seed", "3", "-o", split]) == 0
    return small, split


def debian(name: str) -> str:
    """Path of a Debian database; the test is skipped only if the package is absent."""
    path = os.path.join(DEBIAN, name)
    if not os.path.exists(path):
        pytest.skip(f"{path} missing: install Debian's metamath-databases (make setup does)")
    return path


def metamath_exe() -> str:
    exe = shutil.which("metamath")
    if exe is None:
        pytest.skip("metamath.exe missing: install Debian's metamath (make setup does)")
    return exe


def run_metamath(path: str, *commands: str, timeout: float = 600) -> str:
    """metamath.exe's output for ``read path``, ``commands``, exit (skipped without metamath)."""
    from metamath.judge import run_metamath as run

    metamath_exe()
    return run(str(path), *commands, timeout=timeout)


def metamath_verdict(path: str):
    """metamath.exe's :class:`metamath.judge.Verdict` on a file (skipped without metamath)."""
    from metamath.judge import metamath_verdict as verdict

    metamath_exe()
    return verdict(str(path))


def torchrun(*args: str, nproc: int = 2, timeout: float = 300) -> subprocess.CompletedProcess:
    """``torchrun --standalone --nproc_per_node NPROC -m refactor ARGS`` on CPU (gloo), one torch thread
    a process, this checkout first on the path; its stdout and stderr captured as text."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc),
           "-m", "refactor", *args]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def demo0():
    from metamath import Database

    return Database.from_file(debian("demo0.mm"))


@pytest.fixture(scope="session")
def ql():
    from metamath import Database

    return Database.from_file(debian("ql.mm"))
