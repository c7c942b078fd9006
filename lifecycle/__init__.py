"""The quickstart job, above every stage: train, register, promote and score in one run (lifecycle.main)."""
