"""Import what a flow run imports; write the bytecode only of what it imports before it is Running.

Run once by agent/Dockerfile (as root, while /opt/venv is writable). The flow run's user cannot
write .pyc files, so a module without bytecode in the image is compiled in memory at each import.
Bytecode is written for ``BEFORE_RUNNING`` only: Prefect's engine, the deployment's pull step and
what the flow entrypoints import at module level (``orchestration/*.py`` import ``models/`` and
the model runtime inside their tasks), i.e. what a container compiles between Pending and Running.
``IN_RUN`` (pandas, pyarrow, scikit-learn, MLflow, ...) is imported only to fail the build when one
does not import: its bytecode would be 56 MB more in the image (about 14 MB compressed) for about
4 s less of each flow run's duration on 2 busy cores (README, "The worker in a container").
``tests/agent/test_runtime_imports.py`` fails when a flow entrypoint imports a module at load time
that ``BEFORE_RUNNING`` leaves out. The build runs this with ``PYTHONNODEBUGRANGES=1``: no column
positions in the bytecode (tracebacks keep their line numbers, not the ``^^^`` markers), 25% less
compressed.
"""

from __future__ import annotations

import importlib
import sys

BEFORE_RUNNING = (
    # Prefect's engine, the deployment's pull steps, and the Prefect APIs the flows use.
    "prefect.engine",
    "prefect.flow_engine",
    "prefect.task_engine",
    "prefect.deployments.steps",
    "prefect.artifacts",
    "prefect.cache_policies",
    "prefect.client.orchestration",
    "prefect.events.actions",
    "prefect.events.schemas.automations",
    "prefect.runtime",
    "prefect.tasks",
    "prefect.utilities.filesystem",
    "prefect.utilities.hashing",
    "prefect_aws",
    "prefect_aws.deployments.steps",
    "prefect_aws.s3",
    "boto3",
    "botocore.config",
    # What orchestration/*.py and models/core import at module level, but for the backfill's Dask.
    "pydantic",
    "pydantic.v1",
    "pydantic_settings",
)

IN_RUN = (
    # orchestration/backfill.py's Dask (2.5 MB of compressed bytecode for one flow of five).
    "prefect_dask",
    # The model runtime (models/), imported inside the tasks (Evidently: see ``give_pandas_back``).
    "evidently",
    "evidently.presets",
    "matplotlib.backends.backend_agg",
    "matplotlib.figure",
    "mlflow",
    "mlflow.models",
    "mlflow.sklearn",
    "mlflow.store.artifact.s3_artifact_repo",
    "numpy",
    "pandas",
    "pyarrow.compute",
    "pyarrow.csv",
    "pyarrow.parquet",
    "skops.io",
    "sklearn.calibration",
    "sklearn.compose",
    "sklearn.dummy",
    "sklearn.ensemble",
    "sklearn.inspection",
    "sklearn.metrics",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "threadpoolctl",
    "tqdm",
    "yaml",
)


def import_all(names: tuple[str, ...]) -> None:
    """Import every module of ``names``; one that fails to import fails the build."""
    for name in names:
        importlib.import_module(name)


def give_pandas_back() -> None:
    """The pandas 2 name Evidently 0.7 imports, given back as models.scoring.drift.import_evidently does."""
    import pandas as pd
    import pandas.core.dtypes.common as dtypes_common

    if not hasattr(dtypes_common, "infer_dtype_from_object"):
        dtypes_common.infer_dtype_from_object = lambda dtype: pd.api.types.pandas_dtype(dtype).type


def main() -> int:
    """Bytecode for ``BEFORE_RUNNING`` (and the S3 client's modules), then check that ``IN_RUN`` imports."""
    import_all(BEFORE_RUNNING)
    sys.modules["boto3"].client("s3", region_name="us-east-1")  # the pull step's client and its modules
    compiled = len(sys.modules)
    sys.dont_write_bytecode = True
    give_pandas_back()
    import_all(IN_RUN)
    print(f"runtime imports: {compiled} modules with bytecode, {len(sys.modules) - compiled} more without")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
