"""Scoring: apply a registered model to Spark data in batch, keeping ids and naming the model version used."""
