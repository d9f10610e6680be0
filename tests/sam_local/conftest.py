"""``sam local`` for real: Docker, a stand-in for Lambda's base image, and the embedded AWS it talks to.

Run by ``make sam-local-check`` (not by ``make test``), which builds this machine's variant of the
functions first and hands over ``BUILD_DIR``, ``SAM``, ``PYTHON`` (a CPython 3.13 to copy into the image)
and ``HOST_ARCH``. Everything these fixtures start, they stop: the serve, sam local, the containers, and
dockerd when they started it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, LocalServe, free_port

TOOLS = ROOT / "tools" / "sam-local"
BUILD_DIR = ROOT / os.environ.get("BUILD_DIR", ".aws-sam/build-x86_64")
SAM = os.environ.get("SAM", str(ROOT / ".venv-sam" / "bin" / "sam"))
PYTHON = os.environ.get("PYTHON", "python3.13")
ARCH = os.environ.get("HOST_ARCH", "x86_64")
IMAGE = f"arcturus-lambda-python:3.13-{ARCH}"
"""The stand-in base image, a local name handed to sam local with --invoke-image."""


@dataclass(frozen=True)
class SamLocal:
    """How to run ``sam local`` against the embedded AWS of a ``serve --aws-only``."""

    env_vars: Path
    warmup_secret: str
    events: Path

    def options(self) -> list[str]:
        return [
            "--template",
            str(BUILD_DIR / "template.yaml"),
            "--env-vars",
            str(self.env_vars),
            "--invoke-image",
            IMAGE,
            "--skip-pull-image",
            "--add-host",
            "host.docker.internal:host-gateway",
        ]


def _run(*command: str, timeout: float = 600) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, (command, done.stdout[-3000:], done.stderr[-3000:])
    return done.stdout


@pytest.fixture(scope="session")
def docker() -> Iterator[None]:
    """A running Docker engine (installed and started when missing; stopped again if we started it)."""
    started = _run(str(TOOLS / "docker.sh")).strip()
    try:
        yield
    finally:
        if started:
            os.kill(int(started), signal.SIGTERM)


@pytest.fixture(scope="session")
def base_image(docker: None) -> str:
    """The stand-in base image, built once and then cached by Docker."""
    print(_run(str(TOOLS / "base-image.sh"), IMAGE, PYTHON, str(ROOT / "requirements-runtime.txt")))
    return IMAGE


@pytest.fixture(scope="session")
def sam_local(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SamLocal]:
    """``serve --aws-only`` on the build, listening on the Docker bridge (not on every interface)."""
    if not (BUILD_DIR / "template.yaml").exists():
        pytest.fail(f"{BUILD_DIR} is missing: run `make build-host` first")
    bridge = _run(
        "docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"
    ).strip()
    base = tmp_path_factory.mktemp("sam-local")
    server = LocalServe(
        BUILD_DIR / "template.yaml",
        base / "data",
        *("--aws-only", "--host", bridge, "--aws-port", str(free_port())),
    )
    server.launch()
    try:
        env_vars = server.data_dir / "sam-env.json"
        server.wait_until((server.data_dir / "serve.json").exists)
        secret = json.loads((server.data_dir / "secrets.json").read_text())["CacheWarmupSecret"]
        events = base / "events"
        events.mkdir()
        yield SamLocal(env_vars, secret, events)
    finally:
        server.stop()
