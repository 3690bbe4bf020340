"""Training-data attribution for the prover, on a small refactored slice.

The corpus is data/set-prop.mm cut after `mpbir`, refactored with the
`frequent` extractor from the split's training proofs (so it has extracted
theorems: the groups); a tiny prover is trained on it and evaluated. The
oracles: the example-major forward gives batch_loss's per-example losses;
kronfluence's identity strategy (per-example gradients from its hooks on
our forward) equals dot products of autograd gradients of batch_loss;
grad-proj without projection equals an explicit damped inverse Fisher built
with torch.func (whole, and per layer); EK-FAC points where the explicit
damped inverse of the Fisher's layer blocks points; scores do not depend on
batch size; the query measurement's relevance part
is what the search's own policy computes; validation plumbing resumes and
is deterministic by seed. SOURCE: one segment trained long is the damped
influence function (exactly, in the full eigenbasis), a short one is
``eta K`` x grad-dot, two segments equal the unrolling written with
explicit matrix exponentials; training keeps its segments across a resume.
d-TDA: its mean shift is the mean of the per-seed scores, an empty group
moves nothing.
"""
from __future__ import annotations

import json
import os
import random

import pytest
import torch

from conftest import prover_slice
from provers.attribution.attribute import (load_context, load_queries, nats_per_score, query_logprobs,
                                          theorem_scores)
from provers.attribution.batch import ExampleNet, Featurizer, example_logprob, example_loss, step_logprobs
from provers.attribution.groups import direct_uses
from provers.attribution.methods import damped_inverse_apply, grad_dot, grad_proj, linear_layers
from provers.attribution.validate import RetrainConfig, retrain, share_retrains, spearman
from provers.train import Encoder, TrainConfig, batch_loss
from refactor.cli import main


torch.set_num_threads(1)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("attr")
    small, split = prover_slice(d)
    th, corpus = str(d / "T.json"), str(d / "freq.mm")
    assert main(["extract", small, "--method", "frequent", "--split", split, "--top", "8", "--out", th]) == 0
    assert main(["rewrite", small, "--theorems", th, "--split", split, "-o", corpus, "--jobs", "1",
                 "--no-metamath"]) == 0
    out = str(d / "model")
    assert main(["prover", "train", "--corpus", corpus, "--split", split, "--out", out, "--epochs", "2",
                 "--dim", "16", "--rounds", "1", "--seed", "1", "--json"]) == 0
    ck = os.path.join(out, "checkpoint.pt")
    ev = str(d / "eval")
    assert main(["prover", "eval", "--checkpoint", ck, "--out", ev, "--budget-expansions", "32",
                 "--jobs", "1", "--limit", "12", "--json"]) == 0
    ctx = load_context(ck)
    return {"dir": d, "ck": ck, "eval": ev, "ctx": ctx, "queries": load_queries(ctx, ev)}


@pytest.fixture(scope="module")
def tiny(work):
    """A dim-4 prover trained one epoch on the same steps: small enough for explicit curvature matrices."""
    ctx = work["ctx"]
    net = retrain(ctx, [], 0, RetrainConfig(TrainConfig(epochs=1, dim=4, rounds=1)))
    enc = Encoder(ctx.lib, net, ctx.vocab, torch.device("cpu"))
    rng = random.Random(0)
    # at most 64 candidates: batch_loss's own capping draws from its rng, ours is seeded by the step
    train = [[s] for s in rng.sample([s for s in ctx.steps if len(s.applicable) <= 64], 24)]
    queries = [s for _, s in work["queries"]]
    return {"net": net, "en": ExampleNet(net), "ft": Featurizer(enc, 64), "fq": Featurizer(enc, None, values=False),
            "enc": enc, "train": train, "queries": queries}


def test_groups_are_the_extracted_theorems_steps(work):
    ctx = work["ctx"]
    assert ctx.theorems and set(ctx.theorems) == set(ctx.groups)
    named = set(ctx.split.train) | set(ctx.split.valid) | set(ctx.split.test)
    assert not set(ctx.theorems) & named
    for t, idx in ctx.groups.items():
        assert idx, t  # every extracted theorem is used or proved in training
        assert all(ctx.steps[i].assertion == t or ctx.steps[i].theorem == t for i in idx)
        assert sum(1 for s in ctx.steps if s.assertion == t or s.theorem == t) == len(idx)
    recs = [r for r, _ in work["queries"]]
    uses = direct_uses(recs, ctx.theorems)
    for r in recs:
        assert sorted(t for t in ctx.theorems if r["label"] in uses[t]) == r["new_theorems_applied"]


