"""Scoring files as they land in a folder, exactly once, following the registry: the `score_stream` entry point,
what each micro-batch runs, the stream's columns and its state beside Spark's checkpoint."""
