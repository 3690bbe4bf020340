"""Attribution results as tables and figures, one rendering for every reader.

``mmrefactor attribute`` and ``attribute validate`` print these tables as
text, the ``attribute`` stage of ``mmrefactor run`` writes them to
``attribution.md``, and the run's report (:mod:`refactor.report`) puts
them, with the figures, in ``report.md`` and ``report.html``. Inputs are the
dicts of :func:`provers.attribution.attribute.attribute` and
:func:`provers.attribution.validate.validate` (``validation.json``).
"""
from __future__ import annotations

from .report import Table, md_table

QUERY_ROWS = 30  # the per-query table is cut here in documents (the JSON has every query)


def theorem_table(att: dict) -> Table:
    """Per extracted theorem: its training steps, its direct uses in the found proofs and its influence
    per method (summed over queries; positive = helped), most helpful by the first method first."""
    ms = att["methods"]
    dtda = "dtda" in ms
    head = ["theorem", "training steps", "applied in training", "direct uses in found proofs"] + \
        [f"influence ({m})" if m != "dtda" else "dtda mean" for m in ms] + (["dtda var", "dtda W1"] if dtda else [])
    rows = []
    for r in sorted(att["theorems"], key=lambda r: -r["influence"][ms[0]]):
        rows.append([r["theorem"], str(r["members"]), str(r.get("applied_in_training", "")),
                     str(len(r["direct_uses"]))] + [f"{r['influence'][m]:.4g}" for m in ms]
                    + ([f"{r['dtda']['variance']:.4g}", f"{r['dtda']['wasserstein']:.4g}"] if dtda else []))
    return head, rows


def query_table(att: dict, top: int = 3, limit: int | None = None) -> Table:
    """Per query (a proved held-out theorem): its log-probability, the extracted theorems its proof
    applies, and the ``top`` theorems per method."""
    ms = att["methods"]
    head = ["query", "steps", "log-prob", "applies"] + [f"top {top} ({m})" for m in ms]
    rows = []
    for q in att["per_query"][:limit]:
        rows.append([q["label"], str(q["steps"]), f"{q['log_prob']:.3f}", ", ".join(q["applies"]) or "-"]
                    + [", ".join(t for t, _ in q["top"][m][:top]) for m in ms])
    return head, rows


def _num(x) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def validation_table(val: dict) -> Table:
    """Per method: group LDS (mean over queries, 95% bootstrap interval) and the counterfactual (queries no
    longer proved without the method's top-k theorems, and without k random ones)."""
    k = val["top_k"]
    head = ["method", "group LDS", "95% bootstrap", "queries with LDS", f"drop without top {k}",
            f"drop without {k} random", "paired difference [95%]", f"top {k}"]
    rows = []
    for m, r in val["methods"].items():
        cf = r.get("counterfactual")
        pd = (cf or {}).get("paired_difference")
        rows.append([m, _num(r["lds_mean"]), f"[{_num(r['lds_low'])}, {_num(r['lds_high'])}]",
                     f"{r['queries_with_lds']} of {len(val['queries'])}",
                     f"{cf['topk_drop']:.2f}" if cf else "-", f"{cf['random_drop']:.2f}" if cf else "-",
                     f"{pd['mean']:.2f} [{_num(pd['low'])}, {_num(pd['high'])}]" if pd else "-",
                     ", ".join(cf["topk"]) if cf else "-"])
    return head, rows


def attribution_summary(att: dict) -> str:
    """One sentence: what was attributed, at what size."""
    return (f"{len(att['queries'])} queries (held-out theorems the prover proved), {len(att['theorems'])} "
            f"extracted theorems, {att['training_steps']} training steps; methods {', '.join(att['methods'])}, "
            f"seed {att['seed']}; influence = sum over queries of the theorem's group score, positive = its "
            f"training steps raised the log-probability of the found proofs." + _source_and_dtda(att))


def _source_and_dtda(att: dict) -> str:
    out = ""
    if "source" in att:
        segs = ", ".join(f"{s['steps']} steps at lr {s['effective_lr']:.3g}" for s in att["source"]["segments"])
        out += f" source: {len(att['source']['segments'])} training segments ({segs}; Adam's effective lr)."
    if "dtda" in att:
        out += (f" dtda: {att['dtda']['base']} on seeds {', '.join(map(str, att['dtda']['seeds']))}; mean and "
                "variance shift of the log-probability (nats) over seeds, W1 between the seed samples with and "
                "without the group (sums over queries).")
    return out


