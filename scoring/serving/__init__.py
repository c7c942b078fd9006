"""The REST scoring server (MLflow's scoring protocol on Starlette) that follows the registry: the `serve` entry point,
request parsing, batching and the served model."""