def test_query_steps_replay_the_found_proof_and_the_measurement_is_the_policys(work):
    from provers.actions import problem
    from provers.policy import LearnedPolicy

    ctx = work["ctx"]
    policy = LearnedPolicy(ctx.lib, ctx.ck)
    en, fq = ExampleNet(ctx.net), Featurizer(ctx.enc, None, values=False)
    assert work["queries"]
    for rec, steps in work["queries"]:
        applied = [l for l in rec["proof"] if l in ctx.lib.assertions]
        assert [s.assertion for s in steps] == applied and all(s.theorem == rec["label"] for s in steps)
        prob = problem(ctx.lib, rec["label"])
        policy.begin(prob)
        want = 0.0
        for s in steps:
            matched = [a for a, _ in ctx.lib.matches(s.goal, prob.index)]
            lp = policy.relevance(prob, s.goal, matched)
            want += lp[[a.label for a in matched].index(s.assertion)]
        b = fq([steps])
        with torch.no_grad():
            got = step_logprobs(en(b), b)
        assert float(got["relevance"][0]) == pytest.approx(want, abs=1e-4)
        assert float(got["relevance"][0] + got["term"][0]) <= 0.0
    lp = query_logprobs(ctx, [s for _, s in work["queries"]])
    assert all(x <= 0 for x in lp)


def test_example_forward_gives_batch_losses_whatever_the_batch(work):
    ctx = work["ctx"]
    ft = Featurizer(ctx.enc, 64)
    en = ExampleNet(ctx.net)
    steps = ctx.steps[:40]
    with torch.no_grad():
        b = ft([[s] for s in steps])
        together = example_loss(en(b), b)
        ref = torch.tensor([float(batch_loss(ctx.enc, [s], random.Random(0), 64, ft.hyps_of)[0]) for s in steps])
        assert torch.allclose(together, ref, atol=1e-4)
        one = torch.cat([example_loss(en(b1), b1) for b1 in (ft([[s]]) for s in steps[:5])])
        assert torch.allclose(one, together[:5], atol=1e-5)
        # an example of several steps is the sum of its steps
        b2 = ft([steps[:3]])
        assert float(example_loss(en(b2), b2)[0]) == pytest.approx(float(together[:3].sum()), abs=1e-4)


def _autograd_grads(net, enc, hyps_of, examples, logprob=False):
    """Per example, the flat gradient of batch_loss (or of the replayed proof's negative log-probability
    computed by batch_loss: no values, uncapped candidates), one autograd call each."""
    params = [p for p in net.parameters()]
    out = []
    for ex in examples:
        loss, _ = batch_loss(enc, ex, random.Random(0), 10**9 if logprob else 64, hyps_of)
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        out.append(torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, gs)]))
    return torch.stack(out).double()


def test_per_example_gradients_identity_strategy_and_grad_dot_equal_autograd_dot_products(tiny):
    from provers.attribution.kron import kronfluence_scores

    t = tiny
    G = _autograd_grads(t["net"], t["enc"], t["ft"].hyps_of, t["train"])
    Q = _autograd_grads(t["net"], t["enc"], t["ft"].hyps_of, t["queries"], logprob=True)
    want = Q @ G.T  # grad NLL(q) . grad L(z): positive = helped
    gd = grad_dot(t["en"], t["ft"], t["fq"], t["train"], t["queries"])
    assert torch.allclose(gd, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
    ident = kronfluence_scores(t["en"], t["ft"], t["fq"], t["train"], t["queries"], "identity", batch_size=8)
    assert torch.allclose(ident, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()))


def _func_grads(en, fz, examples, kind):
    """Per-example gradients through torch.func (functional_call on the example-major forward)."""
    from torch.func import functional_call, grad

    names = [n for n, _ in linear_layers(en)]
    params = {k: v.detach() for k, v in en.named_parameters()}

    def f(p, b):
        out = functional_call(en, p, (b,))
        return example_loss(out, b)[0] if kind == "loss" else -example_logprob(out, b)[0]

    rows = []
    for ex in examples:
        g = grad(f)(params, fz([ex]))
        flat = []
        for n in names:  # the layout of methods.layer_grads: [weight | bias] per layer
            w = g[n + ".weight"]
            if n + ".bias" in g:
                w = torch.cat([w, g[n + ".bias"].unsqueeze(1)], dim=1)
            flat.append(w.reshape(-1))
        rows.append(torch.cat(flat))
    return torch.stack(rows).double()


