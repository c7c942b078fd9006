"""The `files` strategy of `score_batch`: Parquet read and written by pyarrow in the Python workers (`executor`),
Spark only scheduling the slices, so rows never pass through the JVM."""
