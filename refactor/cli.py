"""The ``mmrefactor`` command: parse arguments, call the library, print.

Every subcommand is a library function first; this file only turns
arguments into calls and results into readable text or ``--json``. User
mistakes (bad database, unknown label, missing file) print
``file:line:col: message`` and exit 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable

from metamath.errors import MMError

from .config import RANKINGS

DEFAULT_DB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "set-prop.mm")


class UsageError(Exception):
    """A user mistake that is not located in a file (exit 2)."""


def emit(args, data: dict, text: Callable[[dict], str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, sort_keys=False))
    else:
        print(text(data))


RAY_HELP = ("run the jobs on a Ray cluster instead of local processes: auto (RAY_ADDRESS, else a cluster "
            "`ray start` made here, else a new local instance) or the cluster's address; needs the ray extra")


def ray_address(args) -> str | None:
    """``--ray``'s address after joining that cluster (so a missing extra or a wrong address is exit 2
    before any work), or None without the flag."""
    address = getattr(args, "ray", None)
    if not address:
        return None
    from metamath.cluster import connect

    connect(address)
    return address


def _load(path: str):
    from metamath.database import Database

    return Database.from_file(path)


# ---------------------------------------------------------------- verify
def cmd_verify(args) -> int:
    from metamath.verify import failure_text, verify_all

    db = _load(args.db)
    labels = None
    if args.label:
        for l in args.label:
            if l not in db or db[l].kind != "p":
                raise UsageError(f"{args.db}: no $p statement labeled {l!r}")
        labels = list(args.label)
    rep = verify_all(db, labels=labels, jobs=args.jobs, progress=not args.json and sys.stderr.isatty())
    data = rep.as_dict()

    def text(d):
        lines = [f"{args.db}: {d['statements']} statements, {d['axioms']} $a, {d['theorems']} $p"]
        for f in d["failed"]:
            lines.append(f"FAILED {failure_text(f)}")
        checked = len(labels) if labels else d["theorems"]
        lines.append(f"verified {d['verified']} of {checked} proofs in {d['seconds']:.2f} s"
                     + ("" if not d["failed"] else f"; {len(d['failed'])} failed"))
        return "\n".join(lines)

    emit(args, data, text)
    return 1 if rep.failed else 0


# ---------------------------------------------------------------- stats
def cmd_stats(args) -> int:
    from metamath.stats import database_stats

    db = _load(args.db)
    data = database_stats(db, jobs=args.jobs, progress=not args.json and sys.stderr.isatty())

    def text(d):
        k = d["kinds"]
        ps, pt = d["proof_steps"], d["proof_tree_nodes"]
        out = [f"{args.db}",
               f"  statements  {d['statements']:>10}   ($f {k['$f']}, $e {k['$e']}, $a {k['$a']} "
               f"of which syntax {d['syntax_axioms']}, $p {k['$p']})",
               f"  symbols     {d['constants']:>10} constants, {d['variables']} variables; {d['scopes']} scopes"]
        if ps.get("count"):
            out += [f"  proof steps (as stored)   mean {ps['mean']}, median {ps['median']}, max {ps['max']}",
                    f"  proof tree nodes          mean {pt['mean']}, median {pt['median']}, max {pt['max']} "
                    f"({d['largest_proof']})",
                    f"  proof_nodes (all trees)   {d['proof_nodes']:,}",
                    f"  essential_nodes           {d['essential_nodes']:,}"]
        if d["unverified_proofs"]:
            out.append(f"  {d['unverified_proofs']} proofs do not verify (run `mmrefactor verify`)")
        return "\n".join(out)

    emit(args, data, text)
    return 0


# ---------------------------------------------------------------- show
def cmd_show(args) -> int:
    from metamath.errors import ProofError, ProofFormatError
    from metamath.proof import show_lines
    from metamath.verify import check

    db = _load(args.db)
    if args.label not in db:
        raise UsageError(f"{args.db}: no statement labeled {args.label!r}")
    st = db[args.label]
    if st.kind != "p":
        raise UsageError(f"{args.db}: {args.label!r} is a ${st.kind} statement, not a $p with a proof")
    try:
        proof = check(db, args.label, record=True)
    except (ProofError, ProofFormatError) as exc:  # the database is fine; this proof is not
        print(f"{exc}", file=sys.stderr)
        return 1
    kinds = {l: s.kind for l, s in db.statements.items()}
    lines = show_lines(proof, kinds, db.syntax_typecodes, essential_only=not args.all)
    data = {"label": args.label, "statement": " ".join(st.expr), "steps": len(lines),
            "tree_nodes": proof.tree_size(), "lines": lines}
    emit(args, data, lambda d: "\n".join([f"{d['label']} $p {d['statement']}"] + d["lines"]))
    return 0


# ---------------------------------------------------------------- slice
def cmd_slice(args) -> int:
    from metamath.slice import slice_database

    data = slice_database(args.db, args.out, until=args.until, before_section=args.before_section)

    def text(d):
        markers = "".join(f"\n  closed file marker $( Begin $[ {m} $] $)" for m in d["closed_markers"])
        return (f"wrote {d['out']} ({d['bytes']:,} bytes): {d['statements']} statements ({d['axioms']} $a, "
                f"{d['theorems']} $p), cut after {d['last_label']}, {d['closed_scopes']} scopes closed" + markers)

    emit(args, data, text)
    return 0


# ---------------------------------------------------------------- write
def cmd_write(args) -> int:
    from metamath.write import write_database

    db = _load(args.db)
    data = write_database(db, args.out, recompress=args.recompress)

    def text(d):
        out = f"wrote {d['out']} ({d['bytes']:,} bytes"
        out += f", {d['recompressed']} proofs recompressed)" if args.recompress else ", unchanged)"
        for label, why in d["kept"].items():
            out += f"\nkept the original proof of {label} (it does not verify: {why})"
        return out + f"\n{d['seconds']:.1f} s"

    emit(args, data, text)
    return 1 if data["kept"] else 0


# ---------------------------------------------------------------- dataset / train / evaluate
def _expansion_options(args, db):
    from refactor.expansion import ExpansionOptions

    held: tuple[str, ...] = ()
    if args.split:
        from provers.split import load_split

        s = load_split(args.split, db)
        held = tuple(sorted(s.valid + s.test))
    return ExpansionOptions(max_nodes=args.max_nodes, cap_train=args.cap_train, cap_eval=args.cap_eval,
                            seed=args.seed, essential_only=args.essential_only,
                            limit_proofs=args.limit_proofs, max_examples=args.max_examples, held_out=held)


def _dataset_text(d) -> str:
    sp = d["splits"]
    return (f"{d['examples']:,} examples from {d['inlined_theorems']:,} inlined theorems "
            f"({d['applications']:,} applications before the caps), {d['nodes']:,} nodes "
            f"(mean {d['mean_nodes']}, max {d['max_nodes']}), {100 * d['positive_fraction']:.1f}% positive\n"
            f"split by inlined theorem (seed {d['seed']}): train {sp['train']:,} / valid {sp['valid']:,} / "
            f"test {sp['test']:,} examples" + ("  [cached]" if d.get("cached") else ""))


def cmd_dataset(args) -> int:
    from refactor.dataset import DatasetError, build_dataset

    db = _load(args.db)
    try:
        meta = build_dataset(db, args.out, _expansion_options(args, db),
                             progress=not args.json and sys.stderr.isatty(), force=args.force)
    except DatasetError as exc:
        raise UsageError(str(exc)) from None
    data = {k: v for k, v in meta.items() if k != "key"}
    emit(args, data, _dataset_text)
    return 0


def cmd_train(args) -> int:
    """Under torchrun every process runs this: rank 0 builds (or reads) the dataset first, the others
    then read it; they train together and rank 0 alone prints."""
    import torch

    from metamath.ddp import session
    from refactor.dataset import DatasetError, build_dataset
    from refactor.model import resolve
    from refactor.train import CheckpointError, pick_device, train

    torch.set_flush_denormal(True)  # subnormal floats slow CPU training ~7x once weights shrink
    data_dir = args.data or os.path.join(args.out, "dataset")
    db = _load(args.db)
    try:
        with session(pick_device(args.device).type) as ranks:
            quiet = args.json or not ranks.main
            if ranks.main:
                meta = build_dataset(db, data_dir, _expansion_options(args, db),
                                     progress=not quiet and sys.stderr.isatty())
            ranks.barrier()
            if not ranks.main:
                meta = build_dataset(db, data_dir, _expansion_options(args, db), progress=False)
            if not quiet:
                print(_dataset_text(meta), flush=True)
            try:
                mcfg, tcfg = resolve(args.preset, args.ablation, epochs=args.epochs, seed=args.train_seed,
                                     batch_size=args.batch_size, lr=args.lr, hidden=args.hidden,
                                     layers=args.layers, max_train_examples=args.max_train_examples,
                                     pos_weight=args.pos_weight, loss=args.loss, focal_gamma=args.focal_gamma,
                                     sampling=args.sampling, collapse_patience=args.collapse_patience,
                                     init=args.init and os.path.abspath(args.init))
            except KeyError as exc:
                raise UsageError(exc.args[0]) from None
            if not quiet:
                print(f"preset {args.preset}, ablation {args.ablation}, seed {tcfg.seed}, device "
                      f"{args.device or 'auto'}" + (f", {ranks.world} processes (DDP)" if ranks.distributed else ""),
                      flush=True)
            res = train(data_dir, args.out, mcfg, tcfg, device=args.device, resume=args.resume,
                        progress=not quiet and sys.stderr.isatty(), log=(lambda *a: None) if quiet else print)
    except (DatasetError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    if ranks.main:
        emit(args, res, _eval_text)
    return 0


def _eval_text(d) -> str:
    from refactor.report import metrics_table

    head, body = metrics_table(d)
    rows = [[""] + head[1:]] + body
    w = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w[i]) if i == 0 else c.rjust(w[i]) for i, c in enumerate(r)) for r in rows]
    lines.append("decoded: the most probable inlined-theorem-shaped node set (refactor/decode.py); a model "
                 "trained with --loss structured predicts that set")
    if "examples_per_second" in d:
        lines.append(f"best epoch {d['best_epoch']}, {d['train_seconds']} s training, "
                     f"{d['examples_per_second']} examples/s on {d['device']}")
    return "\n".join(lines)


def cmd_evaluate(args) -> int:
    from refactor.dataset import DatasetError
    from refactor.train import CheckpointError, evaluate_checkpoint

    try:
        res = evaluate_checkpoint(args.checkpoint, device=args.device)
    except (DatasetError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    emit(args, res, _eval_text)
    return 0


# ---------------------------------------------------------------- extract
def cmd_extract(args) -> int:
    from refactor.baselines.stitch import StitchError
    from refactor.extract import ExtractError, run_extract

    try:
        data = run_extract(args.db, args.out, method=args.method, checkpoint=args.checkpoint, top=args.top,
                           on=args.on, max_nodes=args.max_nodes, strict=args.strict, device=args.device,
                           seed=args.seed, stitch_iterations=args.stitch_iterations,
                           stitch_arity=args.stitch_arity, limit=args.limit, split=args.split,
                           threshold=args.threshold, fragments=args.fragments, ranking=args.ranking,
                           ray=ray_address(args), sample=args.sample, decode=args.decode)
    except (ExtractError, StitchError) as exc:
        raise UsageError(str(exc)) from None

    def text(d):
        lines = [f"{d['method']} on {d['database']}: {d['candidates']} candidates, {d['valid']} valid, "
                 f"{d['rediscoveries']} rediscoveries, {d['trivial']} trivial, {d['new']} new "
                 f"({d['seconds']} s); top {len(d['theorems'])} written to {args.out}"]
        for t in d["theorems"]:
            hyps = " & ".join(h["statement"] for h in t["hypotheses"])
            lines.append(f"  {t['label']:<8} uses {t['uses']:>4}  saves {t['nodes_saved']:>5}  "
                         f"{(hyps + '  =>  ') if hyps else ''}{t['statement']}")
        if d["rediscovered"]:
            names = [r["label_existing"] for r in d["rediscovered"]]
            lines.append("  rediscovered: " + ", ".join(names[:12])
                         + (f" and {len(names) - 12} more" if len(names) > 12 else ""))
        return "\n".join(lines)

    emit(args, data, text)
    return 0


def _extract_parser(add) -> None:
    sp = add("extract", cmd_extract, "extract new theorems (GNN predictions or a symbolic baseline) into T.json")
    sp.add_argument("db")
    sp.add_argument("--checkpoint", help="checkpoint.pt of `mmrefactor train` (needed by --method gnn)")
    sp.add_argument("--out", required=True, help="the theorems file to write (T.json)")
    sp.add_argument("--method", choices=["gnn", "frequent", "stitch"], default="gnn")
    sp.add_argument("--top", type=int, default=20, help="keep the best K new theorems (default 20)")
    sp.add_argument("--on", choices=["proofs", "expansion"], default="proofs",
                    help="gnn: classify the real proofs (default) or the expansion dataset's examples")
    sp.add_argument("--max-nodes", type=int, default=1000, help="gnn: skip proof trees over N nodes")
    sp.add_argument("--limit", type=int, default=None,
                    help="gnn: classify only the first N proofs (or examples); stitch: give it the first N proofs")
    sp.add_argument("--sample", type=int, default=None, metavar="N",
                    help="stitch: give it a random N of the proofs (seeded by --seed) instead of the first N")
    sp.add_argument("--strict", action="store_true",
                    help="gnn: a step's syntax children must be predicted too (REFACTOR's literal rule)")
    sp.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--stitch-iterations", type=int, default=None, help="stitch: abstractions to learn")
    sp.add_argument("--split", metavar="SPLIT.json",
                    help="learn only from the proofs of the split's training theorems (prover experiments)")
    sp.add_argument("--stitch-arity", type=int, default=4,
                    help="stitch: max arguments (hypotheses) per abstraction")
    sp.add_argument("--threshold", type=float, default=0.5,
                    help="gnn: a node is positive when the model's probability exceeds P (default 0.5)")
    sp.add_argument("--decode", action="store_true",
                    help="gnn: take each proof's most probable inlined-theorem-shaped region (refactor/decode.py) "
                         "as its positive nodes instead of thresholding")
    sp.add_argument("--fragments", choices=["subshapes", "components"], default="subshapes",
                    help="gnn: propose the parts of the predicted fragments (default) or the fragments themselves")
    sp.add_argument("--ranking", choices=RANKINGS, default="proof-nodes",
                    help="pick the top K by proof-tree nodes saved (default), by essential nodes saved, or "
                         "(gnn) by proof-tree nodes saved times the classifier's mean probability")
    sp.add_argument("--ray", metavar="auto|ADDRESS", help=RAY_HELP + " (the library of every proof's essential DAG)")
    sp.add_argument("--json", action="store_true")


# ---------------------------------------------------------------- rewrite
def cmd_rewrite(args) -> int:
    from refactor.rewrite import RewriteError, rewrite_file
    from refactor.theorems import TheoremsFileError

    quiet = args.json
    # a theorems file that cannot be read or has the wrong shape is bad input (exit 2); what goes
    # wrong later (a theorem that does not fit the database or does not verify, a rewritten proof
    # rejected) is a failed rewrite (exit 1)
    try:
        res = rewrite_file(args.db, args.theorems, args.out, use_metamath=not args.no_metamath, jobs=args.jobs,
                           split=args.split, top=args.top, progress=not quiet and sys.stderr.isatty(),
                           log=None if quiet else (lambda m: print(m, file=sys.stderr, flush=True)))
    except TheoremsFileError as exc:
        raise UsageError(str(exc)) from None
    except RewriteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    def text(d):
        lines = [f"wrote {d['out']}: {d['new_theorems']} new theorems, used {d['total_usage']} times "
                 f"(average {d['average_usage']}), {d['proofs_rewritten']} proofs rewritten",
                 f"  proof nodes      {d['proof_nodes_before']:>10,} -> {d['proof_nodes_after']:,}",
                 f"  essential nodes  {d['essential_nodes_before']:>10,} -> {d['essential_nodes_after']:,}",
                 f"  compressed bytes {d['compressed_bytes_before']:>10,} -> {d['compressed_bytes_after']:,}",
                 f"  file bytes       {d['file_bytes_before']:>10,} -> {d['file_bytes_after']:,}"]
        for t in d["per_theorem"]:
            lines.append(f"  {t['label']:<12} uses {t['uses']:>5} in {t['proofs']:>4} proofs, "
                         f"saves {t['nodes_saved']:>6} nodes  {t['statement']}")
        lines.append("verified by " + " and ".join(d["verified_by"]))
        return "\n".join(lines)

    emit(args, res.as_dict(), text)
    return 0


def _rewrite_parser(add) -> None:
    sp = add("rewrite", cmd_rewrite, "insert new theorems (T.json) and rewrite every proof to use them")
    sp.add_argument("db")
    sp.add_argument("--theorems", required=True, help="the theorems file (T.json of `mmrefactor extract`)")
    sp.add_argument("--split", metavar="SPLIT.json",
                    help="rewrite only the proofs of the split's training theorems; held-out proofs stay byte-identical")
    sp.add_argument("-o", "--out", required=True, help="the rewritten database to write (never the input)")
    sp.add_argument("--top", type=int, metavar="K",
                    help="insert only the first K theorems of T.json (its rank order: the extractor's top K)")
    sp.add_argument("--jobs", type=int, default=None, help="processes (default: all cores for big databases)")
    sp.add_argument("--no-metamath", action="store_true",
                    help="do not ask metamath.exe to verify the output (verified_by then lacks it)")
    sp.add_argument("--json", action="store_true")


# ---------------------------------------------------------------- run / demo / config
def _run_config(args):
    """The effective configuration: the preset, then ``--config FILE.toml``, then the command-line options."""
    from dataclasses import replace

    from refactor.config import PRESETS, ConfigError, load_config, validate
    from refactor.model import PRESETS as MODEL_PRESETS

    preset = args.preset or "demo"
    extractor = None
    if preset not in PRESETS and preset in MODEL_PRESETS:  # the first `run`'s --preset named the GNN preset
        preset, extractor = "demo", preset
    try:
        cfg = load_config(preset, args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    if extractor:
        cfg = replace(cfg, extractor=replace(cfg.extractor, preset=extractor))
    over = lambda sec, **kw: replace(getattr(cfg, sec), **{k: v for k, v in kw.items() if v is not None})  # noqa: E731
    cfg = replace(cfg, extractor=over("extractor", epochs=getattr(args, "epochs", None)),
                  extract=over("extract", top=getattr(args, "top", None),
                               methods=list(args.methods) if getattr(args, "methods", None) else None),
                  run=over("run", seed=getattr(args, "seed", None), device=getattr(args, "device", None),
                           ray=getattr(args, "ray", None)),
                  rewrite=over("rewrite", use_metamath=False if getattr(args, "no_metamath", False) else None),
                  prover=over("prover", enabled=False if getattr(args, "no_prover", False) else None))
    try:
        validate(cfg, "<command line>")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    return preset, cfg


def cmd_run(args) -> int:
    """The whole job: verify, dataset, train, extract with each method, rewrite, the prover study, report."""
    from refactor.config import resolve_database
    from refactor.dataset import DatasetError
    from refactor.pipeline import PipelineError, run_pipeline
    from refactor.report import comparison_table
    from refactor.train import CheckpointError

    preset, cfg = _run_config(args)
    if cfg.run.ray:  # join the cluster now: a missing extra or a wrong address is exit 2, before any stage
        from metamath.cluster import connect

        connect(cfg.run.ray)
    db = resolve_database(cfg, args.db)
    out = args.out or os.path.join("runs", preset)
    quiet = getattr(args, "json", False)
    try:
        res = run_pipeline(db, out, cfg, log=(lambda *a: None) if quiet else (lambda m: print(m, flush=True)))
    except PipelineError as exc:  # a proof fails, or a stage failed: like `verify`, exit 1
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (DatasetError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    if quiet:
        print(json.dumps(res, indent=2))
    else:
        print()
        print(comparison_table(res["methods"]))
        print(f"\nreport: {res['report']['html']} and {res['report']['md']}  ({res['seconds']} s)")
    failed = [r["method"] for r in res["methods"] if "error" in r or "error" in (r.get("rewrite") or {})]
    return 1 if failed else 0


def cmd_demo(args) -> int:
    """The main job on the embedded default database (``make demo``): ``run --preset demo``."""
    args.preset = args.preset or "demo"
    return cmd_run(args)


def cmd_config_show(args) -> int:
    from refactor.config import to_toml

    preset, cfg = _run_config(args)
    src = f"preset {preset}" + (f", overridden by {args.config}" if args.config else "")
    print(to_toml(cfg, f"mmrefactor run: the effective configuration ({src})"), end="")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mmrefactor",
        description="Read and verify Metamath databases, learn to extract reusable theorems from their "
                    "proofs, and refactor the library with them. Errors: file:line:col, exit 2.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=fn)
        return sp

    sp = add("verify", cmd_verify, "verify every proof of a database")
    sp.add_argument("db")
    sp.add_argument("label", nargs="*", help="only these theorems")
    sp.add_argument("--jobs", type=int, default=None, help="processes (default: all cores for big databases)")
    sp.add_argument("--json", action="store_true")

    sp = add("stats", cmd_stats, "statement counts and proof-size distributions")
    sp.add_argument("db")
    sp.add_argument("--jobs", type=int, default=None)
    sp.add_argument("--json", action="store_true")

    sp = add("show", cmd_show, "print a proof tree, indented, like metamath's `show proof`")
    sp.add_argument("db")
    sp.add_argument("label")
    sp.add_argument("--all", action="store_true", help="include syntax steps")
    sp.add_argument("--json", action="store_true")

    sp = add("slice", cmd_slice, "cut a database after a label or before a section; the slice is a valid database")
    sp.add_argument("db")
    g = sp.add_mutually_exclusive_group(required=True)
    g.add_argument("--until", metavar="LABEL", help="keep everything up to and including this statement")
    g.add_argument("--before-section", metavar="TITLE", help="cut before the section whose title starts so")
    sp.add_argument("-o", "--out", required=True)
    sp.add_argument("--json", action="store_true")

    sp = add("write", cmd_write, "write a database back (byte-identical, or --recompress every proof)")
    sp.add_argument("db")
    sp.add_argument("-o", "--out", required=True)
    sp.add_argument("--recompress", action="store_true", help="re-encode every proof with our compressor")
    sp.add_argument("--json", action="store_true")

    def expansion_args(sp):
        g = sp.add_argument_group("expansion dataset")
        g.add_argument("--max-nodes", type=int, default=1000, help="cap on nodes per example (default 1000)")
        g.add_argument("--cap-train", type=int, default=100, help="examples per inlined theorem in train")
        g.add_argument("--cap-eval", type=int, default=10, help="examples per inlined theorem in valid/test")
        g.add_argument("--seed", type=int, default=0, help="split and sampling seed (default 0)")
        g.add_argument("--essential-only", action="store_true", help="drop syntax steps (ablation)")
        g.add_argument("--limit-proofs", type=int, default=None, help="only the first N theorems' proofs")
        g.add_argument("--max-examples", type=int, default=None,
                       help="after the caps, keep a seeded sample of N examples (big databases on a CPU)")
        g.add_argument("--split", metavar="SPLIT.json",
                       help="a prover split: no example shows a valid/test theorem's proof (for extract --split)")

    sp = add("dataset", cmd_dataset, "build the theorem-expansion dataset (cached by database hash and options)")
    sp.add_argument("db")
    sp.add_argument("--out", required=True, help="dataset directory")
    sp.add_argument("--force", action="store_true", help="rebuild even if the cache matches")
    expansion_args(sp)
    sp.add_argument("--json", action="store_true")

    sp = add("train", cmd_train, "train the GNN node classifier (builds the dataset first if needed)")
    sp.add_argument("db")
    sp.add_argument("--out", required=True, help="run directory: checkpoint.pt, last.pt, metrics.json")
    sp.add_argument("--data", help="dataset directory (default OUT/dataset)")
    sp.add_argument("--preset", default="cpu", help="refactor | cpu | demo | tiny (default cpu)")
    sp.add_argument("--ablation", default="none",
                    help="none | no-edges | expr-only | label-only | label-only-no-edges")
    sp.add_argument("--epochs", type=int)
    sp.add_argument("--train-seed", type=int, help="model/training seed (default: the preset's)")
    sp.add_argument("--batch-size", type=int, help="graphs per optimiser step (under torchrun: over all processes)")
    sp.add_argument("--lr", type=float)
    sp.add_argument("--hidden", type=int)
    sp.add_argument("--layers", type=int)
    sp.add_argument("--pos-weight", type=float, help="BCE weight of positive nodes (default 1)")
    sp.add_argument("--loss", choices=["bce", "focal", "structured"],
                    help="loss (default bce); focal down-weights easy nodes; structured: the true node set's "
                         "likelihood among inlined-theorem-shaped sets (a tree CRF, refactor/decode.py), whose "
                         "prediction is the decoded set")
    sp.add_argument("--init", metavar="CHECKPOINT",
                    help="start from this checkpoint's weights (same model and dataset) with a new optimiser")
    sp.add_argument("--focal-gamma", type=float, help="focal loss exponent (default 2)")
    sp.add_argument("--sampling", choices=["uniform", "balanced"],
                    help="training examples: uniform, or balanced so every inlined theorem is drawn alike")
    sp.add_argument("--collapse-patience", type=int,
                    help="stop after N epochs predicting no positive node on valid (default 5; 0: never)")
    sp.add_argument("--max-train-examples", type=int, help="subsample the train split")
    sp.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    sp.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    expansion_args(sp)
    sp.add_argument("--json", action="store_true")

    sp = add("evaluate", cmd_evaluate, "node, precision/recall/F1 and proof accuracy of a checkpoint")
    sp.add_argument("checkpoint")
    sp.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    sp.add_argument("--json", action="store_true")

    _extract_parser(add)
    _rewrite_parser(add)

    def run_args(sp, db_default=None):
        if db_default is None:
            sp.add_argument("db", nargs="?", help="the database (default: the configuration's run.database, "
                                                   "data/set-prop.mm for every preset but fol)")
        else:
            sp.add_argument("--db", default=db_default)
        sp.add_argument("--out", help="run directory (default runs/PRESET; resumable: finished stages are reused)")
        sp.add_argument("--preset", help="tiny | demo | paper | fol (default demo); see `mmrefactor config show`")
        sp.add_argument("--config", metavar="FILE.toml", help="override any option of the preset")
        sp.add_argument("--epochs", type=int, help="extractor epochs (extractor.epochs)")
        sp.add_argument("--top", type=int, help="K: new theorems kept per method (extract.top)")
        sp.add_argument("--methods", nargs="+", help="extraction methods (extract.methods)")
        sp.add_argument("--seed", type=int, help="dataset split and extraction seed (run.seed)")
        sp.add_argument("--no-metamath", action="store_true", help="skip metamath.exe as second judge")
        sp.add_argument("--no-prover", action="store_true", help="stop after the rewrites (prover.enabled = false)")
        sp.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
        sp.add_argument("--ray", metavar="auto|ADDRESS",
                        help=RAY_HELP + " (extraction's per-proof jobs, the prover's per-theorem searches; run.ray)")
        sp.add_argument("--json", action="store_true")

    from .prover_commands import add_prover_parser

    add_prover_parser(add)

    from .attribute_commands import add_attribute_parser

    add_attribute_parser(add)

    sp = add("run", cmd_run, "the whole job: dataset, train, extract (gnn, frequent, stitch), rewrite, "
                             "the prover on each corpus, report.md and report.html")
    run_args(sp)
    sp = add("demo", cmd_demo, "`run --preset demo` on the embedded default database data/set-prop.mm (make demo)")
    run_args(sp, DEFAULT_DB)
    sp = add("config", None, "the configuration of `run`")
    csub = sp.add_subparsers(dest="config_command", metavar="SUBCOMMAND")
    cs = csub.add_parser("show", help="print the effective configuration (TOML)",
                         description="print the effective configuration (TOML): the preset overridden by FILE.toml")
    cs.set_defaults(func=cmd_config_show)
    cs.add_argument("--preset", help="tiny | demo | paper | fol (default demo)")
    cs.add_argument("--config", metavar="FILE.toml")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except MMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into `head` and the like
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
