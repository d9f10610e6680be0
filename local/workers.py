"""Warm worker processes per function, one invocation at a time each, as Lambda's environments are.

A pool starts a worker on first use and keeps it; concurrent invocations get more workers up to
``max_workers``, then wait for one to come free. Each worker is ``python -m awslambdaric <handler>``
(this interpreter, or one the pool is given, such as one with only what the Lambda runtime ships) in
the function's code directory, its layers importable as from /opt/python, with the environment Lambda
would give it pointed at the embedded AWS. A worker that times out is killed; one that exits is
replaced on the next invocation.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import awslambdaric

from local.endpoint import CREDENTIALS
from local.intrinsics import ACCOUNT_ID, REGION
from local.runtime_api import ExecutionEnvironment, Invocation, Kind, Result, RuntimeAPIServer
from local.template import FunctionSpec

_NO_RESULT = {
    "timeout": ("Sandbox.Timedout", "Task timed out"),
    "crash": ("Runtime.ExitError", "The runtime exited"),
    "throttled": ("TooManyRequestsException", "Every worker stayed busy"),
}
QUEUE_TIMEOUT = 30.0
"""How long an invocation waits for a free worker: API Gateway gives up on its integration at 30 s."""


def environment_text(value: Any) -> str:
    """A resolved template value as an environment variable holds it (lists comma-joined)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return "" if value is None else str(value)


def lambda_environment(spec: FunctionSpec, variables: dict[str, Any], aws_endpoint: str) -> dict[str, str]:
    """The process environment of ``spec``'s workers: its own variables under Lambda's reserved ones."""
    environment = {name: environment_text(value) for name, value in variables.items()}
    environment.update(
        {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "en_US.UTF-8",
            "TZ": ":UTC",
            "PYTHONPATH": os.pathsep.join(map(str, spec.layer_dirs)),
            "PYTHONUNBUFFERED": "1",
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(spec.code_dir),
            "LAMBDA_RUNTIME_DIR": str(Path(awslambdaric.__file__).parent),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": aws_endpoint,
            # A developer's own AWS profile must not redirect or authenticate the functions.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "ARCTURUS_LOCAL": "1",
            **CREDENTIALS,
        }
    )
    if spec.log_format.upper() == "JSON":
        environment["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
    if spec.log_level:
        environment["AWS_LAMBDA_LOG_LEVEL"] = spec.log_level
    return environment


@dataclass(frozen=True)
class Outcome:
    """How an invocation ended: ``kind`` is a Result kind or ``throttled`` (no worker came free)."""

    kind: Kind | Literal["throttled"]
    body: bytes
    worker: str
    cold: bool

    @property
    def payload(self) -> bytes:
        """The function's result, or the error Lambda's Invoke API reports when there is none."""
        if self.body or self.kind not in _NO_RESULT:
            return self.body
        error_type, message = _NO_RESULT[self.kind]
        return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class Worker:
    """One execution environment: a runtime process and the Runtime API server it talks to."""

    def __init__(self, pool: FunctionPool, label: str) -> None:
        self._pool = pool
        self.label = label
        self.environment = ExecutionEnvironment(
            pool.cond,
            self.kill,
            {"functionName": pool.spec.name, "functionVersion": "$LATEST", "handler": pool.spec.handler},
        )
        self._process: subprocess.Popen[bytes] | None = None
        self._server = RuntimeAPIServer(self.environment)

    def start(self) -> None:
        threading.Thread(
            target=self._server.serve_forever, name=f"{self.label} runtime api", daemon=True
        ).start()
        environment = self._pool.variables | {
            "AWS_LAMBDA_RUNTIME_API": self._server.address,
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{self.label}",
        }
        try:
            self._process = subprocess.Popen(
                [self._pool.python, "-m", "awslambdaric", self._pool.spec.handler],
                cwd=self._pool.spec.code_dir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as error:
            self._pool.log(f"[{self.label}] cannot start: {error}")
            self._exited(Result("crash"))
            return
        threading.Thread(target=self._watch, name=f"{self.label} watcher", daemon=True).start()

    def kill(self, why: str) -> None:
        """Stop the process and everything it started (it leads its own session)."""
        if not self._pool.stopping:
            self._pool.log(f"[{self.label}] {why}: stopping the worker")
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)

    def _watch(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            for line in raw.decode(errors="replace").rstrip("\r\n").split("\r"):
                self._pool.log(f"[{self.label}] {line}")
        code = self._process.wait()
        if not self.environment.dead and not self._pool.stopping:
            self._pool.log(f"[{self.label}] exited with code {code}")
        self._exited(Result("crash"))

    def _exited(self, reason: Result) -> None:
        with self._pool.cond:
            self.environment.mark_dead(reason)
            self._pool.workers.remove(self)
            self._pool.cond.notify_all()
        self._server.shutdown()
        self._server.server_close()


class FunctionPool:
    """The execution environments of one function."""

    def __init__(
        self,
        spec: FunctionSpec,
        variables: dict[str, str],
        max_workers: int,
        log: Callable[[str], None],
        python: str = sys.executable,
    ) -> None:
        self.spec = spec
        self.variables = variables
        self.python = python
        self.max_workers = max_workers
        self.log = log
        self.cond = threading.Condition()
        self.workers: list[Worker] = []
        self.stopping = False
        self._numbers = itertools.count(1)
        self.arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.name}"

    def invoke(self, payload: bytes) -> Outcome:
        """Run the function once on ``payload`` (JSON) in a free or new worker; wait for the outcome."""
        invocation = Invocation(payload, self.spec.timeout, self.arn)
        deadline = time.monotonic() + QUEUE_TIMEOUT
        with self.cond:
            while True:
                worker = next((w for w in self.workers if w.environment.available), None)
                cold = worker is None and len(self.workers) < self.max_workers and not self.stopping
                if cold:
                    worker = Worker(self, f"{self.spec.logical_id}#{next(self._numbers)}")
                    self.workers.append(worker)
                if worker is not None:
                    break
                if self.stopping or not self.cond.wait(deadline - time.monotonic()):
                    return Outcome("throttled", b"", self.spec.logical_id, cold=False)
            worker.environment.assign(invocation)
        if cold:
            worker.start()
        invocation.done.wait()
        assert invocation.result is not None
        return Outcome(invocation.result.kind, invocation.result.body, worker.label, cold)

    def stop(self) -> None:
        """Kill every worker and wait until they are gone."""
        with self.cond:
            self.stopping = True
            workers = list(self.workers)
            self.cond.notify_all()
        for worker in workers:
            with self.cond:
                worker.environment.mark_dead(Result("crash"))
            worker.kill("shutting down")
        with self.cond:
            self.cond.wait_for(lambda: not self.workers, timeout=5)
