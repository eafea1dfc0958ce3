"""Attacks against the classifier, all in [0, 1] pixel space (normalisation lives in the model)."""
