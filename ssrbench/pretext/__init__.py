"""Self-supervised (pretext) tasks. The named configs that parameterise them live in the top-level ``tasks/``."""
