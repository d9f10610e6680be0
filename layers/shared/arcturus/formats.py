"""Value formats more than one module speaks: timestamps, email addresses, whitespace, the base of the
JSON models a function reads (camelCase on the wire, nothing unknown accepted), and the mark of the
JSON bodies it answers (``wire_body``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, with_config
from pydantic.alias_generators import to_camel

__all__ = ["BLANK", "MAX_EMAIL", "WireModel", "is_email", "iso8601", "wire_body"]

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


def iso8601(epoch: float, timespec: Literal["seconds", "milliseconds"] = "seconds") -> str:
    """``2026-12-02T19:03:42Z``: UTC, to the second (or millisecond), with a ``Z``."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


class WireModel(BaseModel):
    """A JSON document's model: camelCase names on the wire (snake_case accepted too), unknown fields
    refused, instances immutable."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


wire_body: Final = with_config(ConfigDict(extra="forbid"))
"""The mark of a body a route answers, a ``TypedDict`` whose keys are the wire's camelCase names: the
builders return it (mypy checks every key), and the OpenAPI build makes its schema, which refuses any
key it does not list. A TypedDict costs a function's init microseconds where a model class costs
milliseconds, and a body needs no validation on the way out."""
