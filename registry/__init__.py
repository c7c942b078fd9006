"""The model registry stage: promotion (gate, lock, record), rollback and history, with stages kept in step with
aliases. Model URIs are resolved to one concrete version in common.model_uri, below every stage."""