def _cos(a, b):
    return float((a * b).sum() / a.norm() / b.norm())


def test_grad_proj_without_projection_is_the_explicit_damped_inverse_fisher(tiny):
    t = tiny
    G = _func_grads(t["en"], t["ft"], t["train"], "loss")
    Q = _func_grads(t["en"], t["fq"], t["queries"], "nll")
    F = G.T @ G / len(G)
    want = damped_inverse_apply(F, Q) @ G.T
    got = grad_proj(t["en"], t["ft"], t["fq"], t["train"], t["queries"], k=None, blocks="full")
    assert _cos(got, want) > 0.999999
    assert torch.allclose(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()))


def _layer_blocks(en, G, Q):
    """Scores with the explicit damped inverse of each layer's block of the empirical Fisher."""
    out, o = torch.zeros(Q.shape[0], G.shape[0], dtype=torch.float64), 0
    for _, m in linear_layers(en):
        n = m.weight.numel() + (m.bias.numel() if m.bias is not None else 0)
        g, q = G[:, o : o + n], Q[:, o : o + n]
        o += n
        F = g.T @ g / len(g)
        if float(torch.trace(F)) > 0:
            out += damped_inverse_apply(F, q) @ g.T
    return out


def test_ekfac_matches_the_explicit_layer_block_inverse_and_not_the_batch_size(tiny):
    """EK-FAC approximates each layer's block of the Fisher (Kronecker factors, eigenvalues corrected);
    with the empirical Fisher (no label sampling) it must point where the explicit damped inverse of
    those blocks points, and give the same scores whatever the batch size."""
    from provers.attribution.kron import kronfluence_scores

    t = tiny
    G = _func_grads(t["en"], t["ft"], t["train"], "loss")
    Q = _func_grads(t["en"], t["fq"], t["queries"], "nll")
    want = _layer_blocks(t["en"], G, Q)
    a = kronfluence_scores(t["en"], t["ft"], t["fq"], t["train"], t["queries"], "ekfac", batch_size=8, empirical=True)
    b = kronfluence_scores(t["en"], t["ft"], t["fq"], t["train"], t["queries"], "ekfac", batch_size=24, empirical=True)
    assert _cos(a, want) > 0.9 and _cos(a, want) > _cos(Q @ G.T, want)
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-4 * float(a.abs().max()))
    # grad-proj without projection, per-layer blocks: exactly the explicit layer-block inverse
    got = grad_proj(t["en"], t["ft"], t["fq"], t["train"], t["queries"], k=None, blocks="layer")
    assert torch.allclose(got, want, rtol=1e-3, atol=1e-4 * float(want.abs().max()))


def test_grad_proj_does_not_depend_on_batch_size(tiny):
    from provers.attribution import methods

    t = tiny
    one = grad_proj(t["en"], t["ft"], t["fq"], t["train"], t["queries"], k=2)
    saved = methods._batches
    try:
        methods._batches = lambda fz, ex, size: saved(fz, ex, 1)
        other = grad_proj(t["en"], t["ft"], t["fq"], t["train"], t["queries"], k=2)
    finally:
        methods._batches = saved
    assert torch.allclose(one, other, rtol=1e-4, atol=1e-6 * float(one.abs().max()))


