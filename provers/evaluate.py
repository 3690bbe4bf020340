"""Score a prover on held-out theorems: independent per-theorem jobs, resumable.

:func:`prove_one` is the job: one search for one theorem, its proof
re-checked by our verifier. :func:`evaluate` schedules the jobs over local
processes (forked, so the corpus and the model are shared, not copied) and
appends each result to ``EVAL/results.jsonl`` as it arrives; a rerun skips
theorems already there, so an interrupted evaluation resumes and never
counts a theorem twice. Scheduling is kept apart from the job: with
``EvalConfig.ray`` the same job runs on a Ray cluster
(:func:`metamath.parallel.imap_jobs`; the :class:`EvalState` goes into the
object store once and each actor keeps it), with the same records.

At the end ``EVAL/summary.json`` holds the rates (overall, at each budget
in :data:`BUDGETS` from the same run, without discouraged theorems), the
share of proofs that apply a theorem inserted by a refactoring, proof
lengths, expansions per second and a forecast of the largest budget's rate
from the smaller ones; ``EVAL/proofs.mm`` is the corpus with each proved
theorem's proof replaced by the found one.
"""
from __future__ import annotations

import json
import math
import os
import random
import time
from collections import Counter
from dataclasses import asdict, dataclass, replace

from metamath import MMError, ProofError, check
from metamath.parallel import imap_jobs
from metamath.verify import check_rpn
from metamath.write import Edits, write_atomic, write_database, write_json

from .actions import problem
from .baselines import CountPolicy, UniformPolicy
from .data import training_theorems
from .search import Search, SearchConfig
from .split import load_split
from .train import check_checkpoint, load_checkpoint, load_corpus

BUDGETS = (8, 32, 128, 512)
SCHEDULING = ("jobs", "retry_seconds", "ray")  # EvalConfig fields that do not change the records


@dataclass
class EvalConfig:
    max_expansions: int = 512
    max_seconds: float = 60.0
    baseline: str | None = None  # None: the learned policy; "uniform" or "count"
    part: str = "test"
    jobs: int = 2
    limit: int | None = None  # only the first N theorems of the part (a stated, reduced scale)
    sample: int | None = None  # a seeded random N of the part, in database order (a reduced scale that
    sample_seed: int = 0       # spans the whole part: its first N are the database's easiest stretch)
    device: str = "cpu"
    retry_seconds: float = 0.0  # >0: rerun theorems a wall-clock cut stopped, with this cap (see evaluate)
    ray: str = ""  # "auto" or a Ray cluster's address: the jobs run there instead of in local processes


@dataclass
class EvalState:
    """Everything a job needs; built once, shared with forked workers (or Ray actors)."""

    lib: object
    policy: object
    search: SearchConfig
    new_theorems: frozenset
    discouraged: frozenset


def prove_one(state: EvalState, label: str) -> dict:
    """Search for a proof of ``label``; the result as one ``results.jsonl`` record."""
    lib = state.lib
    r = Search(lib, problem(lib, label), state.policy, state.search).run()
    rec = {"label": label, "proved": r.proved, "expansions": r.expansions, "seconds": round(r.seconds, 4),
           "stopped": r.stopped, "proof": r.proof, "applied": r.applied,
           "new_theorems_applied": [l for l in r.applied if l in state.new_theorems],
           "discouraged": label in state.discouraged}
    if r.proved:
        try:
            check_rpn(lib.db, label, r.proof)
            rec["length"] = len(r.proof)
        except ProofError as exc:  # a search bug: never counted as proved, always reported
            rec.update(proved=False, stopped="invalid proof", error=str(exc))
    return rec


def usage_counts(lib, labels) -> Counter:
    """How often each assertion is applied in the proofs of ``labels``."""
    out: Counter = Counter()
    for l in labels:
        for n in check(lib.db, l, record=True).nodes:
            if n.label in lib.assertions:
                out[n.label] += 1
    return out


