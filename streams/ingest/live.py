"""The lookup API and the live page, served by ``leadstream ingest`` beside the Segment API.

- ``GET /v1/contacts/{id}``, ``GET /v1/accounts/{domain}``: the explain breakdown as JSON, for
  CRMs and the SDR's sidebar (``?at=`` an ISO time; default the stream's event time).
- ``GET /live``: the page; ``GET /live/data?after=N``: what it shows, as JSON.

Both need a token of ``LEADSTREAM_LOOKUP_TOKENS``: ``Authorization: Bearer <token>``, or HTTP
basic auth with the token as password (what a browser asks for on ``/live``). They show personal
data, so without tokens configured they answer 403 and say what to set.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import threading
import time
from datetime import datetime
from importlib.resources import files
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.errors import LeadstreamError
from leadstream.ingest.live_view import LiveView, histogram
from leadstream.kafka.clients import make_consumer
from leadstream.tools.explain import StateReader

__all__ = ["LiveFeed", "ScoreSample", "live_routes", "lookup_tokens"]

logger = logging.getLogger(__name__)
SAMPLE_CONTACTS = 5000  # contacts read for the score distributions
SAMPLE_EVERY_S = 15.0  # the distributions are re-read at most this often


def lookup_tokens(settings: Settings) -> tuple[bytes, ...]:
    raw = settings.lookup_tokens.get_secret_value() if settings.lookup_tokens else ""
    return tuple(t.strip().encode() for t in raw.split(",") if t.strip())


class LiveFeed:
    """Tails the handoff and lifecycle topics from their beginning into a :class:`LiveView`, on a
    thread of its own (confluent-kafka's client blocks). A consumer without a group: nothing is
    committed and every ingest process sees every record."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._view = LiveView()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="leadstream-live-feed", daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def snapshot(self, after: int) -> dict[str, Any]:
        with self._lock:
            return self._view.snapshot(after)

    def _run(self) -> None:
        topics = self._settings.topics
        consumer = make_consumer(self._settings, "leadstream-live", **{"enable.partition.eof": False})
        try:
            assignment = []
            for topic in (topics.handoffs, topics.lifecycle):
                metadata = consumer.list_topics(topic, timeout=15).topics[topic]
                assignment += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions]
            consumer.assign(assignment)
            while not self._stop.is_set():
                batch = consumer.consume(500, timeout=0.5)
                with self._lock:
                    for message in batch:
                        if message.error() is None:
                            self._take(message.topic(), message.value())
                self.error = None
        except KafkaException as exc:  # the page says so; ingest itself goes on
            self.error = f"the live feed cannot read Kafka: {exc}"
            logger.warning("%s", self.error)
        finally:
            consumer.close()

    def _take(self, topic: str | None, value: bytes | None) -> None:
        try:
            record = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            return
        if not isinstance(record, dict):
            return
        if topic == self._settings.topics.handoffs:
            self._view.add_handoff(record)
        else:
            self._view.add_lifecycle(record)


class ScoreSample:
    """The score distributions against the bars, re-read from Redis at most every
    ``SAMPLE_EVERY_S``."""

    def __init__(self, reader: StateReader, model: ScoringModel) -> None:
        self._reader, self._model = reader, model
        self._at = -SAMPLE_EVERY_S
        self._held: dict[str, Any] = {}

    async def get(self) -> dict[str, Any]:
        if time.monotonic() - self._at >= SAMPLE_EVERY_S:
            try:
                sample = await self._reader.sample_scores(self._model, SAMPLE_CONTACTS)
            except LeadstreamError as exc:  # Redis away: the page says so and keeps the feed
                return {**self._held, "error": str(exc)}
            bars = self._model.thresholds
            self._held = {
                "scored_at": sample["scored_at"],
                "fit": histogram(sample["fit"], bars.fit),
                "engagement": histogram(sample["engagement"], bars.engagement),
            }
            self._at = time.monotonic()
        return self._held


def _token_of(request: Request) -> bytes:
    header = request.headers.get("authorization", "")
    scheme, _, rest = header.partition(" ")
    if scheme.lower() == "bearer":
        return rest.strip().encode()
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(rest.strip(), validate=True).partition(b":")
        except ValueError:
            return b""
        return password or user
    return b""


def live_routes(settings: Settings, model: ScoringModel, state: dict[str, Any]) -> list[Route]:
    """The routes; ``state`` holds the running ``reader``, ``feed`` and ``scores`` (the app's
    lifespan starts them)."""
    tokens = lookup_tokens(settings)
    page = files("leadstream.ingest").joinpath("live.html").read_text(encoding="utf-8")
    script = files("leadstream.ingest").joinpath("live.js").read_text(encoding="utf-8")

    def refused(request: Request) -> Response | None:
        if not tokens:
            return JSONResponse(
                {"message": "the lookup API and live page are off: set LEADSTREAM_LOOKUP_TOKENS"},
                status_code=403,
            )
        given = _token_of(request)
        if given and any(hmac.compare_digest(given, t) for t in tokens):
            return None
        # A browser asks for the token (as the password) when told the page wants basic auth.
        return JSONResponse(
            {"message": "a lookup token is needed: Authorization: Bearer <token>"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="leadstream", charset="UTF-8"'},
        )

    def at_of(request: Request) -> datetime | None:
        raw = request.query_params.get("at")
        if raw is None:
            return None
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise ValueError("at needs a time zone, e.g. 2026-03-02T10:00:00Z")
        return moment

    async def lookup(request: Request) -> Response:
        denied = refused(request)
        if denied is not None:
            return denied
        try:
            at = at_of(request)
        except ValueError as exc:
            return JSONResponse({"message": f"bad at: {exc}"}, status_code=400)
        reader: StateReader = state["reader"]
        if "contact_id" in request.path_params:
            contact_id = request.path_params["contact_id"]
            found = await reader.contact(model, contact_id, at)
            missing = f"no contact {contact_id!r} (unknown, expired, or keyed as email:<address> / anon:<id>)"
        else:
            domain = request.path_params["domain"]
            found = await reader.account(model, domain, at)
            missing = f"no account {domain!r} (unknown, expired, or accounts are off in the model)"
        if found is None:
            return JSONResponse({"message": missing}, status_code=404)
        return Response(orjson.dumps(found), media_type="application/json")

    async def live_page(request: Request) -> Response:
        return refused(request) or HTMLResponse(
            page, headers={"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'"}
        )

    async def live_data(request: Request) -> Response:
        denied = refused(request)
        if denied is not None:
            return denied
        try:
            after = int(request.query_params.get("after", "0"))
        except ValueError:
            return JSONResponse({"message": "after must be an integer"}, status_code=400)
        feed: LiveFeed = state["feed"]
        data = await asyncio.to_thread(feed.snapshot, after)
        data["scores"] = await state["scores"].get()
        data["model_version"] = model.version
        data["feed_error"] = feed.error
        return Response(orjson.dumps(data), media_type="application/json")

    async def live_script(_request: Request) -> Response:
        return Response(script, media_type="text/javascript")

    return [
        Route("/v1/contacts/{contact_id:path}", lookup, methods=["GET"]),
        Route("/v1/accounts/{domain}", lookup, methods=["GET"]),
        Route("/live", live_page, methods=["GET"]),
        Route("/live/data", live_data, methods=["GET"]),
        Route("/live/live.js", live_script, methods=["GET"]),
    ]
