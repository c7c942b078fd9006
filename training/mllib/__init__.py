"""Spark MLlib training: the pipeline for a table, the title/age feature stage, cross-validation, evaluation in
Spark, logging the fitted pipeline, and the `train_mllib` entry point. Runs in the JVM: no executor module."""
