"""The held-out split: which theorems the prover learns from and which it is judged on.

Holophrasm's protocol: the ``$p`` theorems of a logical typecode (``|-``)
are permuted with a seed and cut 80/10/10 into train/valid/test; axioms and
syntax are never held out. Held-out theorems stay in the database as
premises of later theorems (their statements are known), but their proofs
are never shown to a model. A theorem is proved using only statements
before it (:attr:`metamath.Statement.index`).
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass

from metamath import Database, MMError
from metamath.write import write_json

PARTS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    seed: int
    database_sha256: str
    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]
    path: str = "<split>"

    def part(self, name: str) -> tuple[str, ...]:
        return getattr(self, name)

    def as_dict(self) -> dict:
        return {"seed": self.seed, "database_sha256": self.database_sha256,
                "counts": {p: len(self.part(p)) for p in PARTS},
                **{p: list(self.part(p)) for p in PARTS}}

    def key(self) -> str:
        """A short identity of the split (seed and membership), stored in checkpoints."""
        import hashlib

        h = hashlib.sha256(json.dumps([self.seed, *[list(self.part(p)) for p in PARTS]]).encode())
        return h.hexdigest()[:16]


def make_split(db: Database, seed: int = 0, fractions=(0.8, 0.1, 0.1)) -> Split:
    """Split ``db``'s logical ``$p`` theorems with a seeded permutation."""
    syntax = db.syntax_typecodes
    labels = [l for l in db.theorems() if db.statements[l].expr[0] not in syntax]
    order = list(labels)
    random.Random(seed).shuffle(order)
    n = len(order)
    a = round(n * fractions[0])
    b = a + round(n * fractions[1])
    rank = {l: i for i, l in enumerate(labels)}  # each part listed in database order
    parts = [tuple(sorted(order[i:j], key=rank.__getitem__)) for i, j in ((0, a), (a, b), (b, n))]
    return Split(seed, db.sha256(), *parts)


def save_split(split: Split, out: str, inputs=()) -> None:
    write_json(out, split.as_dict(), inputs=inputs)


def load_split(path: str, db: Database | None = None) -> Split:
    """Read a split file; with ``db``, every label must be a ``$p`` of it (MMError naming the first that is not)."""
    try:
        with open(path) as fh:
            data = json.load(fh)
    except OSError as exc:
        raise MMError(f"cannot read split: {exc.strerror}", path) from None
    except json.JSONDecodeError as exc:
        raise MMError(f"not a split file (invalid JSON: {exc.msg})", path, exc.lineno, exc.colno) from None
    if not isinstance(data, dict) or any(not isinstance(data.get(p), list) for p in PARTS):
        raise MMError("not a split file (needs lists 'train', 'valid' and 'test')", path)
    split = Split(int(data.get("seed", 0)), str(data.get("database_sha256", "")),
                  *[tuple(data[p]) for p in PARTS], path=path)
    if db is not None:
        for p in PARTS:
            for l in split.part(p):
                st = db.statements.get(l)
                if st is None or st.kind != "p":
                    what = "is not in the database" if st is None else f"is a ${st.kind}, not a $p theorem"
                    raise MMError(f"{p} label {l!r} {what}", path)
    return split