def _state(ck: dict, cfg: EvalConfig):
    db, lib = load_corpus(ck["corpus"])
    split = load_split(ck["split"], db)
    check_checkpoint(ck, db, split, ck["corpus"])
    named = set(split.train) | set(split.valid) | set(split.test)
    new = frozenset(l for l in lib.assertions if db.statements[l].kind == "p" and l not in named)
    if cfg.baseline == "uniform":
        policy = UniformPolicy()
    elif cfg.baseline == "count":
        policy = CountPolicy(usage_counts(lib, training_theorems(lib, split)))
    elif cfg.baseline is None:
        from .policy import LearnedPolicy

        policy = LearnedPolicy(lib, ck, cfg.device)
    else:
        raise MMError(f"unknown baseline {cfg.baseline!r} (uniform or count)", "<options>")
    scfg = SearchConfig(max_expansions=cfg.max_expansions, max_seconds=cfg.max_seconds)
    discouraged = frozenset(l for l, a in lib.assertions.items() if a.discouraged)
    return db, split, EvalState(lib, policy, scfg, new, discouraged)


def read_results(path: str) -> dict[str, dict]:
    """Label -> its last record in an evaluation's ``results.jsonl`` (a line cut by an interruption is skipped)."""
    out: dict[str, dict] = {}
    if os.path.exists(path):
        with open(path) as fh:
            for line in fh:
                line = line.strip()
                if line:
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue  # a line cut by an interruption: that theorem runs again
                    out[rec["label"]] = rec
    return out


def evaluate(checkpoint: str, out: str, cfg: EvalConfig, split_path: str | None = None,
             progress: bool = True) -> dict:
    """Run (or resume) an evaluation into directory ``out``; return the summary."""
    import torch

    torch.set_num_threads(1)  # one search per core; forked workers must not share a thread pool
    ck = load_checkpoint(checkpoint, cfg.device)
    if split_path is not None:
        given = load_split(split_path)
        if os.path.abspath(split_path) != ck["split"] and given.key() != ck["split_key"]:
            raise MMError(f"checkpoint was trained on another split ({ck['split']})", checkpoint)
    db, split, state = _state(ck, cfg)
    labels = theorems_of(list(split.part(cfg.part)), cfg)
    os.makedirs(out, exist_ok=True)
    cfg_path = os.path.join(out, "config.json")
    run_key = {"checkpoint": os.path.abspath(checkpoint), "corpus_sha256": ck["corpus_sha256"],
               "split_key": ck["split_key"], "config": asdict(cfg)}
    for k in SCHEDULING:
        run_key["config"].pop(k)
    if os.path.exists(cfg_path):
        with open(cfg_path) as fh:
            old = json.load(fh)
        # settings added since the directory was written take their defaults
        old["config"] = {**{k: v for k, v in asdict(EvalConfig()).items() if k not in SCHEDULING}, **old["config"]}
        if old != run_key:
            raise MMError("this directory holds an evaluation with other settings; use another --out", out)
    else:
        write_json(cfg_path, run_key)
    res_path = os.path.join(out, "results.jsonl")
    done = read_results(res_path)
    if os.path.exists(res_path):  # drop a line an interruption cut short before appending
        write_atomic(res_path, "".join(json.dumps(r) + "\n" for r in done.values()))
    todo = [l for l in labels if l not in done]
    t0 = time.perf_counter()
    _run_jobs(state, todo, res_path, done, cfg, "proving" if progress else None)
    if cfg.retry_seconds > 0:
        # The search is deterministic in expansions; its seconds cap is wall time, which a loaded
        # machine shrinks. A theorem cut by it is run again with a looser cap so that the
        # expansion budget binds; its record keeps the cap it ran under.
        cut = [l for l in labels
               if done[l]["stopped"] == "seconds" and done[l].get("seconds_cap") != cfg.retry_seconds]
        loose = replace(state, search=replace(state.search, max_seconds=cfg.retry_seconds))
        _run_jobs(loose, cut, res_path, done, cfg, "retrying wall-clock cuts" if progress else None,
                  extra={"seconds_cap": cfg.retry_seconds})
    results = [done[l] for l in labels]
    summary = summarize(results, cfg.max_expansions)
    summary.update(checkpoint=os.path.abspath(checkpoint), corpus=ck["corpus"], split=ck["split"],
                   policy=state.policy.name, seed=ck["config"]["seed"], part=cfg.part,
                   limit=cfg.limit, sample=cfg.sample, sample_seed=cfg.sample_seed,
                   budget_expansions=cfg.max_expansions, budget_seconds=cfg.max_seconds,
                   wall_seconds=time.perf_counter() - t0)
    proofs = {r["label"]: r["proof"] for r in results if r["proved"]}
    summary["proofs_mm"] = write_database(db, os.path.join(out, "proofs.mm"), edits=Edits(proofs=proofs))["out"]
    write_json(os.path.join(out, "summary.json"), summary)
    return summary


