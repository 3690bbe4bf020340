"""REFACTOR: learn to extract reusable theorems from proofs, then rewrite the library."""
