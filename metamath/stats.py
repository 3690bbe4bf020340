"""Database statistics: statements by kind and proof-size distributions."""
from __future__ import annotations

import statistics
import time

from .database import Database
from .parallel import map_theorems
from .verify import check


def _sizes(db: Database, label: str) -> tuple[int, int, int] | None:
    """(compressed/normal step count, expanded tree nodes, essential nodes)."""
    from .verify import program
    from .errors import ProofError, ProofFormatError

    try:
        proof = check(db, label, record=True)
    except (ProofError, ProofFormatError):
        return None
    steps = len(program(db, label)[1])
    return steps, proof.tree_size(), proof.essential_size(db.syntax_typecodes)


def _dist(values: list[int]) -> dict:
    if not values:
        return {"count": 0}
    return {"count": len(values), "mean": round(statistics.fmean(values), 1),
            "median": statistics.median(values), "max": max(values), "total": sum(values)}


def database_stats(db: Database, jobs: int | None = None, progress: bool = False) -> dict:
    """Counts of statements by kind, symbols, scopes, and proof sizes."""
    t0 = time.perf_counter()
    kinds = {"$f": 0, "$e": 0, "$a": 0, "$p": 0}
    syntax_axioms = 0
    for st in db.statements.values():
        kinds["$" + st.kind] += 1
        if st.kind == "a" and st.expr[0] in db.syntax_typecodes:
            syntax_axioms += 1
    sizes = map_theorems(db, _sizes, db.theorems(), jobs=jobs, desc="stats" if progress else None)
    ok = [v for v in sizes.values() if v is not None]
    biggest = max(sizes.items(), key=lambda kv: kv[1][1] if kv[1] else -1, default=(None, None))
    return {
        "statements": len(db.statements),
        "kinds": kinds,
        "syntax_axioms": syntax_axioms,
        "constants": len(db.constants),
        "variables": len(db.variables),
        "scopes": len(db.scope_parent) - 1,
        "files": [f.path for f in db.files],
        "proof_steps": _dist([v[0] for v in ok]),
        "proof_tree_nodes": _dist([v[1] for v in ok]),
        "proof_nodes": sum(v[1] for v in ok),
        "essential_nodes": sum(v[2] for v in ok),
        "largest_proof": biggest[0],
        "unverified_proofs": len(sizes) - len(ok),
        "seconds": round(time.perf_counter() - t0, 3),
    }
