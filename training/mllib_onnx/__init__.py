"""Export fitted MLlib pipelines to ONNX with our own converters (onnx.helper), and prove parity with Spark.

onnxmltools' Spark converter is wrong for this project's pipelines: it turns categorical splits into thresholds,
sends unseen categories to -1 and has no SQLTransformer. These converters cover exactly the stages
training.mllib.pipeline builds (and xgboost.spark boosters, training.mllib_onnx.xgboost_trees) and refuse anything
else by name.
"""
