"""What the engine does when something goes wrong: one function, injected, with today's behaviour
as the default.

``on_error(exc, record) -> Action`` is asked twice in a record's life:
- per record, for an event that cannot be decoded or validated (``record`` is the record):
  ``DEAD_LETTER`` sends it to the dead-letter topic with the reason, ``SKIP`` drops it (counted),
  ``STOP`` stops the worker; ``RETRY`` would decode the same bytes the same way, so it retries the
  whole batch instead (useful only with a policy that changes its mind, e.g. after a deploy);
- per batch, for anything the processing raised (``record`` is None): ``RETRY`` processes the
  batch again after a back-off (safe: processing is idempotent), ``STOP`` stops the worker,
  ``SKIP`` acknowledges the batch without its effects (data loss: only if you mean it),
  ``DEAD_LETTER`` sends every record of the batch to the dead letters and acknowledges it.

The default: invalid events are dead-lettered, infrastructure errors retried forever (the stream
stalls and says why until Redis or Kafka is back), anything else (a bug) stops the worker, so it
restarts and is seen rather than silently dropping data.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Literal

from leadstream.engine.records import SourceRecord
from leadstream.errors import InfrastructureError, InvalidEvent

__all__ = ["Action", "ErrorPolicy", "default_policy", "policy_from"]


class Action(StrEnum):
    DEAD_LETTER = "dead_letter"
    SKIP = "skip"
    RETRY = "retry"
    STOP = "stop"


ErrorPolicy = Callable[[BaseException, SourceRecord | None], Action]


def default_policy(exc: BaseException, record: SourceRecord | None) -> Action:
    if isinstance(exc, InvalidEvent):
        return Action.DEAD_LETTER
    if isinstance(exc, InfrastructureError):
        return Action.RETRY
    return Action.STOP


def policy_from(
    on_invalid_event: Literal["dead_letter", "skip", "stop"] = "dead_letter",
    on_infrastructure_error: Literal["retry", "stop"] = "retry",
) -> ErrorPolicy:
    """The policy the settings describe (``LEADSTREAM_ON_INVALID_EVENT``,
    ``LEADSTREAM_ON_INFRASTRUCTURE_ERROR``); other errors stop the worker."""
    invalid, infrastructure = Action(on_invalid_event), Action(on_infrastructure_error)

    def policy(exc: BaseException, record: SourceRecord | None) -> Action:
        if isinstance(exc, InvalidEvent):
            return invalid
        if isinstance(exc, InfrastructureError):
            return infrastructure
        return Action.STOP

    return policy
