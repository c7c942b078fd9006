"""Scoring: apply a registered model to Spark data in batch, keeping ids and naming the model version used.

One sub-package per capability (batch, files, stream, serving); in each, the module named like its MLproject entry
point (`score_batch.py`, ...) is the entry point and `executor.py` is what runs in Spark's Python workers. Modules at
this level are what the capabilities share."""
