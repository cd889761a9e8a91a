"""One exception tree for leadstream; adapters translate library errors at the boundary.

LeadstreamError
├── ConfigurationError        something an operator wrote is wrong; the message says where and why
│   ├── SettingsError         LEADSTREAM_* variables or the .env file
│   │   └── SettingsFileMissing   the settings file named does not exist
│   ├── ModelFileError        the scoring model (one 'file:line: reason' per problem)
│   └── RoutingFileError      the SDR routing rules
├── RegistryError             a model registry request cannot be done (unknown version, frozen, ...)
├── InvalidEvent              one event failed decoding or validation (goes to the dead letters)
├── StreamStopped             the error policy said stop: the worker exits instead of going on
├── StateLost                 Redis came back without the state the worker was writing (it starts over)
└── InfrastructureError       an external system failed; the message says what to do
    ├── StateUnavailable      Redis could not be reached or refused a command
    └── BrokerUnavailable     Kafka could not be reached or refused a request
"""

from __future__ import annotations

__all__ = [
    "BrokerUnavailable",
    "ConfigurationError",
    "InfrastructureError",
    "InvalidEvent",
    "LeadstreamError",
    "ModelFileError",
    "RegistryError",
    "RoutingFileError",
    "SettingsError",
    "SettingsFileMissing",
    "StateLost",
    "StateUnavailable",
    "StreamStopped",
]


class LeadstreamError(Exception):
    """Base of every error leadstream raises on purpose."""


class ConfigurationError(LeadstreamError, ValueError):
    """Something an operator wrote (settings, the scoring model, routing rules) is invalid."""


class SettingsError(ConfigurationError):
    """The LEADSTREAM_* settings are invalid."""


class SettingsFileMissing(SettingsError, FileNotFoundError):
    """The settings file named by LEADSTREAM_SETTINGS_FILE (or given) does not exist."""


class ModelFileError(ConfigurationError):
    """The scoring model file is invalid; ``problems`` holds one 'file:line: reason' per error."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class RoutingFileError(ConfigurationError):
    """A routing file that cannot be read or is not valid (said before anything connects)."""


class RegistryError(LeadstreamError):
    """A model registry request that cannot be done; the message says why."""


class InvalidEvent(LeadstreamError):
    """An event could not be decoded or failed validation.

    ``reason`` is a short machine-readable class of error (``json``, ``schema``, ``size``,
    ``timestamp``); the message is for a human reading the dead-letter topic.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class StreamStopped(LeadstreamError):
    """The error policy chose to stop on an error; the cause is chained."""


class StateLost(LeadstreamError):
    """Redis no longer holds the state this worker was writing (restarted without persistence,
    flushed, or rebuilt by another worker since): nothing may be written to it before the worker
    starts over and reads its partitions again from where the state is (state/progress.py). Not
    an InfrastructureError: retrying the batch would write onto the wrong state."""


class InfrastructureError(LeadstreamError):
    """An external system failed."""


class StateUnavailable(InfrastructureError):
    """Redis could not be reached or refused a command."""


class BrokerUnavailable(InfrastructureError):
    """Kafka could not be reached or refused a request."""