def validation_summary(val: dict) -> str:
    cfg = val["config"]
    return (f"Group LDS over {val['subsets']} random half subsets of the theorems x {val['seeds']} retraining "
            f"seed(s) (paired retrains: {cfg['epochs']} epoch(s), dim {cfg['dim']}, {cfg['rounds']} round(s)); "
            f"counterfactual: queries proved again with {cfg['budget_expansions']} expansions after retraining "
            f"without the top {val['top_k']} theorems, against {val['top_k']} random ones (mean over "
            f"{val.get('counterfactual_seeds', val['seeds'])} paired seed(s)).")


def text_table(table: Table) -> str:
    """Columns padded to their widest cell (terminal output)."""
    head, rows = table
    widths = [max(len(str(c)) for c in col) for col in zip(head, *rows)]
    return "\n".join("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + rows)


def attribution_markdown(att: dict, val: dict | None = None) -> str:
    """``attribution.md`` of the ``attribute`` stage (and, once validated, of ``attribute-validate``)."""
    parts = [f"# Attribution: `{att['checkpoint']}`", "", attribution_summary(att), "",
             md_table(theorem_table(att)), "", "## Top theorems per query", "", md_table(query_table(att)), ""]
    if val is not None:
        parts += ["## Validation", "", validation_summary(val), "", md_table(validation_table(val)), ""]
    return "\n".join(parts)


def figures(att: dict | None, val: dict | None) -> dict:
    """``{name: (title, matplotlib figure)}``: influence per theorem (one panel per method) and group LDS per
    method with its bootstrap interval beside the counterfactual drops; a figure without data is left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figs = {}
    if att and att["theorems"]:
        ms = att["methods"]
        names = [r["theorem"] for r in att["theorems"]]
        fig, axs = plt.subplots(len(ms), 1, figsize=(max(6.0, 0.35 * len(names) + 2), 1.9 * len(ms) + 0.8),
                                sharex=True, squeeze=False)
        for ax, m in zip(axs[:, 0], ms):
            vals = [r["influence"][m] for r in att["theorems"]]
            ax.bar(range(len(names)), vals, color=["tab:blue" if v >= 0 else "tab:red" for v in vals])
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_ylabel(m, fontsize=8)
            ax.tick_params(labelsize=7)
        axs[-1, 0].set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
        fig.suptitle("Influence per extracted theorem (sum over queries; positive = helped)", fontsize=10)
        fig.tight_layout()
        figs["attribution"] = ("Influence per extracted theorem, per method", fig)
    if val and val["methods"]:
        ms = list(val["methods"])
        rows = [val["methods"][m] for m in ms]
        fig, axs = plt.subplots(1, 2, figsize=(9, 3.2))
        xs = [i for i, r in enumerate(rows) if r["lds_mean"] is not None]
        mean = [rows[i]["lds_mean"] for i in xs]
        err = [[rows[i]["lds_mean"] - rows[i]["lds_low"] for i in xs], [rows[i]["lds_high"] - rows[i]["lds_mean"]
                                                                          for i in xs]]
        axs[0].errorbar(xs, mean, yerr=err, marker="o", ls="none", capsize=4)
        for i, r in enumerate(rows):
            if r["lds_mean"] is None:  # no query whose prediction and measurement both vary
                axs[0].text(i, 0, "n/a", ha="center", va="bottom", fontsize=8)
        axs[0].axhline(0, color="grey", lw=0.8)
        axs[0].set_xticks(range(len(ms)), ms, fontsize=8)
        axs[0].set(xlim=(-0.5, len(ms) - 0.5), ylabel="group LDS (Spearman)",
                   title="Group LDS per method (95% bootstrap)")
        cf = [r.get("counterfactual") for r in rows]
        if any(cf):
            k = val["top_k"]
            drops = []
            for dx, key, lab in ((-0.2, "topk_drop", f"without top {k}"), (0.2, "random_drop", f"without {k} random")):
                vals = [c[key] if c else 0 for c in cf]
                drops += vals
                bars = axs[1].bar([i + dx for i in range(len(ms))], vals, 0.4, label=lab)
                axs[1].bar_label(bars, fmt="%.2g", fontsize=7)  # a drop of 0 is a value too
            axs[1].axhline(0, color="grey", lw=0.8)
            axs[1].set_ylim(min(0, min(drops)) - 0.5, max(1, max(drops)) + 0.5)
            axs[1].set_xticks(range(len(ms)), ms, fontsize=8)
            axs[1].set(ylabel="queries no longer proved", title="Counterfactual (mean over seeds)")
            axs[1].legend(fontsize=7)
        else:
            axs[1].set_axis_off()
        fig.tight_layout()
        figs["lds"] = ("Attribution validated by retraining: group LDS and the counterfactual", fig)
    return figs
