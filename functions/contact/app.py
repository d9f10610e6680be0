"""POST /api/contact: a visitor's message, stored and sent to the site owner; 202 {"id"}."""

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body, Header

from arcturus.background import supports_wait_until
from arcturus.contact import (
    IDEMPOTENCY_KEY_PATTERN,
    ContactInbox,
    ContactMessage,
    ContactReceipt,
    idempotency_key,
)
from arcturus.ratelimit import Rule
from arcturus.web.docs import RETRY_AFTER, documented, problem_answer
from arcturus.web.guards import guards, limited
from arcturus.web.resolver import build_resolver, lambda_handler
from arcturus.web.responses import json_response

CONTACT_LIMIT = Rule("contact", limit=5, window_s=60)

app = build_resolver()
inbox = ContactInbox.from_env()


@app.post(
    "/api/contact",
    **guards(limited(CONTACT_LIMIT)),
    summary="Send the site owner a message",
    responses={
        202: documented(
            ContactReceipt, "Stored and sent on; a retry with its Idempotency-Key gets this again."
        ),
        400: problem_answer(
            "Idempotency-Key is not 1 to 255 visible ASCII characters, or the body not UTF-8."
        ),
        409: problem_answer(
            "A request with this Idempotency-Key is still being handled.", headers=RETRY_AFTER
        ),
        422: problem_answer(
            "The message did not validate (errors names each field), or its Idempotency-Key was used "
            "with a different message."
        ),
    },
)
def contact(
    message: Annotated[ContactMessage, Body()],
    idempotency: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Makes retries safe: a retry with the same key gets the first answer again.",
            json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN},
        ),
    ] = None,
) -> Response[str]:
    receipt = inbox.accept(message, key=idempotency_key(idempotency), context=app.lambda_context)
    return json_response(receipt, status=202)


# The notification is published after the response: the environment is held until that is done.
handler = supports_wait_until(lambda_handler(app))
