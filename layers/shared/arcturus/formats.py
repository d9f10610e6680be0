"""Value formats more than one module speaks: timestamps, email addresses, whitespace, and the JSON
documents read and answered as ``TypedDict``s whose rules pydantic checks only when asked.

A document that a read path uses (the roles document, the sources configuration) and every body a route
answers is a ``TypedDict`` with camelCase keys, as on the wire. Its constraints sit in ``Annotated``
metadata made by ``field`` and ``after``, which import pydantic only when called; with ``from
__future__ import annotations`` that is when pydantic first reads the annotations (a ``Validator``'s
first use, or the OpenAPI build). A function that only reads such documents never imports pydantic:
about 90 ms of its cold start.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, Generic, Literal, TypeVar

if TYPE_CHECKING:
    from pydantic import TypeAdapter

__all__ = [
    "BLANK",
    "MAX_EMAIL",
    "Validator",
    "after",
    "field",
    "is_email",
    "iso8601",
    "pydantic_config",
    "wire_body",
]

T = TypeVar("T")

BLANK: Final = r" \t\n\v\f\r\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""Unicode White_Space (what pydantic's ``strip_whitespace`` strips) as the inside of a regex character
class, spelled out: ``\\s`` means something else in Python's and in JSON Schema's regexes."""

MAX_EMAIL: Final = 254
_MAX_LOCAL_PART: Final = 64
# A dot-atom local part and a domain of letter/digit/hyphen labels (non-ASCII allowed for IDN), the last
# one at least two characters and starting with a letter.
_EMAIL: Final = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_](?:[\w-]{0,61}[^\W_])"
)


def is_email(value: str) -> bool:
    """Whether ``value`` is an address mail can be sent to (RFC 5321's lengths, no quoted local part)."""
    return (
        len(value) <= MAX_EMAIL
        and _EMAIL.fullmatch(value) is not None
        and len(value.partition("@")[0]) <= _MAX_LOCAL_PART
    )


@functools.lru_cache(maxsize=256)
def iso8601(epoch: float, timespec: Literal["seconds", "milliseconds"] = "seconds") -> str:
    """``2026-12-02T19:03:42Z``: UTC, to the second (or millisecond), with a ``Z``.

    Remembered: a warm container formats the same few cached values' times on every request."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def field(*, accepts: tuple[str, ...] = (), **constraints: Any) -> Any:
    """pydantic's ``Field(**constraints)``, made when pydantic reads the annotation that holds it.

    ``accepts``: every name the key is read from on the way in, its wire name first (a snake_case name
    that earlier versions read too); the validated dict has the wire name.
    """
    from pydantic import AliasChoices, Field  # noqa: PLC0415 - deferred: see the module's docstring

    if accepts:
        constraints["validation_alias"] = AliasChoices(*accepts)
    return Field(**constraints)


def after(check: Callable[[Any], Any]) -> Any:
    """pydantic's ``AfterValidator(check)``, made when pydantic reads the annotation that holds it."""
    from pydantic import AfterValidator  # noqa: PLC0415 - deferred: see the module's docstring

    return AfterValidator(check)


def pydantic_config(**config: Any) -> Callable[[type[T]], type[T]]:
    """Set a ``TypedDict``'s pydantic configuration through its documented ``__pydantic_config__``
    attribute (what pydantic's ``with_config`` does, without importing pydantic)."""

    def configure(shape: type[T]) -> type[T]:
        setattr(shape, "__pydantic_config__", config)  # noqa: B010 - a TypedDict body takes annotations only
        return shape

    return configure


wire_body: Final = pydantic_config(extra="forbid")
"""The mark of a JSON document or body as the wire has it: a ``TypedDict`` with camelCase keys whose
schema (and validation, where there is one) refuses any key it does not list. The builders return it
(mypy checks every key), and the OpenAPI build makes its schema. A body needs no validation on its way
out."""


class Validator(Generic[T]):
    """pydantic's ``TypeAdapter`` for ``shape``, built on first use: a document is validated where it
    is written or comes in, and a function that never does that never pays for pydantic."""

    def __init__(self, shape: Any) -> None:
        self._shape = shape

    @functools.cached_property
    def adapter(self) -> TypeAdapter[T]:
        from pydantic import TypeAdapter  # noqa: PLC0415 - deferred: see the module's docstring

        return TypeAdapter(self._shape)

    def python(self, data: Any) -> T:
        """``data`` validated; raises pydantic's ValidationError (a ValueError) naming every field."""
        return self.adapter.validate_python(data)

    def json(self, text: str | bytes) -> T:
        """``text`` parsed and validated; raises pydantic's ValidationError (a ValueError)."""
        return self.adapter.validate_json(text)
