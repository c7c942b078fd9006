"""Hyperparameter search: search spaces, Hyperopt (SparkTrials), Optuna on Spark and joblib-spark, trials as child
runs; `executor` is what one trial runs on a worker. Entry points `tune_hyperopt` and `tune_joblib`."""
