"""Import what a flow run imports, so the image's build writes the bytecode of exactly those modules.

Run once by agent/Dockerfile (as root, while /opt/venv is writable). The flow run's user cannot
write .pyc files, and compiling the whole venv (``--compile-bytecode``) would add about 250 MB of
bytecode for modules a flow run never loads. The list is the third-party imports of models/ and
orchestration/ plus what Prefect's engine and the deployment's pull step load; a module missing
here still works, it is only compiled in memory at each import.
"""

from __future__ import annotations

import importlib
import sys

RUNTIME_MODULES = (
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
    "prefect.utilities.filesystem",
    "prefect.utilities.hashing",
    "prefect_aws",
    "prefect_aws.deployments.steps",
    "prefect_aws.s3",
    # The model runtime (models/).
    "boto3",
    "botocore.config",
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
    "pydantic_settings",
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


def main() -> int:
    """Import every runtime module; one that fails to import fails the build."""
    for name in RUNTIME_MODULES:
        importlib.import_module(name)
    boto3 = sys.modules["boto3"]
    boto3.client("s3", region_name="us-east-1")  # loads the S3 client's service model and its modules
    print(f"runtime imports: {len(RUNTIME_MODULES)} roots, {len(sys.modules)} modules loaded")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
