"""Does attribution predict retraining? Group LDS and a counterfactual, by retraining.

**Group LDS** (linear datamodeling score, by theorem group): ``M`` seeded
random subsets each keep half of the extracted theorems' groups; for each
subset and each of ``R`` training seeds the prover is retrained (the tiny
preset, :class:`RetrainConfig`) on the training steps minus the dropped
groups' members, and each query's log-probability is measured (mean over
seeds). Per query, the Spearman correlation across subsets between the
method's predicted output (the sum of the kept groups' scores) and the
measured log-probability; reported: the mean over queries and a bootstrap
95% interval over queries (``lds_mean``, ``lds_low``, ``lds_high``).
``dtda`` predicts with its mean shift over seeds; its spread is checked the
same way (``variance_lds``: predicted variance over its seeds' checkpoints
without the dropped groups against the variance over the retraining seeds,
so only with ``R >= 2``).

**Counterfactual**: per seed, retrain without the ``k`` theorems a method
ranks most helpful (its influence summed over queries) and without ``k``
random theorems (one seeded draw, shared by every method), search for
proofs of the queries again, and report the mean drop in queries proved
against the full retrain with the same seed (``topk_drop``,
``random_drop``).

Retraining is a batch of independent jobs: :func:`run_job` is one job (a
spec in, a JSON-able result out); :func:`run_jobs` schedules them over
local forked processes, or with ``ray`` on a Ray cluster
(:func:`metamath.parallel.imap_jobs`: the :class:`Context` and the queries
go into the object store once and each actor keeps them), and writes each
result to ``OUT/jobs/ID.json`` as it finishes, so an interrupted validation
resumes where it stopped. Specs that would retrain alike share one job
(:func:`share_retrains`).
"""
from __future__ import annotations

import json
import math
import os
import random
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from metamath import MMError
from metamath.parallel import imap_jobs
from metamath.write import write_json

from ..model import ProverNet
from ..train import Encoder, TrainConfig, batch_loss
from .attribute import Context, Options, check_methods, load_context, load_queries, method_scores, query_logprobs
from .distributional import SeedSamples, variance


RETRAIN_VERSION = "paired-1"  # in OUT/config.json: jobs of another retraining scheme are not reused


#: the training settings a retraining job's result depends on, with the search budgets: OUT/config.json
TRAINED = ("epochs", "dim", "rounds", "lr", "weight_decay", "batch_size", "max_applicable")


def tiny_preset() -> TrainConfig:
    return TrainConfig(epochs=2, dim=16, rounds=1)


@dataclass
class RetrainConfig:
    """What each retraining job trains (``train``, the tiny preset; its seed is the job's) and the
    counterfactual's search budget."""

    train: TrainConfig = field(default_factory=tiny_preset)
    budget_expansions: int = 32
    budget_seconds: float = 20.0

    def key(self) -> dict:
        """The settings that decide the jobs' results, flat."""
        return {**{k: getattr(self.train, k) for k in TRAINED}, "budget_expansions": self.budget_expansions,
                "budget_seconds": self.budget_seconds}

    @classmethod
    def with_overrides(cls, **values) -> "RetrainConfig":
        """The tiny preset with the given fields replaced; ``None`` or 0 keeps the preset's value
        (``attribute validate``'s options and ``run``'s ``[attribution]`` section)."""
        given = {k: v for k, v in values.items() if v}
        cfg = cls()
        train = replace(cfg.train, **{k: v for k, v in given.items() if k in TRAINED})
        return replace(cfg, train=train, **{k: v for k, v in given.items() if k not in TRAINED})


RETRAIN_OPTIONS = ("epochs", "dim", "rounds", "budget_expansions")  # what a user may override


def dropped_steps(ctx: Context, drop) -> set[int]:
    return {i for t in drop for i in ctx.groups[t]}


