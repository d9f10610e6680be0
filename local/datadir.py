"""The local data directory (``.local/`` unless ``--data-dir`` or ``ARCTURUS_LOCAL_DIR`` say otherwise).

It holds the tables' snapshots, the generated secrets, the authorizer's key pair and, while a serve
runs, ``serve.json`` telling the other commands where its endpoints are. An exclusive lock on
``serve.lock`` makes one data directory belong to one process at a time: a second serve refuses to
start, and the one-shot commands talk to the running serve instead of loading the data themselves.
"""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from local import ROOT, LocalError


@dataclass(frozen=True)
class ServeInfo:
    """Where a running ``serve`` listens, and what the one-shot commands need to reach its data."""

    pid: int
    api: str
    """Empty for ``serve --aws-only``."""
    aws: str
    issuer: str
    audience: list[str]
    kv_table: str
    kv_namespace: str


class DataDirBusy(LocalError):
    """Another process holds the data directory."""


class DataDir:
    def __init__(self, path: str | Path | None = None) -> None:
        chosen = path or os.environ.get("ARCTURUS_LOCAL_DIR") or ROOT / ".local"
        self.path = Path(chosen).resolve()
        self.tables = self.path / "dynamodb"
        self.secrets = self.path / "secrets.json"
        self.keys = self.path / "jwt"
        self._serve_file = self.path / "serve.json"
        self._lock_file: IO[str] | None = None

    def lock(self) -> None:
        """Take the directory for this process; DataDirBusy when another one has it."""
        self.path.mkdir(parents=True, exist_ok=True)
        handle = (self.path / "serve.lock").open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise DataDirBusy(f"{self.path} is in use by another local runtime process") from None
        self._lock_file = handle

    def unlock(self) -> None:
        self._serve_file.unlink(missing_ok=True)
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    def publish(self, info: ServeInfo) -> None:
        """Tell the other commands where this serve listens (removed again by ``unlock``)."""
        partial = self._serve_file.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(info), indent=2) + "\n")
        os.replace(partial, self._serve_file)

    def claim(self) -> ServeInfo | None:
        """Lock the directory for this process (None), or where the serve holding it listens."""
        try:
            self.lock()
        except DataDirBusy:
            if self._serve_file.exists():
                return ServeInfo(**json.loads(self._serve_file.read_text()))
            raise DataDirBusy(f"{self.path} is in use but its serve is not ready yet; try again") from None
        self._serve_file.unlink(missing_ok=True)  # left by a serve that was killed
        return None

    def running(self) -> ServeInfo | None:
        """The serve that holds this directory, or None when none is running (nothing stays locked)."""
        info = self.claim()
        if info is None:
            self.unlock()
        return info
