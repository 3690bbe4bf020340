"""``mmrefactor prover ...``: split, train, eval, compare (arguments in, results out).

The prover lives in ``provers/``; this module only turns arguments into
calls and results into text or ``--json``.
"""
from __future__ import annotations

import sys

from .cli import RAY_HELP, emit, ray_address


def cmd_split(args) -> int:
    from metamath import Database
    from provers.split import make_split, save_split

    db = Database.from_file(args.db)
    split = make_split(db, args.seed)
    save_split(split, args.o, [f.path for f in db.files])
    data = {"out": args.o, "seed": split.seed, **{p: len(split.part(p)) for p in ("train", "valid", "test")}}
    emit(args, data, lambda d: f"{args.o}: seed {d['seed']}, train {d['train']}, valid {d['valid']}, "
                                f"test {d['test']} theorems")
    return 0


def cmd_train(args) -> int:
    """Under torchrun every process runs this and they train together (DDP); rank 0 alone prints."""
    from metamath.ddp import from_env
    from provers.train import TrainConfig, train_prover

    cfg = TrainConfig(seed=args.seed, device=args.device)
    for k in ("epochs", "dim", "rounds", "lr", "batch_size"):
        if getattr(args, k) is not None:
            setattr(cfg, k, getattr(args, k))
    m = train_prover(args.corpus, args.split, args.out, cfg, resume=args.resume,
                     progress=not args.json and sys.stderr.isatty())
    if not from_env().main:
        return 0
    last = m["history"][-1] if m["history"] else {}

    def text(d):
        v = last.get("valid", {})
        return (f"{args.out}/checkpoint.pt: seed {d['seed']}, {d['train_steps']} training steps from "
                f"{d['train_theorems']} proofs, {len(d['history'])} epochs; valid relevance top-1 "
                f"{v.get('relevance_top1', 0):.3f}, term top-1 {v.get('term_top1', 0):.3f}, value accuracy "
                f"{v.get('value_accuracy', 0):.3f}; term pool covers "
                f"{d['pool_coverage_valid']['coverage']:.1%} of the human terms on valid"
                + (f"; {d['world_size']} processes (DDP)" if d["world_size"] > 1 else ""))
    emit(args, m, text)
    return 0


def cmd_eval(args) -> int:
    from provers.evaluate import EvalConfig, evaluate

    cfg = EvalConfig(max_expansions=args.budget_expansions, max_seconds=args.budget_seconds,
                     baseline=args.baseline, part=args.part, jobs=args.jobs, limit=args.limit,
                     sample=args.sample, sample_seed=args.sample_seed,
                     device=args.device, retry_seconds=args.retry_timeouts or 0.0, ray=ray_address(args) or "")
    s = evaluate(args.checkpoint, args.out, cfg, split_path=args.split,
                 progress=not args.json and sys.stderr.isatty())

    def text(d):
        by = ", ".join(f"@{b}: {k}" for b, k in d["by_budget"].items())
        f = d.get("forecast")
        fc = (f"; forecast at {f['target']}: {f['predicted_rate']:.1%} (measured {f['measured_rate']:.1%})"
              if f else "")
        return (f"{d['policy']}: proved {d['proved']}/{d['attempted']} ({d['rate']:.1%}) [{by}]{fc}; "
                f"{d['uses_new_theorems']} proofs apply a new theorem; "
                f"{d['expansions_per_second']:.1f} expansions/s; proofs in {d['proofs_mm']}")
    emit(args, s, text)
    return 0


def cmd_compare(args) -> int:
    from provers.compare import compare, format_table

    c = compare(args.evals)
    emit(args, c, format_table)
    return 0


def add_prover_parser(add) -> None:
    """Register ``prover`` and its subcommands with the main parser's ``add`` helper."""
    sp = add("prover", None, "the learned prover: split a corpus, train, evaluate, compare")
    sub = sp.add_subparsers(dest="prover_command", metavar="SUBCOMMAND")

    def padd(name, fn, help_):
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(func=fn)
        p.add_argument("--json", action="store_true")
        return p

    p = padd("split", cmd_split, "split the |- theorems 80/10/10 into train/valid/test (seeded)")
    p.add_argument("db")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", required=True, metavar="SPLIT.json")

    p = padd("train", cmd_train, "train the prover on a corpus's training proofs")
    p.add_argument("--corpus", required=True)
    p.add_argument("--split", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--epochs", type=int)
    p.add_argument("--dim", type=int)
    p.add_argument("--rounds", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int, help="steps per optimiser step (under torchrun: over all processes)")

    p = padd("eval", cmd_eval, "search for proofs of held-out theorems (resumable)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--split", help="must be the checkpoint's split (checked)")
    p.add_argument("--out", required=True)
    p.add_argument("--budget-expansions", type=int, default=512)
    p.add_argument("--budget-seconds", type=float, default=60.0)
    p.add_argument("--baseline", choices=["uniform", "count"])
    p.add_argument("--part", choices=["test", "valid"], default="test")
    p.add_argument("--jobs", type=int, default=2, help="local processes (default 2)")
    p.add_argument("--ray", metavar="auto|ADDRESS", help=RAY_HELP + " (one search per theorem)")
    p.add_argument("--limit", type=int, help="only the first N theorems of the part")
    p.add_argument("--sample", type=int, metavar="N",
                   help="a random N theorems of the part (seeded, database order): a reduced scale over the whole part")
    p.add_argument("--sample-seed", type=int, default=0, help="seed of --sample (default 0)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--retry-timeouts", type=float, metavar="SECONDS",
                   help="rerun theorems the wall-clock budget cut short (a loaded machine) with this cap, "
                        "so the expansion budget binds")

    p = padd("compare", cmd_compare, "the paired table of evaluations (first = reference)")
    p.add_argument("evals", nargs="+")
