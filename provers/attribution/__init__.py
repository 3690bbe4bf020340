"""Training-data attribution for the prover, grouped by extracted theorem.

Question: which theorems a refactoring inserted helped the prover prove
what it proved? Modules:

* :mod:`.groups`: queries (found proofs of an evaluation, replayed into
  steps) and groups (per extracted theorem, the training steps that apply it
  or belong to its proof);
* :mod:`.batch`: the example-major forward of the prover's loss, so that
  dim 0 of every ``nn.Linear`` input is the example (per-example gradients);
* :mod:`.methods`: ``grad-dot``, ``grad-proj``, ``random`` and the group sums;
  :mod:`.kron`: ``ekfac`` through kronfluence 1.0.1;
* :mod:`.attribute`: the report of ``mmrefactor attribute``;
* :mod:`.validate`: group LDS and the top-k counterfactual by retraining
  (``mmrefactor attribute validate``).

Sign convention everywhere: a **positive score means the training data
helped**: it raised the log-probability the networks give to the found
proof (the query's measurement). A group's score is the sum of its
members' scores; a theorem's influence is the sum over queries.

Imports ``metamath`` and ``provers`` only.
"""
