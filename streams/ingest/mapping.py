"""Which Segment ``track`` events are which leadstream events: config/ingest.yaml, typed."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadstream.errors import ConfigurationError
from leadstream.schemas.events import TrialEvent, WebinarEvent

__all__ = [
    "TRIAL_ACTIONS",
    "WEBINAR_ACTIONS",
    "IngestMapping",
    "MappingFileError",
    "TrackMapping",
    "load_mapping",
]

# The actions the event schemas accept (schemas/events.py).
TRIAL_ACTIONS = get_args(TrialEvent.model_fields["action"].annotation)
WEBINAR_ACTIONS = get_args(WebinarEvent.model_fields["action"].annotation)


class MappingFileError(ConfigurationError):
    """The ingest mapping file is unreadable or invalid."""


class TrackMapping(BaseModel):
    """One ``track`` event name as a leadstream event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["form_submission", "trial", "webinar"]
    form_type: str | None = Field(default=None, pattern=r"^[a-z0-9_]+$", max_length=64)
    action: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> TrackMapping:
        if self.type == "form_submission" and self.form_type is None:
            raise ValueError("a form_submission needs form_type")
        if self.type == "trial" and self.action not in TRIAL_ACTIONS:
            raise ValueError(f"a trial needs an action, one of {', '.join(TRIAL_ACTIONS)}")
        if self.type == "webinar" and self.action not in WEBINAR_ACTIONS:
            raise ValueError(f"a webinar needs an action, one of {', '.join(WEBINAR_ACTIONS)}")
        return self


class IngestMapping(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    track: dict[str, TrackMapping] = Field(default_factory=dict)
    unmapped_track: Literal["ignore", "reject"] = "ignore"


def load_mapping(path: str | Path | None = None) -> IngestMapping:
    """The mapping in ``path``, or the one shipped in the package (config/ingest.yaml)."""
    if path is None:
        text = resources.files("leadstream.config").joinpath("ingest.yaml").read_text(encoding="utf-8")
        source = "<package>/config/ingest.yaml"
    else:
        try:
            text, source = Path(path).read_text(encoding="utf-8"), str(path)
        except OSError as exc:
            raise MappingFileError(f"cannot read the ingest mapping {path}: {exc.strerror or exc}") from exc
    try:
        return IngestMapping.model_validate(yaml.safe_load(text) or {})
    except yaml.YAMLError as exc:
        raise MappingFileError(f"{source}: not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()
        )
        raise MappingFileError(f"invalid ingest mapping {source}: {problems}") from exc
