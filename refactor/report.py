"""The report a person reads: ``OUT/report.md`` and ``OUT/report.html`` from a pipeline result.

Both hold the same headline tables (the extractor beside the all-negative
baseline; the new theorems with their statements, uses and savings; the
library before and after; the prover's success on each corpus, with the
spread over seeds and the theorems newly proved or lost against the
original corpus; attribution per extracted theorem and per query, and its
validation, from :mod:`refactor.attribution_report`) and the same figures
(matplotlib, Agg backend). The HTML
file is self-contained: the figures are inline SVG, there is no script and
nothing is fetched, so it opens offline. The Markdown file links the PNG
copies in ``OUT/figures/``.
"""
from __future__ import annotations

import html
import io
import os

from metamath.write import write_atomic

Table = tuple[list[str], list[list[str]]]  # header, rows


# ------------------------------------------------------------------ tables
def _refactor_rows(methods: list[dict]) -> Table:
    head = ["method", "new theorems", "uses", "uses/theorem", "proofs touched", "proof nodes saved",
            "essential nodes saved", "compressed bytes saved", "verified by"]
    rows = []
    for r in methods:
        rw = r.get("rewrite") or {}
        if "error" in r or "error" in rw:
            rows.append([r["method"], f"failed: {r.get('error') or rw.get('error')}"] + [""] * 7)
            continue
        rows.append([r["method"], str(rw["new_theorems"]), str(rw["total_usage"]), str(rw["average_usage"]),
                     str(rw["proofs_rewritten"]), f"{rw['proof_nodes_before'] - rw['proof_nodes_after']:,}",
                     f"{rw['essential_nodes_before'] - rw['essential_nodes_after']:,}",
                     f"{rw['compressed_bytes_before'] - rw['compressed_bytes_after']:,}",
                     ", ".join(rw["verified_by"])])
    return head, rows


def md_table(table: Table) -> str:
    """A Markdown table."""
    head, rows = table
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(head) + " |", "| --- " * len(head) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def comparison_table(methods: list[dict]) -> str:
    """One row per extraction method: the figures the issue asks to compare (Markdown)."""
    return md_table(_refactor_rows(methods))


def metrics_table(train: dict) -> Table:
    """The node classifier's figures on valid and test: thresholded at 0.5, decoded
    (:mod:`refactor.decode`; runs made before decoding have no such row, older ones only its proof
    accuracy) and the all-negative baseline. Shared by the report and ``mmrefactor train/evaluate``."""
    head = ["split", "node accuracy", "precision", "recall", "F1", "proof accuracy", "examples"]
    keys = ("node_accuracy", "precision", "recall", "f1", "proof_accuracy")

    def row(name: str, m: dict, suffix: str = "") -> list[str]:
        return [name] + ["-" if m.get(k + suffix) is None else f"{m[k + suffix]:.3f}" for k in keys] + [
            str(m["examples"])]

    rows = []
    for split in ("valid", "test"):
        m, b = train[split], train["baseline_all_negative"][split]
        rows.append(row(split, m))
        if m.get("proof_accuracy_decoded") is not None:
            rows.append(row(f"{split}, decoded", m, "_decoded"))
        rows.append(row(f"{split} (all-negative)", {k: b[k] if k in ("node_accuracy", "proof_accuracy") else None
                                                     for k in keys} | {"examples": b["examples"]}))
    return head, rows


def _extract_table(methods: list[dict]) -> Table:
    rows = [[r["method"], str(e["candidates"]), str(e["valid"]), str(e["rediscoveries"]), str(e["new"]),
             str(e["theorems"])] for r in methods if (e := r.get("extract"))]
    return ["method", "candidates", "valid", "rediscoveries", "new", "kept (K)"], rows


def _theorems_table(methods: list[dict]) -> Table:
    rows = []
    for r in methods:
        rw = r.get("rewrite") or {}
        for t in rw.get("per_theorem", []):
            hyps = " & ".join(t.get("hypotheses", []))
            stmt = (hyps + "  =>  " if hyps else "") + t["statement"]
            rows.append([r["method"], t["label"], stmt, str(t["uses"]), str(t["proofs"]), str(t["nodes_saved"])])
    return ["method", "label", "statement", "uses", "proofs", "nodes saved"], rows


def _library_table(result: dict) -> Table:
    rows = []
    th = result["verify"]["theorems"]
    for r in result["methods"]:
        rw = r.get("rewrite") or {}
        if "error" in rw or not rw:
            continue
        rows.append([r["method"], f"{th:,} -> {th + rw['new_theorems']:,}",
                     f"{rw['proof_nodes_before']:,} -> {rw['proof_nodes_after']:,}",
                     f"{rw['essential_nodes_before']:,} -> {rw['essential_nodes_after']:,}",
                     f"{rw['compressed_bytes_before']:,} -> {rw['compressed_bytes_after']:,}",
                     f"{rw['file_bytes_before']:,} -> {rw['file_bytes_after']:,}"])
    return ["method", "$p theorems", "proof nodes", "essential nodes", "compressed proof bytes", "file bytes"], rows


