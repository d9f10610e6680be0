"""POST /api/contact: a visitor's message, stored and sent to the site owner; 202 {"id"}."""

import json
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Body

from arcturus.contact import ContactInbox, ContactMessage, idempotency_key
from arcturus.http import build_resolver, lambda_handler

app = build_resolver()
inbox = ContactInbox.from_env()


@app.post("/api/contact")
def contact(message: Annotated[ContactMessage, Body()]) -> Response[str]:
    key = idempotency_key(app.current_event.headers.get("idempotency-key"))
    receipt = inbox.accept(message, key=key, context=app.lambda_context)
    return Response(status_code=202, content_type="application/json", body=json.dumps(receipt))


handler = lambda_handler(app)
