"""The AWS side of the in-process benchmarks: a moto account with the KV table, and quiet handlers."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from moto import mock_aws

TABLE = "arcturus-kv-bench"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}


@contextmanager
def kv_table() -> Iterator[Any]:
    """Yield a DynamoDB client on moto with the KV table created as template.yaml declares it; the
    environment points handlers at it."""
    os.environ.update(
        FAKE_CREDENTIALS,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        KV_TABLE_NAME=TABLE,
        KV_NAMESPACE="ARGOBOX_CACHE",
        POWERTOOLS_TRACE_DISABLED="1",
        POWERTOOLS_METRICS_NAMESPACE="ArcturusBench",
        POWERTOOLS_SERVICE_NAME="arcturus",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from arcturus import container  # after the environment is set: Powertools reads it once
    from arcturus.kvstore import create_table

    container.reset()  # a new container: its settings and clients come from this environment

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client, TABLE)
        yield client


@contextmanager
def handler_output_discarded() -> Iterator[None]:
    """Call handlers in this process without their logs and EMF metrics drowning the tables.

    The shared Metrics was built before ``kv_table()`` set the environment, so it gets its namespace
    here; buffered metrics are dropped on the way out so a later section flushes none of them.
    """
    from arcturus.observability import metrics

    metrics.namespace = os.environ["POWERTOOLS_METRICS_NAMESPACE"]
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "No application metrics to publish", once per request
            yield
    finally:
        logging.disable(logging.NOTSET)
        metrics.clear_metrics()
