"""The function's configuration: its environment variables, read once per container.

``settings()`` reads and checks every variable the layer knows on first use (at init, since the
functions build their clients and stores then); a malformed value, or a missing one that the function
needs, fails the init with a ``SettingsError`` naming the variable, instead of a KeyError or a surprise
on some later request. Lambda never changes a container's environment, so neither does this.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from arcturus.container import per_container

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_RETENTION_DAYS",
    "MAX_RETENTION_DAYS",
    "Settings",
    "SettingsError",
    "settings",
]

DEFAULT_NAMESPACE: Final = "ARGOBOX_CACHE"
DEFAULT_RETENTION_DAYS: Final = 90
MAX_RETENTION_DAYS: Final = 3_650
CHAT_PROVIDERS: Final = ("bedrock", "local")


class SettingsError(RuntimeError):
    """A variable of the function's environment is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    """Every variable the layer reads, parsed. Empty strings stand for unset optional variables."""

    kv_table_name: str = ""
    """``KV_TABLE_NAME``: the KV table (template: the ``KVTable`` resource)."""
    kv_namespace: str = DEFAULT_NAMESPACE
    """``KV_NAMESPACE``: which namespace of the table (Workers' binding name)."""
    require_email_verified: bool = True
    """``REQUIRE_EMAIL_VERIFIED``: ``false`` trusts an issuer that sends no ``email_verified`` claim."""
    contact_topic_arn: str = ""
    """``CONTACT_TOPIC_ARN``: where contact messages are published."""
    contact_retention_days: int = DEFAULT_RETENTION_DAYS
    """``CONTACT_RETENTION_DAYS``: how long contact messages are kept, 1 to 3650."""
    chat_provider: str = "bedrock"
    """``CHAT_PROVIDER``: ``bedrock`` or ``local`` (the echo model)."""
    chat_model_id: str = ""
    """``CHAT_MODEL_ID``: the Bedrock model the chat asks."""
    sources_config: str | None = None
    """``SOURCES_CONFIG``: the sources document itself, when set (else ``SOURCES_PARAMETER`` names it)."""
    sources_parameter: str = ""
    """``SOURCES_PARAMETER``: the SSM parameter holding the sources document."""
    cache_warmup_secret_arn: str = ""
    """``CACHE_WARMUP_SECRET_ARN``: the secret the warmup route's bearer token must equal."""
    runtime_api: str = ""
    """``AWS_LAMBDA_RUNTIME_API``: set by Lambda (and the local runtime); empty in a plain process."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Parse ``env``; SettingsError naming the first malformed variable."""
        retention = env.get("CONTACT_RETENTION_DAYS", str(DEFAULT_RETENTION_DAYS))
        if not retention.isdigit() or not 1 <= int(retention) <= MAX_RETENTION_DAYS:
            raise SettingsError(
                f"CONTACT_RETENTION_DAYS must be whole days from 1 to {MAX_RETENTION_DAYS}, not {retention!r}"
            )
        provider = env.get("CHAT_PROVIDER", "bedrock").strip().lower()
        if provider not in CHAT_PROVIDERS:
            raise SettingsError(f"CHAT_PROVIDER must be 'bedrock' or 'local', not {provider!r}")
        return cls(
            kv_table_name=env.get("KV_TABLE_NAME", "").strip(),
            kv_namespace=env.get("KV_NAMESPACE", "").strip() or DEFAULT_NAMESPACE,
            require_email_verified=env.get("REQUIRE_EMAIL_VERIFIED", "true") != "false",
            contact_topic_arn=env.get("CONTACT_TOPIC_ARN", "").strip(),
            contact_retention_days=int(retention),
            chat_provider=provider,
            chat_model_id=env.get("CHAT_MODEL_ID", "").strip(),
            sources_config=env.get("SOURCES_CONFIG"),
            sources_parameter=env.get("SOURCES_PARAMETER", "").strip(),
            cache_warmup_secret_arn=env.get("CACHE_WARMUP_SECRET_ARN", "").strip(),
            runtime_api=env.get("AWS_LAMBDA_RUNTIME_API", "").strip(),
        )

    @property
    def kv_table(self) -> str:
        return _required(self.kv_table_name, "KV_TABLE_NAME", "the function has no KV table configured")

    @property
    def contact_topic(self) -> str:
        return _required(self.contact_topic_arn, "CONTACT_TOPIC_ARN", "the contact form has no topic")

    @property
    def chat_model(self) -> str:
        return _required(self.chat_model_id, "CHAT_MODEL_ID", "the chat has no Bedrock model to ask")

    @property
    def warmup_secret(self) -> str:
        return _required(self.cache_warmup_secret_arn, "CACHE_WARMUP_SECRET_ARN", "the warmup has no secret")


def _required(value: str, variable: str, why: str) -> str:
    if not value:
        raise SettingsError(f"{variable} is not set: {why}")
    return value


@per_container
def settings() -> Settings:
    """This container's settings, read from its environment on first use."""
    return Settings.from_env(os.environ)
