"""Today's training as the bench's reference: ``models/`` as it was before issue 29, taken from git.

At ``REFERENCE_COMMIT`` training searched on a random 200,000-row sample of the training months for
10 s, then fitted once more on as many rows as the best trial's speed allowed in another 10 s, and
fitted the baseline on every label. Rather than keeping a second copy of that code, the bench
extracts ``models/`` (and ``requirements/``, which the model's logging reads) at that commit with
``git archive`` into ``<work>/reference-<commit>/`` and puts the folder first on the child's
PYTHONPATH: ``bench.child train`` then runs the old ``train_model`` unchanged, on the same file, so
the split is the same and only the procedure differs.
"""

from __future__ import annotations

import io
import logging
import shutil
import subprocess
import tarfile
from pathlib import Path

from bench.measure import ROOT

log = logging.getLogger(__name__)

REFERENCE_COMMIT = "c953d92"  # the last commit before issue 29 changed training
REFERENCE_PATHS = ("models", "requirements")
COMPLETE = ".complete"


def ensure_reference_tree(work: Path, commit: str = REFERENCE_COMMIT) -> Path:
    """The folder holding ``models/`` at ``commit``, extracted from git unless a finished one is there."""
    folder = work / f"reference-{commit}"
    if (folder / COMPLETE).is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", commit, *REFERENCE_PATHS], cwd=ROOT, capture_output=True, check=False
    )
    if archive.returncode != 0:
        why = archive.stderr.decode(errors="replace").strip()
        raise RuntimeError(
            f"git archive {commit} failed ({why}); the bench needs that commit: git fetch --unshallow."
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    (folder / COMPLETE).touch()
    log.info("training reference: models/ at %s in %s", commit, folder)
    return folder
