"""Neural provers trained on a (refactored) corpus, and attribution of their successes."""
