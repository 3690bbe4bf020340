"""Grammar benchmark: build time, statements/second and agreement with proofs, per database.

For each database: the time to read it and to build its grammar (the LALR
table; ``from disk`` when a cached table was loaded; wall and CPU seconds, as
a shared machine makes wall time noisy), then parsing its
``$e``/``$a``/``$p`` statements (all of them, or a seeded sample of
``--sample`` for set.mm and iset.mm) with statements/second and how many
needed backtracking or Earley, then agreement: each statement's parse against
the tree its proofs build (:func:`grammar_agreement.compare_statement`). With
``--proofs`` (default for the small databases) every step of every proof is
also compared (:func:`grammar_agreement.compare_with_proof`).

    .venv/bin/python benchmarks/bench_grammar.py                 # everything
    .venv/bin/python benchmarks/bench_grammar.py --dbs ql.mm,hol.mm
    .venv/bin/python benchmarks/bench_grammar.py --no-disk-cache --json out.json
"""
from __future__ import annotations

import argparse
import gc
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from metamath import Database  # noqa: E402
from grammar_agreement import Agreement, compare_statement, compare_with_proof  # noqa: E402  (this directory)
from metamath.grammar import ExprParseError, Grammar  # noqa: E402
from metamath.write import write_json  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEBIAN = "/usr/share/metamath/databases"
SMALL = {"ql.mm", "hol.mm", "set-prop.mm"}


def _path(name: str) -> str:
    if os.path.sep in name:
        return name
    if name == "set-prop.mm":
        return os.path.join(ROOT, "data", name)
    return os.path.join(DEBIAN, name)


def bench(name: str, sample: int, seed: int, cache_dir, proofs: bool | None) -> dict:
    path = _path(name)
    t0 = time.perf_counter()
    db = Database.from_file(path)
    read_s = time.perf_counter() - t0
    c0 = time.process_time()
    g = Grammar.from_database(db, cache_dir=cache_dir)
    build_cpu = time.process_time() - c0
    labels = db.labels("eap")
    if sample and len(labels) > sample:
        labels = sorted(random.Random(seed).sample(labels, sample), key=lambda l: db[l].index)
    # parse (a fresh grammar: only repeated expressions hit the cache)
    times = []
    failed = []
    t0 = time.perf_counter()
    c0 = time.process_time()
    for label in labels:
        t1 = time.process_time()
        try:
            g.parse_statement(label)
        except ExprParseError as exc:
            failed.append(str(exc))
        times.append(time.process_time() - t1)
    parse_s = time.perf_counter() - t0
    parse_cpu = time.process_time() - c0
    stats = dict(g.stats)
    # agreement of each statement with the tree its proofs build
    agree = Agreement()
    t0 = time.perf_counter()
    for label in labels:
        agree.add(compare_statement(g, label))
    agree_s = time.perf_counter() - t0
    out = {
        "database": name, "statements_total": len(db.labels("eap")), "syntax_axioms": len(g.rules),
        "read_s": round(read_s, 2), "grammar_build_s": round(g.build_seconds, 2),
        "grammar_build_cpu_s": round(build_cpu, 2),
        "lalr_from_disk": g.lalr_from_disk, "lalr_error": g.lalr_error,
        "statements": len(labels), "parse_s": round(parse_s, 3), "parse_cpu_s": round(parse_cpu, 3),
        "statements_per_s": round(len(labels) / parse_s, 1) if parse_s else None,
        "statements_per_cpu_s": round(len(labels) / parse_cpu, 1) if parse_cpu else None,
        "median_cpu_ms": round(1000 * statistics.median(times), 3), "max_cpu_ms": round(1000 * max(times), 2),
        "lalr": stats.get("lalr", 0), "lalr_backtrack": stats.get("lalr-backtrack", 0),
        "earley": stats.get("earley", 0), "cached": stats.get("cached", 0), "parse_failures": failed[:5],
        "n_parse_failures": len(failed),
        "compared_with_proofs": agree.syntax + agree.statements, "agree": agree.syntax + agree.statements
        - len(agree.mismatches), "mismatches": agree.mismatches[:5], "n_mismatches": len(agree.mismatches),
        "agreement_s": round(agree_s, 2),
    }
    if proofs if proofs is not None else name in SMALL:
        full = Agreement()
        t0 = time.perf_counter()
        for label in db.theorems():
            full.add(compare_with_proof(g, label))
        out["proof_steps"] = {"syntax_expressions": full.syntax, "statement_steps": full.statements,
                              "mismatches": len(full.mismatches), "first": full.mismatches[:3],
                              "seconds": round(time.perf_counter() - t0, 2)}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dbs", default="ql.mm,hol.mm,set-prop.mm,set.mm,iset.mm",
                    help="comma-separated: Debian names, set-prop.mm (data/), or paths")
    ap.add_argument("--sample", type=int, default=2000, help="statements sampled from big databases")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--cache-dir", default=None, help="where LALR tables are kept (default ~/.cache/mmrefactor)")
    ap.add_argument("--no-disk-cache", action="store_true", help="always build the LALR table")
    ap.add_argument("--proofs", action="store_true", default=None, help="compare every proof step, big dbs too")
    ap.add_argument("--json", help="write the results here too")
    args = ap.parse_args(argv)
    cache_dir = False if args.no_disk_cache else args.cache_dir
    results = []
    for name in args.dbs.split(","):
        if not os.path.exists(_path(name)):
            print(f"{name}: {_path(name)} not found, skipped", file=sys.stderr)
            continue
        sample = 0 if name in SMALL else args.sample
        r = bench(name, sample, args.seed, cache_dir, args.proofs)
        gc.collect()  # the previous database's heap would slow the next one's collections
        results.append(r)
        print(f"{name}: {r['syntax_axioms']} syntax axioms; read {r['read_s']} s; grammar "
              f"{r['grammar_build_s']} s (cpu {r['grammar_build_cpu_s']} s)"
              f"{' from disk' if r['lalr_from_disk'] else ''}"
              f"{'; no LALR: ' + r['lalr_error'] if r['lalr_error'] else ''}")
        print(f"  parse {r['statements']} statements in {r['parse_s']} s = {r['statements_per_s']}/s "
              f"(cpu {r['parse_cpu_s']} s = {r['statements_per_cpu_s']}/s) "
              f"(per statement cpu median {r['median_cpu_ms']} ms, max {r['max_cpu_ms']} ms); lalr {r['lalr']}, "
              f"lalr+backtrack {r['lalr_backtrack']}, earley {r['earley']}, cached {r['cached']}, "
              f"failed {r['n_parse_failures']}")
        print(f"  agreement with proofs: {r['agree']}/{r['compared_with_proofs']} statements "
              f"({r['statements'] - r['compared_with_proofs']} have no proof-built tree), "
              f"{r['n_mismatches']} mismatches, {r['agreement_s']} s")
        if "proof_steps" in r:
            p = r["proof_steps"]
            print(f"  every proof step: {p['syntax_expressions']} syntax expressions + {p['statement_steps']} "
                  f"statement steps, {p['mismatches']} mismatches, {p['seconds']} s")
        for m in r["mismatches"] + r["parse_failures"]:
            print("   ", m)
        sys.stdout.flush()
    if args.json:
        write_json(args.json, results)
    bad = sum(r["n_mismatches"] + r["n_parse_failures"] + r.get("proof_steps", {}).get("mismatches", 0)
              for r in results)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
