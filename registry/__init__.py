"""The model registry: stages kept in step with aliases, and model URIs resolved to one concrete version."""
