"""Expressions as syntax-tree terms: matching, substitution, subterms, syntax proofs.

The prover reasons on syntax trees, not on symbol strings: matching a
statement against a goal is then a node-by-node walk with no ambiguity, a
term's syntax proof is its post-order, and the networks see the tree.

A term is a nested tuple ``(label, child, ...)``: ``label`` is a syntax
axiom at an inner node and a ``$f`` label at a variable leaf (``("wph",)``),
exactly the labels of :class:`metamath.grammar.SyntaxTree`, whose children
follow the axiom's hypothesis order. Tuples hash and compare structurally,
so terms key dictionaries (goals, proven facts) directly.
"""
from __future__ import annotations

from typing import Iterator

from metamath.grammar import SyntaxTree

Term = tuple  # (label, *children)


def from_tree(t: SyntaxTree) -> Term:
    """The term of a grammar :class:`SyntaxTree`."""
    if not t.children:
        return (t.label,)
    return (t.label, *[from_tree(c) for c in t.children])


def size(t: Term) -> int:
    """Number of nodes."""
    n, todo = 0, [t]
    while todo:
        x = todo.pop()
        n += 1
        todo.extend(x[1:])
    return n


def postorder(t: Term) -> list[str]:
    """The labels of ``t`` in post-order: the normal proof of its syntax."""
    out: list[str] = []

    def walk(x: Term) -> None:
        for c in x[1:]:
            walk(c)
        out.append(x[0])

    walk(t)
    return out


def subterms(t: Term) -> Iterator[Term]:
    """Every subterm of ``t`` (``t`` first, pre-order; repeats included)."""
    todo = [t]
    while todo:
        x = todo.pop()
        yield x
        todo.extend(reversed(x[1:]))


def leaves(t: Term, floats) -> set[str]:
    """The ``$f`` labels (variables) that occur in ``t``; ``floats`` is the set of all ``$f`` labels."""
    return {x[0] for x in subterms(t) if len(x) == 1 and x[0] in floats}


def substitute(pattern: Term, subst: dict[str, Term]) -> Term:
    """``pattern`` with each variable leaf in ``subst`` replaced (others stay)."""
    if len(pattern) == 1:
        return subst.get(pattern[0], pattern)
    return (pattern[0], *[substitute(c, subst) for c in pattern[1:]])


def match(pattern: Term, target: Term, variables: dict[str, str], typecode,
          subst: dict[str, Term] | None = None) -> dict[str, Term] | None:
    """Extend ``subst`` so that ``substitute(pattern, subst) == target``, or None.

    ``variables``: the pattern's variable leaves (``$f`` labels) and their
    typecodes; ``typecode(label)`` gives the typecode of a target node's
    label. A variable binds only a term of its own typecode, and the same
    term at every occurrence. ``subst`` is not modified.
    """
    out = dict(subst) if subst else {}
    stack = [(pattern, target)]
    while stack:
        p, t = stack.pop()
        head = p[0]
        if len(p) == 1 and head in variables:
            old = out.get(head)
            if old is None:
                if typecode(t[0]) != variables[head]:
                    return None
                out[head] = t
            elif old != t:
                return None
            continue
        if head != t[0] or len(p) != len(t):
            return None
        stack.extend(zip(p[1:], t[1:]))
    return out
