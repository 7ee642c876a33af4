"""When preprocessing may be skipped, and which task failures are worth a retry.

Preprocessing a period is cached on what decides its output: the checksums of the raw objects it reads
(S3 ETags and sizes, or SHA-256 of local files): for a month, only the files that hold the month
(``models.data.raw_manifest.select_period_inputs``), for a year every object under the year's prefix;
the digest of the ``models``
source that does the work, and the task's other inputs (period, output, minimum duration). A rerun
of an unchanged period finds the cached summary instead of reading the raw files again; a new or
changed raw file, or a change to ``models/``, computes a new key: December arriving leaves the cached
January-November month runs alone, and a changed March file recomputes March only.

Training is cached the same way on what decides its run: the checksums of the processed files it
reads, the ``models`` source, its parameters, and where it logs (tracking URI, experiment, model
name). An unchanged rerun of the pipeline reuses the MLflow run instead of training again; new data
or new code trains again, and so does a cached run that was deleted, or that is not registered yet
and scored a champion that has since been replaced (``models.registry.register.reuse_problem``,
checked by the flow). A registered run is reused whoever is champion now: one training input, one
version.

A key says which inputs a result came from, not that the result is still there: a cached summary
also records the checksum (S3 ETag or SHA-256) and size of the Parquet it wrote, and a hit is
honoured only while that very object is in place (``find_output_problem``). Otherwise, for instance
after a rerun on fewer raw files replaced the output and the raw files came back, or when someone
overwrote or deleted it, the flow preprocesses again and logs why.

Identical work runs once: ``orchestration.flows.work_locks``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from prefect import runtime
from prefect.cache_policies import CachePolicy
from prefect.utilities.hashing import hash_objects

import models
from models.core import s3, storage
from models.core.errors import UserError
from models.core.names import BUCKET_BLOCK
from models.core.settings import Settings
from orchestration.flows.settings import load_block

log = logging.getLogger(__name__)

MODELS_DIR = Path(models.__file__).resolve().parent
RESULTS_FOLDER = "prefect-results"
OUTPUT_VERSION = "output_version"  # the cached summary's record of the Parquet it wrote


def list_object_checksums(uri: str, settings: Settings | None) -> list[tuple[str, str, int]]:
    """``(key, checksum, size)`` of every raw data object preprocessing reads under a prefix or folder.

    The same selection as ``models.core.storage.list_inputs`` (no ``__MACOSX``, dot-folders or temporary
    objects, and ``raw/2025`` is not ``raw/2025-old``), so the key changes exactly when an input does.
    """
    if not s3.is_s3(uri):
        paths = storage.list_inputs(uri, settings)
        return [(p, storage.file_digest(p), Path(p).stat().st_size) for p in paths]
    found = storage.list_s3_data_objects(uri, settings)
    return [(obj["Key"], obj["ETag"].strip('"'), int(obj["Size"])) for obj in found]


def object_checksum(uri: str, settings: Settings | None) -> tuple[str, str, int]:
    """``(uri, checksum, size)`` of one file: its S3 ETag, or the SHA-256 of a local file."""
    if not s3.is_s3(uri):
        return uri, storage.file_digest(uri), Path(uri).stat().st_size
    head = s3.head_object(uri, settings)
    return uri, head["ETag"].strip('"'), int(head["ContentLength"])


def record_output(summary: dict[str, Any], settings: Settings | None) -> dict[str, Any]:
    """The summary to cache: with the checksum and size of the output it names, as written."""
    _, checksum, size = object_checksum(summary["output"], settings)
    return {**summary, OUTPUT_VERSION: {"checksum": checksum, "size": size}}


def find_output_problem(cached: dict[str, Any], settings: Settings | None) -> str | None:
    """Why a cached summary cannot be served (its output missing, replaced or unrecorded), or None."""
    uri, recorded = cached["output"], cached.get(OUTPUT_VERSION)
    if not recorded:
        return f"the cached result records no checksum of {uri}"
    exists = s3.object_exists(uri, settings) if s3.is_s3(uri) else Path(uri).is_file()
    if not exists:
        return f"{uri} is missing"
    _, checksum, size = object_checksum(uri, settings)
    if (checksum, size) != (recorded["checksum"], recorded["size"]):
        return (
            f"{uri} is not the cached output (now {checksum}, {size} bytes; "
            f"cached {recorded['checksum']}, {recorded['size']} bytes)"
        )
    return None


def digest_source(folder: Path = MODELS_DIR) -> str:
    """SHA-256 over the names and contents of the ``.py`` files of a package (the code version)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(path.relative_to(folder).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass
class RawObjectChecksums(CachePolicy):
    """Cache key part: the checksums of the raw objects the task reads: those named by its
    ``input_uris`` (a month run's selection) when given, else every one under its ``input_uri``."""

    uri_parameter: str = "input_uri"
    selection_parameter: str = "input_uris"

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        objects = list_object_checksums(inputs[self.uri_parameter], inputs.get("settings"))
        selected = inputs.get(self.selection_parameter)
        if selected is not None:
            keys = {s3.split_s3_uri(uri)[1] if s3.is_s3(uri) else uri for uri in selected}
            objects = [obj for obj in objects if obj[0] in keys]
        log.info("cache key over %s raw object(s) under %s", len(objects), inputs[self.uri_parameter])
        return hash_objects(objects)


@dataclass
class ModelsCodeVersion(CachePolicy):
    """Cache key part: the digest of the ``models`` package source that computes the result."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        return digest_source()


def is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed I/O task unless its error is the user's to fix.

    A ``UserError`` raised from a network or S3 error (it has a ``__cause__``) may pass on a retry;
    one raised on its own (a malformed period, a missing prefix) never does.
    """
    error = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    if isinstance(error, UserError) and error.__cause__ is None:
        log.info("not retrying %s: %s", task.name, error)
        return False
    return True


@dataclass
class InputObjectChecksums(CachePolicy):
    """Cache key part: the checksums of the files named by the task's ``features_uris``."""

    uris_parameter: str = "features_uris"

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        uris = inputs[self.uris_parameter]
        return hash_objects([object_checksum(uri, inputs.get("settings")) for uri in uris])


@dataclass
class TrainingTarget(CachePolicy):
    """Cache key part: the tracking URI, experiment and model name a training run logs to."""

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        settings = inputs["settings"]
        return hash_objects(settings.mlflow_tracking_uri, settings.experiment, settings.model_name)


def results_storage() -> Any:
    """The ``S3Bucket`` block pointed at ``prefect-results/``: cached summaries any worker can read.

    Loaded once per flow run (both cached tasks use it); a later run in the same process loads it again,
    so a block saved in between is seen.
    """
    return results_storage_of(str(runtime.flow_run.root_flow_run_id or runtime.flow_run.id))


@lru_cache(maxsize=1)
def results_storage_of(flow_run_id: str) -> Any:
    """``results_storage`` for one (root) flow run: the latest run's is kept, older ones dropped."""
    from prefect_aws import S3Bucket

    bucket = load_block(S3Bucket, BUCKET_BLOCK)
    return bucket.model_copy(update={"bucket_folder": RESULTS_FOLDER})


def read_flow_run_end(flow_run_id: str) -> str | None:
    """The final state name of a flow run (``"deleted"`` when Prefect no longer has it), or None."""
    from uuid import UUID

    from prefect import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        run_uuid = UUID(flow_run_id)
    except ValueError:  # "none": not started by a flow run
        return None
    try:
        with get_client(sync_client=True) as client:
            state = client.read_flow_run(run_uuid).state
    except ObjectNotFound:
        return "deleted"
    return state.name if state is not None and state.is_final() else None
