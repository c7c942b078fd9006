"""Team mode: a local stack of the shared parts a team works against (PostgreSQL, an `mlflow server` with
basic-auth and proxied artifacts, a Spark standalone master and worker), started and stopped with `make team` /
`make team-stop`, and the admin's command for creating accounts."""
