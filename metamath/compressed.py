"""Metamath's compressed proof format, both ways.

A compressed proof is ``( label ... ) LETTERS``. Each number is written as
zero or more base-5 digits ``U``-``Y`` (1-5) followed by one final base-20
digit ``A``-``T`` (1-20). Number k refers, in order, to the k-th mandatory
hypothesis, then to the parenthesised labels, then to steps saved by ``Z``;
``Z`` saves the step just completed and ``?`` is an unknown step.

Here a decoded proof is a list of ints: k >= 1 as above, 0 for ``Z`` and -1
for ``?``.
"""
from __future__ import annotations

ZERO = 0
UNKNOWN = -1

_FINAL = {chr(ord("A") + i): i + 1 for i in range(20)}
_LEAD = {chr(ord("U") + i): i + 1 for i in range(5)}


class CompressedError(ValueError):
    """A malformed compressed proof; ``index`` is the offending letter's position."""

    def __init__(self, message: str, index: int):
        super().__init__(message)
        self.index = index


def split_compressed(tokens: list[str]) -> tuple[list[str], str]:
    """``['(', 'a', 'b', ')', 'ABC', 'D']`` -> (['a', 'b'], 'ABCD')."""
    try:
        close = tokens.index(")")
    except ValueError:
        raise CompressedError("compressed proof has no ')' closing its label list", 0) from None
    return tokens[1:close], "".join(tokens[close + 1 :])


def decode_numbers(letters: str) -> list[int]:
    """Letters -> numbers (1-based), 0 for Z, -1 for ?."""
    out: list[int] = []
    append = out.append
    num = 0
    lead = False
    final = _FINAL
    leadd = _LEAD
    for i, ch in enumerate(letters):
        v = final.get(ch)
        if v is not None:
            append(num * 20 + v)
            num = 0
            lead = False
            continue
        v = leadd.get(ch)
        if v is not None:
            num = num * 5 + v
            lead = True
            continue
        if lead:
            raise CompressedError(f"number not finished before {ch!r}", i)
        if ch == "Z":
            if not out or out[-1] == ZERO:
                raise CompressedError("'Z' must follow a completed step", i)
            append(ZERO)
        elif ch == "?":
            append(UNKNOWN)
        else:
            raise CompressedError(f"invalid character {ch!r} in compressed proof", i)
    if lead:
        raise CompressedError("compressed proof ends inside a number", len(letters))
    return out


def encode_number(n: int) -> str:
    """1-based number -> its letters (1 -> 'A', 20 -> 'T', 21 -> 'UA')."""
    if n < 1:
        raise ValueError("compressed proof numbers start at 1")
    n -= 1
    out = [chr(ord("A") + n % 20)]
    n //= 20
    while n:
        n -= 1
        out.append(chr(ord("U") + n % 5))
        n //= 5
    return "".join(reversed(out))


def encode_numbers(nums: list[int]) -> str:
    return "".join("Z" if k == ZERO else "?" if k == UNKNOWN else encode_number(k) for k in nums)


# ----------------------------------------------------------------- compressing
def _bin_end(n: int) -> int:
    """The largest number written with as many letters as ``n`` (20, 120, 620, ...)."""
    end, span = 20, 20
    while n > end:
        span *= 5
        end += span
    return end


