"""The configuration of `mmrefactor run`: presets are complete plain data, TOML overrides any option,
`config show` prints what a run would use, in a form that reads back."""
import dataclasses

import pytest

from refactor.cli import main
from refactor.config import PRESETS, ConfigError, RunConfig, load_config, to_toml


def _keys(cfg: RunConfig) -> set[str]:
    return {f"{s}.{k}" for s, v in cfg.as_dict().items() for k in v}


def test_every_preset_is_complete_and_round_trips_through_toml(tmp_path):
    assert set(PRESETS) == {"tiny", "demo", "paper", "fol"}
    for name, cfg in PRESETS.items():
        assert _keys(cfg) == _keys(RunConfig())
        path = tmp_path / f"{name}.toml"
        path.write_text(to_toml(cfg, f"preset {name}"))
        # a file holding every key overrides every option: any preset plus it is this preset
        assert load_config("demo", str(path)) == cfg, name


def test_toml_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[extract]\ntop = 7\n[prover]\nseeds = [4]\nbudget_seconds = 3\n')
    cfg = load_config("tiny", str(path))
    tiny = PRESETS["tiny"]
    assert (cfg.extract.top, cfg.prover.seeds, cfg.prover.budget_seconds) == (7, [4], 3.0)
    assert dataclasses.replace(cfg, extract=tiny.extract, prover=tiny.prover) == tiny
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        load_config("huge")


def test_config_show_prints_the_effective_configuration(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[extract]\ntop = 7\n")
    assert main(["config", "show", "--preset", "tiny", "--config", str(path)]) == 0
    text = capsys.readouterr().out
    assert "[prover]" in text and "\ntop = 7\n" in text and 'preset = "tiny"' in text
    shown = tmp_path / "shown.toml"
    shown.write_text(text)
    assert load_config("paper", str(shown)) == load_config("tiny", str(path))


def test_run_defaults_and_the_first_run_options():
    """`run` without a database runs data/set-prop.mm (fol: set.mm's prefix before ZF); the options of
    the first `run` (--epochs, --top, --methods, --preset naming a GNN preset) still apply."""
    import os

    from refactor.cli import _run_config, build_parser
    from refactor.config import resolve_database

    args = build_parser().parse_args(["run"])
    preset, cfg = _run_config(args)
    db = resolve_database(cfg, args.db)
    assert preset == "demo" and db.endswith(os.path.join("data", "set-prop.mm")) and os.path.exists(db)
    preset, cfg = _run_config(build_parser().parse_args(["run", "--preset", "fol"]))
    assert resolve_database(cfg, None).endswith("set.mm") and cfg.slice.before_section.startswith("ZF ")
    args = build_parser().parse_args(["run", "x.mm", "--out", "o", "--preset", "cpu", "--epochs", "2", "--top", "4",
                                      "--methods", "frequent", "--no-prover", "--no-metamath"])
    preset, cfg = _run_config(args)
    assert (preset, cfg.extractor.preset, cfg.extractor.epochs, cfg.extract.top, cfg.extract.methods) == \
        ("demo", "cpu", 2, 4, ["frequent"])
    assert not cfg.prover.enabled and not cfg.rewrite.use_metamath and resolve_database(cfg, args.db) == "x.mm"
    demo = build_parser().parse_args(["demo"])
    assert demo.db.endswith("set-prop.mm") and demo.func.__name__ == "cmd_demo"


def test_extraction_options_are_checked(tmp_path):
    """The extraction's ranking and the GNN's fragment options: the demo's defaults, and values that
    cannot run are errors naming the key."""
    demo = PRESETS["demo"].extract
    assert (demo.ranking, demo.gnn_fragments, demo.gnn_threshold) == ("proof-nodes", "subshapes", 0.5)
    path = tmp_path / "c.toml"
    for body, key in (('ranking = "uses"', "extract.ranking"), ('gnn_fragments = "all"', "extract.gnn_fragments"),
                      ("gnn_threshold = 1.5", "extract.gnn_threshold"),
                      ("gnn_decode = true\ngnn_threshold = 0.3", "extract.gnn_decode"),
                      ('[extractor]\nloss = "structured"', "extract.gnn_decode"),
                      ('[extractor]\nloss = "hinge"', "extractor.loss")):
        path.write_text(body if body.startswith("[") else f"[extract]\n{body}\n")
        with pytest.raises(ConfigError, match=key):
            load_config("demo", str(path))
    path.write_text('[extract]\nranking = "essential"\ngnn_threshold = 0.3\n')
    cfg = load_config("demo", str(path))
    assert (cfg.extract.ranking, cfg.extract.gnn_threshold) == ("essential", 0.3)
    from refactor.pipeline import gnn_decoding

    assert gnn_decoding(cfg.extract) == {}
    path.write_text('[extract]\ngnn_decode = true\n')
    assert gnn_decoding(load_config("demo", str(path)).extract) == {"decode": True}
