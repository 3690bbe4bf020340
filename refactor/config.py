"""The configuration of ``mmrefactor run``: presets as plain data, TOML overrides.

A configuration is one :class:`RunConfig`: a section per stage, every option
of every stage in it. A preset (:data:`PRESETS`: ``tiny``, ``demo``,
``paper``, ``fol``) is a complete configuration; a TOML file overrides any
option of it, section by section::

    [extract]
    top = 5
    methods = ["frequent", "stitch"]

    [prover]
    seeds = [0, 1]

    [attribution]
    methods = ["grad-dot", "random"]
    subsets = 8

An unknown section or key, or a value of the wrong type, is a
:class:`ConfigError` naming the file and the key (``mmrefactor`` exits 2).
TOML has no null: integer limits use 0 for "no limit" and ``device`` uses
``"auto"``. :func:`to_toml` writes a configuration back (``mmrefactor config
show``) in a form :func:`load_config` reads again.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DB = os.path.join("data", "set-prop.mm")


class ConfigError(Exception):
    """A configuration file that cannot be used (exit 2); the message names the file and key."""


RANKINGS = ("proof-nodes", "essential", "confidence")  # how extract orders candidates (extract.select_top)


@dataclass(frozen=True)
class RunSection:
    database: str = DEFAULT_DB      # used when the command line names no database (relative: to the repository)
    seed: int = 0                   # the expansion dataset's split seed and the extractors' seed
    device: str = "auto"            # auto | cpu | cuda (the extractor's training and the prover)
    threads: int = 1                # torch CPU threads (0: torch's default); one is fastest for these small
                                    # ops on a shared 2-core machine (the prover always searches with one)
    ray: str = ""                   # "auto" or a Ray cluster's address: extraction's per-proof jobs and the
                                    # prover's per-theorem searches run there ("": local processes)


@dataclass(frozen=True)
class SliceSection:
    """Run on a prefix of the database (``mmrefactor slice``); both empty: the whole database."""

    until: str = ""                 # keep everything up to and including this label
    before_section: str = ""        # keep everything before the section whose title starts so


@dataclass(frozen=True)
class DatasetSection:
    max_nodes: int = 1000
    max_inlined_proof: int = 1000
    cap_train: int = 100
    cap_eval: int = 10
    essential_only: bool = False
    limit_proofs: int = 0           # 0: every proof
    max_examples: int = 0           # 0: no sample


@dataclass(frozen=True)
class ExtractorSection:
    """The GNN extractor's training (``refactor.model`` presets, with overrides; 0 = the preset's)."""

    preset: str = "demo"
    epochs: int = 0
    batch_size: int = 0
    lr: float = 0.0
    hidden: int = 0
    layers: int = 0
    max_train_examples: int = 0
    loss: str = ""                  # bce | focal | structured ("": the preset's); structured needs extract.gnn_decode


@dataclass(frozen=True)
class ExtractSection:
    methods: list = field(default_factory=lambda: ["gnn", "frequent", "stitch"])
    top: int = 10                   # K: new theorems kept per method
    limit: int = 0                  # gnn: classify only the first N proofs; stitch: its first N proofs (0: all)
    max_nodes: int = 1000           # gnn: skip proof trees over N nodes
    stitch_iterations: int = 0      # 0: Stitch's default for K
    stitch_arity: int = 4
    ranking: str = "proof-nodes"    # top K by proof-tree nodes saved, "essential" nodes saved, or "confidence"
    #                                 (gnn: nodes saved x its probabilities; frequent and stitch use proof-nodes)
    gnn_threshold: float = 0.5      # gnn: a node is positive when the model's probability exceeds this
    gnn_fragments: str = "subshapes"  # gnn: propose the parts of the predicted fragments, or "components"
    gnn_decode: bool = False        # gnn: each proof's decoded region (refactor/decode.py) instead of the threshold


@dataclass(frozen=True)
class RewriteSection:
    use_metamath: bool = True       # metamath.exe as the second judge of every output


@dataclass(frozen=True)
class ProverSection:
    enabled: bool = True
    split_seed: int = 0
    corpora: list = field(default_factory=lambda: ["frequent", "stitch"])  # methods whose refactored corpus is studied
    top: int = 20                   # K for the prover corpora (extracted from training proofs only)
    seeds: list = field(default_factory=lambda: [0, 1, 2])
    baselines: list = field(default_factory=lambda: ["count", "uniform"])  # run on the original corpus
    epochs: int = 8
    dim: int = 64
    rounds: int = 3
    lr: float = 1e-3
    batch_size: int = 32
    budget_expansions: int = 512
    budget_seconds: float = 60.0
    retry_seconds: float = 0.0      # >0: rerun theorems the wall clock cut (a loaded machine) with this cap
    part: str = "test"
    limit: int = 0                  # only the first N theorems of the part (0: all)
    jobs: int = 2


@dataclass(frozen=True)
class AttributionSection:
    """Which extracted theorems helped the prover (``mmrefactor attribute``) and whether attribution
    predicts retraining (``mmrefactor attribute validate``), on one refactored prover corpus's first-seed
    model and its evaluation; needs the prover stages. 0 = ``RetrainConfig``'s value (the tiny prover)."""

    enabled: bool = True
    corpus: str = ""                # the refactored prover corpus ("": the first of prover.corpora built)
    methods: list = field(default_factory=lambda: ["grad-dot", "grad-proj", "ekfac", "random"])
    seed: int = 0                   # projections, random scores, the LDS subsets, the counterfactual's draw
    top: int = 5                    # top theorems kept per query
    projection: int = 32            # grad-proj: random projection rows per side (0: no projection)
    validate: bool = True           # the attribute-validate stage
    subsets: int = 100              # M: random half subsets of the theorem groups (group LDS)
    seeds: int = 3                  # R: retraining seeds per subset
    top_k: int = 3                  # theorems removed in the counterfactual (0: no counterfactual)
    epochs: int = 0                 # each retrain's epochs
    dim: int = 0
    rounds: int = 0
    budget_expansions: int = 0      # the counterfactual's search budget
    jobs: int = 2                   # local processes for the retraining jobs


