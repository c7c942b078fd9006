"""Shared ground floor of every job: settings, the SparkSession, tracking, the CLI, parameters, data sets."""
