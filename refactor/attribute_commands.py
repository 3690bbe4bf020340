"""``mmrefactor attribute ...``: which extracted theorems helped the prover (arguments in, results out).

The work lives in ``provers/attribution/``; this module only turns
arguments into calls and results into text or ``--json``.
"""
from __future__ import annotations

import json
import sys

from .attribution_report import (attribution_summary, query_table, text_table, theorem_table, validation_summary,
                                 validation_table)
from .cli import RAY_HELP, emit, ray_address

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
        return "\n".join([attribution_summary(d), "", text_table(theorem_table(d)), "",
                          text_table(query_table(d, top=args.top))])

    emit(args, r, text)
    return 0


def cmd_validate(args) -> int:
    from provers.attribution.validate import RETRAIN_OPTIONS, RetrainConfig, validate

    _need(args, "checkpoint", "eval", "out")
    cfg = RetrainConfig.with_overrides(**{k: getattr(args, k) for k in RETRAIN_OPTIONS})
    r = validate(args.checkpoint, args.eval, args.method, args.out, subsets=args.subsets, seeds=args.seeds,
                 top_k=args.top_k, seed=args.seed, cfg=cfg, jobs=args.jobs,
                 counterfactual=not args.no_counterfactual, progress=not args.json and sys.stderr.isatty(),
                 ray=ray_address(args), opts=_options(args), counterfactual_seeds=args.counterfactual_seeds)
    if args.json:
        print(json.dumps({m: {k: v for k, v in row.items() if k != "lds_per_query"}
                          for m, row in r["methods"].items()}, indent=2))
        return 0

    print(validation_summary(r))
    print(text_table(validation_table(r)))
    for m, row in r["methods"].items():
        v = row.get("variance_lds")
        if v and v.get("lds_mean") is not None:
            print(f"{m}: variance LDS {v['lds_mean']:.3f} [{v['lds_low']:.3f}, {v['lds_high']:.3f}]")
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
    p.add_argument("--counterfactual-seeds", type=int, metavar="N",
                   help="paired seeds of the counterfactual (default: --seeds; the issue asks for >= 10)")
    p.add_argument("--jobs", type=int, default=1, help="local processes for the retraining jobs")
    p.add_argument("--ray", metavar="auto|ADDRESS", help=RAY_HELP + " (one retraining per subset and seed)")
    p.add_argument("--epochs", type=int, help="retraining epochs (tiny preset: 2)")
    p.add_argument("--dim", type=int)
    p.add_argument("--rounds", type=int)
    p.add_argument("--budget-expansions", type=int, help="counterfactual search budget (default 32)")