def compress_proof(proof, hyps) -> tuple[list[str], str]:
    """A proof DAG -> (label list, LETTERS): our compressor, in the manner of
    metamath's ``save proof * /compressed``.

    ``proof`` is a :class:`metamath.proof.Proof` (``nodes`` with ``label`` and
    ``children``, children before parents, and ``root``); ``hyps`` are the
    theorem's mandatory hypotheses in order (numbers 1..len(hyps), never in
    the label list). Identical subproofs (same label, same children) are
    merged first, so repeats in a normal proof are found as well as steps a
    compressed proof already shared. A merged subproof used more than once
    is written once, saved with ``Z``, and referred to afterwards; leaves
    (hypotheses, constants) are never saved, as a reference costs as much as
    the label. The label list is ordered by descending use count (ties by
    first use), so the most used labels get the shortest numbers, and each
    group of labels with the same number length is then put in order of
    first use.
    """
    nodes = proof.nodes
    # merge identical subproofs: canonical id per node
    index: dict[tuple, int] = {}
    ulabel: list[str] = []
    ukids: list[tuple[int, ...]] = []
    canon = [0] * len(nodes)
    for i, n in enumerate(nodes):
        if n.children and max(n.children) >= i:
            raise ValueError(f"{proof.theorem}: proof node {i} comes before its children "
                             "(nodes must be in execution order)")
        key = (n.label, tuple(canon[c] for c in n.children))
        u = index.get(key)
        if u is None:
            u = index[key] = len(ulabel)
            ulabel.append(n.label)
            ukids.append(key[1])
        canon[i] = u
    root = canon[proof.root]
    # uses of each merged node, counted once per distinct parent occurrence
    uses = [0] * len(ulabel)
    reach = [False] * len(ulabel)
    reach[root] = True
    uses[root] = 1
    for u in range(root, -1, -1):
        if reach[u]:
            for c in ukids[u]:
                reach[c] = True
                uses[c] += 1
    save = [uses[u] > 1 and bool(ukids[u]) for u in range(len(ulabel))]
    # emit in post-order; a saved node after its first time is a back-reference
    seq: list = []  # label (str) or -k for the k-th saved step, plus ZERO markers
    saved_no: dict[int, int] = {}
    stack: list[tuple[int, bool]] = [(root, False)]
    while stack:
        u, done = stack.pop()
        k = saved_no.get(u)
        if k is not None:
            seq.append(-k)
            continue
        if done or not ukids[u]:
            seq.append(ulabel[u])
            if save[u]:
                saved_no[u] = len(saved_no) + 1
                seq.append(ZERO)
            continue
        stack.append((u, True))
        for c in reversed(ukids[u]):
            stack.append((c, False))
    # the label list
    hyp_no = {h: i + 1 for i, h in enumerate(hyps)}
    count: dict[str, int] = {}
    for t in seq:
        if t.__class__ is str and t not in hyp_no:
            count[t] = count.get(t, 0) + 1
    first = {l: i for i, l in enumerate(count)}  # dicts keep first-use order
    labels = sorted(count, key=lambda l: (-count[l], first[l]))
    nh = len(hyps)
    out: list[str] = []
    i = 0
    while i < len(labels):  # within one number length, first use decides
        j = _bin_end(nh + i + 1) - nh  # numbers up to _bin_end(n) have as many letters as n
        j = min(j, len(labels))
        out.extend(sorted(labels[i:j], key=first.__getitem__))
        i = j
    labels = out
    base = nh + len(labels)
    code = [encode_number(k) for k in range(1, base + len(saved_no) + 1)]
    code.insert(0, "Z")  # code[k] spells number k; code[0] is ZERO's 'Z'
    num = {h: code[k] for h, k in hyp_no.items()}
    for i, l in enumerate(labels):
        num[l] = code[nh + i + 1]
    return labels, "".join(num[t] if t.__class__ is str else code[base - t if t else 0] for t in seq)


def format_proof_body(labels: list[str], letters: str, indent: int = 4, width: int = 79) -> str:
    """The text that follows ``$=`` for a compressed proof, laid out as
    metamath writes set.mm: a new line, ``( labels )`` wrapped at ``width``
    columns, the letters filling each line to ``width``, and `` $.`` (on a
    line of its own when the last line is full). Indented by ``indent``.
    """
    pad = " " * indent
    lines: list[str] = []
    line = pad + "("
    for tok in labels + [")"] if labels else [" )"]:
        if len(line) + 1 + len(tok) > width and line.strip():
            lines.append(line)
            line = pad + tok
        else:
            line += " " + tok
    pos = 0
    room = width - len(line) - 1
    if room > 0 and letters:
        line += " " + letters[:room]
        pos = room
    chunk = max(1, width - indent)
    while pos < len(letters):
        lines.append(line)
        line = pad + letters[pos : pos + chunk]
        pos += chunk
    if len(line) + 3 > width:
        lines.append(line)
        line = pad + "$."
    else:
        line += " $."
    lines.append(line)
    return "\n" + "\n".join(lines)
