"""What ``sam build`` ships, run as Lambda runs it: every function imported and invoked from the build
output, on only what the Lambda runtime provides.

The functions' interpreter (``LAMBDA_PYTHON``, ``.venv-lambda`` made by ``make test``) holds the boto3,
botocore and urllib3 versions of the python3.13 runtime and awslambdaric, nothing else; a worker's path
is its built CodeUri directory and the built layer (``BUILD_DIR``, this machine's architecture), never
the source tree. A module missing from the layer, a wrong handler path or a wheel for another Python or
platform fails here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, LocalServe
from tests.sample_events import SAMPLES, SampleEvent

pytestmark = pytest.mark.integration

BUILD_DIR = ROOT / os.environ.get("BUILD_DIR", ".aws-sam/build-x86_64")
LAMBDA_PYTHON = ROOT / os.environ.get("LAMBDA_PYTHON", ".venv-lambda/bin/python")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServe]:
    """``serve`` on the built template, its functions on the runtime's interpreter."""
    for path, how in ((BUILD_DIR / "template.yaml", "make build-host"), (LAMBDA_PYTHON, "make test")):
        if not path.exists():
            pytest.fail(f"{path} is missing: run `{how}` first")
    server = LocalServe(
        BUILD_DIR / "template.yaml", tmp_path_factory.mktemp("built") / "data", "--python", str(LAMBDA_PYTHON)
    )
    server.start()
    yield server
    server.stop()


def _secret(server: LocalServe) -> str:
    secret: str = json.loads((server.data_dir / "secrets.json").read_text())["CacheWarmupSecret"]
    return secret


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda sample: sample.event)
def test_every_function_answers_its_sample_event_from_the_build_output(
    built: LocalServe, sample: SampleEvent
) -> None:
    response = built.request(
        "POST", f"/__local/invoke/{sample.function}", body=json.dumps(sample.payload(_secret(built)))
    )

    assert response.status == 200, built.log()[-3000:]
    assert response.header("X-Function-Error") is None, response.body
    sample.check(response.json())


def test_the_runtime_interpreter_has_only_what_lambda_ships() -> None:
    # The premise of the tests above: no package of the dev environment or the source tree leaks in.
    probe = (
        "import importlib.util as u; print([m for m in ('moto', 'arcturus', 'pydantic') if u.find_spec(m)])"
    )
    found = subprocess.run(
        [str(LAMBDA_PYTHON), "-c", probe], capture_output=True, text=True, check=True, cwd=Path("/")
    ).stdout

    assert found.strip() == "[]"


def test_the_layer_ships_byte_code_whose_tracebacks_name_file_and_line() -> None:
    # The built layer has no sources beside its byte-code; an error in it must still say where it was.
    layer = BUILD_DIR / "SharedLayer" / "python"
    failing = "from arcturus.kv import KVNamespace; KVNamespace('t', client=object()).put('', 'v')"
    crashed = subprocess.run(
        [str(LAMBDA_PYTHON), "-c", failing],
        check=False,
        capture_output=True,
        text=True,
        cwd=Path("/"),
        env={"PYTHONPATH": str(layer), "AWS_DEFAULT_REGION": "us-east-1"},
    )

    assert not list(layer.rglob("*.py"))
    assert crashed.returncode == 1
    assert re.search(r'File "/opt/python/arcturus/kv\.py", line \d+, in put', crashed.stderr), crashed.stderr
    assert crashed.stderr.rstrip().endswith("ValueError: key must be a non-empty string")
