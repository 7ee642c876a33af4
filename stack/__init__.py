"""The embedded local stack: Prefect server, an S3-compatible server (s3rver) and an MLflow server.

All three bind 127.0.0.1 only, keep their state under one folder (``.stack/`` or
``TO_BIKES_STATE_DIR``) and are started, checked and stopped by ``python -m orchestration stack``
(``stack.cli``, run from agent/.venv by make). Nothing here imports Prefect or ``orchestration``; each
server starts from the environment that holds it (Prefect from ``agent/.venv``, MLflow from ``.venv``,
s3rver with Node.js).
"""
