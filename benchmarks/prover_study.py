"""The prover experiment in one command: original vs refactored corpora, learned vs baselines.

    python benchmarks/prover_study.py data/set-prop.mm --out runs/prover-prop

One split (seed 0). Corpora: the database itself, and the database
refactored with the top K theorems of each extractor (``--methods``),
extracted from training proofs only and rewriting training proofs only
(``mmrefactor extract/rewrite --split``; the gnn corpus's GNN is trained
with ``--split`` too, on the ``--gnn-preset`` extractor preset). For each corpus and seed the
prover is trained and evaluated on the test theorems with the same budget;
the ``count`` baseline runs on every corpus and ``uniform`` on the original.
``--table-only`` trains and evaluates nothing and writes the table of what has finished.
Everything is resumable: rerun the same command after an interruption. The
paired table against the reference (``count`` on the original corpus) goes
to ``OUT/table.md`` and ``OUT/table.json``. The order of the work puts the
learned prover's first seed on every corpus and the count baseline first,
then the second seed, so a stopped run still answers the main questions.
The seconds budget is wall time, which other work on the machine shrinks:
theorems it cut are rerun with a looser cap (``--retry-timeouts``) so that
the expansion budget is the one that binds in every row.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from provers.compare import compare  # noqa: E402
from provers.evaluate import BUDGETS, read_results  # noqa: E402


def mm(*args: str) -> None:
    """Run an ``mmrefactor`` command (as a user would), failing loudly."""
    cmd = [sys.executable, "-m", "refactor", *args]
    print("$ mmrefactor " + " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("db")
    ap.add_argument("--out", required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--methods", nargs="*", default=["frequent", "stitch", "gnn"])
    ap.add_argument("--gnn-preset", default="demo", help="extractor preset of the gnn corpus's GNN")
    ap.add_argument("--top", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--budget", type=int, default=512)
    ap.add_argument("--budget-seconds", type=float, default=60.0)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--limit", type=int, help="only the first N test theorems")
    ap.add_argument("--sample", type=int, help="a seeded random N of the test theorems (seed 0; database order)")
    ap.add_argument("--retry-timeouts", type=float, default=300.0,
                    help="rerun theorems the wall-clock budget cut (a loaded machine) with this cap (0: off)")
    ap.add_argument("--table-only", action="store_true",
                    help="train and evaluate nothing: write the table of the evaluations already finished")
    a = ap.parse_args()
    out = os.path.abspath(a.out)
    os.makedirs(out, exist_ok=True)
    db = os.path.abspath(a.db)
    split = os.path.join(out, "split.json")
    if not os.path.exists(split):
        mm("prover", "split", db, "--seed", "0", "-o", split)
    corpora = {"original": db}
    for m in a.methods:
        t, c = os.path.join(out, f"{m}.json"), os.path.join(out, f"{m}.mm")
        if a.table_only:
            corpora[m] = c
            continue
        if not os.path.exists(t):
            extra = []
            if m == "gnn":  # its GNN learns from the training proofs only (`train --split`)
                gdir = os.path.join(out, "gnn-model")
                if not os.path.exists(os.path.join(gdir, "metrics.json")):
                    mm("train", db, "--out", gdir, "--preset", a.gnn_preset, "--split", split, "--resume")
                extra = ["--checkpoint", os.path.join(gdir, "checkpoint.pt")]
            mm("extract", db, "--method", m, "--top", str(a.top), "--split", split, "--out", t, *extra)
        if not os.path.exists(c):
            mm("rewrite", db, "--theorems", t, "--split", split, "-o", c)
        corpora[m] = c
    evals: list[tuple[str, str, int | None, str]] = []  # (corpus, policy, seed, dir)

    def ev(name: str, ck: str, policy: str, seed: int | None) -> None:
        d = os.path.join(out, "evals", f"{name}-{policy}" + ("" if seed is None else f"-s{seed}"))
        if a.table_only:
            if os.path.exists(os.path.join(d, "summary.json")):
                evals.append((name, policy, seed, d))
            return
        if not os.path.exists(os.path.join(d, "summary.json")) or (a.retry_timeouts and wall_cut(d, a.retry_timeouts)):
            args = ["prover", "eval", "--checkpoint", ck, "--out", d, "--budget-expansions", str(a.budget),
                    "--budget-seconds", str(a.budget_seconds), "--jobs", str(a.jobs)]
            if policy != "learned":
                args += ["--baseline", policy]
            if a.limit:
                args += ["--limit", str(a.limit)]
            if a.sample:
                args += ["--sample", str(a.sample)]
            if a.retry_timeouts:
                args += ["--retry-timeouts", str(a.retry_timeouts)]
            mm(*args)
        evals.append((name, policy, seed, d))

    def model(name: str, seed: int) -> str:
        d = os.path.join(out, "models", f"{name}-s{seed}")
        if not a.table_only and not os.path.exists(os.path.join(d, "metrics.json")):
            mm("prover", "train", "--corpus", corpora[name], "--split", split, "--out", d, "--seed", str(seed),
               "--epochs", str(a.epochs), "--resume")
        return os.path.join(d, "checkpoint.pt")

    # the comparisons that matter most first: a stopped run still answers them
    first = a.seeds[0]
    for name in corpora:
        ev(name, model(name, first), "learned", first)
        if name == "original":
            ev(name, model(name, first), "count", None)
        write_table(out, evals, a)
    for i, seed in enumerate(a.seeds[1:]):
        for name in corpora:
            ev(name, model(name, seed), "learned", seed)
            write_table(out, evals, a)
        if i == 0:
            ev("original", model("original", first), "uniform", None)
            write_table(out, evals, a)
    if len(a.seeds) == 1:
        ev("original", model("original", first), "uniform", None)
    for name in corpora:
        if name != "original":
            ev(name, model(name, first), "count", None)
    write_table(out, evals, a)
    return 0


def wall_cut(d: str, cap: float) -> bool:
    """Whether an evaluation holds a theorem the wall clock stopped that was not yet retried at ``cap``."""
    last = read_results(os.path.join(d, "results.jsonl"))
    return any(r["stopped"] == "seconds" and r.get("seconds_cap") != cap for r in last.values())


def metamath_accepts(d: str) -> bool | None:
    """metamath.exe's verdict on ``EVAL/proofs.mm`` (every found proof in the corpus), cached in
    ``EVAL/metamath.json`` against the file's size and time; None when metamath is not installed."""
    from metamath.judge import JudgeUnavailable, metamath_verdict

    path, cache = os.path.join(d, "proofs.mm"), os.path.join(d, "metamath.json")
    st = os.stat(path)
    key = [st.st_size, st.st_mtime_ns]
    if os.path.exists(cache):
        with open(cache) as fh:
            c = json.load(fh)
        if c.get("key") == key:
            return c["accepted"]
    try:
        v = metamath_verdict(path)
    except JudgeUnavailable:
        return None
    with open(cache, "w") as fh:
        json.dump({"key": key, "accepted": v.accepted}, fh)
    return v.accepted


