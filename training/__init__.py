"""Training jobs: each entry point fits a model, tracks everything about it, and optionally registers it.

One sub-package per capability (sklearn, mllib, per_group, tuning, mllib_onnx); in each, the module named like its
MLproject entry point (`train_sklearn.py`, ...) is the entry point and `executor.py` is what runs in Spark's Python
workers. Modules at this level are what the capabilities share."""
