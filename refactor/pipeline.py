"""``mmrefactor run``: the whole job on one database, stage by stage, resumable.

(slice) -> verify -> dataset -> train -> extract (gnn, frequent, stitch; same
K) -> rewrite with each -> both verifiers -> prover split -> refactored
corpora from training proofs only -> for each corpus and seed: train the
prover, evaluate it (and the count/uniform baselines on the original) ->
paired comparison -> attribution of the first refactored corpus's prover and
its validation by retraining (:mod:`refactor.attribution_stages`) ->
``report.md`` and ``report.html``.

What runs is one :class:`refactor.config.RunConfig` (a preset, a TOML file,
command-line overrides). Every stage writes its output under ``OUT/`` and
records it in ``OUT/manifest.json`` with the inputs that produced it and
its wall time; the manifest also holds the configuration, the seeds, the
database's hash, the package versions and the device. A rerun skips a stage
whose record still matches; a stage that was interrupted resumes where its
own files allow (the extractor and the prover from ``last.pt``, an
evaluation from ``results.jsonl``), and a stage whose inputs changed starts
over in a clean directory.

A database whose proofs do not all verify stops the run at the first stage
(:class:`PipelineError`, naming the failing proofs). An extraction or a
rewrite that fails for one method (Stitch not installed, a theorem that does
not verify) is recorded in that method's row and the other methods go on; a
method that cannot build a prover corpus (``gnn`` cannot extract from
training proofs only yet) is skipped there, with the reason in the manifest
and the report. Any other failure stops the run with a
:class:`PipelineError` naming the stage and the reason; the stages already
finished stay recorded and are reused by the next run.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import statistics
import time
import traceback
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace

from metamath.database import Database
from metamath.verify import failure_text, verify_all
from metamath.write import write_json

from .config import RunConfig, none_if_zero
from .dataset import build_dataset
from .expansion import ExpansionOptions
from .model import resolve
from .train import train


class PipelineError(Exception):
    """The run cannot go on: the database has proofs that do not verify (``failed``: their entries, see
    :attr:`metamath.verify.Report.failed`), or a stage failed (``stage``: its name)."""

    def __init__(self, message: str, failed: list[dict] | None = None, stage: str | None = None):
        super().__init__(message)
        self.failed = failed or []
        self.stage = stage


@dataclass
class RunOptions:
    """The options of the first version of ``run`` (kept for callers); see :meth:`config`."""

    preset: str = "demo"
    epochs: int | None = None
    top: int = 10
    methods: tuple[str, ...] = ("gnn", "frequent", "stitch")
    seed: int = 0
    use_metamath: bool = True
    device: str | None = None
    extract_limit: int | None = None
    prover: bool = False

    def config(self) -> RunConfig:
        base = RunConfig()
        return replace(base,
                       run=replace(base.run, seed=self.seed, device=self.device or "auto"),
                       extractor=replace(base.extractor, preset=self.preset, epochs=self.epochs or 0),
                       extract=replace(base.extract, methods=list(self.methods), top=self.top,
                                       limit=self.extract_limit or 0),
                       rewrite=replace(base.rewrite, use_metamath=self.use_metamath),
                       prover=replace(base.prover, enabled=self.prover))


@dataclass
class Manifest:
    path: str
    stages: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)

    @classmethod
    def load(cls, out: str) -> "Manifest":
        path = os.path.join(out, "manifest.json")
        if os.path.exists(path):
            try:
                with open(path) as fh:
                    data = json.load(fh)
                return cls(path, data.get("stages", {}), data.get("run", {}))
            except (OSError, ValueError):
                pass
        return cls(path)

    def done(self, name: str, inputs: dict) -> dict | None:
        rec = self.stages.get(name)
        if (rec and rec.get("status", "done") == "done" and rec.get("inputs") == _norm(inputs)
                and all(os.path.exists(p) for p in rec.get("files", []))):
            return rec["result"]
        return None

    def resuming(self, name: str, inputs: dict) -> bool:
        """Whether ``name`` was started (or failed) with these same inputs: its partial files may be kept."""
        rec = self.stages.get(name)
        return bool(rec) and rec.get("status") in ("started", "failed") and rec.get("inputs") == _norm(inputs)

    def start(self, name: str, inputs: dict) -> None:
        self.stages[name] = {"status": "started", "inputs": inputs,
                             "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.save()

    def record(self, name: str, inputs: dict, result: dict, files: list[str], seconds: float | None = None) -> None:
        rec = {"status": "done", "inputs": inputs, "result": result, "files": files,
               "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        if seconds is not None:
            rec["seconds"] = round(seconds, 2)
        self.stages[name] = rec
        self.save()

    def fail(self, name: str, inputs: dict, error: str, trace: str) -> None:
        self.stages[name] = {"status": "failed", "inputs": inputs, "error": error, "traceback": trace,
                             "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
        self.save()

    def save(self) -> None:
        write_json(self.path, {"run": self.run, "stages": self.stages})


def _norm(inputs: dict) -> dict:
    """``inputs`` as the manifest will hold them (JSON: tuples become lists)."""
    return json.loads(json.dumps(inputs))


# exceptions that are the user's input, not a stage failure: `mmrefactor` turns them into exit 2
def _passthrough() -> tuple:
    from metamath.errors import MMError

    from .dataset import DatasetError
    from .train import CheckpointError

    return (PipelineError, DatasetError, CheckpointError, MMError)


@contextmanager
def stage(man: Manifest, name: str, inputs: dict, user_errors: bool = False):
    """Run a stage's body: a failure is recorded in the manifest and raised as :class:`PipelineError`
    naming the stage (``user_errors``: input errors pass through unchanged, for exit 2)."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001  (any failure of a stage is reported, never a traceback)
        if isinstance(exc, PipelineError) or (user_errors and isinstance(exc, _passthrough())):
            raise
        why = f"{type(exc).__name__}: {exc}" if not str(exc).startswith(type(exc).__name__) else str(exc)
        man.fail(name, inputs, why, traceback.format_exc())
        raise PipelineError(f"stage {name} failed: {why} (details: {man.path})", stage=name) from exc


