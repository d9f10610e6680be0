"""Functions: cold init, warm handler time and DynamoDB requests per request, per function and route.

Cold init is the import of a function's ``app`` module in a new interpreter, timed with
``time.perf_counter()`` inside it, as Lambda would run it: the runtime's interpreter and libraries only
(``LAMBDA_PYTHON``, ``.venv-lambda``: boto3/botocore/urllib3 at the runtime's versions, awslambdaric),
the build output (``BUILD_DIR``, this machine's architecture) with the function's built directory
first on ``sys.path`` as /var/task is and the built layer next as /opt/python is (byte-code only, pruned,
as deployed), and the environment Lambda gives the function (template.yaml's variables, Lambda's own,
AWS_ENDPOINT_URL unset, tracing on as ``Tracing: Active`` makes it, so the X-Ray SDK's import and
patching count). The median of ``INIT_RUNS`` runs (with their minimum and maximum, and the machine's
1-minute load average before and after), taken in rounds that visit every function once, so a change
in the machine's load hits all of them alike; the yardsticks, ``import boto3`` alone
and the bare resolver (``bench/bare``), are measured the same way in the same rounds. No function calls
AWS at init (the sources parameter and the warmup secret are read on first use), so init needs no AWS.

Warm handler time, and DynamoDB requests per request cold (init and the first request, with its
post-response work) and warm (steady state), come from ``bench.container``: a new container per route,
in-process moto, the sample request under events/, timed against the bare resolver in the same process.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.container import CACHED_ROUTES, TEMPLATE, TRACING, Route, lambda_variables, routes
from local import ROOT
from local.template import FunctionSpec, Template

INIT_RUNS = 15
BARE_DIR = Path(__file__).parent / "bare"
BUILD_DIR = ROOT / os.environ.get("BUILD_DIR", ".aws-sam/build-x86_64")
LAMBDA_PYTHON = ROOT / os.environ.get("LAMBDA_PYTHON", ".venv-lambda/bin/python")
# Runs in the new interpreter; it leaves without tearing down the modules it imported (not init's work).
INIT_PROBE = """
import os, sys, time
started = time.perf_counter()
__import__(sys.argv[1])
print((time.perf_counter() - started) * 1000, flush=True)
os._exit(0)
"""


@dataclasses.dataclass(frozen=True)
class InitTarget:
    """What a cold init imports (``module``), from which directory, in which environment."""

    name: str
    module: str
    spec: FunctionSpec

    def environment(self, template: Template) -> dict[str, str]:
        # Init only keeps the resources' names and ARNs (table, topic, secret); any value will do.
        return lambda_variables(template, self.spec, {name: f"bench-{name}" for name in template.resources})

    def import_ms(self, environment: dict[str, str]) -> float:
        """One cold init: the import's milliseconds, measured inside a new interpreter."""
        done = subprocess.run(
            [str(LAMBDA_PYTHON), "-s", "-c", INIT_PROBE, self.module],
            cwd=self.spec.code_dir,
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"init of {self.name} failed:\n{done.stderr}")
        return float(done.stdout.strip().splitlines()[-1])


def _init_targets(template: Template, built: Template) -> list[InitTarget]:
    """The yardsticks, then every function as built, named by its source directory."""
    functions = built.functions()
    directories = {logical_id: spec.code_dir.name for logical_id, spec in template.functions().items()}
    any_function = next(iter(functions.values()))
    reference = dataclasses.replace(any_function, code_dir=BARE_DIR, environment={}, name="bench-reference")
    return [
        InitTarget("import boto3", "boto3", reference),
        InitTarget("bare resolver", "app", reference),
        *(InitTarget(directories[logical_id], "app", spec) for logical_id, spec in functions.items()),
    ]


@dataclasses.dataclass(frozen=True)
class InitRounds:
    """Every target's init times, and the machine's 1-minute load average before and after."""

    samples: dict[str, list[float]]
    load_before: float
    load_after: float