def retrain(ctx: Context, drop, seed: int, cfg: RetrainConfig) -> ProverNet:
    """A fresh prover trained without ``drop``'s groups (the last epoch kept).

    The run is paired across subsets: with one seed every retrain starts from the same initial
    weights and walks the same batches (a seeded permutation of *all* training steps, cut into
    batches, then the dropped steps taken out of their batches; candidate capping seeded per batch),
    so two retrains differ only by the dropped steps, not by a reshuffle. Otherwise as
    ``train_prover``: AdamW, the mean loss of each batch."""
    torch.set_num_threads(1)
    gone = dropped_steps(ctx, drop)
    torch.manual_seed(seed)
    tc = cfg.train
    net = ProverNet(len(ctx.vocab.labels), tc.dim, tc.rounds)
    enc = Encoder(ctx.lib, net, ctx.vocab, torch.device("cpu"))
    opt = torch.optim.AdamW(net.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    from .batch import Featurizer

    hyps_of = Featurizer(enc).hyps_of
    rng = random.Random(seed)
    n = len(ctx.steps)
    for epoch in range(tc.epochs):
        net.train()
        order = list(range(n))
        rng.shuffle(order)
        for b in range(0, n, tc.batch_size):
            chunk = [ctx.steps[i] for i in order[b : b + tc.batch_size] if i not in gone]
            if not chunk:
                continue
            loss, _ = batch_loss(enc, chunk, random.Random(f"{seed}|{epoch}|{b}"), tc.max_applicable, hyps_of)
            opt.zero_grad()
            (loss / len(chunk)).backward()
            opt.step()
    return net.eval()


def prove(ctx: Context, net: ProverNet, labels: list[str], cfg: RetrainConfig) -> list[str]:
    """The ``labels`` a search guided by ``net`` proves (found proofs re-checked by our verifier)."""
    from ..evaluate import EvalState, prove_one
    from ..policy import LearnedPolicy
    from ..search import SearchConfig

    ck = {"config": {"dim": net.dim, "rounds": net.rounds}, "vocab": list(ctx.vocab.labels),
          "model": net.state_dict()}
    policy = LearnedPolicy(ctx.lib, ck)
    discouraged = frozenset(l for l, a in ctx.lib.assertions.items() if a.discouraged)
    state = EvalState(ctx.lib, policy, SearchConfig(cfg.budget_expansions, cfg.budget_seconds),
                      frozenset(ctx.theorems), discouraged)
    return [l for l in labels if prove_one(state, l)["proved"]]


def run_job(ctx: Context, queries: list, spec: dict, cfg: RetrainConfig) -> dict:
    """One job: retrain without ``spec["drop"]`` with ``spec["seed"]``; the queries' log-probabilities,
    and with ``spec["prove"]`` the queries a search now proves."""
    net = retrain(ctx, spec["drop"], spec["seed"], cfg)
    out = {"spec": spec, "dropped_steps": len(dropped_steps(ctx, spec["drop"])),
           "queries": [r["label"] for r, _ in queries], "log_probs": query_logprobs(ctx, [s for _, s in queries], net)}
    if spec.get("prove"):
        out["proved"] = prove(ctx, net, [r["label"] for r, _ in queries], cfg)
    return out


def _job(shared: tuple, spec: dict) -> dict:
    ctx, queries, cfg = shared
    return run_job(ctx, queries, spec, cfg)


def _aligned(result: dict, labels: list[str]) -> dict | None:
    """A finished job's result with its log-probabilities in the order of ``labels`` (an evaluation run
    again may list its proofs in another order); None when it measured other queries, or did not say
    which (then it runs again)."""
    have = result.get("queries")
    if have is None or sorted(have) != sorted(labels) or len(set(have)) != len(have):
        return None
    at = {l: i for i, l in enumerate(have)}
    return dict(result, queries=list(labels), log_probs=[result["log_probs"][at[l]] for l in labels])


def run_jobs(ctx: Context, queries: list, specs: list[dict], cfg: RetrainConfig, out: str, jobs: int = 1,
             progress: bool = False, ray: str | None = None) -> dict[str, dict]:
    """Run the specs not finished in ``OUT/jobs`` (over ``jobs`` forked processes, or on the Ray
    cluster ``ray``); id -> result."""
    d = os.path.join(out, "jobs")
    os.makedirs(d, exist_ok=True)
    labels = [r["label"] for r, _ in queries]
    done: dict[str, dict] = {}
    for sp in specs:
        p = os.path.join(d, sp["id"] + ".json")
        if os.path.exists(p):
            try:
                with open(p) as fh:
                    r = json.load(fh)
            except (OSError, json.JSONDecodeError):
                continue  # a cut file: the job runs again
            r = _aligned(r, labels)
            if r is not None and r.get("spec") == sp:
                done[sp["id"]] = r
    todo = [sp for sp in specs if sp["id"] not in done]
    for sp, r in imap_jobs(_job, (ctx, queries, cfg), todo, jobs=min(jobs, len(todo)), min_parallel=0, chunk=1,
                           ordered=False, ray=ray):
        write_json(os.path.join(d, sp["id"] + ".json"), r)
        done[sp["id"]] = r
        if progress:
            print(f"job {sp['id']} done", flush=True)
    return done


def share_retrains(specs: list[dict]) -> tuple[list[dict], dict[str, str]]:
    """Specs that retrain alike (the same drops, the same seed) share one job, since a retrain is
    determined by them: the one that also searches, if any. Returns the specs to run and, per spec id,
    the id whose result it takes (two methods with the same top k, a subset drawn twice)."""
    runner: dict[tuple, dict] = {}
    for sp in specs:
        key = (tuple(sp["drop"]), sp["seed"])
        if key not in runner or (sp.get("prove") and not runner[key].get("prove")):
            runner[key] = sp
    return list(runner.values()), {sp["id"]: runner[(tuple(sp["drop"]), sp["seed"])]["id"] for sp in specs}


def lds_subsets(theorems: list[str], m: int, seed: int) -> list[list[str]]:
    """``m`` seeded subsets, each keeping half (rounded up) of ``theorems``."""
    rng = random.Random(seed)
    k = (len(theorems) + 1) // 2
    return [sorted(rng.sample(theorems, k), key=theorems.index) for _ in range(m)]


def ranks(x) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    r[order] = np.arange(len(x), dtype=float)
    for v in np.unique(x):  # average ties
        sel = x == v
        if sel.sum() > 1:
            r[sel] = r[sel].mean()
    return r


def spearman(a, b) -> float:
    """Spearman's rho; NaN when either side is constant."""
    ra, rb = ranks(a), ranks(b)
    if ra.std() == 0 or rb.std() == 0:
        return math.nan
    return float(np.corrcoef(ra, rb)[0, 1])


def bootstrap(values: list[float], seed: int = 0, n: int = 1000) -> tuple[float, float, float]:
    """Mean and 95% percentile interval of the mean over resampled ``values`` (NaN dropped)."""
    v = np.array([x for x in values if not math.isnan(x)])
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = rng.choice(v, size=(n, len(v)), replace=True).mean(1)
    return float(v.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def variance_lds(samples: SeedSamples, keeps: list[list[str]], theorems: list[str], res: dict, seeds: int,
                 seed: int) -> dict:
    """d-TDA's spread, checked like its mean: per query the Spearman correlation across subsets between
    the predicted variance over seeds without the dropped groups and the variance measured over the
    retraining seeds (NaN with one seed)."""
    pred = np.array([variance(samples.without([t for t in theorems if t not in keep])) for keep in keeps])
    if seeds < 2:
        measured = np.full(pred.shape, math.nan)
    else:
        measured = np.array([variance(np.array([res[f"lds-{i}-s{r}"]["log_probs"] for r in range(seeds)]))
                             for i in range(len(keeps))])
    per_q = [math.nan if np.isnan(measured[:, q]).any() else spearman(pred[:, q], measured[:, q])
             for q in range(pred.shape[1])]
    mean, low, high = bootstrap(per_q, seed)
    return {"lds_mean": _num(mean), "lds_low": _num(low), "lds_high": _num(high),
            "queries_with_lds": int(sum(1 for x in per_q if not math.isnan(x)))}


def _num(x: float) -> float | None:
    return None if math.isnan(x) else x


def validate(checkpoint: str, eval_dir: str, methods: list[str], out: str, subsets: int = 8, seeds: int = 1,
             top_k: int = 3, seed: int = 0, cfg: RetrainConfig | None = None, jobs: int = 1,
             counterfactual: bool = True, progress: bool = False,
             scores: dict[str, dict[str, list[float]]] | None = None, ray: str | None = None,
             opts: Options | None = None, counterfactual_seeds: int | None = None) -> dict:
    """Group LDS and the counterfactual per method (module docstring); ``OUT/validation.json``.

    ``scores``: per method, theorem -> per query its group score, as :func:`.attribute.attribute`
    returned them for the same checkpoint, evaluation and seed (reused instead of computed again,
    except with ``dtda``, whose seed samples are needed too); ``ray``: a Ray address for the
    retraining jobs (None: local processes); ``opts``: the methods' settings (its seed is ``seed``);
    ``counterfactual_seeds``: paired seeds of the counterfactual (default ``seeds``): its drops are
    small integers, so it needs more seeds than the LDS's averaged log-probabilities."""
    cf_seeds = seeds if counterfactual_seeds is None else counterfactual_seeds
    cfg = cfg or RetrainConfig()
    opts = replace(opts or Options(), seed=seed)
    ctx = load_context(checkpoint)
    check_methods(ctx, methods, opts)
    queries = load_queries(ctx, eval_dir)
    if not queries:
        raise MMError("the evaluation proved nothing: no query to attribute", eval_dir)
    if len(ctx.theorems) < 2:
        raise MMError(f"{len(ctx.theorems)} extracted theorem(s): group validation needs at least 2",
                      ctx.ck["corpus"])
    os.makedirs(out, exist_ok=True)
    key = {"checkpoint": ctx.checkpoint, "eval": os.path.abspath(eval_dir), "config": cfg.key(),
           "retrain": RETRAIN_VERSION}
    kp = os.path.join(out, "config.json")
    if os.path.exists(kp):
        with open(kp) as fh:
            if json.load(fh) != key:
                raise MMError("this directory holds a validation with other settings; use another --out", out)
    else:
        write_json(kp, key)
    q_steps = [s for _, s in queries]
    labels = [r["label"] for r, _ in queries]
    theorems = ctx.theorems
    if scores is None or "dtda" in methods:
        scores, samples = method_scores(ctx, methods, q_steps, opts)
    elif any(set(scores.get(m, {})) != set(theorems) or any(len(v) != len(labels) for v in scores[m].values())
             for m in methods):
        raise ValueError("the given scores are not those of this checkpoint's theorems and evaluation's queries")
    else:
        samples = None
    keeps = lds_subsets(theorems, subsets, seed)
    specs = [{"id": f"lds-{i}-s{r}", "drop": [t for t in theorems if t not in keep], "seed": r}
             for i, keep in enumerate(keeps) for r in range(seeds)]
    k = max(1, min(top_k, len(theorems) - 1))
    rand = sorted(random.Random(seed + 1).sample(theorems, k), key=theorems.index)
    tops = {}
    for m in methods:
        total = {t: sum(scores[m][t]) for t in theorems}
        tops[m] = sorted(sorted(theorems, key=lambda t: -total[t])[:k], key=theorems.index)
    if counterfactual:
        for r in range(cf_seeds):
            specs.append({"id": f"full-s{r}", "drop": [], "seed": r, "prove": True})
            specs.append({"id": f"random-s{r}", "drop": rand, "seed": r, "prove": True})
            for m in methods:
                specs.append({"id": f"top-{m}-s{r}", "drop": tops[m], "seed": r, "prove": True})
    run, taken_from = share_retrains(specs)
    done = run_jobs(ctx, queries, run, cfg, out, jobs, progress, ray)
    res = {i: done[j] for i, j in taken_from.items()}
    measured = np.array([[np.mean([res[f"lds-{i}-s{r}"]["log_probs"][q] for r in range(seeds)])
                          for q in range(len(labels))] for i in range(len(keeps))])  # [M, Q]
    report = {"checkpoint": ctx.checkpoint, "eval": os.path.abspath(eval_dir), "queries": labels,
              "theorems": theorems, "subsets": subsets, "seeds": seeds,
              "counterfactual_seeds": cf_seeds if counterfactual else 0, "top_k": k, "config": cfg.key(),
              "training_steps": len(ctx.steps), "options": asdict(opts), "measured_log_probs": measured.tolist(),
              "methods": {}}
    for m in methods:
        pred = np.array([[sum(scores[m][t][q] for t in keep) for q in range(len(labels))] for keep in keeps])
        per_q = [spearman(pred[:, q], measured[:, q]) for q in range(len(labels))]
        mean, low, high = bootstrap(per_q, seed)
        row = {"lds_mean": _num(mean), "lds_low": _num(low), "lds_high": _num(high),
               "lds_per_query": [_num(x) for x in per_q],
               "queries_with_lds": int(sum(1 for x in per_q if not math.isnan(x)))}
        if counterfactual:
            full = [len(res[f"full-s{r}"]["proved"]) for r in range(cf_seeds)]
            topd = [full[r] - len(res[f"top-{m}-s{r}"]["proved"]) for r in range(cf_seeds)]
            rnd = [full[r] - len(res[f"random-s{r}"]["proved"]) for r in range(cf_seeds)]
            diff = [a - b for a, b in zip(topd, rnd)]
            _, d_low, d_high = bootstrap(diff, seed)
            row["counterfactual"] = {"topk_drop": float(np.mean(topd)), "random_drop": float(np.mean(rnd)),
                                     "topk": tops[m], "random": rand, "full_proved": full,
                                     "topk_drops": topd, "random_drops": rnd,
                                     "paired_difference": {"mean": float(np.mean(diff)), "low": _num(d_low),
                                                           "high": _num(d_high)}}
        if m == "dtda":
            row["variance_lds"] = variance_lds(samples, keeps, theorems, res, seeds, seed)
        report["methods"][m] = row
    write_json(os.path.join(out, "validation.json"), report)
    return report
