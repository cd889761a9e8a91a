"""One exception tree for leadstream; adapters translate library errors at the boundary.

LeadstreamError
├── ConfigurationError        a settings or scoring-model file is wrong (file, line, reason)
├── InvalidEvent              one event failed decoding or validation (goes to the dead letters)
└── InfrastructureError       an external system failed; the message says what to do
    ├── StateUnavailable      Redis could not be reached or refused a command
    └── BrokerUnavailable     Kafka could not be reached or refused a request
"""

from __future__ import annotations


class LeadstreamError(Exception):
    """Base of every error leadstream raises on purpose."""


class ConfigurationError(LeadstreamError):
    """A settings or scoring-model file is invalid."""


class InvalidEvent(LeadstreamError):
    """An event could not be decoded or failed validation.

    ``reason`` is a short machine-readable class of error (``json``, ``schema``, ``size``,
    ``timestamp``); the message is for a human reading the dead-letter topic.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InfrastructureError(LeadstreamError):
    """An external system failed."""


class StateUnavailable(InfrastructureError):
    """Redis could not be reached or refused a command."""


class BrokerUnavailable(InfrastructureError):
    """Kafka could not be reached or refused a request."""
