"""Monitoring of scored rows: drift from each version's baseline and from the previous window, label metrics
per window, and the verdict on each version."""
