"""The input files as every peer sees them: CSVs in name order, ZIPs unpacked to a scratch folder.

Plain Python (``zipfile``), as a user would write it once beside any engine: nested ZIPs are
unpacked too, ``__MACOSX`` junk and dot-folders skipped, and each CSV is reported under the same
name as ``models.data.preprocess`` reports it (``2020/x.zip!folder/y.csv``). A file that is not
UTF-8 (the 2021 files are cp1252) is transcoded to a UTF-8 copy when the engine refuses it.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from bench.peers.rules import Layout, detect_layout

HEAD_BYTES = 64 * 1024
SUFFIXES = (".csv", ".zip")


@dataclass(frozen=True)
class CsvInput:
    """One CSV to clean: its reported name, where it is on disk, its era layout."""

    source: str
    path: Path
    layout: Layout


def hidden(parts: tuple[str, ...]) -> bool:
    return any(part == "__MACOSX" or part.startswith(".") for part in parts)


def unpack(path: Path, source: str, scratch: Path) -> list[tuple[str, Path]]:
    """The CSVs of a ZIP (nested ZIPs too), extracted under numbered names in ``scratch``."""
    found = []
    with zipfile.ZipFile(path) as archive:
        for number, info in enumerate(archive.infolist()):
            inner = PurePosixPath(info.filename)
            if info.is_dir() or hidden(inner.parts) or inner.name.startswith("._"):
                continue
            suffix = inner.suffix.lower()
            if suffix not in SUFFIXES:
                continue
            target = scratch / f"{scratch.name}_{number}{suffix}"
            target.write_bytes(archive.read(info))
            name = f"{source}!{info.filename}"
            if suffix == ".zip":
                nested = scratch / f"{target.stem}_unzipped"
                nested.mkdir()
                found += unpack(target, name, nested)
            else:
                found.append((name, target))
    return found


def read_header(path: Path) -> str:
    """The header line, UTF-8 or else cp1252."""
    with path.open("rb") as src:
        head = src.read(HEAD_BYTES)
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        return first.decode("utf-8")
    except UnicodeDecodeError:
        return first.decode("cp1252")


def list_csvs(input_dir: str | Path, scratch: Path) -> list[CsvInput]:
    """Every CSV of the input in name order, with its era (an unknown header is an error)."""
    root = Path(input_dir)
    found: list[tuple[str, Path]] = []
    for number, path in enumerate(sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES)):
        relative = path.relative_to(root)
        if not path.is_file() or hidden(relative.parts):
            continue
        if path.suffix.lower() == ".zip":
            folder = scratch / f"zip_{number}"
            folder.mkdir(parents=True)
            found += unpack(path, relative.as_posix(), folder)
        else:
            found.append((relative.as_posix(), path))
    return [CsvInput(source, path, detect_layout(read_header(path), source)) for source, path in found]


def utf8_copy(csv: CsvInput, scratch: Path) -> Path:
    """A UTF-8 copy of a cp1252 file (the five bytes cp1252 leaves undefined become U+FFFD)."""
    target = scratch / f"utf8_{hashlib.sha256(csv.source.encode()).hexdigest()[:16]}.csv"
    target.write_text(csv.path.read_bytes().decode("cp1252", errors="replace"), encoding="utf-8")
    return target
