"""An event's time as epoch seconds: ``datetime.timestamp()``, exactly, made cheap for UTC.

pydantic gives every time it parses a ``tzinfo`` of its own (``pydantic_core.TzInfo``), and
``timestamp()`` asks that tzinfo for its offset twice through a call into Rust: ~1.4 µs, about
as much as the rest of an event's decoding after validation, and it was made twice an event
(the event policy's check and the event's time). For a time in UTC the arithmetic below is what
``timestamp()`` does: whole microseconds since the epoch, divided once (one rounding).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from pydantic import AwareDatetime, TypeAdapter

__all__ = ["PARSED_UTC", "epoch"]

# The tzinfo pydantic gives a time written with "Z" or "+00:00": one shared object (if a pydantic
# release made a new one per time, ``epoch`` would still be exact, only slower).
PARSED_UTC: Final = TypeAdapter(AwareDatetime).validate_python("1970-01-01T00:00:00Z").tzinfo
_EPOCH_ORDINAL: Final = 719_163  # date(1970, 1, 1).toordinal()
# Microsecond counts a double holds exactly (years 1685 to 2255): the division below then
# rounds once, as timestamp()'s does; further out, timestamp() itself.
_EXACT_MICROS: Final = 2**53
# Held here, not read from the datetime module's name at every call (a dict lookup each in
# compiled code; a Final name is a C static there).
_UTC: Final = UTC


def epoch(moment: datetime) -> float:
    """``moment.timestamp()`` of an aware datetime."""
    tz = moment.tzinfo
    if tz is PARSED_UTC or tz is _UTC:
        seconds = (moment.toordinal() - _EPOCH_ORDINAL) * 86_400 + (
            moment.hour * 3600 + moment.minute * 60 + moment.second
        )
        micros = seconds * 1_000_000 + moment.microsecond
        if -_EXACT_MICROS < micros < _EXACT_MICROS:
            return micros / 1_000_000
    return moment.timestamp()
