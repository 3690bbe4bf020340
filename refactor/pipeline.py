"""``mmrefactor run``: the whole job on one database, stage by stage, resumable.

verify -> dataset -> train -> extract (gnn, frequent, stitch; same K) ->
rewrite with each -> both verifiers -> one comparison table.

Every stage writes its output under ``OUT/`` and records it in
``OUT/manifest.json`` with the inputs that produced it; a rerun skips a stage
whose record still matches (training resumes from ``last.pt``), so an
interrupted run loses at most the stage in progress.

A database whose proofs do not all verify stops the run at the first stage
(:class:`PipelineError`, naming the failing proofs). An extraction or a
rewrite that fails for one method (Stitch not installed, a theorem that does
not verify) is recorded in that method's row and the other methods go on.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field

from metamath.database import Database
from metamath.verify import failure_text, verify_all
from metamath.write import write_json

from .dataset import build_dataset
from .expansion import ExpansionOptions
from .model import resolve
from .train import train


class PipelineError(Exception):
    """The run cannot go on (the database has proofs that do not verify); ``failed``: their entries
    (see :attr:`metamath.verify.Report.failed`)."""

    def __init__(self, message: str, failed: list[dict] | None = None):
        super().__init__(message)
        self.failed = failed or []


@dataclass
class RunOptions:
    preset: str = "demo"
    epochs: int | None = None
    top: int = 10
    methods: tuple[str, ...] = ("gnn", "frequent", "stitch")
    seed: int = 0
    use_metamath: bool = True
    device: str | None = None
    extract_limit: int | None = None


@dataclass
class Manifest:
    path: str
    stages: dict = field(default_factory=dict)

    @classmethod
    def load(cls, out: str) -> "Manifest":
        path = os.path.join(out, "manifest.json")
        if os.path.exists(path):
            try:
                with open(path) as fh:
                    return cls(path, json.load(fh).get("stages", {}))
            except (OSError, ValueError):
                pass
        return cls(path)

    def done(self, name: str, inputs: dict) -> dict | None:
        rec = self.stages.get(name)
        if rec and rec.get("inputs") == inputs and all(os.path.exists(p) for p in rec.get("files", [])):
            return rec["result"]
        return None

    def record(self, name: str, inputs: dict, result: dict, files: list[str]) -> None:
        self.stages[name] = {"inputs": inputs, "result": result, "files": files,
                             "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        write_json(self.path, {"stages": self.stages})


def run_pipeline(db_path: str, out: str, opts: RunOptions = RunOptions(), log=print) -> dict:
    """Run every stage (skipping finished ones) and return the comparison.

    Raises :class:`PipelineError` when a proof of the database fails.
    """
    from .baselines.stitch import StitchError
    from .extract import ExtractError, run_extract
    from .rewrite import RewriteError, rewrite_file

    os.makedirs(out, exist_ok=True)
    man = Manifest.load(out)
    t_all = time.perf_counter()
    db = Database.from_file(db_path)
    dbh = db.sha256()

    inputs = {"db": dbh}
    rep = man.done("verify", inputs)
    if rep is None:
        rep = verify_all(db).as_dict()
        man.record("verify", inputs, rep, [])
    log(f"verify: {rep['verified']} of {rep['theorems']} proofs verified ({rep['seconds']} s)")
    if rep["failed"]:
        failed = rep["failed"]
        shown = "".join(f"\n  {failure_text(f)}" for f in failed[:10])
        more = f"\n  and {len(failed) - 10} more" if len(failed) > 10 else ""
        raise PipelineError(f"{db_path}: {len(failed)} of {rep['theorems']} proofs do not verify; nothing more "
                            f"is done (`mmrefactor verify {db_path}` lists them):{shown}{more}", failed)

    data_dir = os.path.join(out, "dataset")
    eopts = ExpansionOptions(seed=opts.seed)
    meta = build_dataset(db, data_dir, eopts)
    log(f"dataset: {meta['examples']:,} examples from {meta['inlined_theorems']:,} inlined theorems, "
        f"{100 * meta['positive_fraction']:.1f}% positive nodes" + (" [cached]" if meta.get("cached") else ""))

    run_dir = os.path.join(out, "model")
    mcfg, tcfg = resolve(opts.preset, epochs=opts.epochs, seed=opts.seed)
    inputs = {"db": dbh, "preset": opts.preset, "epochs": tcfg.epochs, "seed": tcfg.seed}
    ck = os.path.join(run_dir, "checkpoint.pt")
    res = man.done("train", inputs)
    if res is None:
        log(f"train: preset {opts.preset}, {tcfg.epochs} epochs, seed {tcfg.seed}")
        full = train(data_dir, run_dir, mcfg, tcfg, device=opts.device, resume=True,
                     log=lambda m: log("  " + m))
        res = {k: full[k] for k in ("valid", "test", "baseline_all_negative", "best_epoch", "train_seconds",
                                    "examples_per_second", "device")}
        man.record("train", inputs, res, [ck])
    t = res["test"]
    log(f"train: test node acc {t['node_accuracy']:.3f}, F1 {t['f1']:.3f}, proof acc {t['proof_accuracy']:.3f} "
        f"(all-negative: {res['baseline_all_negative']['test']['node_accuracy']:.3f}, 0.000)")

    rows = []
    for method in opts.methods:
        tj = os.path.join(out, f"theorems-{method}.json")
        inputs = {"db": dbh, "method": method, "top": opts.top, "seed": opts.seed,
                  "checkpoint": inputs_ck(ck) if method == "gnn" else None, "limit": opts.extract_limit}
        ex = man.done(f"extract-{method}", inputs)
        if ex is None:
            try:
                full = run_extract(db_path, tj, method=method, checkpoint=ck if method == "gnn" else None,
                                   top=opts.top, seed=opts.seed, limit=opts.extract_limit)
            except (ExtractError, StitchError) as exc:  # e.g. Stitch not installed: the other rows go on
                log(f"extract {method}: FAILED: {exc}")
                rows.append({"method": method, "error": str(exc)})
                continue
            ex = {k: full[k] for k in ("candidates", "valid", "rediscoveries", "new", "seconds")}
            ex["theorems"] = len(full["theorems"])
            man.record(f"extract-{method}", inputs, ex, [tj])
        log(f"extract {method}: {ex['candidates']} candidates, {ex['valid']} valid, "
            f"{ex['rediscoveries']} rediscoveries, {ex['new']} new; top {ex['theorems']} kept")
        out_mm = os.path.join(out, f"refactored-{method}.mm")
        rinputs = dict(inputs, metamath=opts.use_metamath)
        rw = man.done(f"rewrite-{method}", rinputs)
        if rw is None:
            if ex["theorems"] == 0:
                rw = {"error": "no theorems to rewrite with"}
            else:
                try:
                    rw = rewrite_file(db_path, tj, out_mm, use_metamath=opts.use_metamath).as_dict()
                    rw.pop("per_theorem", None)
                    man.record(f"rewrite-{method}", rinputs, rw, [out_mm])
                except RewriteError as exc:  # e.g. a theorem that does not verify: the other rows go on
                    rw = {"error": str(exc)}
        if "error" in rw:
            log(f"rewrite {method}: FAILED: {rw['error']}")
        else:
            log(f"rewrite {method}: {rw['total_usage']} uses, proof nodes {rw['proof_nodes_before']:,} -> "
                f"{rw['proof_nodes_after']:,}, verified by {', '.join(rw['verified_by'])}")
        rows.append({"method": method, "extract": ex, "rewrite": rw})
    result = {"database": db_path, "out": out, "seed": opts.seed, "preset": opts.preset, "top": opts.top,
              "verify": {k: rep[k] for k in ("theorems", "verified", "seconds")}, "dataset":
              {k: meta[k] for k in ("examples", "inlined_theorems", "nodes", "positive_fraction", "splits")},
              "train": res, "methods": rows, "seconds": round(time.perf_counter() - t_all, 1)}
    from .report import write_report

    write_report(result, out)
    write_json(os.path.join(out, "result.json"), result)
    return result


def inputs_ck(path: str) -> str | None:
    """A checkpoint's identity for the manifest: its size and modification time."""
    if not os.path.exists(path):
        return None
    st = os.stat(path)
    return f"{st.st_size}:{int(st.st_mtime)}"
