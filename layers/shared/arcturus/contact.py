"""The contact form: a validated message, kept in KV and announced on the contact SNS topic.

A message is stored under ``contact:<iso-time>:<id>`` (so a listing of ``contact:`` is chronological)
and then published to ``CONTACT_TOPIC_ARN``, whose email subscription reaches the site owner. The KV
copy is the record: when SNS fails after the message is stored, the sender still gets 202 and the
failure is logged and counted (``ContactNotifyFailed``), so nothing is lost and nothing is sent twice.

An ``Idempotency-Key`` header makes retries safe (Powertools idempotency, its records in the KV table
under their own partition key): the same key answers the first answer without storing or sending
again; the same key with a different message is 422; a retry while the first is still running is 409.
"""

from __future__ import annotations

import functools
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Final

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
    IdempotencyValidationError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from typing_extensions import TypedDict

from arcturus import aws, background
from arcturus.errors import Contended, InvalidRequest, RequestMismatch, StoreUnavailable
from arcturus.formats import BLANK, MAX_EMAIL, is_email, iso8601, wire_body
from arcturus.kv import KVNamespace
from arcturus.kvstore import idempotency_layout
from arcturus.observability import logger, metrics
from arcturus.settings import DEFAULT_RETENTION_DAYS, settings

__all__ = [
    "DAY_S",
    "IDEMPOTENCY_KEY_PATTERN",
    "IDEMPOTENCY_TTL_S",
    "KEY_CLASS",
    "MAX_IDEMPOTENCY_KEY",
    "MAX_MESSAGE",
    "MAX_NAME",
    "NOT_IN_A_LINE",
    "SINGLE_LINE_PATTERN",
    "SUBJECT",
    "TEXT_PATTERN",
    "ContactInbox",
    "ContactMessage",
    "ContactReceipt",
    "idempotency_key",
]

MAX_NAME: Final = 100
MAX_MESSAGE: Final = 5000
MAX_IDEMPOTENCY_KEY: Final = 255
IDEMPOTENCY_TTL_S: Final = 24 * 3600
"""How long an Idempotency-Key is remembered: a client retrying later than this is sending anew."""
KEY_CLASS: Final = "contact"
"""The key class of contact records (``contact:<time>:<id>``) and of this form's idempotency records."""
SUBJECT: Final = "Arcturus-Prime contact form"
"""SNS subjects must be ASCII without line breaks, so the sender's name goes in the body instead."""

# Unicode's line and paragraph separators (Zl, Zp), format characters such as the bidi controls (Cf),
# C0 and C1 controls (Cc) and lone surrogates (Cs), as of Unicode 15.1 (tests/unit/test_contact.py
# checks it against unicodedata): none belongs in a name that goes on one line of the owner's email.
NOT_IN_A_LINE: Final = (
    r"\x00-\x1f\x7f-\x9f\xad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f"
    r"\u2028-\u202e\u2060-\u2064\u2066-\u206f\ud800-\udfff\ufeff\ufff9-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0001\U000e0020-\U000e007f"
)
"""The inside of a regex character class, shared by the validator and the OpenAPI pattern."""
_NOT_IN_A_LINE = re.compile(f"[{NOT_IN_A_LINE}]")
_CONTROL_BUT_WHITESPACE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN = re.compile(r"[\x21-\x7e]+")
IDEMPOTENCY_KEY_PATTERN: Final = rf"^[\x21-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}$"
"""The key as the OpenAPI document shows it (``idempotency_key`` also takes it in double quotes)."""
_LINE_CHAR = f"[^{NOT_IN_A_LINE}]"
_TEXT_CHAR = r"[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"
SINGLE_LINE_PATTERN: Final = rf"^{_LINE_CHAR}*[^{BLANK}{NOT_IN_A_LINE}]{_LINE_CHAR}*$"
"""A name as JSON Schema says it: nothing of ``NOT_IN_A_LINE``, not only whitespace."""
TEXT_PATTERN: Final = rf"^{_TEXT_CHAR}*[^{BLANK}\x00-\x08\x0b\x0c\x0e-\x1f\x7f]{_TEXT_CHAR}*$"
"""A message as JSON Schema says it: line breaks and tabs allowed, other control characters not."""


def _email(value: str) -> str:
    if not is_email(value):
        raise ValueError("not a valid email address")
    return value


def _single_line(value: str) -> str:
    if _NOT_IN_A_LINE.search(value):
        raise ValueError("must not contain line breaks, control or format characters (such as bidi controls)")
    return value


def _text(value: str) -> str:
    if _CONTROL_BUT_WHITESPACE.search(value):
        raise ValueError("must not contain control characters")
    return value


