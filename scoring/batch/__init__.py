"""Scoring Spark DataFrames with a model URI: the library API (`dataframe`), the Python-worker strategies and their
`executor`, MLlib models through `transform`, staged output, and the `score_batch` entry point. The other scoring
capabilities score through this one."""