def _prover_table(pr: dict) -> Table:
    budgets = pr["budgets"]
    head = (["corpus", "policy", "seeds"] + [f"@{b}" for b in budgets]
            + ["newly proved / lost (per seed)", "proofs using a new theorem", f"forecast @{pr['budget_expansions']}"])
    rows = []
    for r in pr["rows"]:
        cells = []
        for b in budgets:
            v = r["rate"][str(b)]
            cells.append(f"{100 * v['mean']:.1f}%" + (f" ± {100 * v['stdev']:.1f}" if len(v["values"]) > 1 else ""))
        paired = ", ".join(f"+{len(p['newly_proved'])}/-{len(p['lost'])}" for p in r["paired"]) or "reference"
        f = r.get("forecast")
        fc = f"{100 * f['predicted_rate']:.1f}% (measured {100 * f['measured_rate']:.1f}%)" if f else "-"
        seeds = ", ".join("-" if s is None else str(s) for s in r["seeds"])
        rows.append([r["corpus"], r["policy"], seeds] + cells + [paired, f"{100 * r['uses_new_share']:.1f}%", fc])
    return head, rows


def _corpus_table(pr: dict) -> Table:
    rows = [["original", "-", "-", "-", "-"]]
    for m, c in pr["corpus_info"].items():
        rows.append([m, str(c["theorems"]), str(c["total_usage"]),
                     f"{c['proof_nodes_before']:,} -> {c['proof_nodes_after']:,}", ", ".join(c["verified_by"])])
    for m, why in pr["skipped"].items():
        rows.append([m, "skipped", why, "", ""])
    return ["corpus", "new theorems (from training proofs)", "uses", "proof nodes", "verified by"], rows


