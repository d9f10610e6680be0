"""Fixtures shared by every suite: an in-process moto DynamoDB with the KV table, and a clock to travel."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

# Powertools reads these once, when the first module imports it: set them before any test imports arcturus.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "ArcturusTest")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "1")

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from arcturus import container
from arcturus.kv import KVNamespace
from arcturus.kvstore import create_table

TABLE = "arcturus-kv-test"


class Clock:
    """Epoch seconds that a test moves by hand (time travel for expiry and windows)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = start if start is not None else time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and region; in-process moto answers every AWS call."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "KV_TABLE_NAME": TABLE,
        "KV_NAMESPACE": "ARGOBOX_CACHE",
        "POWERTOOLS_TRACE_DISABLED": "1",
        "POWERTOOLS_METRICS_NAMESPACE": "ArcturusTest",
        "POWERTOOLS_SERVICE_NAME": "arcturus",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    container.reset()  # a new container: its settings and clients come from this environment
    with mock_aws():
        yield


@pytest.fixture
def serialized_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make each in-process moto request atomic, as DynamoDB is per item.

    moto has no per-table lock: under thread contention two conditional writes can both pass, which
    would make a concurrency test prove nothing. This serialises moto (the fake), not our code.
    """
    lock = threading.Lock()
    original = BotocoreStubber.__call__

    def locked(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, event_name, request, **kwargs)

    monkeypatch.setattr(BotocoreStubber, "__call__", locked)


@pytest.fixture
def dynamodb(aws_env: None) -> Any:
    """A DynamoDB client on moto with the KV table created as template.yaml declares it."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    create_table(client, TABLE)
    return client


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kv(dynamodb: Any, clock: Clock) -> KVNamespace:
    """The ARGOBOX_CACHE namespace on the moto table, on the test's clock."""
    return KVNamespace(TABLE, client=dynamodb, clock=clock)