def theorems_of(part: list[str], cfg: EvalConfig) -> list[str]:
    """The theorems an evaluation attempts: the part (database order), its first ``limit``, or a
    random ``sample`` of it drawn with ``sample_seed`` and kept in database order."""
    if cfg.sample is not None and cfg.sample < len(part):
        keep = set(random.Random(cfg.sample_seed).sample(part, cfg.sample))
        part = [l for l in part if l in keep]
    return part[: cfg.limit]


def _run_jobs(state: EvalState, labels: list[str], res_path: str, done: dict, cfg: EvalConfig,
              desc: str | None, extra: dict | None = None) -> None:
    """Run :func:`prove_one` on ``labels`` over ``cfg.jobs`` local processes (or on the Ray cluster
    ``cfg.ray``), appending each record as it lands."""
    if not labels:
        return
    with open(res_path, "a") as fh:
        for label, rec in imap_jobs(prove_one, state, labels, jobs=cfg.jobs, desc=desc, min_parallel=0, chunk=1,
                                    ordered=False, ray=cfg.ray or None, unit="theorem"):
            rec.update(extra or {})
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            done[label] = rec


def rate_at(results: list[dict], budget: int) -> int:
    return sum(1 for r in results if r["proved"] and r["expansions"] <= budget)


def forecast(results: list[dict], target: int, fit_budgets=(4, 8, 16, 32, 64)) -> dict | None:
    """Predict the rate at ``target`` expansions from the rates at ``fit_budgets``:
    a least-squares line of logit(rate) against log(budget)."""
    n = len(results)
    pts = []
    for b in fit_budgets:
        if b >= target:
            continue
        k = rate_at(results, b)
        p = min(max(k / n, 0.5 / n), 1 - 0.5 / n) if n else 0.5
        pts.append((math.log(b), math.log(p / (1 - p))))
    if len(pts) < 2 or not n:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    slope = sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else 0.0
    y = my + slope * (math.log(target) - mx)
    return {"fit_budgets": [b for b in fit_budgets if b < target], "target": target,
            "predicted_rate": 1 / (1 + math.exp(-y)), "measured_rate": rate_at(results, target) / n}


def summarize(results: list[dict], max_expansions: int) -> dict:
    n = len(results)
    proved = [r for r in results if r["proved"]]
    kept = [r for r in results if not r["discouraged"]]
    exp = sum(r["expansions"] for r in results)
    secs = sum(r["seconds"] for r in results)
    uses_new = sum(1 for r in proved if r["new_theorems_applied"])
    return {"attempted": n, "proved": len(proved), "rate": len(proved) / n if n else 0.0,
            "by_budget": {str(b): rate_at(results, b) for b in BUDGETS if b <= max_expansions},
            "attempted_without_discouraged": len(kept),
            "proved_without_discouraged": sum(1 for r in kept if r["proved"]),
            "invalid_proofs": sum(1 for r in results if r["stopped"] == "invalid proof"),
            "uses_new_theorems": uses_new, "uses_new_share": uses_new / len(proved) if proved else 0.0,
            "mean_proof_length": sum(r["length"] for r in proved) / len(proved) if proved else 0.0,
            "expansions_per_second": exp / secs if secs else 0.0,
            "forecast": forecast(results, max_expansions)}
