"""The MLflow UI on the project's store (`make ui`), landing a new browser on the training runs with their
held-out metrics, not on MLflow 3's GenAI overview: an MLflow app plugin (plain, or with basic-auth for the team
server) whose page gives the browser those defaults, and the command that starts or finds the server."""