@dataclass(frozen=True)
class RunConfig:
    run: RunSection = RunSection()
    slice: SliceSection = SliceSection()
    dataset: DatasetSection = DatasetSection()
    extractor: ExtractorSection = ExtractorSection()
    extract: ExtractSection = ExtractSection()
    rewrite: RewriteSection = RewriteSection()
    prover: ProverSection = ProverSection()
    attribution: AttributionSection = AttributionSection()

    def as_dict(self) -> dict:
        return asdict(self)


_SECTION_CLASSES = {"run": RunSection, "slice": SliceSection, "dataset": DatasetSection, "extractor": ExtractorSection,
                    "extract": ExtractSection, "rewrite": RewriteSection, "prover": ProverSection,
                    "attribution": AttributionSection}


def _make(**sections) -> RunConfig:
    base = RunConfig()
    return replace(base, **{k: replace(getattr(base, k), **v) for k, v in sections.items()})


PRESETS: dict[str, RunConfig] = {
    # a whole run in about a minute on 2 shared cores: the test preset
    "tiny": _make(
        dataset={"max_examples": 300},
        extractor={"preset": "tiny", "epochs": 1},
        extract={"methods": ["gnn", "frequent"], "top": 3},
        prover={"corpora": ["gnn", "frequent"], "top": 3, "seeds": [0, 1], "epochs": 1, "dim": 16, "rounds": 1,
                "budget_expansions": 32, "budget_seconds": 2.0, "retry_seconds": 30.0, "limit": 6, "jobs": 2},
        attribution={"corpus": "frequent", "methods": ["grad-dot", "random"], "subsets": 3, "seeds": 1,
                     "top_k": 1, "epochs": 1, "budget_expansions": 8, "jobs": 2}),
    # `make demo`: the embedded propositional database, every extraction method; the prover at a reduced
    # scale that keeps the whole run near 20 minutes here (one seed, the frequent corpus, 64 expansions);
    # the full prover comparison is `make prover-study`
    "demo": _make(
        extractor={"preset": "demo"},
        prover={"corpora": ["frequent"], "top": 20, "seeds": [0], "epochs": 4, "baselines": ["count"],
                "budget_expansions": 64, "budget_seconds": 10.0, "retry_seconds": 60.0},
        # attribution of the frequent prover's proofs at a scale of a few minutes (the whole of set-prop:
        # ~3,300 training steps; a retraining job is about a CPU minute): 4 subsets x 1 seed
        attribution={"methods": ["grad-dot", "random"], "subsets": 4, "seeds": 1, "top_k": 3, "epochs": 1,
                     "budget_expansions": 16, "jobs": 2}),
    # REFACTOR's own extractor settings and Holophrasm-sized prover budgets (a GPU and days); attribution at
    # the scale (every method, M = 100 subsets x R = 3 seeds: the section's defaults)
    "paper": _make(
        extractor={"preset": "refactor"},
        extract={"top": 20},
        prover={"corpora": ["gnn", "frequent", "stitch"], "top": 20, "seeds": [0, 1, 2], "epochs": 12,
                "dim": 128, "budget_expansions": 512, "budget_seconds": 60.0}),
    # set.mm's first-order-logic prefix (what `make fol` cuts: everything before ZF), CPU-sized extractor
    "fol": _make(
        run={"database": "/usr/share/metamath/databases/set.mm"},
        slice={"before_section": "ZF (ZERMELO-FRAENKEL) SET THEORY"},
        dataset={"max_examples": 20000},
        extractor={"preset": "cpu", "epochs": 10, "max_train_examples": 10000},
        extract={"top": 20, "limit": 2000},
        prover={"corpora": ["gnn", "frequent", "stitch"], "top": 20, "seeds": [0, 1, 2], "epochs": 8,
                "budget_expansions": 512, "budget_seconds": 60.0}),
}