def file_hash(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in ("mmrefactor", "torch", "torch-geometric", "networkx", "lark", "numpy", "matplotlib",
              "stitch-core"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = None
    out["metamath.exe"] = shutil.which("metamath")
    return out


def device_info(name: str) -> dict:
    import torch

    cuda = torch.cuda.is_available()
    dev = "cuda" if name == "cuda" or (name == "auto" and cuda) else "cpu"
    info = {"requested": name, "used": dev, "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "platform": platform.platform()}
    if dev == "cuda" and cuda:
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _fresh(man: Manifest, name: str, inputs: dict, path: str) -> None:
    """Start ``name`` in ``path``: its partial files are kept when it is resumed with the same inputs,
    else removed (outputs of other inputs must never be mixed in)."""
    if not man.resuming(name, inputs) and os.path.exists(path):
        shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    man.start(name, inputs)


def run_pipeline(db_path: str, out: str, opts: RunConfig | RunOptions = RunConfig(), log=print) -> dict:
    """Run every stage (skipping finished ones) and return the result (also ``OUT/result.json``).

    Raises :class:`PipelineError` when a proof of the database fails or a stage fails.
    """
    import torch

    from .baselines.stitch import StitchError
    from .extract import ExtractError, run_extract
    from .rewrite import RewriteError, rewrite_file

    cfg = opts.config() if isinstance(opts, RunOptions) else opts
    if cfg.run.threads:
        torch.set_num_threads(cfg.run.threads)
    os.makedirs(out, exist_ok=True)
    man = Manifest.load(out)
    t_all = time.perf_counter()
    device = None if cfg.run.device == "auto" else cfg.run.device
    seed = cfg.run.seed
    man.run = {"config": cfg.as_dict(), "database": os.path.abspath(db_path),
               "seeds": {"split": seed, "extractor": None, "prover_split": cfg.prover.split_seed,
                         "prover": list(cfg.prover.seeds) if cfg.prover.enabled else []},
               "versions": package_versions(), "device": device_info(cfg.run.device),
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "status": "running"}
    if cfg.run.ray:  # where the per-proof and per-theorem jobs run
        from metamath.cluster import connect

        man.run["ray"] = {"address": cfg.run.ray,
                          "cluster_resources": {k: v for k, v in connect(cfg.run.ray).cluster_resources().items()
                                                if k in ("CPU", "GPU", "memory")}}
    man.save()

    if cfg.slice.until or cfg.slice.before_section:  # a prefix of a big database
        from metamath.slice import slice_database

        sliced = os.path.join(out, "input.mm")
        inputs = {"source": file_hash(db_path), "until": cfg.slice.until,
                  "before_section": cfg.slice.before_section}
        sl = man.done("slice", inputs)
        if sl is None:
            t0 = time.perf_counter()
            with stage(man, "slice", inputs, user_errors=True):
                sl = slice_database(db_path, sliced, until=cfg.slice.until or None,
                                    before_section=cfg.slice.before_section or None)
            man.record("slice", inputs, sl, [sliced], time.perf_counter() - t0)
        log(f"slice: {sl['theorems']} $p up to {sl['last_label']} -> {sliced}")
        db_path = sliced

    db = Database.from_file(db_path)
    dbh = db.sha256()
    man.run["database_sha256"] = dbh
    man.save()

    inputs = {"db": dbh}
    rep = man.done("verify", inputs)
    if rep is None:
        rep = verify_all(db).as_dict()
        man.record("verify", inputs, rep, [], rep["seconds"])
    log(f"verify: {rep['verified']} of {rep['theorems']} proofs verified ({rep['seconds']} s)")
    if rep["failed"]:
        failed = rep["failed"]
        shown = "".join(f"\n  {failure_text(f)}" for f in failed[:10])
        more = f"\n  and {len(failed) - 10} more" if len(failed) > 10 else ""
        raise PipelineError(f"{db_path}: {len(failed)} of {rep['theorems']} proofs do not verify; nothing more "
                            f"is done (`mmrefactor verify {db_path}` lists them):{shown}{more}", failed)

    data_dir = os.path.join(out, "dataset")
    d = cfg.dataset
    eopts = ExpansionOptions(max_nodes=d.max_nodes, max_inlined_proof=d.max_inlined_proof, cap_train=d.cap_train,
                             cap_eval=d.cap_eval, seed=seed, essential_only=d.essential_only,
                             limit_proofs=none_if_zero(d.limit_proofs), max_examples=none_if_zero(d.max_examples),
                             held_out=gnn_held_out(db, cfg))
    t0 = time.perf_counter()
    dinputs = {"db": dbh, **eopts.key()}
    with stage(man, "dataset", dinputs, user_errors=True):
        meta = build_dataset(db, data_dir, eopts)  # cached on disk by database hash and options
    if not (meta.get("cached") and man.done("dataset", dinputs) is not None):
        man.record("dataset", dinputs, {k: v for k, v in meta.items() if k != "key"}, [], time.perf_counter() - t0)
    log(f"dataset: {meta['examples']:,} examples from {meta['inlined_theorems']:,} inlined theorems, "
        f"{100 * meta['positive_fraction']:.1f}% positive nodes" + (" [cached]" if meta.get("cached") else ""))

    run_dir = os.path.join(out, "model")
    x = cfg.extractor
    mcfg, tcfg = resolve(x.preset, epochs=none_if_zero(x.epochs), seed=seed, batch_size=none_if_zero(x.batch_size),
                         lr=none_if_zero(x.lr), hidden=none_if_zero(x.hidden), layers=none_if_zero(x.layers),
                         max_train_examples=none_if_zero(x.max_train_examples), loss=x.loss or None)
    man.run["seeds"]["extractor"] = tcfg.seed
    inputs = {"db": dbh, "preset": x.preset, "epochs": tcfg.epochs, "seed": tcfg.seed}
    if (asdict(mcfg), asdict(tcfg)) != tuple(map(asdict, resolve(x.preset, epochs=tcfg.epochs, seed=tcfg.seed))):
        inputs["config"] = {"model": asdict(mcfg), "train": asdict(tcfg)}  # overrides beyond the preset
    ck = os.path.join(run_dir, "checkpoint.pt")
    res = man.done("train", inputs)
    if res is None:
        log(f"train: preset {x.preset}, {tcfg.epochs} epochs, seed {tcfg.seed}")
        t0 = time.perf_counter()
        _fresh(man, "train", inputs, run_dir)
        with stage(man, "train", inputs, user_errors=True):
            full = train(data_dir, run_dir, mcfg, tcfg, device=device, resume=True, log=lambda m: log("  " + m))
        res = {k: full[k] for k in ("valid", "test", "baseline_all_negative", "best_epoch", "train_seconds",
                                    "examples_per_second", "device", "history")}
        man.record("train", inputs, res, [ck], time.perf_counter() - t0)
    t = res["test"]
    log(f"train: test node acc {t['node_accuracy']:.3f}, F1 {t['f1']:.3f}, proof acc {t['proof_accuracy']:.3f} "
        + (f"(decoded {t['proof_accuracy_decoded']:.3f}) " if t.get("proof_accuracy_decoded") is not None else "")
        + f"(all-negative: {res['baseline_all_negative']['test']['node_accuracy']:.3f}, 0.000)")

    e = cfg.extract
    extract_kw = {"max_nodes": e.max_nodes, "limit": none_if_zero(e.limit),
                  "stitch_iterations": none_if_zero(e.stitch_iterations), "stitch_arity": e.stitch_arity}
    rows = []
    for method in e.methods:
        tj = os.path.join(out, f"theorems-{method}.json")
        how = extraction_how(e, method)
        inputs = {"db": dbh, "method": method, "top": e.top, "seed": seed,
                  "checkpoint": inputs_ck(ck) if method == "gnn" else None, "limit": extract_kw["limit"], **how}
        if (e.max_nodes, e.stitch_iterations, e.stitch_arity) != (1000, 0, 4):
            inputs["options"] = extract_kw
        ex = man.done(f"extract-{method}", inputs)
        if ex is None:
            t0 = time.perf_counter()
            try:
                full = run_extract(db_path, tj, method=method, checkpoint=ck if method == "gnn" else None,
                                   top=e.top, seed=seed, device=device, ray=cfg.run.ray or None, **extract_kw,
                                   **how)
            except (ExtractError, StitchError) as exc:  # e.g. Stitch not installed: the other rows go on
                log(f"extract {method}: FAILED: {exc}")
                rows.append({"method": method, "error": str(exc)})
                continue
            ex = {k: full[k] for k in ("candidates", "valid", "rediscoveries", "new", "seconds")}
            ex["theorems"] = len(full["theorems"])
            man.record(f"extract-{method}", inputs, ex, [tj], time.perf_counter() - t0)
        log(f"extract {method}: {ex['candidates']} candidates, {ex['valid']} valid, "
            f"{ex['rediscoveries']} rediscoveries, {ex['new']} new; top {ex['theorems']} kept")
        out_mm = os.path.join(out, f"refactored-{method}.mm")
        rinputs = dict(inputs, metamath=cfg.rewrite.use_metamath)
        rw = man.done(f"rewrite-{method}", rinputs)
        if rw is None:
            if ex["theorems"] == 0:
                rw = {"error": "no theorems to rewrite with"}
            else:
                t0 = time.perf_counter()
                try:
                    rw = rewrite_file(db_path, tj, out_mm, use_metamath=cfg.rewrite.use_metamath).as_dict()
                    man.record(f"rewrite-{method}", rinputs, rw, [out_mm], time.perf_counter() - t0)
                except RewriteError as exc:  # e.g. a theorem that does not verify: the other rows go on
                    rw = {"error": str(exc)}
        if "error" in rw:
            log(f"rewrite {method}: FAILED: {rw['error']}")
        else:
            log(f"rewrite {method}: {rw['total_usage']} uses, proof nodes {rw['proof_nodes_before']:,} -> "
                f"{rw['proof_nodes_after']:,}, verified by {', '.join(rw['verified_by'])}")
        rows.append({"method": method, "extract": ex, "rewrite": rw})
    result = {"database": db_path, "database_sha256": dbh, "out": out, "seed": seed, "preset": x.preset,
              "top": e.top, "config": cfg.as_dict(),
              "verify": {k: rep[k] for k in ("theorems", "verified", "seconds")}, "dataset":
              {k: meta[k] for k in ("examples", "inlined_theorems", "nodes", "positive_fraction", "splits")},
              "train": res, "methods": rows}
    if cfg.prover.enabled:
        result["prover"] = run_prover_stages(db_path, db, out, cfg, man, log)
        if cfg.attribution.enabled:
            from .attribution_stages import run_attribution_stages

            result["attribution"] = run_attribution_stages(out, cfg, man, result["prover"], log)
    result["seconds"] = round(time.perf_counter() - t_all, 1)
    result["stage_seconds"] = {k: v.get("seconds") for k, v in man.stages.items() if "seconds" in v}
    from .report import write_report

    t0 = time.perf_counter()
    with stage(man, "report", {}):
        result["report"] = write_report(result, out)
    man.run.update(status="finished", finished=time.strftime("%Y-%m-%d %H:%M:%S"), seconds=result["seconds"])
    man.record("report", {}, result["report"], list(result["report"].values()), time.perf_counter() - t0)
    write_json(os.path.join(out, "result.json"), result)
    return result


def extraction_how(e, method: str) -> dict:
    """The extract options of ``[extract]`` that ``method`` uses (ranking; the gnn's threshold, fragments
    and decoding): keyword arguments of the extraction and part of its stage inputs."""
    how = {"ranking": e.ranking if method == "gnn" else plain_ranking(e.ranking)}
    if method == "gnn":
        how.update(threshold=e.gnn_threshold, fragments=e.gnn_fragments, **gnn_decoding(e))
    return how


def gnn_decoding(e) -> dict:
    """The extract option for ``[extract] gnn_decode``; empty when off, so runs recorded before the
    option existed are still found done."""
    return {"decode": True} if e.gnn_decode else {}


def plain_ranking(ranking: str) -> str:
    """The ranking of an extractor without a classifier: ``confidence`` (the GNN's saving weighed by its
    probabilities) is ``proof-nodes`` for frequent and stitch, the saving it weighs."""
    return "proof-nodes" if ranking == "confidence" else ranking


def gnn_held_out(db: Database, cfg: RunConfig) -> tuple[str, ...]:
    """The theorems the extractor's dataset must not show: the prover split's
    valid/test ones when the prover studies a gnn-refactored corpus (its GNN
    may then learn from training proofs only), else none."""
    p = cfg.prover
    if not (p.enabled and "gnn" in p.corpora):
        return ()
    from provers.split import make_split

    s = make_split(db, p.split_seed)
    return tuple(sorted(s.valid + s.test))


def run_prover_stages(db_path: str, db: Database, out: str, cfg: RunConfig, man: Manifest, log) -> dict:
    """Split, refactored corpora (training proofs only), train x seeds, evaluate, compare: the ``prover``
    part of the result."""
    from provers.compare import compare, load_eval
    from provers.evaluate import BUDGETS, SCHEDULING, EvalConfig, evaluate
    from provers.split import make_split, save_split
    from provers.train import TrainConfig, train_prover

    from .baselines.stitch import StitchError
    from .extract import ExtractError, run_extract
    from .rewrite import RewriteError, rewrite_file

    p = cfg.prover
    dbh = db.sha256()
    pdir = os.path.join(out, "prover")
    os.makedirs(pdir, exist_ok=True)
    split_path = os.path.join(pdir, "split.json")
    inputs = {"db": dbh, "seed": p.split_seed}
    sp = man.done("prover-split", inputs)
    if sp is None:
        t0 = time.perf_counter()
        with stage(man, "prover-split", inputs):
            split = make_split(db, p.split_seed)
            save_split(split, split_path, [f.path for f in db.files])
        sp = {"seed": split.seed, "key": split.key(), **{k: len(split.part(k)) for k in ("train", "valid", "test")}}
        man.record("prover-split", inputs, sp, [split_path], time.perf_counter() - t0)
    log(f"prover split: seed {sp['seed']}, train {sp['train']}, valid {sp['valid']}, test {sp['test']} theorems")

    corpora = {"original": db_path}
    skipped: dict[str, str] = {}
    corpus_info: dict[str, dict] = {}
    for m in p.corpora:
        tj, cm = os.path.join(pdir, f"theorems-{m}.json"), os.path.join(pdir, f"corpus-{m}.mm")
        name = f"prover-corpus-{m}"
        how = extraction_how(cfg.extract, m)
        inputs = {"db": dbh, "split": sp["key"], "method": m, "top": p.top, "seed": cfg.run.seed,
                  "metamath": cfg.rewrite.use_metamath, **how,
                  "checkpoint": inputs_ck(os.path.join(out, "model", "checkpoint.pt")) if m == "gnn" else None}
        rec = man.done(name, inputs)
        if rec is None:
            t0 = time.perf_counter()
            with stage(man, name, inputs):
                try:
                    ex = run_extract(db_path, tj, method=m, top=p.top, seed=cfg.run.seed, split=split_path,
                                     checkpoint=os.path.join(out, "model", "checkpoint.pt") if m == "gnn" else None,
                                     limit=none_if_zero(cfg.extract.limit), ray=cfg.run.ray or None, **how)
                    if not ex["theorems"]:
                        raise ExtractError("no new theorems from the training proofs")
                    rw = rewrite_file(db_path, tj, cm, use_metamath=cfg.rewrite.use_metamath, split=split_path)
                    rec = {"theorems": len(ex["theorems"]), "rewrite": rw.as_dict()}
                    files = [tj, cm]
                except (ExtractError, StitchError, RewriteError) as exc:
                    rec, files = {"skipped": str(exc)}, []
            man.record(name, inputs, rec, files, time.perf_counter() - t0)
        if "skipped" in rec:
            skipped[m] = rec["skipped"]
            log(f"prover corpus {m}: skipped: {rec['skipped']}")
            continue
        rw = rec["rewrite"]
        log(f"prover corpus {m}: {rec['theorems']} theorems from training proofs, {rw['total_usage']} uses, "
            f"proof nodes {rw['proof_nodes_before']:,} -> {rw['proof_nodes_after']:,}")
        corpora[m] = cm
        corpus_info[m] = {"theorems": rec["theorems"], "total_usage": rw["total_usage"],
                          "proof_nodes_before": rw["proof_nodes_before"], "proof_nodes_after": rw["proof_nodes_after"],
                          "verified_by": rw["verified_by"]}

    ecfg = dict(max_expansions=p.budget_expansions, max_seconds=p.budget_seconds, part=p.part, jobs=p.jobs,
                limit=none_if_zero(p.limit), device="cuda" if cfg.run.device == "cuda" else "cpu", ray=cfg.run.ray,
                retry_seconds=p.retry_seconds)
    evals: list[dict] = []  # {corpus, policy, seed, dir, summary}

    def run_eval(corpus: str, policy: str, seed: int | None, ck: str) -> None:
        name = f"prover-eval-{corpus}-{policy}" + ("" if seed is None else f"-s{seed}")
        edir = os.path.join(pdir, "evals", name[len("prover-eval-"):])
        ec = EvalConfig(baseline=None if policy == "learned" else policy, **ecfg)
        inputs = {"checkpoint": inputs_ck(ck),  # how the jobs are scheduled does not change the results
                  "config": {k: v for k, v in asdict(ec).items() if k not in SCHEDULING}}
        s = man.done(name, inputs)
        if s is None:
            t0 = time.perf_counter()
            _fresh(man, name, inputs, edir)
            with stage(man, name, inputs):
                s = evaluate(ck, edir, ec, progress=False)
            man.record(name, inputs, s, [os.path.join(edir, "summary.json")], time.perf_counter() - t0)
        log(f"prover eval {corpus} {policy}" + ("" if seed is None else f" seed {seed}") +
            f": proved {s['proved']}/{s['attempted']} at {p.budget_expansions} expansions")
        evals.append({"corpus": corpus, "policy": policy, "seed": seed, "dir": edir, "checkpoint": ck, "summary": s})

    tc_common = dict(epochs=p.epochs, dim=p.dim, rounds=p.rounds, lr=p.lr, batch_size=p.batch_size,
                     device=ecfg["device"])
    for seed in p.seeds:  # the first seed of every corpus first: a stopped run still has a comparison
        for cname, corpus in corpora.items():
            mdir = os.path.join(pdir, "models", f"{cname}-s{seed}")
            ck = os.path.join(mdir, "checkpoint.pt")
            tc = TrainConfig(seed=seed, **tc_common)
            name = f"prover-train-{cname}-s{seed}"
            inputs = {"corpus": file_hash(corpus), "split": sp["key"], "config": asdict(tc)}
            m = man.done(name, inputs)
            if m is None:
                t0 = time.perf_counter()
                _fresh(man, name, inputs, mdir)
                with stage(man, name, inputs):
                    full = train_prover(corpus, split_path, mdir, tc, resume=True, progress=False)
                last = full["history"][-1]["valid"] if full["history"] else {}
                m = {"train_theorems": full["train_theorems"], "train_steps": full["train_steps"],
                     "epochs": len(full["history"]), "valid": last, "device": full["device"],
                     "history": [{"epoch": h["epoch"], "train_loss": h["train"]["loss"],
                                  "valid_loss": h["valid"]["loss"]} for h in full["history"]]}
                man.record(name, inputs, m, [ck], time.perf_counter() - t0)
            log(f"prover train {cname} seed {seed}: {m['train_steps']} steps, {m['epochs']} epochs, valid "
                f"relevance top-1 {m['valid'].get('relevance_top1', 0):.3f}")
            if cname == "original" and seed == p.seeds[0]:
                for b in p.baselines:
                    run_eval(cname, b, None, ck)
            run_eval(cname, "learned", seed, ck)

    # the comparison: rates at each budget, spread over seeds; newly proved / lost paired per seed
    # against the learned prover on the original corpus with the same seed
    t0 = time.perf_counter()
    with stage(man, "prover-compare", {}):
        by_dir = {}
        for ev in evals:
            by_dir[ev["dir"]] = load_eval(ev["dir"])[1]
        budgets = [b for b in BUDGETS if b <= p.budget_expansions]
        ref_of = {ev["seed"]: ev for ev in evals if ev["corpus"] == "original" and ev["policy"] == "learned"}
        first = ref_of[p.seeds[0]]
        groups: dict[tuple[str, str], list[dict]] = {}
        for ev in evals:
            groups.setdefault((ev["corpus"], ev["policy"]), []).append(ev)
        rows = []
        for (cname, policy), evs in groups.items():
            rates = {str(b): [] for b in budgets}
            paired = []
            for ev in evs:
                res = by_dir[ev["dir"]]
                n = len(res)
                for b in budgets:
                    rates[str(b)].append(sum(1 for r in res.values() if r["proved"] and r["expansions"] <= b) / n
                                         if n else 0.0)
                ref = ref_of.get(ev["seed"], first)
                if ref is not ev:
                    mine = {l for l, r in res.items() if r["proved"]}
                    theirs = {l for l, r in by_dir[ref["dir"]].items() if r["proved"]}
                    paired.append({"seed": ev["seed"], "reference_seed": ref["seed"],
                                   "newly_proved": sorted(mine - theirs), "lost": sorted(theirs - mine)})
            fc = [ev["summary"].get("forecast") for ev in evs if ev["summary"].get("forecast")]
            rows.append({
                "corpus": cname, "policy": policy, "seeds": [ev["seed"] for ev in evs],
                "attempted": evs[0]["summary"]["attempted"],
                "rate": {b: {"mean": statistics.mean(v), "stdev": statistics.stdev(v) if len(v) > 1 else 0.0,
                             "values": v} for b, v in rates.items()},
                "paired": paired,
                "uses_new_share": statistics.mean(ev["summary"].get("uses_new_share", 0.0) for ev in evs),
                "invalid_proofs": sum(ev["summary"].get("invalid_proofs", 0) for ev in evs),
                "forecast": {"target": fc[0]["target"], "predicted_rate": statistics.mean(f["predicted_rate"] for f in fc),
                             "measured_rate": statistics.mean(f["measured_rate"] for f in fc)} if fc else None})
        cmp_table = compare([first["dir"]] + [ev["dir"] for ev in evals if ev is not first])
        summary = {"split": sp, "corpora": {k: os.path.abspath(v) for k, v in corpora.items()},
                   "corpus_info": corpus_info, "skipped": skipped, "budgets": budgets,
                   "budget_expansions": p.budget_expansions, "budget_seconds": p.budget_seconds,
                   "part": p.part, "limit": none_if_zero(p.limit), "seeds": list(p.seeds),
                   "reference": "learned on the original corpus, same seed", "rows": rows,
                   "evals": [{k: ev[k] for k in ("corpus", "policy", "seed", "dir", "checkpoint")}
                             | {"proved": ev["summary"]["proved"]} for ev in evals]}
        write_json(os.path.join(pdir, "compare.json"), {"summary": summary, "compare": cmp_table})
    man.record("prover-compare", {}, {"rows": len(rows)}, [os.path.join(pdir, "compare.json")],
               time.perf_counter() - t0)
    return summary


def inputs_ck(path: str) -> str | None:
    """A checkpoint's identity for the manifest: its size and modification time."""
    if not os.path.exists(path):
        return None
    st = os.stat(path)
    return f"{st.st_size}:{int(st.st_mtime)}"
