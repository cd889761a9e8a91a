"""Shadow scoring: a candidate model version scored live beside the active one, on the same
batches, with state of its own (``{prefix}:shadow:<version>``) and its would-be handoffs on the
shadow topic (``<handoffs topic>.shadow``), which the router never reads.

The shadow shares the active pipeline's watermarks and has a timer service of its own over its
key space: its SLA and decay timers fire into its state as the active model's do (their lifecycle
events are dropped: it decides handoffs only), and its quiet contacts' late-data journals close,
so a long shadow run costs Redis what the active model costs, not more. A batch or a timer tick
the shadow fails on (Redis away) is logged and skipped by the shadow, never retried at the active
model's expense: the shadow is an estimate, the active version is the product.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any

from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.engine.eventtime.timers import TimerService
from leadstream.engine.pipeline import ScoringPipeline
from leadstream.engine.ports import BatchProcessor, Sink
from leadstream.engine.records import OutputRecord, SourceRecord
from leadstream.errors import InfrastructureError
from leadstream.state.keys import SHADOW_SPACE

__all__ = ["ShadowSink", "Shadowing", "compare", "follow_shadow", "shadow_settings", "shadow_topic"]

logger = logging.getLogger(__name__)


def shadow_topic(settings: Settings) -> str:
    return f"{settings.topics.handoffs}.shadow"


def shadow_settings(settings: Settings, version: str) -> Settings:
    """The shadow's own key space: nothing it writes touches the active model's state."""
    slug = re.sub(r"[^A-Za-z0-9_.-]", "_", version)
    prefix = f"{settings.redis_key_prefix}{SHADOW_SPACE}{slug}"
    return settings.model_copy(update={"redis_key_prefix": prefix})


class ShadowSink:
    """Passes on the shadow's handoffs, to the shadow topic; drops everything else (dead letters,
    re-keyed records and lifecycle events are the active pipeline's to send)."""

    def __init__(self, inner: Sink, handoffs: str, shadow: str) -> None:
        self._inner, self._handoffs, self._shadow = inner, handoffs, shadow

    async def send_all(self, records: Sequence[OutputRecord]) -> None:
        out = [dataclasses.replace(r, topic=self._shadow) for r in records if r.topic == self._handoffs]
        if out:
            await self._inner.send_all(out)


class Shadowing:
    """The worker's batch processor: the active pipeline, then the shadow's, if any."""

    def __init__(self, active: BatchProcessor) -> None:
        self._active = active
        self.shadow: ScoringPipeline | None = None
        self.timers: TimerService | None = None  # the shadow's, over its own key space

    @property
    def version(self) -> str | None:
        return self.shadow.model.version if self.shadow is not None else None

    async def process(self, batch: Sequence[SourceRecord]) -> None:
        await self._active.process(batch)
        shadow = self.shadow
        if shadow is None:
            return
        try:
            await shadow.process(batch)
        except InfrastructureError as exc:
            logger.error("shadow %s skipped a batch of %d records: %s", shadow.model.version, len(batch), exc)

    async def tick(self) -> None:
        if self.shadow is not None:
            try:
                await self.shadow.tick()
            except InfrastructureError as exc:
                logger.error("shadow %s tick failed: %s", self.version, exc)

    async def fire_timers(self, wall: float) -> None:
        """The shadow's due timers, by its own stream time, as the active model's fire by theirs."""
        shadow, timers = self.shadow, self.timers
        if shadow is None or timers is None:
            return
        try:
            async with shadow.busy:
                await timers.tick(await shadow.timer_time(wall), await shadow.watermarks.bound())
        except InfrastructureError as exc:
            logger.error("shadow %s timer tick failed: %s", self.version, exc)


def follow_shadow(
    shadowing: Shadowing,
    wanted: str | None,
    model_of: Callable[[str], ScoringModel],
    build: Callable[[ScoringModel], tuple[ScoringPipeline, TimerService]],
) -> None:
    """Start, replace or stop the shadow so that it scores ``wanted`` (None: no shadow); ``build``
    makes its pipeline and timer service."""
    if wanted == shadowing.version:
        return
    if wanted is None:
        logger.info("shadow %s stopped", shadowing.version)
        shadowing.shadow, shadowing.timers = None, None
        return
    model = model_of(wanted)
    shadowing.shadow, shadowing.timers = build(model)
    logger.info("shadow scoring with model %s (handoffs on the shadow topic, never routed)", wanted)


def compare(handoffs: list[dict[str, Any]], a: str, b: str, examples: int = 10) -> dict[str, Any]:
    """What two versions handed off, from their handoff records: both, only A, only B, with the
    signals behind each difference."""

    def keyed(version: str) -> dict[tuple[str, str], dict[str, Any]]:
        out: dict[tuple[str, str], dict[str, Any]] = {}
        for h in handoffs:
            if h.get("model_version") != version:
                continue
            who = h.get("contact_id") if h.get("kind") == "mql" else h.get("domain")
            out.setdefault((str(h.get("kind")), str(who)), h)
        return out

    left, right = keyed(a), keyed(b)

    def signals(h: dict[str, Any]) -> str:
        if h.get("kind") != "mql":
            return f"{h.get('engaged_contacts')} engaged, {h.get('reason')}"
        parts = ", ".join(f"{s['rule']} {s['value']:.0f}" for s in h["engagement"]["signals"][:4])
        return f"fit {h['fit']['score']:.0f}, engagement {h['engagement']['score']:.0f} ({parts})"

    def rows(keys: set[tuple[str, str]], source: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
        return [f"{kind} {who}: {signals(source[(kind, who)])}" for kind, who in sorted(keys)[:examples]]

    both, only_a, only_b = left.keys() & right.keys(), left.keys() - right.keys(), right.keys() - left.keys()
    return {
        "both": len(both),
        "only_a": len(only_a),
        "only_b": len(only_b),
        "only_a_examples": rows(set(only_a), left),
        "only_b_examples": rows(set(only_b), right),
    }