def write_table(out: str, evals, a) -> None:
    ref = [e for e in evals if e[0] == "original" and e[1] == "count"]
    order = ref + [e for e in evals if e not in ref]
    cmp = compare([e[3] for e in order])
    rows = {r["eval"]: r for r in cmp["rows"]}
    groups: dict[tuple[str, str], list[dict]] = {}
    for name, policy, seed, d in order:
        groups.setdefault((name, policy), []).append(rows[d])
    n = cmp["rows"][0]["attempted"]
    scale = f" (a seeded random sample of the test split, `--sample {a.sample}`)" if a.sample else (
        f" (the first {a.limit} of the test split)" if a.limit else "")
    lines = [f"Test theorems: {n}{scale}; budget {a.budget} expansions / {a.budget_seconds:g} s each; "
             f"reference for new/lost: count on the original corpus.", "",
             "| corpus | policy | seeds | " + " | ".join(f"@{b}" for b in BUDGETS) +
             " | forecast @512 from <=64 | new/lost @512 (per seed) | proofs using a new theorem"
             " | mean proof length | expansions/s | s per theorem |",
             "| --- | --- | --- | " + " | ".join("---" for _ in BUDGETS) + " | --- | --- | --- | --- | --- | --- |"]
    for (name, policy), rs in groups.items():
        cells = []
        for b in BUDGETS:
            v = [r["budgets"][str(b)]["rate"] for r in rs]
            cells.append(f"{100 * statistics.mean(v):.1f}%" + (f" ± {100 * statistics.stdev(v):.1f}" if len(v) > 1 else ""))
        nl = ", ".join(f"+{len(r['budgets']['512']['newly_proved'])}/-{len(r['budgets']['512']['lost'])}" for r in rs)
        share = statistics.mean(r["uses_new_share"] for r in rs)
        secs = statistics.mean(r["seconds"] for r in rs) / max(n, 1)
        fc = [r["forecast"]["predicted_rate"] for r in rs if r.get("forecast")]
        fcs = f"{100 * statistics.mean(fc):.1f}%" if fc else "-"
        length = statistics.mean(r["mean_proof_length"] for r in rs)
        eps = statistics.mean(r["expansions_per_second"] for r in rs)
        lines.append(f"| {name} | {policy} | {len(rs)} | " + " | ".join(cells) + f" | {fcs} | {nl} | {100 * share:.1f}% "
                     f"| {length:.1f} | {eps:.1f} | {secs:.2f} |")
    verdicts = {d: metamath_accepts(d) for _, _, _, d in order}
    judged = [d for d, v in verdicts.items() if v is not None]
    refused = [os.path.basename(d) for d in judged if not verdicts[d]]
    lines += ["", f"`metamath \"verify proof *\"` on each evaluation's proofs.mm: {len(judged) - len(refused)} "
              f"of {len(verdicts)} accepted" + (f"; refused: {', '.join(refused)}" if refused else "") +
              ("" if len(judged) == len(verdicts) else " (metamath not installed for the rest)") + "."]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out, "table.md"), "w") as fh:
        fh.write(text)
    with open(os.path.join(out, "table.json"), "w") as fh:
        json.dump({"compare": cmp, "metamath_accepts": verdicts, "written": time.time()}, fh, indent=1)
    print(text, flush=True)


if __name__ == "__main__":
    sys.exit(main())
