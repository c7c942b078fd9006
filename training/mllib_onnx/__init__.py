"""Export fitted MLlib pipelines to ONNX with our own converters (onnx.helper), and prove parity with Spark.

onnxmltools' Spark converter is wrong for this project's pipelines (categorical splits become thresholds, unseen
categories go to -1, no SQLTransformer): see /work/shared/SERVING-NOTES.md. These converters cover exactly the
stages training.mllib.pipeline builds and refuse anything else by name.
"""
