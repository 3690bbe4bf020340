"""The Stitch baseline: library learning on essential proof trees.

Each proof's essential tree is written as an s-expression, ``(step arg ..)``
with the step's essential hypotheses' proofs as arguments, a leaf step as its
bare label, and each of the proof's own hypotheses as a hole symbol
``H<proof>_<k>`` of its own (so a hole can only enter an abstraction as an
argument ``#i``, never as a constant: the arity of an abstraction is its
number of hypotheses). Labels are renamed to ``L<n>`` so no Metamath label
can clash with Stitch's syntax.
Stitch (PyPI ``stitch-core``, the optional extra ``stitch``) then learns
abstractions by compression, with head abstraction off
(``no_curried_metavars``, ``no_curried_bodies``): every abstraction body is an
application tree whose metavariables ``#i`` stand for whole arguments, so it
is a shape. Abstractions that call earlier ones are inlined; ``#i`` become
holes.
"""
from __future__ import annotations

import random

from metamath.database import Database
from metamath.proof import Proof

from ..generalize import Shape, shape_str

__all__ = ["StitchError", "StitchUnavailable", "to_sexpr", "parse_sexpr", "stitch_shapes"]

HOLE_PREFIX = "H"


class StitchError(Exception):
    """Stitch cannot run (not installed, or its backend failed)."""


class StitchUnavailable(StitchError):
    """stitch-core is not installed."""


def _stitch():
    try:
        import stitch_core
    except ImportError:
        raise StitchUnavailable("--method stitch needs the Stitch compressor: "
                                "pip install stitch-core (or pip install -e '.[stitch]')") from None
    return stitch_core


def to_sexpr(dag: Proof, names: dict[str, str], hyp_labels, tag: str = "0",
             max_nodes: int | None = None) -> str | None:
    """An essential DAG (a shared node is written out at each use) as a Stitch program; hypothesis ``h`` becomes the hole ``H<tag>_<k>``
    (k: its rank among the tree's hypotheses). None when the program would
    have more than ``max_nodes`` nodes."""
    holes: dict[str, str] = {}
    out: list[str] = []
    nodes = dag.nodes
    stack: list = [dag.root]
    count = 0
    while stack:
        x = stack.pop()
        if x.__class__ is not str:
            count += 1
            if max_nodes is not None and count > max_nodes:
                return None
        if x.__class__ is str:
            out.append(x)
            continue
        lab = nodes[x].label
        if lab in hyp_labels:
            out.append(holes.setdefault(lab, f"{HOLE_PREFIX}{tag}_{len(holes)}"))
        elif not nodes[x].children:
            out.append(names[lab])
        else:
            out.append("(" + names[lab])
            stack.append(")")
            for c in reversed(nodes[x].children):
                stack.append(c)
    text = ""
    for tok in out:
        if tok == ")":
            text += ")"
        else:
            text += (" " if text and not text.endswith("(") else "") + tok
    return text


def parse_sexpr(text: str):
    """``(f a (g b))`` -> nested lists of strings."""
    toks = text.replace("(", " ( ").replace(")", " ) ").split()
    stack: list[list] = [[]]
    for t in toks:
        if t == "(":
            stack.append([])
        elif t == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(t)
    if len(stack) != 1 or len(stack[0]) != 1:
        raise ValueError(f"malformed s-expression: {text!r}")
    return stack[0][0]


def _inline(e, bodies: dict[str, object], args=None):
    """Expand calls to earlier abstractions; ``#i`` -> ``args[i]`` when given."""
    if isinstance(e, str):
        if e.startswith("#") and args is not None:
            return args[int(e[1:])]
        if e in bodies:
            return _inline(bodies[e], bodies, [])
        return e
    head, rest = e[0], [_inline(a, bodies, args) for a in e[1:]]
    if head in bodies:
        return _inline(bodies[head], bodies, rest)
    return [head] + rest


def _to_shape(e, back: dict[str, str]) -> Shape:
    if isinstance(e, str):
        if e.startswith("#") or (e.startswith(HOLE_PREFIX) and e not in back):
            return None
        if e not in back:
            raise ValueError(f"unknown symbol {e!r} in an abstraction")
        return (back[e], ())
    if isinstance(e[0], list) or e[0] not in back:
        raise ValueError(f"abstraction applies {e[0]!r}, not a step label")
    return (back[e[0]], tuple(_to_shape(a, back) for a in e[1:]))


def stitch_shapes(db: Database, library, iterations: int = 40, max_arity: int = 4, threads: int = 1,
                  limit_proofs: int | None = None,
                  max_program_nodes: int | None = 2000, sample_proofs: int | None = None,
                  seed: int = 0) -> tuple[list[tuple[Shape, list]], dict]:
    """Run Stitch on the library's essential proof trees (the first ``limit_proofs``, or a random
    ``sample_proofs`` of them drawn with ``seed``; trees over ``max_program_nodes`` left out);
    (shape, []) per abstraction in the order Stitch learned them, and a summary (compression
    ratio, uses)."""
    sc = _stitch()
    stmts = db.statements
    names: dict[str, str] = {}
    hyp_labels = set()
    for dag in library.dags:
        for n in reversed(dag.nodes):  # parents first
            l = n.label
            if stmts[l].kind == "e":
                hyp_labels.add(l)
            elif l not in names:
                names[l] = f"L{len(names)}"
    back = {v: k for k, v in names.items()}
    dags = library.dags if limit_proofs is None else library.dags[:limit_proofs]
    if sample_proofs is not None and sample_proofs < len(dags):
        keep = sorted(random.Random(seed).sample(range(len(dags)), sample_proofs))
        dags = [dags[k] for k in keep]
    programs = [p for k, dag in enumerate(dags)
                for p in [to_sexpr(dag, names, hyp_labels, str(k), max_program_nodes)]
                if p is not None]
    if not programs:
        raise StitchError("no proof small enough to give Stitch")
    try:
        # no_mismatch_check: stitch-core 0.1.29 asserts that its predicted and actual
        # compression agree, which abstractions with a repeated argument ((L0 #0 #0))
        # break on set.mm; the abstractions themselves are fine, and we re-check each
        # as a theorem anyway
        res = sc.compress(programs, iterations=iterations, max_arity=max_arity, threads=threads, silent=True,
                          no_curried_metavars=True, no_curried_bodies=True, no_mismatch_check=True)
    except sc.StitchException as exc:
        raise StitchError(f"stitch failed: {exc}") from None
    bodies: dict[str, object] = {}
    out: list[tuple[Shape, list]] = []
    abstractions = []
    meta = {a.get("name"): a for a in res.json.get("abstractions", [])}
    for a in res.abstractions:
        body = parse_sexpr(a.body)
        bodies[a.name] = body
        try:
            shape = _to_shape(_inline(body, {k: v for k, v in bodies.items() if k != a.name}), back)
        except ValueError:
            continue
        out.append((shape, []))
        abstractions.append({"name": a.name, "arity": a.arity, "shape": shape_str(shape),
                             "stitch_uses": meta.get(a.name, {}).get("num_uses")})
    info = {"stitch_programs": len(programs), "stitch_skipped_programs": len(dags) - len(programs),
            "stitch_sample": sample_proofs, "stitch_sample_seed": seed if sample_proofs else None,
            "stitch_iterations": iterations, "stitch_max_arity": max_arity,
            "stitch_abstractions": len(res.abstractions),
            "stitch_compression_ratio": round(res.json.get("compression_ratio", 0.0), 4),
            "stitch_top": abstractions[:10]}
    return out, info