def _check_type(path: str, where: str, default, value):
    """``value`` coerced to the type of ``default``, or ConfigError."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, list):
        ok = isinstance(value, list)
        if ok and default:
            kind = type(default[0])
            ok = all(isinstance(v, kind) and not isinstance(v, bool) for v in value)
    else:
        ok = True
    if not ok:
        want = type(default).__name__ + (f" of {type(default[0]).__name__}" if isinstance(default, list) and default
                                         else "")
        raise ConfigError(f"{path}: {where}: expected {want}, got {value!r}")
    return value


def apply_overrides(cfg: RunConfig, data: dict, path: str = "<overrides>") -> RunConfig:
    """``cfg`` with the sections and keys of ``data`` (as read from TOML) replaced; checked."""
    changes = {}
    for sec, values in data.items():
        if sec not in _SECTION_CLASSES:
            raise ConfigError(f"{path}: unknown section [{sec}] (sections: {', '.join(_SECTION_CLASSES)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {sec}: expected a table [{sec}]")
        current = getattr(cfg, sec)
        known = {f.name for f in fields(current)}
        upd = {}
        for key, value in values.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown key {sec}.{key} (keys of [{sec}]: {', '.join(sorted(known))})")
            upd[key] = _check_type(path, f"{sec}.{key}", getattr(current, key), value)
        changes[sec] = replace(current, **upd)
    cfg = replace(cfg, **changes)
    validate(cfg, path)
    return cfg


def validate(cfg: RunConfig, path: str = "<config>") -> None:
    """Values that are well typed but cannot be run (ConfigError)."""
    from .model import LOSSES, PRESETS as MODEL_PRESETS

    methods = ("gnn", "frequent", "stitch")
    if cfg.extractor.preset not in MODEL_PRESETS:
        raise ConfigError(f"{path}: extractor.preset: unknown model preset {cfg.extractor.preset!r} "
                          f"(choose from {', '.join(MODEL_PRESETS)})")
    if cfg.extractor.loss and cfg.extractor.loss not in LOSSES:
        raise ConfigError(f"{path}: extractor.loss: unknown loss {cfg.extractor.loss!r} (choose from "
                          f"{', '.join(LOSSES)})")
    if cfg.extractor.loss == "structured" and not cfg.extract.gnn_decode:
        raise ConfigError(f"{path}: extractor.loss = \"structured\" predicts the decoded set; set "
                          f"extract.gnn_decode = true")
    for key, vals in (("extract.methods", cfg.extract.methods), ("prover.corpora", cfg.prover.corpora)):
        for m in vals:
            if m not in methods:
                raise ConfigError(f"{path}: {key}: unknown method {m!r} (choose from {', '.join(methods)})")
    for b in cfg.prover.baselines:
        if b not in ("count", "uniform"):
            raise ConfigError(f"{path}: prover.baselines: unknown baseline {b!r} (count or uniform)")
    if cfg.extract.ranking not in RANKINGS:
        raise ConfigError(f"{path}: extract.ranking: {cfg.extract.ranking!r} is not one of {', '.join(RANKINGS)}")
    if cfg.extract.gnn_fragments not in ("subshapes", "components"):
        raise ConfigError(f"{path}: extract.gnn_fragments: {cfg.extract.gnn_fragments!r} is not subshapes or "
                          f"components")
    if not 0.0 <= cfg.extract.gnn_threshold < 1.0:
        raise ConfigError(f"{path}: extract.gnn_threshold: {cfg.extract.gnn_threshold!r} is not in [0, 1)")
    if cfg.extract.gnn_decode and cfg.extract.gnn_threshold != 0.5:
        raise ConfigError(f"{path}: extract.gnn_decode replaces extract.gnn_threshold; set one of them")
    if cfg.prover.part not in ("test", "valid"):
        raise ConfigError(f"{path}: prover.part: {cfg.prover.part!r} is not test or valid")
    if cfg.run.device not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"{path}: run.device: {cfg.run.device!r} is not auto, cpu or cuda")
    if cfg.prover.enabled and not cfg.prover.seeds:
        raise ConfigError(f"{path}: prover.seeds: give at least one seed")
    _validate_attribution(cfg, path)


def _validate_attribution(cfg: RunConfig, path: str) -> None:
    from provers.attribution.methods import METHODS

    a = cfg.attribution
    for m in a.methods:
        if m not in METHODS:
            raise ConfigError(f"{path}: attribution.methods: unknown method {m!r} (choose from {', '.join(METHODS)})")
    if a.enabled and not a.methods:
        raise ConfigError(f"{path}: attribution.methods: give at least one method")
    if a.corpus and a.corpus not in cfg.prover.corpora:
        raise ConfigError(f"{path}: attribution.corpus: {a.corpus!r} is not one of prover.corpora "
                          f"({', '.join(cfg.prover.corpora) or 'none'})")
    for key, least in (("top", 1), ("subsets", 2), ("seeds", 1), ("jobs", 1)):  # a rank correlation needs 2
        if getattr(a, key) < least:
            raise ConfigError(f"{path}: attribution.{key}: must be at least {least}")
    for key in ("projection", "top_k", "epochs", "dim", "rounds", "budget_expansions"):
        if getattr(a, key) < 0:
            raise ConfigError(f"{path}: attribution.{key}: must not be negative")


def load_config(preset: str = "demo", path: str | None = None) -> RunConfig:
    """The preset, overridden by the TOML file at ``path`` (ConfigError on any problem)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    cfg = PRESETS[preset]
    if path is None:
        return cfg
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return apply_overrides(cfg, data, path)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"no TOML for {v!r}")


def to_toml(cfg: RunConfig, header: str = "") -> str:
    """The configuration as TOML (every section, every key)."""
    lines = [f"# {l}" for l in header.splitlines()]
    for sec, values in cfg.as_dict().items():
        if lines:
            lines.append("")
        lines.append(f"[{sec}]")
        lines += [f"{k} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def resolve_database(cfg: RunConfig, db: str | None) -> str:
    """The database to run on: the command line's, else the configuration's (relative to the repository
    when it does not exist relative to the working directory)."""
    if db:
        return db
    p = cfg.run.database
    if not os.path.isabs(p) and not os.path.exists(p) and os.path.exists(os.path.join(ROOT, p)):
        return os.path.join(ROOT, p)
    return p


def none_if_zero(v):
    """TOML's "no limit" (0, 0.0) as None."""
    return v or None
