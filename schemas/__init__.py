"""Wire contracts: pydantic models of every event on every topic. Imports nothing of ours."""

from leadstream.schemas.dead_letter import DeadLetterHeaders
from leadstream.schemas.events import (
    AccountFirmographics,
    Event,
    FormSubmission,
    Identify,
    PageView,
    TouchContext,
    TrialEvent,
    WebinarEvent,
)
from leadstream.schemas.handoff import BuyingGroupHandoff, MqlHandoff

__all__ = [
    "AccountFirmographics",
    "BuyingGroupHandoff",
    "DeadLetterHeaders",
    "Event",
    "FormSubmission",
    "Identify",
    "MqlHandoff",
    "PageView",
    "TouchContext",
    "TrialEvent",
    "WebinarEvent",
]
