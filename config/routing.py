"""Routing rules for SDR queues: typed, frozen, validated (operators write config/routing.yaml)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from leadstream.errors import RoutingFileError

__all__ = ["Name", "Queue", "QueueMatch", "Rep", "RoutingConfig", "RoutingFileError", "load_routing"]

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class QueueMatch(_Frozen):
    """Firmographics a handoff must have to land in the queue; empty matches everything."""

    region: list[str] | None = None
    industry: list[str] | None = None
    employees: tuple[int, int] | None = None
    kind: list[str] | None = None  # mql, buying_group


class Rep(_Frozen):
    id: Name
    # New assignments per day (by the handoff's event-time day); stickiness may exceed it.
    capacity_per_day: int = Field(ge=1, le=10_000)


class Queue(_Frozen):
    name: Name
    match: QueueMatch = Field(default_factory=QueueMatch)
    reps: list[Rep] = Field(min_length=1)


class RoutingConfig(_Frozen):
    # The first queue whose match fits wins; the last should match everything.
    queues: list[Queue] = Field(min_length=1)
    # A contact of an account already assigned goes to the same rep, whatever queue it matches.
    sticky_accounts: bool = True

    @model_validator(mode="after")
    def _unique(self) -> RoutingConfig:
        names = [q.name for q in self.queues]
        if len(set(names)) != len(names):
            raise ValueError("queue names must be unique")
        reps = [r.id for q in self.queues for r in q.reps]
        if len(set(reps)) != len(reps):
            raise ValueError("a rep belongs to one queue")
        return self


def load_routing(path: str | Path | None = None) -> RoutingConfig:
    if path is None:
        text, source = (
            resources.files("leadstream.config").joinpath("routing.yaml").read_text(),
            "<package>/config/routing.yaml",
        )
    else:
        try:
            text, source = Path(path).read_text(), str(path)
        except OSError as exc:
            raise RoutingFileError(f"cannot read the routing file {path}: {exc.strerror or exc}") from exc
    try:
        return RoutingConfig.model_validate(yaml.safe_load(text))
    except (ValidationError, yaml.YAMLError) as exc:
        raise RoutingFileError(f"invalid routing file {source}: {exc}") from exc
