"""The public chat: conversations kept in KV for 24 h after their last message, answered by a model.

Keys (the original schema): ``ai:conversation:<id>`` holds the history, ``session:<id>`` a small record
of the session (created, last active, messages, model). Both expire ``SESSION_TTL_S`` after the last
message; each message renews both. The conversation is the record: once a turn is stored, a session
record that cannot be written is logged and counted (``ChatSessionNotRecorded``), not an error. The
history is bounded (``MAX_HISTORY_TURNS`` turns and ``MAX_HISTORY_BYTES`` of JSON, oldest exchanges
dropped first), which also bounds what each message costs at the model. The conversation is written
by compare-and-set, so two messages sent at once on one session cannot silently drop each other's
turns: the later one gets 409.

The model is chosen by configuration: ``CHAT_PROVIDER=bedrock`` answers with Amazon Bedrock's Converse
API and the model ``CHAT_MODEL_ID``; ``CHAT_PROVIDER=local`` with ``LocalEchoModel``, a deterministic
stand-in for the local runtime and tests (no network, no account).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Final, Literal, Protocol

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from arcturus import aws
from arcturus.errors import (
    Contended,
    NotFound,
    StoreUnavailable,
    UpstreamBusy,
    UpstreamFailed,
    VersionConflict,
)
from arcturus.formats import BLANK, iso8601, wire_body
from arcturus.kv import KVNamespace
from arcturus.observability import logger, metrics
from arcturus.settings import settings

__all__ = [
    "MAX_HISTORY_BYTES",
    "MAX_HISTORY_TURNS",
    "MAX_MESSAGE_CHARS",
    "MAX_REPLY_TOKENS",
    "SESSION_TTL_S",
    "SYSTEM_PROMPT",
    "UUID_PATTERN",
    "BedrockModel",
    "ChatModel",
    "ChatReply",
    "ChatRequest",
    "LocalEchoModel",
    "PublicChat",
    "Turn",
    "bounded",
    "model_from_env",
]

SESSION_TTL_S: Final = 24 * 3600
MAX_MESSAGE_CHARS: Final = 4000
MAX_HISTORY_TURNS: Final = 20
"""Turns kept (a turn is one message or one reply): the last 10 exchanges."""
MAX_HISTORY_BYTES: Final = 32 * 1024
"""JSON size the kept history may reach; the latest exchange is always kept whatever its size."""
MAX_REPLY_TOKENS: Final = 512
SYSTEM_PROMPT: Final = (
    "You are the assistant on the public site of Arcturus-Prime, a self-hosted infrastructure dashboard. "
    "Answer visitors' questions about the project briefly and plainly. You cannot see the owner's "
    "systems, accounts or private data; say so when asked about them."
)
UUID_PATTERN: Final = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

_MODEL_BUSY = frozenset(
    {"ThrottlingException", "ServiceUnavailableException", "ModelNotReadyException", "ModelTimeoutException"}
)


class ChatRequest(BaseModel):
    """The body of ``POST /api/public/chat``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    message: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_MESSAGE_CHARS),
        # For the OpenAPI document: surrounding whitespace is stripped, so some other character must stay.
        Field(json_schema_extra={"pattern": f"[^{BLANK}]"}),
    ]
    session_id: Annotated[str | None, Field(alias="sessionId", pattern=UUID_PATTERN)] = None


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    text: str


@wire_body
class ChatReply(TypedDict):
    sessionId: Annotated[str, Field(description="Send it back as sessionId to continue the conversation.")]
    reply: str


class ChatModel(Protocol):
    """What answers a message, given the conversation so far (alternating turns, user first)."""

    name: str

    def reply(self, history: Sequence[Turn], message: str) -> str: ...


class LocalEchoModel:
    """A deterministic local stand-in for Bedrock: the same conversation always gets the same reply."""

    name = "local-echo"

    def reply(self, history: Sequence[Turn], message: str) -> str:
        exchange = len(history) // 2 + 1
        return f"[local echo model] Message {exchange} of this conversation: {message}"


class BedrockModel:
    """Amazon Bedrock's Converse API with ``model_id`` (any model Converse supports)."""

    def __init__(self, model_id: str, *, client: Any = None) -> None:
        self.name = model_id
        self._client = client if client is not None else aws.client("bedrock-runtime")

    def reply(self, history: Sequence[Turn], message: str) -> str:
        turns = [*history, Turn("user", message)]
        try:
            response = self._client.converse(
                modelId=self.name,
                system=[{"text": SYSTEM_PROMPT}],
                messages=[{"role": turn.role, "content": [{"text": turn.text}]} for turn in turns],
                inferenceConfig={"maxTokens": MAX_REPLY_TOKENS, "temperature": 0.3},
            )
        except (ClientError, BotoCoreError) as error:
            raise _model_failed(error) from error
        content = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(part.get("text", "") for part in content).strip()
        return text or "I cannot answer that."


