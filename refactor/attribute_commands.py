"""``mmrefactor attribute ...``: which extracted theorems helped the prover (arguments in, results out).

The work lives in ``provers/attribution/``; this module only turns
arguments into calls and results into text or ``--json``.
"""
from __future__ import annotations

import json
import sys

from .cli import emit

METHOD_NAMES = ("grad-dot", "grad-proj", "ekfac", "source", "dtda", "random")
DTDA_BASES = ("grad-dot", "grad-proj", "ekfac", "source")


def _need(args, *names) -> None:
    from metamath import MMError

    for n in names:
        if getattr(args, n) is None:
            raise MMError(f"--{n} is required", "<options>")


def _options(args):
    from provers.attribution.attribute import Options

    return Options(seed=args.seed, k=None if args.projection == 0 else args.projection,
                   seed_checkpoints=list(args.seed_checkpoints or []), dtda_base=args.dtda_base)


def cmd_attribute(args) -> int:
    from provers.attribution.attribute import attribute

    _need(args, "checkpoint", "eval")
    r = attribute(args.checkpoint, args.eval, args.method, top=args.top, opts=_options(args))

    def text(d):
        ms = d["methods"]
        cols = [m if m != "dtda" else "dtda mean" for m in ms] + (["dtda var", "dtda W1"] if "dtda" in ms else [])
        head = f"{'theorem':<16} {'steps':>5} {'direct uses':>11} " + " ".join(f"{c:>12}" for c in cols)
        lines = [f"{len(d['queries'])} queries (proved theorems), {len(d['theorems'])} extracted theorems, "
                 f"{d['training_steps']} training steps; influence: sum over queries, positive = helped", head]
        for row in sorted(d["theorems"], key=lambda r: -r["influence"][ms[0]]):
            vals = [row["influence"][m] for m in ms]
            if "dtda" in ms:
                vals += [row["dtda"]["variance"], row["dtda"]["wasserstein"]]
            lines.append(f"{row['theorem']:<16} {row['members']:>5} {len(row['direct_uses']):>11} "
                         + " ".join(f"{v:>12.4g}" for v in vals))
        if "source" in d:
            segs = ", ".join(f"{s['steps']} steps at lr {s['effective_lr']:.3g}" for s in d["source"]["segments"])
            lines.append(f"source: {len(d['source']['segments'])} training segments ({segs}; Adam's effective lr)")
        if "dtda" in d:
            lines.append(f"dtda: {d['dtda']['base']} on seeds {', '.join(map(str, d['dtda']['seeds']))}; mean and "
                         "variance shift of the log-probability (nats) over seeds, W1 between the seed samples with "
                         "and without the group (sums over queries)")
        lines.append("")
        for q in d["per_query"]:
            tops = "; ".join(f"{m}: " + ", ".join(t for t, _ in q["top"][m]) for m in ms)
            uses = f" applies {', '.join(q['applies'])};" if q["applies"] else ""
            lines.append(f"{q['label']} (log-prob {q['log_prob']:.3f}, {q['steps']} steps):{uses} top {tops}")
        return "\n".join(lines)

    emit(args, r, text)
    return 0


def cmd_validate(args) -> int:
    from provers.attribution.validate import RetrainConfig, validate

    _need(args, "checkpoint", "eval", "out")
    cfg = RetrainConfig()
    for k in ("epochs", "dim", "rounds"):
        if getattr(args, k) is not None:
            setattr(cfg.train, k, getattr(args, k))
    if args.budget_expansions is not None:
        cfg.budget_expansions = args.budget_expansions
    r = validate(args.checkpoint, args.eval, args.method, args.out, subsets=args.subsets, seeds=args.seeds,
                 top_k=args.top_k, seed=args.seed, cfg=cfg, jobs=args.jobs,
                 counterfactual=not args.no_counterfactual, progress=not args.json and sys.stderr.isatty(),
                 opts=_options(args))
    if args.json:
        print(json.dumps({m: {k: v for k, v in row.items() if k != "lds_per_query"}
                          for m, row in r["methods"].items()}, indent=2))
        return 0

    def f(x):
        return "n/a" if x is None else f"{x:.3f}"

    print(f"{len(r['queries'])} queries, {len(r['theorems'])} theorems, {r['subsets']} subsets x {r['seeds']} seeds")
    for m, row in r["methods"].items():
        cf = row.get("counterfactual")
        cft = (f"; queries no longer proved without its top {r['top_k']}: {cf['topk_drop']:.2f}, "
               f"without {r['top_k']} random: {cf['random_drop']:.2f}") if cf else ""
        print(f"{m:<10} LDS {f(row['lds_mean'])} [{f(row['lds_low'])}, {f(row['lds_high'])}]{cft}")
        v = row.get("variance_lds")
        if v:
            print(f"{'':<10} variance LDS {f(v['lds_mean'])} [{f(v['lds_low'])}, {f(v['lds_high'])}]")
    return 0


def add_attribute_parser(add) -> None:
    """Register ``attribute`` (and ``attribute validate``) with the main parser's ``add`` helper."""
    sp = add("attribute", cmd_attribute,
             "training-data attribution: which extracted theorems helped the prover's found proofs")

    def common(p, many_default):
        p.add_argument("--checkpoint", help="the prover checkpoint the evaluation used")
        p.add_argument("--eval", help="the evaluation directory (results.jsonl) whose proofs are the queries")
        p.add_argument("--method", nargs="+", choices=METHOD_NAMES, default=many_default, metavar="M",
                       help=f"one or more of {', '.join(METHOD_NAMES)}")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--projection", type=int, default=32, help="grad-proj: rows per side (0: no projection)")
        p.add_argument("--seed-checkpoints", nargs="+", metavar="CK",
                       help="dtda: checkpoints of the same training with other --seed (the distribution's samples)")
        p.add_argument("--dtda-base", choices=DTDA_BASES, default="grad-proj",
                       help="dtda: the influence method run on each seed's checkpoint (default grad-proj)")
        p.add_argument("--json", action="store_true")

    common(sp, ["grad-dot"])
    sp.add_argument("--top", type=int, default=5, help="top theorems listed per query")
    sub = sp.add_subparsers(dest="attribute_command", metavar="SUBCOMMAND")
    p = sub.add_parser("validate", help="group LDS and top-k counterfactual by retraining (resumable)",
                       description="group LDS and top-k counterfactual by retraining (resumable)")
    p.set_defaults(func=cmd_validate)
    common(p, ["grad-dot", "random"])
    p.add_argument("--out", help="directory of the retraining jobs and validation.json")
    p.add_argument("--subsets", type=int, default=8, help="M: random half subsets of the theorem groups")
    p.add_argument("--seeds", type=int, default=1, help="R: training seeds per subset")
    p.add_argument("--top-k", type=int, default=3, help="theorems removed in the counterfactual")
    p.add_argument("--no-counterfactual", action="store_true")
    p.add_argument("--jobs", type=int, default=1, help="local processes for the retraining jobs")
    p.add_argument("--epochs", type=int, help="retraining epochs (tiny preset: 2)")
    p.add_argument("--dim", type=int)
    p.add_argument("--rounds", type=int)
    p.add_argument("--budget-expansions", type=int, help="counterfactual search budget (default 32)")