def cold_inits(template: Template) -> InitRounds:
    """Every target's init times, ``INIT_RUNS`` rounds over all of them, on the build output."""
    built_template = BUILD_DIR / "template.yaml"
    if not built_template.exists() or not LAMBDA_PYTHON.exists():
        raise RuntimeError(f"{built_template} or {LAMBDA_PYTHON} is missing: run make build-host venv-lambda")
    built = Template(built_template)
    targets = _init_targets(template, built)
    environments = {target.name: target.environment(built) for target in targets}
    samples: dict[str, list[float]] = {target.name: [] for target in targets}
    load_before = os.getloadavg()[0]
    for _ in range(INIT_RUNS):
        for target in targets:
            samples[target.name].append(target.import_ms(environments[target.name]))
    return InitRounds(samples, round(load_before, 2), round(os.getloadavg()[0], 2))


def containers(found: list[Route], *, tracing: bool = False) -> list[dict[str, Any]]:
    """``bench.container``'s measurements of every route (its handler output discarded)."""
    # Only what the container needs before it takes the function's environment from the template: not
    # this process's, which other sections changed.
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "layers" / "shared"), str(ROOT)]),
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    } | ({TRACING: "1"} if tracing else {})
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "containers.json"
        done = subprocess.run(
            [sys.executable, "-m", "bench.container", str(result), *(route.key for route in found)],
            cwd=ROOT,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"bench.container failed:\n{done.stderr[-4000:]}")
        measured: list[dict[str, Any]] = json.loads(result.read_text())
    return measured


def _ops(operations: dict[str, float]) -> str:
    return " ".join(f"{op}x{n:g}" for op, n in operations.items()) or "none"


@functools.cache
def init_rounds() -> InitRounds:
    return cold_inits(Template(TEMPLATE))


def _spread(times: list[float]) -> str:
    return f"{min(times):.0f}-{max(times):.0f}"


@functools.cache
def run() -> list[dict[str, Any]]:
    template = Template(TEMPLATE)
    found = routes(template)
    samples = init_rounds().samples
    inits = {name: statistics.median(times) for name, times in samples.items()}
    boto3_ms, bare_init_ms = inits["import boto3"], inits["bare resolver"]
    measured = containers(found)
    traced = {
        m["route"]: m["warm"] for m in containers([r for r in found if r.key in CACHED_ROUTES], tracing=True)
    }
    memory = {spec.code_dir.name: spec.memory_mb for spec in template.functions().values()}
    bare_warm_ms = statistics.median(m["warm"]["bareMs"] for m in measured)
    rows: list[dict[str, Any]] = [
        {
            "function": "(yardstick)",
            "route": "import boto3",
            "init ms": round(boto3_ms, 1),
            "init min-max ms": _spread(samples["import boto3"]),
            "init x boto3": 1.0,
        },
        {
            "function": "(yardstick)",
            "route": "bare APIGatewayHttpResolver",
            "init ms": round(bare_init_ms, 1),
            "init min-max ms": _spread(samples["bare resolver"]),
            "init x boto3": round(bare_init_ms / boto3_ms, 2),
            "warm ms": round(bare_warm_ms, 3),
            "warm x bare": 1.0,
        },
    ]
    for route, m in zip(found, measured, strict=True):
        init_ms = inits[route.directory]
        rows.append(
            {
                "function": route.directory,
                "route": route.key,
                "memory MB": memory[route.directory],
                "init ms": round(init_ms, 1),
                "init min-max ms": _spread(samples[route.directory]),
                "init x boto3": round(init_ms / boto3_ms, 2),
                "first request ms": round(m["cold"]["ms"], 1),
                "warm ms": round(m["warm"]["ms"], 3),
                "warm p90 ms": round(m["warm"]["p90Ms"], 3),
                "warm x bare": round(m["warm"]["ms"] / m["warm"]["bareMs"], 1),
                **(
                    {
                        "warm ms traced": round(traced[route.key]["ms"], 3),
                        "warm x bare traced": round(traced[route.key]["ms"] / traced[route.key]["bareMs"], 1),
                    }
                    if route.key in traced
                    else {}
                ),
                "samples": m["warm"]["samples"],
                "DynamoDB cold": round(m["init"]["requests"] + m["cold"]["requests"]),
                "DynamoDB warm": m["warm"]["requests"],
                "cold requests": _ops(m["cold"]["operations"]),
                "warm requests": _ops(m["warm"]["operations"]),
                "RCU warm": m["warm"]["rcu"],
                "WCU warm": m["warm"]["wcu"],
            }
        )
    return rows
