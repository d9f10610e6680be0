"""The local runtime as users run it: ``python -m local serve`` in a subprocess, spoken to over loopback.

Two servers start once per session, side by side: one on the project's template.yaml, one on the
test-only fixture app (handlers that echo, sleep, crash, hold their environment, count schedules), with
schedules sped up 50 times, two workers per function and environment overrides from its env.json.
Each has its own data directory.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIXTURE_TEMPLATE = ROOT / "tests" / "integration" / "fixture_app" / "template.yaml"
FIXTURE_ENV_VARS = FIXTURE_TEMPLATE.parent / "env.json"
APP_TEMPLATE = ROOT / "template.yaml"
START_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name.lower()]
        return ",".join(values) if values else None

    def json(self) -> Any:
        return json.loads(self.body)


def _environment() -> dict[str, str]:
    environment = {
        k: v for k, v in os.environ.items() if k not in ("PORT", "ARCTURUS_LOCAL_DIR", "KV_TABLE_NAME")
    }
    return environment | {"PYTHONUNBUFFERED": "1"}


class LocalServe:
    """One ``python -m local serve`` process and how to talk to it."""

    def __init__(self, template: Path, data_dir: Path, *options: str) -> None:
        self.template = template
        self.data_dir = data_dir
        self.options = options
        self.port = free_port()
        self.log_path = data_dir.parent / f"{data_dir.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        command = [
            sys.executable,
            "-m",
            "local",
            "serve",
            "--port",
            str(self.port),
            *self._where(),
            *self.options,
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=_environment(), stdout=log, stderr=log)

    def wait_ready(self) -> None:
        """Until the API answers its health check."""
        self.wait_until(lambda: self.request("GET", "/__local/health").status == 200)

    def wait_until(self, ready: Callable[[], bool]) -> None:
        """Until ``ready()`` holds (an OSError counts as not yet); fails the test if serve exits first."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                if ready():
                    return
            except OSError:
                pass
            time.sleep(0.1)
        pytest.fail(f"serve not ready after {START_TIMEOUT_S} s:\n{self.log()}")

    def start(self) -> LocalServe:
        self.launch()
        self.wait_ready()
        return self

    def stop(self) -> int:
        """SIGTERM, as a user's Ctrl-C or a process manager would; the exit status."""
        self.terminate()
        return self.wait()

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _where(self) -> list[str]:
        return ["--template", str(self.template), "--data-dir", str(self.data_dir)]

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: list[tuple[str, str]] | dict[str, str] | None = None,
        body: bytes | str | None = None,
        timeout: float = 30.0,
    ) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            pairs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
            named_host = any(name.lower() == "host" for name, _ in pairs)
            connection.putrequest(method, path, skip_host=named_host, skip_accept_encoding=True)
            payload = body.encode() if isinstance(body, str) else body
            for name, value in pairs:
                connection.putheader(name, value)
            if payload is not None:
                connection.putheader("Content-Length", str(len(payload)))
            connection.endheaders(payload)
            response = connection.getresponse()
            return Response(response.status, response.getheaders(), response.read())
        finally:
            connection.close()

    def get_json(self, path: str, **kwargs: Any) -> Any:
        response = self.request("GET", path, **kwargs)
        assert response.status == 200, (response.status, response.body)
        return response.json()

    def cli(
        self, *arguments: str, stdin: bytes | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """``python -m local <arguments>`` on this server's template and data directory."""
        return run_cli(*arguments, *self._where(), stdin=stdin, check=check)


def run_cli(
    *arguments: str, stdin: bytes | None = None, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "local", *arguments],
        cwd=ROOT,
        env=_environment() | (env or {}),
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if check:
        assert result.returncode == 0, (arguments, result.returncode, result.stdout, result.stderr)
    return result


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalServe, LocalServe]]:
    """The app's and the fixture app's servers, started in parallel."""
    base = tmp_path_factory.mktemp("local")
    app = LocalServe(APP_TEMPLATE, base / "app-data")
    fixture = LocalServe(
        FIXTURE_TEMPLATE,
        base / "fixture-data",
        *("--schedule-scale", "0.02", "--max-workers", "2", "--env-vars", str(FIXTURE_ENV_VARS)),
    )
    for server in (app, fixture):
        server.launch()
    try:
        for server in (app, fixture):
            server.wait_ready()
        yield app, fixture
    finally:
        for server in (app, fixture):
            server.terminate()
        for server in (app, fixture):
            if server.process is not None:
                server.wait()


@pytest.fixture(scope="session")
def app(servers: tuple[LocalServe, LocalServe]) -> LocalServe:
    """``serve`` on the project's template.yaml."""
    return servers[0]


@pytest.fixture(scope="session")
def fixture_app(servers: tuple[LocalServe, LocalServe]) -> LocalServe:
    """``serve`` on tests/integration/fixture_app/template.yaml."""
    return servers[1]
