"""leadstream: a real-time lead lifecycle engine.

Events flow through the folders in this order: ``schemas`` (wire contracts) -> ``kafka`` (the
consumers of both engines) -> ``engine`` (decode, stages, outbox, event time) -> ``scoring`` (the
pure core) -> ``state`` (Redis or memory) -> back out through ``kafka`` to the handoff topic ->
``router`` (SDR queues). ``config`` holds what operators edit, ``tools`` the operator commands,
``bootstrap`` the one place that builds them all from settings, ``cli`` the ``leadstream`` command.
"""

from importlib import metadata as _metadata

from leadstream import native as _native

_native.choose()  # before any compiled module is imported: stale extensions are never used


from leadstream.config.loader import load_model  # noqa: E402
from leadstream.config.model import ScoringModel  # noqa: E402
from leadstream.config.settings import Settings, load_settings  # noqa: E402
from leadstream.errors import LeadstreamError  # noqa: E402

try:
    __version__ = _metadata.version("leadstream")
except _metadata.PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["LeadstreamError", "ScoringModel", "Settings", "__version__", "load_model", "load_settings"]
