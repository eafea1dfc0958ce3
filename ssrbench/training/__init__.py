"""Training modes and the model cache."""
