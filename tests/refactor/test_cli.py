"""Exit codes of the command line: bad input is 2 with ``file: what is wrong``, everywhere.

``rewrite`` with a theorems file that cannot be read or has the wrong shape
is bad input (2); a theorem that does not fit or does not verify is a failed
rewrite (1, see tests/refactor/test_rewrite.py).
"""
from __future__ import annotations

import json
import os

import pytest
from conftest import ROOT

from refactor.cli import main

PROP = os.path.join(ROOT, "tests", "data", "rewrite-prop.mm")


@pytest.mark.parametrize("content, what", [
    ("{ not json", "T.json:1:3: not valid JSON: "),
    ("[1, 2]", "T.json: expected an object with a 'theorems' list"),
    (json.dumps({"theorems": [{"label": "x"}]}), "T.json: theorems[0]: missing or invalid 'statement'"),
    (json.dumps({"theorems": [{"label": "x", "statement": "|- ph", "proof": ["wph"], "dv": [["x"]]}]}),
     "T.json: theorems[0]: each 'dv' entry must be a pair of variables"),
    (None, "T.json: file not found"),
])
def test_rewrite_with_a_malformed_theorems_file_exits_2(tmp_path, capsys, content, what):
    tpath = tmp_path / "T.json"
    if content is not None:
        tpath.write_text(content)
    out = tmp_path / "o.mm"
    code = main(["rewrite", PROP, "--theorems", str(tpath), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 2, captured
    assert captured.err.startswith(f"error: {tpath}") and what in captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()
