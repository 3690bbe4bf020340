"""The expansion dataset on disk: built once per (database, options), then loaded.

``DIR/meta.json`` holds the cache key (hash of every database file, the
expansion options, the feature version) and the summary; ``DIR/vocab.json``
the vocabularies; ``DIR/{train,valid,test}.pt`` one torch-geometric
``InMemoryDataset`` file per split. A directory whose key differs from the
request is rebuilt; every file is written atomically (temp + rename).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict

from torch_geometric.data import InMemoryDataset

from metamath.database import Database
from metamath.errors import MMError
from metamath.verify import verify_all

from .expansion import ExpansionOptions, build_expansion
from .features import Vocab, to_graph

FEATURE_VERSION = 1
SPLITS = ("train", "valid", "test")


class SplitDataset(InMemoryDataset):
    """One split of the expansion dataset, loaded from its ``.pt`` file."""

    def __init__(self, path: str):
        super().__init__(None)
        self.load(path)


def database_hash(db: Database) -> str:
    h = hashlib.sha256()
    for f in db.files:
        h.update(f.text.encode("ascii", "replace"))
        h.update(b"\0")
    return h.hexdigest()


def cache_key(db: Database, opts: ExpansionOptions, max_tokens: int) -> dict:
    key = {"database_sha256": database_hash(db), "options": opts.key(), "max_tokens": max_tokens,
           "feature_version": FEATURE_VERSION}
    return json.loads(json.dumps(key))  # the form it takes in meta.json (tuples become lists)


def _atomic_json(path: str, obj) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1)
    os.replace(tmp, path)


class DatasetError(Exception):
    """The dataset cannot be built (e.g. the database does not verify)."""


def build_dataset(db: Database, out: str, opts: ExpansionOptions = ExpansionOptions(), max_tokens: int = 128,
                  progress: bool = False, force: bool = False, jobs: int | None = None) -> dict:
    """Build (or reuse) the dataset in ``out``; return its summary (``meta.json``)."""
    key = cache_key(db, opts, max_tokens)
    meta_path = os.path.join(out, "meta.json")
    if not force and os.path.exists(meta_path):
        try:
            with open(meta_path) as fh:
                meta = json.load(fh)
            if meta.get("key") == key and all(os.path.exists(os.path.join(out, f"{s}.pt")) for s in SPLITS):
                meta["cached"] = True
                return meta
        except (OSError, ValueError):
            pass
    t0 = time.perf_counter()
    rep = verify_all(db, jobs=jobs, progress=progress)
    if rep.failed:
        f = rep.failed[0]
        raise DatasetError(f"{db.files[0].path}: {len(rep.failed)} proofs do not verify "
                           f"(first: {f['label']} step {f['step']}: {f['reason']}); refusing to build a dataset")
    exp = build_expansion(db, opts, progress=progress, jobs=jobs)
    vocab = Vocab.build(exp.splits)
    sym_ids, lab_ids = vocab.index()
    os.makedirs(out, exist_ok=True)
    for s in SPLITS:
        graphs = [to_graph(ex, sym_ids, lab_ids, max_tokens) for ex in exp.splits[s]]
        if not graphs:
            raise DatasetError(f"the {s} split is empty: the database has too few inlinable theorems")
        tmp = os.path.join(out, f"{s}.pt.tmp{os.getpid()}")
        InMemoryDataset.save(graphs, tmp)
        os.replace(tmp, os.path.join(out, f"{s}.pt"))
    _atomic_json(os.path.join(out, "vocab.json"), vocab.as_dict())
    meta = dict(exp.summary())
    meta.update(key=key, database=db.files[0].path, seconds=round(time.perf_counter() - t0, 2),
                vocab={"symbols": len(vocab.symbols), "labels": len(vocab.labels)},
                split_theorems={s: sum(1 for g in exp.groups.values() if g == s) for s in SPLITS})
    _atomic_json(meta_path, meta)
    meta["cached"] = False
    return meta


def load_dataset(out: str) -> tuple[dict, Vocab, dict[str, SplitDataset]]:
    """(meta, vocab, splits) of a built dataset directory."""
    meta_path = os.path.join(out, "meta.json")
    if not os.path.exists(meta_path):
        raise DatasetError(f"{out}: no dataset here (run `mmrefactor dataset DB --out {out}` first)")
    with open(meta_path) as fh:
        meta = json.load(fh)
    with open(os.path.join(out, "vocab.json")) as fh:
        vocab = Vocab.from_dict(json.load(fh))
    return meta, vocab, {s: SplitDataset(os.path.join(out, f"{s}.pt")) for s in SPLITS}
