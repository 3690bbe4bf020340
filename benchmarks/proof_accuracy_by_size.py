"""Where the node classifier's proof accuracy comes from: its test examples by size.

    python benchmarks/proof_accuracy_by_size.py CHECKPOINT [--split test] [--json]

Proof accuracy counts an example right only when every node is, so it falls
with the size of the example whatever the model. This prints, for buckets of
example size (nodes the model sees), the examples, their positive share,
the proof accuracy, the share with at most one wrong node, the proof
accuracy after structured decoding (refactor/decode.py), and the node
accuracy against the all-negative baseline, on the dataset the checkpoint
was trained on. A model whose errors are spread thin over large examples
(many near misses) and one that fails small examples too call for
different fixes.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
from torch_geometric.loader import DataLoader  # noqa: E402

from refactor.dataset import load_dataset  # noqa: E402
from refactor.decode import decode_batch  # noqa: E402
from refactor.train import load_checkpoint, model_from_checkpoint, pick_device  # noqa: E402

BUCKETS = ((1, 10), (11, 20), (21, 40), (41, 80), (81, 160), (161, None))


@torch.no_grad()
def by_size(checkpoint: str, split: str = "test", device: str | None = None) -> list[dict]:
    """One row per size bucket (and a last row for all examples)."""
    dev = pick_device(device)
    ck = load_checkpoint(checkpoint, dev)
    _, vocab, splits = load_dataset(ck["dataset"])
    model = model_from_checkpoint(ck, vocab, dev)
    model.eval()
    per: list[tuple[int, int, int, int, int]] = []  # (nodes, positive, wrong, wrong if all-negative, decoded wrong)
    for batch in DataLoader(splits[split], batch_size=64):
        batch = batch.to(dev)
        logits = model(batch)
        pred, y = logits > 0, batch.y > 0.5
        n = batch.num_graphs
        count = lambda v: torch.zeros(n, device=dev).index_add_(0, batch.batch, v.float())  # noqa: E731
        nodes, pos, wrong = count(torch.ones_like(y)), count(y), count(pred != y)
        dwrong = count(decode_batch(batch, logits) != y)
        per += zip(nodes.int().tolist(), pos.int().tolist(), wrong.int().tolist(), pos.int().tolist(),
                   dwrong.int().tolist())
    rows = []
    for lo, hi in (*BUCKETS, (None, None)):
        if lo is None:
            label, part = "all", per
        else:
            label = f"{lo}-{hi}" if hi else f"> {lo - 1}"
            part = [p for p in per if lo <= p[0] and (hi is None or p[0] <= hi)]
        if not part:
            continue
        nodes = sum(p[0] for p in part)
        rows.append({"nodes": label, "examples": len(part),
                     "positive_share": round(sum(p[1] for p in part) / nodes, 3),
                     "proof_accuracy": round(sum(p[2] == 0 for p in part) / len(part), 4),
                     "at_most_one_wrong": round(sum(p[2] <= 1 for p in part) / len(part), 4),
                     "proof_accuracy_decoded": round(sum(p[4] == 0 for p in part) / len(part), 4),
                     "node_accuracy": round(1 - sum(p[2] for p in part) / nodes, 4),
                     "node_accuracy_all_negative": round(1 - sum(p[3] for p in part) / nodes, 4)})
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("--split", default="test", choices=["train", "valid", "test"])
    ap.add_argument("--device")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    rows = by_size(a.checkpoint, a.split, a.device)
    if a.json:
        print(json.dumps(rows, indent=1))
        return 0
    print("| nodes | examples | positive share | proof accuracy | at most one wrong node | decoded "
          "| node accuracy (all-negative) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['nodes']} | {r['examples']:,} | {r['positive_share']:.3f} | {100 * r['proof_accuracy']:.1f}% | "
              f"{100 * r['at_most_one_wrong']:.1f}% | {100 * r['proof_accuracy_decoded']:.1f}% | "
              f"{r['node_accuracy']:.3f} ({r['node_accuracy_all_negative']:.3f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