# ------------------------------------------------------------------ figures
def _figures(result: dict) -> dict:
    """``{name: (title, matplotlib figure)}``; a figure whose data is missing is left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    hist = result["train"].get("history") or []
    if hist:
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
        ep = [h["epoch"] for h in hist]
        ax[0].plot(ep, [h["loss"] for h in hist], marker="o")
        ax[0].set(xlabel="epoch", ylabel="training loss", title="extractor: loss")
        for key, lab in (("node_accuracy", "node accuracy"), ("f1", "F1"), ("proof_accuracy", "proof accuracy")):
            ax[1].plot(ep, [h["valid"][key] for h in hist], marker="o", label=lab)
        base = result["train"]["baseline_all_negative"]["valid"]["node_accuracy"]
        ax[1].axhline(base, color="grey", ls="--", label="all-negative node acc.")
        ax[1].set(xlabel="epoch", ylabel="valid", title="extractor: validation", ylim=(0, 1))
        ax[1].legend(fontsize=7)
        fig.tight_layout()
        figs["training"] = ("Extractor training curves", fig)

    uses = {r["method"]: [t["uses"] for t in (r.get("rewrite") or {}).get("per_theorem", [])]
            for r in result["methods"]}
    uses = {k: v for k, v in uses.items() if v}
    if uses:
        fig, ax = plt.subplots(figsize=(6, 3.2))
        top = max(max(v) for v in uses.values())
        bins = range(0, top + 2, max(1, (top + 1) // 20))
        ax.hist(list(uses.values()), bins=list(bins), label=list(uses), alpha=0.8)
        ax.set(xlabel="uses of a new theorem in the rewritten library", ylabel="new theorems",
               title="Usage of the new theorems")
        ax.legend()
        fig.tight_layout()
        figs["usage"] = ("Usage histogram of the new theorems", fig)

    done = [r for r in result["methods"] if (r.get("rewrite") or {}).get("proof_nodes_before")]
    if done:
        fig, axs = plt.subplots(1, 3, figsize=(10, 3.2))
        for ax, (key, lab) in zip(axs, (("proof_nodes", "proof nodes"), ("essential_nodes", "essential nodes"),
                                        ("compressed_bytes", "compressed proof bytes"))):
            names = [r["method"] for r in done]
            before = [r["rewrite"][f"{key}_before"] for r in done]
            after = [r["rewrite"][f"{key}_after"] for r in done]
            xs = range(len(names))
            ax.bar([x - 0.2 for x in xs], before, 0.4, label="before")
            ax.bar([x + 0.2 for x in xs], after, 0.4, label="after")
            ax.set_xticks(list(xs), names)
            lo = min(after + before)
            ax.set_ylim(lo * 0.95, max(before) * 1.01)
            ax.set_title(lab, fontsize=9)
        axs[0].legend(fontsize=7)
        fig.suptitle("Library proof size before and after refactoring", fontsize=10)
        fig.tight_layout()
        figs["proof_size"] = ("Proof size before and after", fig)

    pr = result.get("prover")
    if pr and pr["rows"]:
        fig, ax = plt.subplots(figsize=(6.5, 3.8))
        bs = pr["budgets"]
        for r in pr["rows"]:
            means = [100 * r["rate"][str(b)]["mean"] for b in bs]
            errs = [100 * r["rate"][str(b)]["stdev"] for b in bs]
            line = ax.errorbar(bs, means, yerr=errs, marker="o", capsize=3, label=f"{r['corpus']} / {r['policy']}")
            f = r.get("forecast")
            if f:
                ax.plot([f["target"]], [100 * f["predicted_rate"]], marker="x", ms=9, ls="none",
                        color=line[0].get_color())
        ax.plot([], [], marker="x", ls="none", color="k", label="forecast (fit on smaller budgets)")
        ax.set_xscale("log", base=2)
        ax.set(xlabel="budget (expansions)", ylabel=f"{pr['part']} theorems proved (%)",
               title="Prover success against budget (mean ± sd over seeds)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs["prover"] = ("Prover success against budget", fig)

    at = result.get("attribution") or {}
    if at.get("attribute"):
        from .attribution_report import figures

        val = at.get("validation")
        figs.update(figures(at["attribute"], val if val and "methods" in val else None))
    return figs


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prologue and doctype: inline in HTML


# ------------------------------------------------------------------ documents
def _stage_total(result: dict) -> float:
    return round(sum(v or 0 for v in result.get("stage_seconds", {}).values()), 1)


def _sections(result: dict) -> list[tuple[str, str, object]]:
    """The report as ``(kind, heading or text, payload)`` items, rendered to Markdown or HTML."""
    d, t = result["dataset"], result["train"]
    te, base = t["test"], t["baseline_all_negative"]["test"]
    items: list = [
        ("p", f"seed {result['seed']}, extractor preset `{result['preset']}`, K = {result['top']} theorems per "
              f"method; {result.get('seconds', '?')} s this invocation, {_stage_total(result)} s of recorded stage time "
              f"(finished stages are reused); database sha256 `{result.get('database_sha256', '')[:16]}`.", None),
        ("h2", "Data and extractor", None),
        ("p", f"{result['verify']['verified']} of {result['verify']['theorems']} proofs verified. Expansion dataset: "
              f"{d['examples']:,} examples from {d['inlined_theorems']:,} inlined theorems, {d['nodes']:,} nodes, "
              f"{100 * d['positive_fraction']:.1f}% positive; split by inlined theorem "
              f"{d['splits']['train']}/{d['splits']['valid']}/{d['splits']['test']}. Test (inlined theorems never "
              f"seen in training): node accuracy {te['node_accuracy']:.3f} (all-negative "
              f"{base['node_accuracy']:.3f}), F1 {te['f1']:.3f}, proof accuracy {te['proof_accuracy']:.3f}.", None),
        ("table", "Extraction metrics beside the all-negative baseline", metrics_table(t)),
        ("figure", "training", None),
        ("h2", "Extraction", None),
        ("table", "Candidates per method", _extract_table(result["methods"])),
        ("h2", "Refactoring the library (same K for every method)", None),
        ("table", "Comparison", _refactor_rows(result["methods"])),
        ("table", "New theorems: statements, uses and savings", _theorems_table(result["methods"])),
        ("table", "Library size before and after", _library_table(result)),
        ("figure", "usage", None),
        ("figure", "proof_size", None),
    ]
    pr = result.get("prover")
    if pr:
        sp = pr["split"]
        items += [
            ("h2", "Prover", None),
            ("p", f"Split seed {sp['seed']}: train {sp['train']}, valid {sp['valid']}, test {sp['test']} theorems; "
                  f"evaluated on {pr['part']}" + (f" (first {pr['limit']})" if pr["limit"] else "") +
                  f" with {pr['budget_expansions']} expansions / {pr['budget_seconds']:g} s per theorem; seeds "
                  f"{', '.join(map(str, pr['seeds']))}. Refactored corpora are built from training proofs only; "
                  f"held-out proofs are unchanged. Newly proved / lost: against the learned prover on the original "
                  f"corpus with the same seed (baselines: its first seed).", None),
            ("table", "Corpora", _corpus_table(pr)),
            ("table", "Prover success per corpus (mean ± sd over seeds)", _prover_table(pr)),
            ("figure", "prover", None),
        ]
        if pr["skipped"]:
            items.append(("p", "Skipped corpora: " + "; ".join(f"{m}: {w}" for m, w in pr["skipped"].items()), None))
    if result.get("attribution"):
        items += _attribution_items(result["attribution"])
    return items


def _attribution_items(at: dict) -> list[tuple[str, str, object]]:
    """The attribution section: what was attributed, the per-theorem and per-query tables, the validation."""
    from .attribution_report import (QUERY_ROWS, attribution_summary, query_table, theorem_table, validation_summary,
                                      validation_table)

    items: list = [("h2", "Attribution: which extracted theorems helped the prover", None)]
    if "skipped" in at:
        return items + [("p", f"Not run: {at['skipped']}.", None)]
    att = at["attribute"]
    n = len(att["per_query"])
    items += [
        ("p", f"The learned prover on the `{at['corpus']}` corpus, seed {at['prover_seed']}, and its evaluation: "
              + attribution_summary(att), None),
        ("table", "Attribution per extracted theorem", theorem_table(att)),
        ("figure", "attribution", None),
        ("table", "Top theorems per query" + (f" (first {QUERY_ROWS} of {n})" if n > QUERY_ROWS else ""),
         query_table(att, limit=QUERY_ROWS)),
    ]
    val = at.get("validation")
    if val is None:
        items.append(("p", "Validation by retraining not run ([attribution] validate = false).", None))
    elif "skipped" in val:
        items.append(("p", f"Validation by retraining not run: {val['skipped']}.", None))
    else:
        items += [("p", validation_summary(val), None),
                  ("table", "Validation: group LDS and the top-k counterfactual", validation_table(val)),
                  ("figure", "lds", None)]
    return items


def render(result: dict, figures: dict | None = None) -> str:
    """``report.md``; ``figures``: name -> (title, PNG path relative to the report)."""
    lines = [f"# mmrefactor run on `{result['database']}`", ""]
    for kind, text, payload in _sections(result):
        if kind == "h2":
            lines += [f"## {text}", ""]
        elif kind == "p":
            lines += [text, ""]
        elif kind == "table":
            lines += [f"**{text}**", "", md_table(payload), ""]
        elif kind == "figure" and figures and text in figures:
            title, path = figures[text]
            lines += [f"![{title}]({path})", ""]
    return "\n".join(lines)


CSS = ("body{font-family:sans-serif;max-width:1150px;margin:1em auto;color:#222}"
       "table{border-collapse:collapse;margin:.5em 0 1.2em;font-size:13px}"
       "th,td{border:1px solid #bbb;padding:3px 7px;text-align:left}th{background:#eee}"
       "figure{margin:1em 0}figcaption{font-size:13px;color:#555}svg{max-width:100%;height:auto}"
       "code{background:#f3f3f3}")


def render_html(result: dict, svgs: dict) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>mmrefactor run on {e(result['database'])}</title><style>{CSS}</style></head><body>",
           f"<h1>mmrefactor run on <code>{e(result['database'])}</code></h1>"]
    for kind, text, payload in _sections(result):
        if kind == "h2":
            out.append(f"<h2>{e(text)}</h2>")
        elif kind == "p":
            out.append(f"<p>{e(text)}</p>")
        elif kind == "table":
            head, rows = payload
            out.append(f"<table><caption>{e(text)}</caption><thead><tr>"
                       + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in r) + "</tr>" for r in rows]
            out.append("</tbody></table>")
        elif kind == "figure" and text in svgs:
            title, svg = svgs[text]
            out.append(f'<figure id="fig-{e(text)}">{svg}<figcaption>{e(title)}</figcaption></figure>')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(result: dict, out: str) -> dict:
    """Write ``report.md``, ``report.html`` and ``figures/*.png``; return their paths."""
    import matplotlib.pyplot as plt

    fig_dir = os.path.join(out, "figures")
    os.makedirs(fig_dir, exist_ok=True)
    pngs, svgs, paths = {}, {}, {}
    for name, (title, fig) in _figures(result).items():
        png = os.path.join(fig_dir, f"{name}.png")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=110)
        write_atomic(png, buf.getvalue())
        pngs[name] = (title, f"figures/{name}.png")
        svgs[name] = (title, _svg(fig))
        paths[f"figure_{name}"] = png
        plt.close(fig)
    md = os.path.join(out, "report.md")
    write_atomic(md, render(result, pngs).encode("utf-8"))
    page = os.path.join(out, "report.html")
    write_atomic(page, render_html(result, svgs).encode("utf-8"))
    return {"md": md, "html": page, **paths}
