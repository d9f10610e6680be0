"""Layer: the built shared layer's size, unpacked (what Lambda counts against 250 MB) and zipped.

The layer ``make template`` built (``.aws-sam/build-arm64/SharedLayer``) when there is one, else a build of
the same Makefile target into a temporary directory (arm64 wheels for CPython 3.13, as SAM builds it).
Zipped as SAM zips it (deflate); the largest parts are listed, dist-info directories with their package.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BUILT = ROOT / ".aws-sam" / "build-arm64" / "SharedLayer"
UNZIPPED_LIMIT_MB = 250
"""Lambda's limit on a function and its layers, unzipped (in MiB, as Lambda counts it)."""
LISTED_PARTS = 6
MIB = 1024 * 1024


def _part(relative: Path) -> str:
    """The package a file belongs to: ``python/pydantic`` for pydantic-2.x.dist-info/RECORD too."""
    top = relative.parts[:2]
    name = top[-1].split("-")[0].removesuffix(".py") if len(top) == 2 else top[0]
    return "/".join([*top[:-1], name])


def measure(layer: Path) -> list[dict[str, Any]]:
    """Rows for the largest parts of ``layer``, then the whole layer."""
    files = [path for path in sorted(layer.rglob("*")) if path.is_file()]
    unpacked: Counter[str] = Counter()
    zipped: Counter[str] = Counter()
    count: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "layer.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in files:
                out.write(path, path.relative_to(layer).as_posix())
        with zipfile.ZipFile(archive) as done:
            for info in done.infolist():
                part = _part(Path(info.filename))
                unpacked[part] += info.file_size
                zipped[part] += info.compress_size
                count[part] += 1
        zip_bytes = archive.stat().st_size

    def row(part: str, size: int, packed: int, n: int) -> dict[str, Any]:
        return {
            "part": part,
            "files": n,
            "unpacked MiB": round(size / MIB, 2),
            "zipped MiB": round(packed / MIB, 2),
        }

    largest = [part for part, _ in unpacked.most_common(LISTED_PARTS)]
    rest = [part for part in unpacked if part not in largest]
    rows = [row(part, unpacked[part], zipped[part], count[part]) for part in largest]
    rows.append(
        row(
            f"{len(rest)} more",
            sum(unpacked[p] for p in rest),
            sum(zipped[p] for p in rest),
            sum(count[p] for p in rest),
        )
    )
    total = sum(unpacked.values())
    rows.append(
        row("whole layer", total, zip_bytes, len(files))
        | {f"of the {UNZIPPED_LIMIT_MB} MB limit": f"{total / (UNZIPPED_LIMIT_MB * MIB):.1%}"}
    )
    return rows


class _Build:
    """The layer's Makefile target building into a temporary directory, in the background."""

    COMMAND = ("make", "-s", "-C", str(ROOT / "layers" / "shared"), "build-SharedLayer")

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self._process = subprocess.Popen(
            [*self.COMMAND, f"ARTIFACTS_DIR={self._dir.name}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def measure(self) -> list[dict[str, Any]]:
        _, errors = self._process.communicate()
        try:
            if self._process.returncode != 0:
                raise RuntimeError(f"{' '.join(self.COMMAND)} failed:\n{errors}")
            return measure(Path(self._dir.name))
        finally:
            self._dir.cleanup()


@functools.cache
def _source() -> Path | _Build:
    """The layer ``make template`` built, else a build of our own (decided once per run)."""
    return BUILT if BUILT.is_dir() else _Build()


def prepare() -> None:
    """Start building the layer now, if it must be built, while sections that time nothing run: the
    build takes a while and would disturb the sections that time handlers."""
    _source()


@functools.cache
def run() -> list[dict[str, Any]]:
    source = _source()
    return measure(source) if isinstance(source, Path) else source.measure()


def notes() -> list[str]:
    source = _source()
    built = f"{BUILT.relative_to(ROOT)}, from make template" if isinstance(source, Path) else "a fresh build"
    return [f"measured: {built}; zipped with deflate as SAM zips it"]