class ContactMessage(BaseModel):
    """The body of ``POST /api/contact``; surrounding whitespace is ignored, unknown fields are not."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    # The patterns and the format say in the OpenAPI document what the validators check.
    name: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MAX_NAME),
        AfterValidator(_single_line),
        Field(json_schema_extra={"pattern": SINGLE_LINE_PATTERN}),
    ]
    email: Annotated[
        str,
        StringConstraints(min_length=3, max_length=MAX_EMAIL),
        AfterValidator(_email),
        Field(json_schema_extra={"format": "email"}),
    ]
    message: Annotated[
        str,
        StringConstraints(min_length=1, max_length=MAX_MESSAGE),
        AfterValidator(_text),
        Field(json_schema_extra={"pattern": TEXT_PATTERN}),
    ]


def idempotency_key(header: str | None) -> str | None:
    """The ``Idempotency-Key`` header's key (bare or as a quoted structured-field string), or None.

    Raises InvalidRequest when the header is present but not 1 to 255 visible ASCII characters.
    """
    if header is None:
        return None
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]
    if not _TOKEN.fullmatch(key) or len(key) > MAX_IDEMPOTENCY_KEY:
        raise InvalidRequest(f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters.")
    return key


DAY_S: Final = 86_400


@wire_body
class ContactReceipt(TypedDict):
    id: Annotated[str, Field(description="The stored message's id.")]


class ContactInbox:
    """Takes contact messages: stores, then announces each one after the response (``defer``, the
    post-response queue), at most once per Idempotency-Key. A failed announcement is logged and counted
    (``ContactNotifyFailed``); the stored message stays the record.

    ``sns`` is an SNS client, ``idempotency`` the persistence layer for keyed requests; ``clock``
    (epoch seconds) stamps the messages.
    """

    def __init__(
        self,
        kv: KVNamespace,
        topic_arn: str,
        *,
        sns: Any,
        idempotency: DynamoDBPersistenceLayer,
        retention_s: int = DEFAULT_RETENTION_DAYS * DAY_S,
        clock: Callable[[], float] = time.time,
        defer: Callable[[Callable[[], object]], None] = background.wait_until,
    ) -> None:
        self._kv = kv
        self._defer = defer
        self._retention_s = retention_s
        self._topic_arn = topic_arn
        self._sns = sns
        self._clock = clock
        self._config = IdempotencyConfig(
            event_key_jmespath="key",
            payload_validation_jmespath="message",
            expires_after_seconds=IDEMPOTENCY_TTL_S,
            hash_function="sha256",
        )
        self._deliver_once = idempotent_function(
            data_keyword_argument="request",
            persistence_store=idempotency,
            config=self._config,
            key_prefix="contact",
        )(self._deliver_request)

    @classmethod
    def from_env(cls) -> ContactInbox:
        """The inbox the function is configured with (``CONTACT_TOPIC_ARN``, ``KV_TABLE_NAME``,
        ``CONTACT_RETENTION_DAYS``)."""
        configured = settings()
        topic_arn = configured.contact_topic
        kv = KVNamespace.from_env()
        idempotency = DynamoDBPersistenceLayer(
            table_name=configured.kv_table,
            boto3_client=aws.dynamodb(),
            **idempotency_layout(kv.namespace, KEY_CLASS),
        )
        return cls(
            kv,
            topic_arn,
            sns=aws.client("sns"),
            idempotency=idempotency,
            retention_s=configured.contact_retention_days * DAY_S,
        )

    def accept(
        self, message: ContactMessage, *, key: str | None = None, context: LambdaContext | None = None
    ) -> ContactReceipt:
        """Take ``message`` and return its receipt; with ``key``, a repeat returns the first answer.

        ``context`` lets an interrupted first attempt be retried once the invocation that ran it is over.
        """
        if key is None:
            return self._deliver(message)
        if context is not None:
            self._config.register_lambda_context(context)
        try:
            receipt: ContactReceipt = self._deliver_once(
                request={"key": key, "message": message.model_dump(mode="json")}
            )
        except IdempotencyValidationError as error:
            raise RequestMismatch(
                "This Idempotency-Key was already used with a different message."
            ) from error
        except IdempotencyAlreadyInProgressError as error:
            raise Contended("A request with this Idempotency-Key is still being processed.") from error
        except IdempotencyPersistenceLayerError as error:
            raise StoreUnavailable(f"idempotency record: {error}") from error
        return receipt

    def _deliver_request(self, request: dict[str, Any]) -> ContactReceipt:
        return self._deliver(ContactMessage.model_validate(request["message"]))

    def _deliver(self, message: ContactMessage) -> ContactReceipt:
        message_id = str(uuid.uuid4())
        received = iso8601(self._clock(), "milliseconds")
        record = {"id": message_id, "receivedAt": received, **message.model_dump(mode="json")}
        self._kv.put(
            f"{KEY_CLASS}:{received}:{message_id}",
            json.dumps(record, ensure_ascii=False),
            expiration_ttl=self._retention_s,
        )
        # The 202 does not depend on the notification: it is published after the response.
        self._defer(functools.partial(self._announce, record))
        logger.info("contact message taken", extra={"contactId": message_id})
        return {"id": message_id}

    def _announce(self, record: dict[str, str]) -> None:
        body = (
            f"From: {record['name']} <{record['email']}>\n"
            f"Received: {record['receivedAt']}\n"
            f"Message id: {record['id']}\n\n"
            f"{record['message']}\n"
        )
        try:
            self._sns.publish(TopicArn=self._topic_arn, Subject=SUBJECT, Message=body)
        except (ClientError, BotoCoreError) as error:
            logger.error(
                "contact message stored but not announced",
                extra={"contactId": record["id"], "error": str(error)},
            )
            metrics.add_metric(name="ContactNotifyFailed", unit="Count", value=1)
            # After the response the handler's own flush is over: publish the count now, not with the
            # next invocation's metrics (the environment may never get one).
            metrics.flush_metrics()
