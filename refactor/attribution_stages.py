"""The attribution stages of ``mmrefactor run``: ``attribute``, then ``attribute-validate``.

Which extracted theorems helped the prover prove what it proved, and does
that attribution predict retraining? Both stages work on one refactored
prover corpus (``[attribution] corpus``; by default the first of
``prover.corpora`` that was built), its learned prover of the first prover
seed and that prover's evaluation (whose proofs are the queries).

* ``attribute``: :func:`provers.attribution.attribute.attribute` for the
  configured methods; ``OUT/attribution/attribution.json`` (the whole
  result, scores included) and ``attribution.md`` (its tables).
* ``attribute-validate``: :func:`provers.attribution.validate.validate`
  (group LDS over ``subsets`` x ``seeds`` paired retrains, and the top-k vs
  random counterfactual) in ``OUT/attribution/validation/``, reusing the
  ``attribute`` stage's scores; its retraining jobs are files in
  ``validation/jobs/``, so an interrupted validation resumes where it
  stopped.

Each is recorded in the manifest like every stage: its inputs (the
checkpoint's and the results' sha256, the options) and wall time; a rerun
with the same inputs skips it. Nothing to attribute (no refactored corpus,
no proved query, fewer than two theorems to validate with) is recorded as
a skip with its reason and shown in the report; any other failure stops the
run with a :class:`refactor.pipeline.PipelineError` naming the stage.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict

from metamath.write import write_atomic, write_json

from .attribution_report import attribution_markdown
from .config import RunConfig
from .pipeline import Manifest, _fresh, file_hash, stage


def _load(path: str) -> dict:
    with open(path) as fh:
        return json.load(fh)


def _skip(man: Manifest, name: str, inputs: dict, why: str, log) -> dict:
    if man.done(name, inputs) is None:
        man.record(name, inputs, {"skipped": why}, [], 0.0)
    log(f"{name}: skipped: {why}")
    return {"skipped": why}


def run_attribution_stages(out: str, cfg: RunConfig, man: Manifest, prover: dict, log) -> dict:
    """Run (or reuse) ``attribute`` and ``attribute-validate``; the ``attribution`` part of the run's result
    (``skipped``: why nothing was attributed; ``validation``: absent when ``[attribution] validate`` is off)."""
    from provers.attribution.attribute import attribute
    from provers.attribution.validate import RetrainConfig, validate

    a = cfg.attribution
    man.run["seeds"]["attribution"] = a.seed
    built = [m for m in cfg.prover.corpora if m in prover["corpus_info"]]
    corpus = a.corpus or (built[0] if built else "")
    pseed = cfg.prover.seeds[0]
    res: dict = {"corpus": corpus, "prover_seed": pseed, "seed": a.seed}
    if corpus not in prover["corpus_info"]:
        why = (f"the {corpus} corpus was not built ({prover['skipped'].get(corpus, 'not in prover.corpora')})"
               if corpus else "no refactored prover corpus was built")
        return res | _skip(man, "attribute", {"corpus": corpus}, why, log)
    ev = next(e for e in prover["evals"] if (e["corpus"], e["policy"], e["seed"]) == (corpus, "learned", pseed))
    ck, edir = ev["checkpoint"], ev["dir"]
    res.update(checkpoint=ck, eval=edir)
    base = {"checkpoint": file_hash(ck), "results": file_hash(os.path.join(edir, "results.jsonl")),
            "methods": list(a.methods), "seed": a.seed, "projection": a.projection}
    inputs = base | {"top": a.top}
    if ev["proved"] == 0:
        return res | _skip(man, "attribute", inputs, f"the prover on the {corpus} corpus (seed {pseed}) proved no "
                           "held-out theorem: no query to attribute", log)

    adir = os.path.join(out, "attribution")
    att_json, att_md = os.path.join(adir, "attribution.json"), os.path.join(adir, "attribution.md")
    if man.done("attribute", inputs) is None:
        t0 = time.perf_counter()
        man.start("attribute", inputs)
        with stage(man, "attribute", inputs):
            att = attribute(ck, edir, list(a.methods), seed=a.seed, top=a.top, k=a.projection or None)
            os.makedirs(adir, exist_ok=True)
            write_json(att_json, att)
            write_atomic(att_md, attribution_markdown(att).encode("utf-8"))
        man.record("attribute", inputs, {"queries": len(att["queries"]), "theorems": len(att["theorems"]),
                                         "training_steps": att["training_steps"]},
                   [att_json, att_md], time.perf_counter() - t0)
    att = _load(att_json)
    best = max(att["theorems"], key=lambda r: r["influence"][a.methods[0]])["theorem"] if att["theorems"] else "-"
    log(f"attribute {corpus} seed {pseed}: {len(att['queries'])} queries, {len(att['theorems'])} theorems, "
        f"{att['training_steps']} training steps; most helpful by {a.methods[0]}: {best}")
    res["attribute"] = {k: v for k, v in att.items() if k != "scores"}
    if not a.validate:
        return res

    rcfg = RetrainConfig.with_overrides(epochs=a.epochs, dim=a.dim, rounds=a.rounds,
                                        budget_expansions=a.budget_expansions)
    vinputs = base | {"subsets": a.subsets, "seeds": a.seeds, "top_k": a.top_k, "retrain": asdict(rcfg)}
    if len(att["theorems"]) < 2:
        res["validation"] = _skip(man, "attribute-validate", vinputs, f"{len(att['theorems'])} extracted "
                                  "theorem(s): group validation needs at least 2", log)
        return res
    vdir = os.path.join(adir, "validation")
    vjson = os.path.join(vdir, "validation.json")
    if man.done("attribute-validate", vinputs) is None:
        t0 = time.perf_counter()
        _fresh(man, "attribute-validate", vinputs, vdir)  # a resumed validation keeps its finished jobs
        with stage(man, "attribute-validate", vinputs):
            val = validate(ck, edir, list(a.methods), vdir, subsets=a.subsets, seeds=a.seeds,
                           top_k=max(1, a.top_k), seed=a.seed, cfg=rcfg, jobs=a.jobs,
                           counterfactual=a.top_k > 0, scores=att["scores"], ray=cfg.run.ray or None)
        man.record("attribute-validate", vinputs, {m: {k: r[k] for k in ("lds_mean", "lds_low", "lds_high")}
                                                   for m, r in val["methods"].items()},
                   [vjson], time.perf_counter() - t0)
    val = _load(vjson)
    write_atomic(att_md, attribution_markdown(att, val).encode("utf-8"))  # the tables of both stages
    log("attribute-validate: " + "; ".join(
        f"{m} LDS " + ("n/a" if r["lds_mean"] is None else f"{r['lds_mean']:.2f} [{r['lds_low']:.2f}, "
                       f"{r['lds_high']:.2f}]") for m, r in val["methods"].items())
        + f" ({val['subsets']} subsets x {val['seeds']} seeds)")
    res["validation"] = {k: v for k, v in val.items() if k != "measured_log_probs"}
    return res
