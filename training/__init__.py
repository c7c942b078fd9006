"""Training jobs: each entry point fits a model, tracks everything about it, and optionally registers it."""