def _model_failed(error: ClientError | BotoCoreError) -> UpstreamBusy | UpstreamFailed:
    code = error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""
    metrics.add_metric(name="ChatModelFailed", unit="Count", value=1)
    if isinstance(error, BotoCoreError) or code in _MODEL_BUSY:
        logger.warning("chat model busy", extra={"error": str(error)})
        return UpstreamBusy("The assistant is busy; try again shortly.", retry_after_s=5)
    logger.error("chat model failed", extra={"error": str(error)})
    return UpstreamFailed("The assistant could not answer; the error was logged.")


def model_from_env() -> ChatModel:
    """The model ``CHAT_PROVIDER`` names: ``bedrock`` (default; needs ``CHAT_MODEL_ID``) or ``local``."""
    configured = settings()
    if configured.chat_provider == "local":
        return LocalEchoModel()
    return BedrockModel(configured.chat_model)


def bounded(turns: Sequence[Turn]) -> list[Turn]:
    """``turns`` without their oldest exchanges, down to the turn and byte bounds (the last one stays)."""
    kept = list(turns)
    sizes = [len(json.dumps(asdict(turn), ensure_ascii=False).encode()) for turn in kept]
    while len(kept) > 2 and (len(kept) > MAX_HISTORY_TURNS or sum(sizes) > MAX_HISTORY_BYTES):
        del kept[:2], sizes[:2]
    return kept


class PublicChat:
    """Answers chat messages and keeps each conversation in the KV namespace.

    ``clock`` (epoch seconds) stamps the session record; give the namespace the same one in tests.
    """

    def __init__(self, kv: KVNamespace, model: ChatModel, *, clock: Callable[[], float] = time.time) -> None:
        self._kv = kv
        self._model = model
        self._clock = clock

    @classmethod
    def from_env(cls) -> PublicChat:
        return cls(KVNamespace.from_env(), model_from_env())

    def answer(self, message: str, session_id: str | None = None) -> ChatReply:
        """Reply to ``message`` in session ``session_id`` (a new session when None).

        Raises NotFound for an unknown or expired session, Contended when another message on the same
        session was stored meanwhile, UpstreamFailed or UpstreamBusy when the model fails.
        """
        if session_id is None:
            session_id, history, version, created = str(uuid.uuid4()), [], None, self._now()
        else:
            session_id = session_id.lower()
            stored, version = self._kv.get_with_version(f"ai:conversation:{session_id}", type="json")
            if stored is None:
                raise NotFound("No such chat session (sessions end 24 h after their last message).")
            history = [Turn(turn["role"], turn["text"]) for turn in stored["turns"]]
            created = stored["createdAt"]
        reply = self._model.reply(history, message)
        turns = bounded([*history, Turn("user", message), Turn("assistant", reply)])
        self._save(session_id, turns, version, created)
        return {"sessionId": session_id, "reply": reply}

    def _save(self, session_id: str, turns: list[Turn], version: str | None, created: str) -> None:
        now = self._now()
        conversation = {"createdAt": created, "turns": [asdict(turn) for turn in turns]}
        try:
            self._kv.put_if_version(
                f"ai:conversation:{session_id}",
                json.dumps(conversation, ensure_ascii=False),
                version,
                expiration_ttl=SESSION_TTL_S,
            )
        except VersionConflict as error:
            raise Contended(
                "Another message in this session was answered meanwhile; send yours again."
            ) from error
        session = {
            "id": session_id,
            "createdAt": created,
            "lastActiveAt": now,
            "turns": len(turns),
            "model": self._model.name,
        }
        try:
            self._kv.put(f"session:{session_id}", json.dumps(session), expiration_ttl=SESSION_TTL_S)
        except StoreUnavailable as error:
            # The turn is stored: failing now would make the visitor send it again, and the conversation
            # would hold it twice. The record is bookkeeping; the next message rewrites it.
            logger.warning(
                "chat session record not written", extra={"session": session_id, "error": str(error)}
            )
            metrics.add_metric(name="ChatSessionNotRecorded", unit="Count", value=1)

    def _now(self) -> str:
        return iso8601(self._clock())
