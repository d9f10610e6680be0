"""How anything reaches an embedded AWS endpoint: fake credentials and a boto3 client factory.

Kept apart from ``local.aws`` so commands that talk to a running serve never import moto.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from local.intrinsics import REGION

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
"""Fake credentials: moto accepts any, and these can never reach a real account."""


def client(service: str, endpoint: str) -> Any:
    """A boto3 client for ``service`` at an embedded endpoint (this process's or a running serve's)."""
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=CREDENTIALS["AWS_SESSION_TOKEN"],
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )
