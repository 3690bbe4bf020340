#!/usr/bin/env python3
"""Writing set.mm back: the byte-identical round trip and the recompression
of every proof, judged by metamath.exe.

Measures, wall and CPU seconds (worker processes included; a loaded machine
inflates wall time much more than CPU time):

- ours: ``Database.from_file`` (parse), ``write_database`` unchanged (checked
  byte-identical to the input) and ``write_database(recompress=True)`` (every
  proof verified, then re-encoded by our compressor; 2 processes by default);
- metamath.exe: ``read`` + ``verify proof *`` of the recompressed file, which
  must report "All proofs in the database were verified";
- the result: bytes before/after, total compressed letters before/after
  (ours are never longer, proof by proof), and how many proofs come out
  token-identical to the input's (same label order and letters as the tool
  that compressed set.mm).

    .venv/bin/python benchmarks/bench_write.py [--db PATH] [--jobs N] [--keep DIR] [--json]

The recompressed file goes to a temporary directory (or ``--keep DIR``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from metamath.compressed import split_compressed  # noqa: E402
from metamath.database import Database  # noqa: E402
from metamath.write import write_database  # noqa: E402

DEFAULT_DB = "/usr/share/metamath/databases/set.mm"
_MM_VERIFIED = re.compile(r"All proofs in the database were verified in ([\d.]+) s")


def _cpu() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


def _timed(fn):
    c0, t0 = _cpu(), time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - t0, 2), round(_cpu() - c0, 2)


def _letters(db: Database) -> dict[str, tuple[list[str], str]]:
    out = {}
    for l in db.theorems():
        toks = db.proof_tokens(l)
        if toks[0] == "(":
            out[l] = split_compressed(toks)
    return out


def bench(db_path: str, out_dir: str, jobs: int | None, log=print) -> dict:
    exe = shutil.which("metamath")
    if exe is None:
        raise SystemExit("metamath.exe not found: install Debian's metamath (make setup does)")
    name = os.path.basename(db_path)
    same_path = os.path.join(out_dir, "same-" + name)
    rc_path = os.path.join(out_dir, "recompressed-" + name)
    r: dict = {"db": db_path, "cpus": os.cpu_count(), "jobs": jobs}
    db, r["parse_wall"], r["parse_cpu"] = _timed(lambda: Database.from_file(db_path))
    log(f"parse {r['parse_wall']} s")
    _, r["write_same_wall"], r["write_same_cpu"] = _timed(lambda: write_database(db, same_path))
    with open(db_path, "rb") as a, open(same_path, "rb") as b:
        r["round_trip_identical"] = a.read() == b.read()
    os.unlink(same_path)
    log(f"round trip {r['write_same_wall']} s, identical: {r['round_trip_identical']}")
    res, r["recompress_wall"], r["recompress_cpu"] = _timed(
        lambda: write_database(db, rc_path, recompress=True, jobs=jobs))
    r["recompressed"], r["kept"] = res["recompressed"], len(res["kept"])
    log(f"recompress {r['recompress_wall']} s ({r['recompressed']} proofs, {r['kept']} kept)")
    c0, t0 = _cpu(), time.perf_counter()
    mm = subprocess.run([exe, f'read "{os.path.abspath(rc_path)}"', "verify proof *", "exit"],
                        stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace")
    r["metamath_wall"], r["metamath_cpu"] = round(time.perf_counter() - t0, 2), round(_cpu() - c0, 2)
    out = mm.stdout + mm.stderr
    m = _MM_VERIFIED.search(out)
    r["metamath_verified"] = bool(m) and not any(l.startswith("?") for l in out.splitlines())
    r["metamath_own_timer"] = float(m.group(1)) if m else None
    log(f"metamath read + verify {r['metamath_wall']} s: "
        + ("all proofs verified" if r["metamath_verified"] else "FAILED\n" + out[-2000:]))
    new = Database.from_file(rc_path)
    before, after = _letters(db), _letters(new)
    r["bytes_before"], r["bytes_after"] = os.path.getsize(db_path), os.path.getsize(rc_path)
    r["letters_before"] = sum(len(v[1]) for l, v in before.items() if l in after)
    r["letters_after"] = sum(len(after[l][1]) for l in before if l in after)
    r["longer"] = sum(1 for l in before if l in after and len(after[l][1]) > len(before[l][1]))
    r["token_identical"] = sum(1 for l in before if after.get(l) == before[l])
    r["compressed_before"] = len(before)
    r["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return r


def table(r: dict) -> str:
    return "\n".join([
        f"{r['db']}: {r['recompressed']} proofs recompressed ({r['kept']} kept), {r['cpus']} CPUs, "
        f"load average {r['load_average'][0]}",
        f"  parse                     {r['parse_wall']:>7.2f} s wall {r['parse_cpu']:>7.2f} s cpu",
        f"  write unchanged           {r['write_same_wall']:>7.2f} s wall {r['write_same_cpu']:>7.2f} s cpu"
        f"   byte-identical: {'yes' if r['round_trip_identical'] else 'NO'}",
        f"  write --recompress        {r['recompress_wall']:>7.2f} s wall {r['recompress_cpu']:>7.2f} s cpu",
        f"  metamath read + verify    {r['metamath_wall']:>7.2f} s wall {r['metamath_cpu']:>7.2f} s cpu"
        f"   all verified: {'yes' if r['metamath_verified'] else 'NO'}",
        f"  bytes {r['bytes_before']:,} -> {r['bytes_after']:,}; letters {r['letters_before']:,} -> "
        f"{r['letters_after']:,} ({r['longer']} proofs longer); "
        f"{r['token_identical']:,} of {r['compressed_before']:,} proofs token-identical to the input",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", default=DEFAULT_DB)
    p.add_argument("--jobs", type=int, default=None, help="processes for recompression (default: all cores)")
    p.add_argument("--keep", metavar="DIR", help="write the recompressed database here and keep it")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not os.path.exists(args.db):
        raise SystemExit(f"{args.db}: file not found")
    log = (lambda *a: print(*a, file=sys.stderr, flush=True))
    if args.keep:
        os.makedirs(args.keep, exist_ok=True)
        r = bench(args.db, args.keep, args.jobs, log)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-write-") as d:
            r = bench(args.db, d, args.jobs, log)
    print(json.dumps(r, indent=2) if args.json else table(r))
    ok = r["round_trip_identical"] and r["metamath_verified"] and not r["kept"] and not r["longer"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
