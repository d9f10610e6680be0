"""POST /api/public/chat: one message of a public chat conversation; {"sessionId", "reply"}."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from arcturus.chat import ChatRequest, PublicChat
from arcturus.http import build_resolver, lambda_handler

app = build_resolver()
chat = PublicChat.from_env()


@app.post("/api/public/chat")
def public_chat(request: Annotated[ChatRequest, Body()]) -> dict[str, str]:
    return chat.answer(request.message, request.session_id).wire()


handler = lambda_handler(app)