def test_cli_attribute_table_and_bad_input(work, capsys):
    args = ["attribute", "--checkpoint", work["ck"], "--eval", work["eval"], "--method", "grad-dot", "random",
            "--json"]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    ctx = work["ctx"]
    assert [row["theorem"] for row in r["theorems"]] == ctx.theorems
    assert r["queries"] == [rec["label"] for rec, _ in work["queries"]]
    for row in r["theorems"]:
        assert set(row["influence"]) == {"grad-dot", "random"}
        assert row["influence"]["grad-dot"] == pytest.approx(sum(r["scores"]["grad-dot"][row["theorem"]]))
    assert all(len(q["top"]["grad-dot"]) == min(5, len(ctx.theorems)) for q in r["per_query"])
    with pytest.raises(SystemExit) as e:
        main(["attribute", "--checkpoint", work["ck"], "--eval", work["eval"], "--method", "tracin"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err
    # an evaluation made with another checkpoint is refused
    other = work["dir"] / "eval-other"
    other.mkdir()
    cfg = json.load(open(os.path.join(work["eval"], "config.json")))
    cfg["checkpoint"] = "/elsewhere/checkpoint.pt"
    json.dump(cfg, open(other / "config.json", "w"))
    (other / "results.jsonl").write_text(open(os.path.join(work["eval"], "results.jsonl")).read())
    assert main(["attribute", "--checkpoint", work["ck"], "--eval", str(other)]) == 2
    assert "another checkpoint" in capsys.readouterr().err
    assert main(["attribute", "--checkpoint", work["ck"], "--eval", str(work["dir"])]) == 2
    assert "evaluation" in capsys.readouterr().err


def test_validate_plumbing_resumes_and_is_deterministic(work, seed2, capsys):
    out = str(work["dir"] / "val")
    args = ["attribute", "validate", "--checkpoint", work["ck"], "--eval", work["eval"], "--method", "grad-dot",
            "random", "--subsets", "4", "--seeds", "1", "--top-k", "2", "--epochs", "1", "--budget-expansions",
            "8", "--jobs", "2", "--out", out, "--json"]
    assert main(args) == 0
    r = json.loads(capsys.readouterr().out)
    for m in ("grad-dot", "random"):
        assert set(r[m]) >= {"lds_mean", "lds_low", "lds_high", "counterfactual"}
        assert set(r[m]["counterfactual"]) >= {"topk_drop", "random_drop"}
        if r[m]["lds_mean"] is not None:
            assert -1 <= r[m]["lds_low"] <= r[m]["lds_mean"] <= r[m]["lds_high"] <= 1
    full = json.load(open(os.path.join(out, "validation.json")))
    nq = len(work["queries"])
    assert len(full["measured_log_probs"]) == 4 and all(len(row) == nq for row in full["measured_log_probs"])
    jobs = sorted(os.listdir(os.path.join(out, "jobs")))
    specs = {j[: -len(".json")]: json.load(open(os.path.join(out, "jobs", j)))["spec"] for j in jobs}
    assert set(specs) <= {"lds-0-s0", "lds-1-s0", "lds-2-s0", "lds-3-s0", "full-s0", "random-s0", "top-grad-dot-s0",
                          "top-random-s0"} and {"full-s0", "random-s0"} <= set(specs)
    # a spec without a file of its own retrains exactly as one with a file (the same drops and seed)
    assert len({(tuple(sp["drop"]), sp["seed"]) for sp in specs.values()}) == len(specs)
    ctx = work["ctx"]
    lost = next(j for j in jobs if j.startswith("lds-"))
    job = json.load(open(os.path.join(out, "jobs", lost)))
    kept = len(ctx.theorems) - len(job["spec"]["drop"])
    assert kept == (len(ctx.theorems) + 1) // 2
    assert job["dropped_steps"] == len({i for t in job["spec"]["drop"] for i in ctx.groups[t]}) > 0
    # resume: a lost job (and a cut one) are rerun, and by seed they come out the same
    os.remove(os.path.join(out, "jobs", lost))
    before = {j: os.path.getmtime(os.path.join(out, "jobs", j)) for j in jobs if j != lost}
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == r
    again = json.load(open(os.path.join(out, "jobs", lost)))
    assert again["log_probs"] == job["log_probs"]
    assert all(os.path.getmtime(os.path.join(out, "jobs", j)) == t for j, t in before.items())
    # a job's log-probabilities go with its query labels: listed in another order they are put back in order;
    # a result that does not name its queries is measured again
    first, second = [j for j in jobs if j != lost][:2]  # job files (shared retrains have none of their own)
    p0 = os.path.join(out, "jobs", first)
    j0 = json.load(open(p0))
    json.dump(dict(j0, queries=j0["queries"][::-1], log_probs=j0["log_probs"][::-1]), open(p0, "w"))
    p2 = os.path.join(out, "jobs", second)
    j2 = json.load(open(p2))
    json.dump({k: v for k, v in j2.items() if k != "queries"}, open(p2, "w"))
    t0, t2 = os.path.getmtime(p0), os.path.getmtime(p2)
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == r
    assert os.path.getmtime(p0) == t0 and os.path.getmtime(p2) > t2
    assert json.load(open(p2))["queries"] == [rec["label"] for rec, _ in work["queries"]]
    # source and dtda in the same directory: only their counterfactual jobs are new
    i = args.index("random")
    assert main(args[:i] + ["source", "dtda", "--seed-checkpoints", seed2, "--dtda-base", "grad-dot"] + args[i + 1:]) == 0
    r2 = json.loads(capsys.readouterr().out)
    for m in ("grad-dot", "source", "dtda"):
        assert set(r2[m]) >= {"lds_mean", "lds_low", "lds_high", "counterfactual"}
    assert r2["grad-dot"] == r["grad-dot"]
    assert r2["dtda"]["variance_lds"]["lds_mean"] is None  # one retraining seed: no measured spread
    assert set(os.listdir(os.path.join(out, "jobs"))) - set(jobs) <= {"top-source-s0.json", "top-dtda-s0.json"}
    full = json.load(open(os.path.join(out, "validation.json")))
    assert full["options"]["seed_checkpoints"] == [seed2] and full["options"]["dtda_base"] == "grad-dot"
    # more paired seeds for the counterfactual alone: the LDS and its jobs stay, seed 1's retrains are added
    before = set(os.listdir(os.path.join(out, "jobs")))
    assert main(args + ["--counterfactual-seeds", "2"]) == 0
    r3 = json.loads(capsys.readouterr().out)
    for m in ("grad-dot", "random"):
        assert {k: v for k, v in r3[m].items() if k != "counterfactual"} == {k: v for k, v in r[m].items()
                                                                             if k != "counterfactual"}
        cf = r3[m]["counterfactual"]
        assert len(cf["topk_drops"]) == len(cf["random_drops"]) == len(cf["full_proved"]) == 2
        assert cf["topk_drops"][0] == r[m]["counterfactual"]["topk_drop"]
        assert cf["paired_difference"]["mean"] == pytest.approx(cf["topk_drop"] - cf["random_drop"])
    assert {j[:-5] for j in set(os.listdir(os.path.join(out, "jobs"))) - before} <= {
        "full-s1", "random-s1", "top-grad-dot-s1", "top-random-s1"}
    assert not any(j.startswith("lds-") for j in set(os.listdir(os.path.join(out, "jobs"))) - before)
    # other settings in the same directory are refused
    assert main(args[:-3] + ["--epochs", "2", "--out", out]) == 2
    assert "other settings" in capsys.readouterr().err


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) != spearman([1, 1, 1], [1, 2, 3])  # NaN: constant side


def test_specs_that_retrain_alike_share_one_job():
    specs = [{"id": "lds-0-s0", "drop": ["b"], "seed": 0}, {"id": "lds-1-s0", "drop": ["a"], "seed": 0},
             {"id": "lds-0-s1", "drop": ["b"], "seed": 1}, {"id": "full-s0", "drop": [], "seed": 0, "prove": True},
             {"id": "top-x-s0", "drop": ["b"], "seed": 0, "prove": True},
             {"id": "top-y-s0", "drop": ["b"], "seed": 0, "prove": True}]
    run, taken = share_retrains(specs)
    assert [sp["id"] for sp in run] == ["top-x-s0", "lds-1-s0", "lds-0-s1", "full-s0"]  # the searching one runs
    assert run[0] == specs[4]  # specs run unchanged: their job files match them on resume
    assert taken == {"lds-0-s0": "top-x-s0", "lds-1-s0": "lds-1-s0", "lds-0-s1": "lds-0-s1", "full-s0": "full-s0",
                     "top-x-s0": "top-x-s0", "top-y-s0": "top-x-s0"}


# ---------------------------------------------------------------- SOURCE


def test_training_keeps_its_segments_and_a_resume_keeps_the_finished_ones(work, tmp_path):
    from provers.segments import checkpoint_segments, segment_bounds

    ck = torch.load(work["ck"], weights_only=False)
    per_epoch = -(-len(work["ctx"].steps) // 32)
    segs = checkpoint_segments(ck, work["ck"])
    assert [s["end_step"] for s in segs] == [b for b in segment_bounds(2 * per_epoch, 3)
                                             if b <= ck["epoch"] * per_epoch] + (
        [] if ck["epoch"] * per_epoch in segment_bounds(2 * per_epoch, 3) else [ck["epoch"] * per_epoch])
    assert sum(s["steps"] for s in segs) == ck["epoch"] * per_epoch
    assert all(s["lr"] == 1e-3 and s["effective_lr"] > 0 for s in segs)
    assert segs[-1]["model"] is ck["model"]
    assert not all(torch.equal(segs[0]["model"][k], segs[-1]["model"][k]) for k in ck["model"])
    # one epoch, then a resume to two: the finished segment is the one a straight run made
    d = work["dir"]
    corpus, split = work["ctx"].ck["corpus"], work["ctx"].ck["split"]
    out = str(tmp_path / "resumed")
    common = ["prover", "train", "--corpus", corpus, "--split", split, "--out", out, "--dim", "16", "--rounds", "1",
              "--seed", "1", "--json"]
    assert main(common + ["--epochs", "1"]) == 0
    assert main(common + ["--epochs", "2", "--resume"]) == 0
    straight = torch.load(os.path.join(os.path.dirname(work["ck"]), "last.pt"), weights_only=False)
    again = torch.load(os.path.join(out, "last.pt"), weights_only=False)
    assert [s["end_step"] for s in again["segments"]] == [s["end_step"] for s in straight["segments"]]
    assert [s["end_step"] for s in straight["segments"]] == segment_bounds(2 * per_epoch, 3)
    first = again["segments"][0]
    assert first["end_step"] < per_epoch  # finished before the resume
    assert all(torch.equal(first["model"][k], straight["segments"][0]["model"][k]) for k in ck["model"])
    assert d.exists()


def test_source_without_segments_is_refused(work, capsys):
    ck = torch.load(work["ck"], weights_only=False)
    del ck["segments"]
    old = str(work["dir"] / "old-checkpoint.pt")
    torch.save(ck, old)
    assert main(["attribute", "--checkpoint", old, "--eval", work["eval"], "--method", "source"]) == 2
    assert "no training segments" in capsys.readouterr().err


def _segment(net, noise: float, seed: int):
    """A copy of ``net`` with seeded Gaussian noise on its weights: another point of a trajectory."""
    import copy

    other = copy.deepcopy(net)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(noise * p.abs().mean() * torch.randn(p.shape, generator=g))
    return ExampleNet(other)


def _layer_sizes(en):
    return [m.weight.numel() + (m.bias.numel() if m.bias is not None else 0) for _, m in linear_layers(en)]


def test_source_limits_long_training_is_the_damped_influence_function_short_is_grad_dot(tiny):
    from provers.attribution.source import source_scores

    t = tiny
    idx = list(range(len(t["train"])))
    # one segment trained long: exp(-eta K (lam + delta)) = 0 wherever delta > 0
    full = source_scores([(t["en"], 1e12)], t["ft"], t["fq"], t["train"], idx, t["queries"], basis="full")
    want = grad_proj(t["en"], t["ft"], t["fq"], t["train"], t["queries"], k=None, blocks="layer")
    assert torch.allclose(full, want, rtol=1e-5, atol=1e-7 * float(want.abs().max()))
    # in the Kronecker eigenbasis: near the explicit layer blocks, nearer than grad-dot
    kron = source_scores([(t["en"], 1e12)], t["ft"], t["fq"], t["train"], idx, t["queries"], basis="kron")
    G = _func_grads(t["en"], t["ft"], t["train"], "loss")
    Q = _func_grads(t["en"], t["fq"], t["queries"], "nll")
    assert _cos(kron, want) > 0.9 and _cos(kron, want) > _cos(Q @ G.T, want)
    # a short segment: eta K x grad-dot, whatever the basis
    dot = grad_dot(t["en"], t["ft"], t["fq"], t["train"], t["queries"])
    for basis in ("kron", "full"):
        short = source_scores([(t["en"], 1e-6)], t["ft"], t["fq"], t["train"], idx, t["queries"], basis=basis)
        assert torch.allclose(short / 1e-6, dot, rtol=1e-3, atol=1e-4 * float(dot.abs().max()))
    # only the members asked for, in their order
    sub = source_scores([(t["en"], 1e12)], t["ft"], t["fq"], t["train"], [5, 2], t["queries"], basis="full")
    assert torch.allclose(sub, full[:, [5, 2]], rtol=1e-6, atol=1e-9 * float(want.abs().max()))


def test_source_two_segments_equal_the_explicit_unrolling(tiny):
    """Written with matrix exponentials of each layer's damped Fisher block at each segment's weights:
    score = sum_l grad m(q)^T S_2 ... S_{l+1} (I - S_l) (F_l + delta_l)^-1 g_l(z)."""
    from provers.attribution.source import source_scores

    t = tiny
    segs = [_segment(t["net"], 0.3, 1), t["en"]]
    Gs = [_func_grads(en, t["ft"], t["train"], "loss") for en in segs]
    Q = _func_grads(segs[-1], t["fq"], t["queries"], "nll")
    sizes = _layer_sizes(t["en"])
    bounds = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
    scale = max(float((Gs[1][:, a:b] ** 2).sum(1).mean()) / (b - a) for a, b in zip(bounds, bounds[1:]))
    eta_k = [2.0 / scale, 0.5 / scale]  # eta K x the largest mean eigenvalue of a layer ~ 1: neither limit
    want = torch.zeros(Q.shape[0], Gs[0].shape[0], dtype=torch.float64)
    o = 0
    for n in sizes:
        w = Q[:, o : o + n].T  # [n, queries]
        for l in (1, 0):
            g = Gs[l][:, o : o + n]
            F = g.T @ g / len(g)
            A = F + 0.1 * float(torch.trace(F)) / n * torch.eye(n, dtype=torch.float64)
            S = torch.linalg.matrix_exp(-eta_k[l] * A)
            want += ((torch.eye(n, dtype=torch.float64) - S) @ torch.linalg.solve(A, w)).T @ g.T
            w = S @ w
        o += n
    idx = list(range(len(t["train"])))
    got = source_scores(list(zip(segs, eta_k)), t["ft"], t["fq"], t["train"], idx, t["queries"], basis="full")
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-7 * float(want.abs().max()))
    # the order of the segments matters
    swapped = source_scores([(segs[0], eta_k[1]), (segs[1], eta_k[0])], t["ft"], t["fq"], t["train"], idx,
                            t["queries"], basis="full")
    assert not torch.allclose(swapped, want, rtol=1e-3)
    # Kronecker basis: two stationary segments of K1 and K2 steps are one of K1 + K2
    two = source_scores([(t["en"], eta_k[0]), (t["en"], eta_k[1])], t["ft"], t["fq"], t["train"], idx,
                        t["queries"], basis="kron")
    one = source_scores([(t["en"], sum(eta_k))], t["ft"], t["fq"], t["train"], idx, t["queries"], basis="kron")
    assert torch.allclose(two, one, rtol=1e-6, atol=1e-9 * float(one.abs().max()))


# ---------------------------------------------------------------- d-TDA


@pytest.fixture(scope="module")
def seed2(work):
    """The same training as ``work``'s with another seed: d-TDA's second sample."""
    out = str(work["dir"] / "model-s2")
    ctx = work["ctx"]
    assert main(["prover", "train", "--corpus", ctx.ck["corpus"], "--split", ctx.ck["split"], "--out", out,
                 "--epochs", "2", "--dim", "16", "--rounds", "1", "--seed", "2", "--json"]) == 0
    return os.path.join(out, "checkpoint.pt")


def test_dtda_mean_shift_is_the_mean_of_the_seeds_scores_and_an_empty_group_moves_nothing(work, seed2):
    import numpy as np

    from provers.attribution.context import load_seed_context
    from provers.attribution.distributional import seed_samples

    ctx = work["ctx"]
    queries = [s for _, s in work["queries"]]
    other = load_seed_context(ctx, seed2)
    assert other.ck["config"]["seed"] == 2 and other.steps != ctx.steps  # its own value negatives
    for c in (ctx, other):
        c.groups = dict(c.groups, nothing=[])
    try:
        samples = seed_samples([ctx, other], queries, lambda c: theorem_scores(c, "grad-dot", queries),
                               lambda c: nats_per_score(c, "grad-dot"))
    finally:
        for c in (ctx, other):
            del c.groups["nothing"]
    alone = [theorem_scores(load_context(p), "grad-dot", queries) for p in (work["ck"], seed2)]
    # grad-dot's scale: TracIn over the run, Adam's effective rate x steps per segment over N
    c = [sum(s["effective_lr"] * s["steps"] for s in x.ck["segments"]) / len(x.steps) for x in (ctx, other)]
    assert samples.nats == pytest.approx(c) and nats_per_score(ctx, "ekfac") == 1 / len(ctx.steps)
    stats = samples.per_theorem()
    y = samples.log_probs
    assert np.allclose(y[0], query_logprobs(ctx, queries)) and not np.allclose(y[0], y[1])
    for t in ctx.theorems:
        shift = [c[0] * np.array(alone[0][t]), c[1] * np.array(alone[1][t])]
        assert np.allclose(stats["mean"][t], (shift[0] + shift[1]) / 2)
        y0 = y - np.array(shift)
        assert np.allclose(stats["variance"][t], (y[0] - y[1]) ** 2 / 2 - (y0[0] - y0[1]) ** 2 / 2)
        assert np.allclose(stats["wasserstein"][t],
                           np.abs(np.sort(y, axis=0) - np.sort(y0, axis=0)).mean(0))
    assert all(v == 0.0 for k in stats for v in stats[k]["nothing"])
    assert any(abs(v) > 0 for t in ctx.theorems for v in stats["wasserstein"][t])


def test_cli_source_and_dtda_columns_and_bad_input(work, seed2, capsys):
    args = ["attribute", "--checkpoint", work["ck"], "--eval", work["eval"], "--method", "source", "dtda",
            "--dtda-base", "grad-dot"]
    assert main(args + ["--seed-checkpoints", seed2, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["dtda"]["seeds"] == [1, 2] and r["dtda"]["base"] == "grad-dot"
    assert sum(s["steps"] for s in r["source"]["segments"]) > 0
    for row in r["theorems"]:
        assert set(row["dtda"]) == {"mean", "variance", "wasserstein"}
        assert row["dtda"]["mean"] == pytest.approx(row["influence"]["dtda"])
        assert row["dtda"]["wasserstein"] >= 0
        assert row["influence"]["source"] == pytest.approx(sum(r["scores"]["source"][row["theorem"]]))
    assert main(["attribute", "--checkpoint", work["ck"], "--eval", work["eval"], "--method", "dtda", "grad-dot",
                 "--dtda-base", "grad-dot", "--seed-checkpoints", seed2]) == 0
    text = capsys.readouterr().out
    assert "dtda var" in text and "dtda W1" in text and "seeds 1, 2" in text
    assert main(args) == 2
    assert "--seed-checkpoints" in capsys.readouterr().err
    assert main(args + ["--seed-checkpoints", work["ck"]]) == 2  # the same seed twice
    assert "different training seeds" in capsys.readouterr().err


def test_variance_lds_follows_the_predicted_spread():
    import numpy as np

    from provers.attribution.distributional import SeedSamples
    from provers.attribution.validate import variance_lds

    # two seeds, one query; theorem a moves seed 0 only, b moves both alike: dropping a changes the spread
    samples = SeedSamples(["x", "y"], [0, 1], np.array([[0.0], [1.0]]),
                          [{"a": [2.0], "b": [1.0], "c": [0.0]}, {"a": [0.0], "b": [1.0], "c": [0.0]}], [0.5, 0.5])
    keeps = [["a", "b"], ["b", "c"], ["a", "c"], ["c"]]
    pred = [float(np.var(samples.without([t for t in "abc" if t not in k]), ddof=1)) for k in keeps]
    assert len(set(pred)) == 2  # dropping a spreads the seeds apart (0 and 1 become -1 and 1)

    def res(spreads):
        return {f"lds-{i}-s{r}": {"log_probs": [(-1) ** r * (v / 2) ** 0.5]} for i, v in enumerate(spreads)
                for r in range(2)}

    assert variance_lds(samples, keeps, list("abc"), res(pred), 2, 0)["lds_mean"] == pytest.approx(1.0)
    flipped = [max(pred) + min(pred) - p for p in pred]
    assert variance_lds(samples, keeps, list("abc"), res(flipped), 2, 0)["lds_mean"] == pytest.approx(-1.0)
    assert variance_lds(samples, keeps, list("abc"), res(pred), 1, 0)["lds_mean"] is None


def test_segment_bounds_and_adams_effective_learning_rate():
    from provers.segments import adam_effective_lr, segment_bounds

    assert segment_bounds(50, 3) == [17, 33, 50] and segment_bounds(2, 3) == [1, 2] and segment_bounds(0, 3) == []
    # gradients of one magnitude c: Adam's first step is lr x sign(g), an SGD step of lr / c
    p = torch.nn.Parameter(torch.zeros(6))
    opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=0.0)
    assert adam_effective_lr(opt) == 1e-3  # no moments yet: the nominal rate
    g = torch.tensor([0.5, -0.5, 0.5, 0.5, -0.5, -0.5])
    p.grad = g.clone()
    opt.step()
    eff = adam_effective_lr(opt)
    assert eff == pytest.approx(1e-3 / 0.5, rel=1e-6)
    assert torch.allclose(p.detach(), -eff * g, rtol=1e-5)
    # mixed magnitudes: the rate weighs each parameter by its second moment
    p.grad = torch.tensor([2.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    q = torch.nn.Parameter(torch.zeros(1))
    opt2 = torch.optim.AdamW([q, p], lr=1.0, weight_decay=0.0)
    q.grad = torch.tensor([1.0])
    opt2.step()
    assert adam_effective_lr(opt2) == pytest.approx((1 + 2) / (1 + 4), rel=1e-6)
