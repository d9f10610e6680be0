"""The one table from a domain exception to its HTTP answer (status, title, headers).

A class not in the table is looked up by its bases, so a subclass answers like its parent unless it
has a row of its own. An exception with no row is a bug: the resolver answers 500 and logs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from arcturus.errors import (
    ArcturusError,
    Contended,
    InvalidRequest,
    NotFound,
    NotPermitted,
    NotSignedIn,
    RequestMismatch,
    SourceUnavailable,
    StoreUnavailable,
    UpstreamBusy,
    UpstreamFailed,
)
from arcturus.observability import logger, metrics
from arcturus.web.problem import HTTPProblem

__all__ = ["ANSWERS", "BEARER_CHALLENGE", "Answer", "problem_for"]

BEARER_CHALLENGE: Final = {"WWW-Authenticate": 'Bearer realm="arcturus"'}


@dataclass(frozen=True)
class Answer:
    """How one kind of domain exception is answered; ``detail`` replaces the message when the message
    is for the logs, not for the caller."""

    status: int
    title: str | None = None
    detail: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


ANSWERS: Final[dict[type[ArcturusError], Answer]] = {
    InvalidRequest: Answer(400),
    NotSignedIn: Answer(401, headers=BEARER_CHALLENGE),
    NotPermitted: Answer(403),
    NotFound: Answer(404),
    Contended: Answer(409),
    RequestMismatch: Answer(422),
    UpstreamFailed: Answer(502),
    UpstreamBusy: Answer(503),
    SourceUnavailable: Answer(503, title="Source unavailable"),
    StoreUnavailable: Answer(503, detail="The data store is busy; retry shortly."),
}


def problem_for(error: ArcturusError) -> HTTPProblem | None:
    """The answer to ``error`` (with ``Retry-After`` when it has one), or None when the table has none."""
    answer = next((ANSWERS[cls] for cls in type(error).__mro__ if cls in ANSWERS), None)
    if answer is None:
        return None
    if isinstance(error, StoreUnavailable):
        logger.warning("KV store unavailable", extra={"error": str(error)})
        metrics.add_metric(name="StoreUnavailable", unit="Count", value=1)
    headers = dict(answer.headers)
    if error.retry_after_s is not None:
        headers["Retry-After"] = str(error.retry_after_s)
    return HTTPProblem(answer.status, answer.detail or str(error), title=answer.title, headers=headers)
