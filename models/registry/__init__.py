"""The registry stage: the MLflow registry, the champion/challenger gate and registration."""
