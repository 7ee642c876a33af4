"""Unpacking the yearly ZIPs: sub-folders, a ZIP inside the ZIP (November 2022), ``__MACOSX`` junk.

Entries are extracted under generated names (an entry called ``../../x.csv`` is read, never
written outside the scratch folder). Declared sizes are checked before anything is extracted,
and nesting is bounded, so a ZIP bomb is refused with a one-sentence error instead of filling
the disk. Entries are reported as ``outer.zip!folder/inner.zip!file.csv``.
"""

from __future__ import annotations

import logging
import shutil
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from models.core.errors import UserError

log = logging.getLogger(__name__)

COPY_CHUNK = 8 * 1024 * 1024
MAX_DEPTH = 3  # the real files nest two levels at most
MAX_ENTRY_BYTES = 4 * 1024**3  # one CSV entry (a whole year is about 1 GB)
MAX_TOTAL_BYTES = 16 * 1024**3  # everything one input unpacks to, nested levels included
MEMBER_SUFFIXES = (".csv", ".zip")


@dataclass(frozen=True)
class CsvFile:
    """One CSV to read: where it is on disk and the name it is reported under."""

    source: str
    path: Path


@dataclass
class Budget:
    """Declared bytes still allowed for one input."""

    left: int = MAX_TOTAL_BYTES

    def take(self, size: int, source: str) -> None:
        """Reserve ``size`` declared bytes; refuse an entry or a total beyond the limits."""
        if size > MAX_ENTRY_BYTES or size > self.left:
            raise UserError(
                f"ZIP entry {source} declares {size / 1024**3:.1f} GB uncompressed, beyond the "
                f"{MAX_ENTRY_BYTES // 1024**3} GB per entry or {MAX_TOTAL_BYTES // 1024**3} GB per input."
            )
        self.left -= size


def is_junk(name: str) -> bool:
    """ZIP entries that are not data: macOS resource forks and folders."""
    parts = PurePosixPath(name).parts
    return name.endswith("/") or "__MACOSX" in parts or (bool(parts) and parts[-1].startswith("._"))


def data_entries(archive: zipfile.ZipFile, source: str) -> list[zipfile.ZipInfo]:
    """The CSV and ZIP entries of an archive, junk and other files skipped."""
    entries = []
    for info in archive.infolist():
        if is_junk(info.filename):
            continue
        if PurePosixPath(info.filename).suffix.lower() not in MEMBER_SUFFIXES:
            log.info("skipping %s!%s: not a CSV or ZIP", source, info.filename)
            continue
        entries.append(info)
    return entries


def unpack_zip(
    path: Path, dest: Path, source: str, depth: int = 1, budget: Budget | None = None
) -> list[CsvFile]:
    """Every CSV inside a ZIP, nested ZIPs included; corrupt, empty or oversized archives are UserErrors."""
    budget = budget or Budget()
    if depth > MAX_DEPTH:
        raise UserError(f"ZIP {source} nests ZIPs more than {MAX_DEPTH} levels deep; refusing to unpack it.")
    found: list[CsvFile] = []
    try:
        with zipfile.ZipFile(path) as archive:
            entries = data_entries(archive, source)
            for info in entries:
                budget.take(info.file_size, f"{source}!{info.filename}")
            for number, info in enumerate(entries):
                found.extend(extract_entry(archive, info, dest / f"member_{number}", source, depth, budget))
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError) as exc:
        raise UserError(f"File {source} is not a readable ZIP archive ({exc}).") from exc
    if not found:
        raise UserError(f"ZIP {source} holds no CSV files.")
    return found


def extract_entry(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, source: str, depth: int, budget: Budget
) -> list[CsvFile]:
    """Extract one entry under a generated name; recurse into a nested ZIP."""
    inner = f"{source}!{info.filename}"
    suffix = PurePosixPath(info.filename).suffix.lower()
    target = target.with_suffix(suffix)
    with archive.open(info) as src, target.open("wb") as out:
        shutil.copyfileobj(src, out, COPY_CHUNK)
    if suffix == ".zip":
        nested = target.with_name(f"{target.stem}_unzipped")
        nested.mkdir()
        return unpack_zip(target, nested, inner, depth + 1, budget)
    return [CsvFile(source=inner, path=target)]
