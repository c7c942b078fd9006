"""scikit-learn training: the estimators by name, fitting and logging a pipeline safely (skops), and the
`train_sklearn` entry point. Per-group training and tuning build on these."""
