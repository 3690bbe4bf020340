#!/usr/bin/env python3
"""Speed of reading and verifying set.mm, as ratios to metamath.exe.

One run times, best of N each:

- metamath.exe: ``metamath "read set.mm" exit`` (its read alone) and
  ``metamath "read set.mm" "verify proof *" exit`` (read + verify); its
  verify time is the difference of the two in the same run (its own
  "verified in X s" timer is reported beside it);
- ours: ``Database.from_file`` (parse) and ``verify_all`` with 2 processes
  and with 1 process, each on a freshly parsed database so that no cache
  from an earlier run helps.

Wall-clock seconds are the figures the bars judge (the issue's: parse within
3x of metamath's read; verify within 7x of metamath's verify, goal 4x). CPU
seconds (user + sys, worker processes included) are printed beside them
because a loaded machine inflates wall time and CPU time much less.

    .venv/bin/python benchmarks/bench_verify.py [--runs 3] [--db PATH] [--json] [--out FILE]

``make bench`` runs this file.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from metamath.database import Database  # noqa: E402
from metamath.verify import verify_all  # noqa: E402
from metamath.write import write_json  # noqa: E402

DEFAULT_DB = "/usr/share/metamath/databases/set.mm"
PARSE_BAR = 3.0
VERIFY_BAR = 7.0
VERIFY_GOAL = 4.0
_MM_VERIFIED = re.compile(r"All proofs in the database were verified in ([\d.]+) s")


@dataclass
class Timing:
    """Best wall and best CPU seconds over the runs of one measurement."""

    wall: float = float("inf")
    cpu: float = float("inf")

    def add(self, wall: float, cpu: float) -> None:
        self.wall = min(self.wall, wall)
        self.cpu = min(self.cpu, cpu)

    def as_dict(self) -> dict:
        return {"wall": round(self.wall, 3), "cpu": round(self.cpu, 3)}


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (metamath, pool workers)."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _metamath(exe: str, db: str, *commands: str) -> tuple[float, float, str]:
    c0, t0 = _cpu(), time.perf_counter()
    res = subprocess.run([exe, f'read "{db}"', *commands, "exit"], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, errors="replace")
    wall, cpu = time.perf_counter() - t0, _cpu() - c0
    out = res.stdout + res.stderr
    if any(l.startswith("?") for l in out.splitlines()):
        raise SystemExit(f"metamath.exe reported errors on {db}:\n{out[-2000:]}")
    return wall, cpu, out


def _timed(fn):
    gc.collect()
    c0, t0 = _cpu(), time.perf_counter()
    value = fn()
    return value, time.perf_counter() - t0, _cpu() - c0


def bench(db_path: str, runs: int, log=print) -> dict:
    """All measurements and ratios for one database (see the module docstring)."""
    exe = shutil.which("metamath")
    if exe is None:
        raise SystemExit("metamath.exe not found: install Debian's metamath (make setup does)")
    if not os.path.exists(db_path):
        raise SystemExit(f"{db_path}: file not found")
    mm_read, mm_total, mm_verify, mm_timer = Timing(), Timing(), Timing(), Timing()
    parse, verify2, verify1 = Timing(), Timing(), Timing()
    theorems = None
    for run in range(1, runs + 1):
        rw, rc, _ = _metamath(exe, db_path)
        mm_read.add(rw, rc)
        w, c, out = _metamath(exe, db_path, "verify proof *")
        mm_total.add(w, c)
        mm_verify.add(max(w - rw, 1e-3), max(c - rc, 1e-3))
        m = _MM_VERIFIED.search(out)
        if not m:
            raise SystemExit(f"metamath.exe did not verify {db_path}:\n{out[-2000:]}")
        mm_timer.add(float(m.group(1)), float(m.group(1)))
        for jobs, timing in ((2, verify2), (1, verify1)):
            db, w, c = _timed(lambda: Database.from_file(db_path))
            parse.add(w, c)
            rep, w, c = _timed(lambda: verify_all(db, jobs=jobs))
            if rep.failed:
                raise SystemExit(f"our verifier failed {len(rep.failed)} proofs, e.g. {rep.failed[0]}")
            theorems = rep.theorems
            timing.add(w, c)
            del db, rep
        log(f"run {run}/{runs}: metamath read {mm_read.wall:.2f} s, verify {mm_verify.wall:.2f} s; "
            f"ours parse {parse.wall:.2f} s, verify x2 {verify2.wall:.2f} s, x1 {verify1.wall:.2f} s (best so far)")
    parse_ratio = parse.wall / mm_read.wall
    v2_ratio = verify2.wall / mm_verify.wall
    v1_ratio = verify1.wall / mm_verify.wall
    return {
        "db": db_path,
        "theorems": theorems,
        "runs": runs,
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "metamath": {"read": mm_read.as_dict(), "verify": mm_verify.as_dict(),
                     "verify_own_timer": round(mm_timer.wall, 3), "read_and_verify": mm_total.as_dict()},
        "ours": {"parse": parse.as_dict(), "verify_2_processes": verify2.as_dict(),
                 "verify_1_process": verify1.as_dict()},
        "ratios": {
            "parse_vs_read": round(parse_ratio, 2),
            "parse_vs_read_cpu": round(parse.cpu / mm_read.cpu, 2),
            "verify_2_processes_vs_verify": round(v2_ratio, 2),
            "verify_1_process_vs_verify": round(v1_ratio, 2),
            "verify_1_process_vs_verify_cpu": round(verify1.cpu / mm_verify.cpu, 2),
            "end_to_end_2_processes": round((parse.wall + verify2.wall) / mm_total.wall, 2),
        },
        "bars": {
            "parse_within_3x": parse_ratio <= PARSE_BAR,
            "verify_within_7x": v2_ratio <= VERIFY_BAR,
            "verify_goal_4x": v2_ratio <= VERIFY_GOAL,
        },
    }


def table(r: dict) -> str:
    """The results as a plain-text table."""
    mm, ours, ra, bars = r["metamath"], r["ours"], r["ratios"], r["bars"]

    def ok(flag: bool) -> str:
        return "yes" if flag else "NO"

    rows = [
        ("measurement", "wall s", "cpu s", "ratio", "bar"),
        ("metamath read", f"{mm['read']['wall']:.2f}", f"{mm['read']['cpu']:.2f}", "1.00", ""),
        ("metamath verify", f"{mm['verify']['wall']:.2f}", f"{mm['verify']['cpu']:.2f}", "1.00",
         f"(its own timer: {mm['verify_own_timer']:.2f} s)"),
        ("metamath read + verify", f"{mm['read_and_verify']['wall']:.2f}", f"{mm['read_and_verify']['cpu']:.2f}",
         "", ""),
        ("ours parse", f"{ours['parse']['wall']:.2f}", f"{ours['parse']['cpu']:.2f}",
         f"{ra['parse_vs_read']:.2f}", f"<= {PARSE_BAR:g}x: {ok(bars['parse_within_3x'])}"),
        ("ours verify, 2 processes", f"{ours['verify_2_processes']['wall']:.2f}",
         f"{ours['verify_2_processes']['cpu']:.2f}", f"{ra['verify_2_processes_vs_verify']:.2f}",
         f"<= {VERIFY_BAR:g}x: {ok(bars['verify_within_7x'])}; goal {VERIFY_GOAL:g}x: "
         f"{ok(bars['verify_goal_4x'])}"),
        ("ours verify, 1 process", f"{ours['verify_1_process']['wall']:.2f}",
         f"{ours['verify_1_process']['cpu']:.2f}", f"{ra['verify_1_process_vs_verify']:.2f}", ""),
        ("ours parse + verify x2 vs metamath", "", "", f"{ra['end_to_end_2_processes']:.2f}", ""),
    ]
    w = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"{r['db']}: {r['theorems']} proofs, best of {r['runs']} runs, {r['cpus']} CPUs, "
             f"load average {r['load_average'][0]}"]
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w[j]) if j in (0, 4) else c.rjust(w[j]) for j, c in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * x for x in w))
    lines.append("ratio = ours / metamath.exe (wall); cpu ratios: parse "
                 f"{ra['parse_vs_read_cpu']:.2f}, verify 1 process {ra['verify_1_process_vs_verify_cpu']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=DEFAULT_DB, help=f"database to read and verify (default {DEFAULT_DB})")
    ap.add_argument("--runs", "-n", type=int, default=3, help="best of N runs (default 3)")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object")
    ap.add_argument("--out", help="also write the JSON results to this file (atomically)")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    quiet = args.json
    res = bench(args.db, args.runs, log=(lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr)))
    if args.out:
        write_json(args.out, res, indent=2)
    print(json.dumps(res, indent=2) if args.json else table(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
