"""The training stage: processed trips -> a fitted model scored against a baseline, logged to MLflow."""
