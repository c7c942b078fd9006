"""One scikit-learn model per group, trained in one Spark job (`executor` runs in the Python workers), packaged
as one routing pyfunc model: the `train_per_group` entry point and its steps."""
