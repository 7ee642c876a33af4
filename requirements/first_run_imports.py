"""Write the bytecode of what the first ``make demo`` imports from a venv, and of nothing else.

``make install`` runs this once per venv after ``uv pip sync``. Compiling every module of both venvs
(uv's ``--compile-bytecode``, about 62,000 files) took 69 s on 2 busy cores; the demo imports about
17% of them (2,835 in .venv, 7,613 in agent/.venv, counted after a demo run without bytecode).
Importing these modules writes their .pyc files even where PYTHONDONTWRITEBYTECODE is set (this
script turns it off for itself), so every later command finds them. A module left out here still
works: it is compiled at each import instead.

    python requirements/first_run_imports.py model|agent
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

# The model env (.venv): the MLflow server of `make up`, the sample generator, `stack sync-data`'s
# awscli, and models/ (pandas, pyarrow, scikit-learn, MLflow's client).
MODEL = (
    "mlflow.server",
    "mlflow.server.handlers",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.sklearn",
    "awscli.clidriver",
    "boto3",
    "pandas",
    "pyarrow.parquet",
    "pyarrow.csv",
    "sklearn.ensemble",
    "sklearn.metrics",
    "scipy.stats",
)
# The agent env (agent/.venv): the Prefect server, CLI and workers, and what a flow run imports
# (agent/runtime_imports.py: the image's list, Evidently's pandas shim included).
AGENT = (
    "prefect.server.api.server",
    "prefect.cli",
    "prefect.workers.process",
    "prefect_docker",
    "prefect_kubernetes",
    "prefect_dask",
)


def main(argv: list[str]) -> int:
    """Import the list of the venv named in ``argv[1]``; print how many modules now have bytecode."""
    sys.dont_write_bytecode = False
    started = time.perf_counter()
    names: tuple[str, ...] = MODEL
    if argv[1:] == ["agent"]:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
        import runtime_imports

        runtime_imports.give_pandas_back()
        names = runtime_imports.BEFORE_RUNNING + runtime_imports.IN_RUN + AGENT
    for name in names:
        importlib.import_module(name)
    print(f"bytecode of {len(sys.modules)} imported modules in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
