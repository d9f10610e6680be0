"""The container's AWS clients: where they send requests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arcturus import aws, container


@pytest.fixture
def fresh_clients() -> Iterator[None]:
    """Clients built by the test alone, and none of them left for the next test."""
    container.reset()
    yield
    container.reset()


@pytest.mark.usefixtures("fresh_clients")
def test_an_empty_endpoint_variable_leaves_the_regional_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # template.yaml declares AWS_ENDPOINT_URL empty in every deployed function.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    assert aws.client("dynamodb").meta.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"


@pytest.mark.usefixtures("fresh_clients")
def test_an_endpoint_variable_redirects_every_client(monkeypatch: pytest.MonkeyPatch) -> None:
    # How the local runtime and sam local point the functions at the embedded AWS.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://host.docker.internal:4566")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")

    assert aws.client("dynamodb").meta.endpoint_url == "http://host.docker.internal:4566"
    assert aws.client("sns").meta.endpoint_url == "http://host.docker.internal:4566"


@pytest.mark.usefixtures("aws_env", "fresh_clients")
def test_a_reset_forgets_what_the_container_kept() -> None:
    from arcturus.ratelimit import container_limiter
    from arcturus.roles import roles_store

    kept = (aws.client("dynamodb"), roles_store(), container_limiter())
    assert (aws.client("dynamodb"), roles_store(), container_limiter()) == kept  # reused while warm

    container.reset()

    rebuilt = (aws.client("dynamodb"), roles_store(), container_limiter())
    assert all(new is not old for new, old in zip(rebuilt, kept, strict=True))
