"""POST /api/public/chat: one message of a public chat conversation; {"sessionId", "reply"}."""

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body

from arcturus.chat import ChatReply, ChatRequest, PublicChat
from arcturus.ratelimit import Rule
from arcturus.web.docs import RETRY_AFTER, documented, problem_answer
from arcturus.web.guards import guards, limited
from arcturus.web.resolver import build_resolver, lambda_handler

CHAT_LIMIT = Rule("chat", limit=10, window_s=60)

app = build_resolver()
chat = PublicChat.from_env()


@app.post(
    "/api/public/chat",
    **guards(limited(CHAT_LIMIT)),
    summary="Chat with the site's assistant",
    responses={
        200: documented(ChatReply, "The assistant's reply; continue with the same sessionId."),
        404: problem_answer("No such session: sessions end 24 h after their last message."),
        409: problem_answer(
            "Another message of this session was answered meanwhile; send yours again.", headers=RETRY_AFTER
        ),
        502: problem_answer("The model failed to answer (logged)."),
    },
)
def public_chat(request: Annotated[ChatRequest, Body()]) -> ChatReply:
    return chat.answer(request.message, request.session_id)


handler = lambda_handler(app)
