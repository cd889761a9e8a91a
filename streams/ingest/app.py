"""``leadstream ingest``: the Segment HTTP Tracking API on Starlette, events out to Kafka.

Endpoints: ``POST /v1/{page,track,identify,group,alias,screen,batch}`` (and the one-letter
forms analytics.js uses: ``/v1/p``, ``/v1/t``, ...), ``GET /metrics`` (Prometheus), ``GET
/health``; the lookup API and the live page (see live.py). A request is answered 200 only
after Kafka acknowledged every event it carried; a request with any invalid call is answered
400 with every reason and nothing of it is produced;
401 for a missing or unknown write key; 413 over Segment's size limits; 503 (retry) when Kafka
does not acknowledge in time.
"""

from __future__ import annotations

import base64
import hmac
import logging
import time
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from leadstream.config.loader import load_model
from leadstream.config.model import ScoringModel
from leadstream.config.settings import Settings
from leadstream.errors import BrokerUnavailable, ConfigurationError
from leadstream.ingest.live import LiveFeed, ScoreSample, live_routes
from leadstream.ingest.mapping import IngestMapping
from leadstream.ingest.metrics import IngestMetrics
from leadstream.ingest.producer import AckingProducer
from leadstream.ingest.segment import (
    MAX_BATCH_BYTES,
    MAX_CALL_BYTES,
    CallRejected,
    translate,
    translate_batch,
)
from leadstream.tools.explain import StateReader

__all__ = ["SHORT_PATHS", "build_app", "write_keys"]

logger = logging.getLogger(__name__)
SHORT_PATHS = {
    "p": "page",
    "s": "screen",
    "t": "track",
    "i": "identify",
    "g": "group",
    "a": "alias",
    "b": "batch",
}


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, reasons: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.reasons = status, code, message, reasons or []


def write_keys(settings: Settings) -> tuple[bytes, ...]:
    """The accepted write keys; ingest does not start without one."""
    raw = settings.ingest_write_keys.get_secret_value() if settings.ingest_write_keys else ""
    keys = tuple(k.strip().encode() for k in raw.split(",") if k.strip())
    if not keys:
        raise ConfigurationError(
            "no write key: set LEADSTREAM_INGEST_WRITE_KEYS to the key(s) your Segment or RudderStack "
            "sources send (comma separated)"
        )
    return keys


def build_app(
    settings: Settings,
    mapping: IngestMapping,
    producer: AckingProducer | None = None,
    model: ScoringModel | None = None,
) -> Starlette:
    keys = write_keys(settings)
    model = model or load_model(settings.model_path)
    metrics = IngestMetrics.create()
    topics = settings.topics
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        state["producer"] = producer or AckingProducer(settings)
        state["reader"] = reader = StateReader(settings)
        state["scores"] = ScoreSample(reader, model)
        state["feed"] = feed = LiveFeed(settings)
        feed.start()
        try:
            yield
        finally:
            state["producer"].close()
            feed.stop()
            await reader.close()

    async def body_of(request: Request, limit: int) -> Any:
        raw = bytearray()
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > limit:
                raise _Refused(413, "too_large", f"the request is over Segment's {limit // 1024} KB limit")
        data = bytes(raw)
        if request.headers.get("content-encoding", "").lower() == "gzip":
            inflater = zlib.decompressobj(wbits=31)
            try:
                data = inflater.decompress(data, limit + 1)
            except zlib.error as exc:
                raise _Refused(400, "invalid_gzip", f"the body is not valid gzip: {exc}") from exc
            if len(data) > limit or inflater.unconsumed_tail:
                raise _Refused(413, "too_large", f"the request is over Segment's {limit // 1024} KB limit")
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _Refused(400, "invalid_json", f"the body is not JSON: {exc}") from exc

    def check_key(request: Request, body: Any) -> None:
        given = b""
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                given = base64.b64decode(header[6:].strip(), validate=True).partition(b":")[0]
            except ValueError:
                given = b""
        if not given and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
            given = body["writeKey"].encode()
        if not given:
            raise _Refused(401, "unauthorized", "no write key: send it as the basic auth user name")
        if not any(hmac.compare_digest(given, key) for key in keys):
            raise _Refused(401, "unauthorized", "unknown write key")

    async def tracking(request: Request) -> Response:
        name = request.path_params["call"]
        call = SHORT_PATHS.get(name, name)
        started = time.perf_counter()
        status = 200
        try:
            if call not in ("page", "screen", "track", "identify", "group", "alias", "batch"):
                raise _Refused(404, "not_found", f"no such endpoint: /v1/{name}")
            if request.headers.get("authorization"):
                check_key(request, None)  # refused before the body is read
            body = await body_of(request, MAX_BATCH_BYTES if call == "batch" else MAX_CALL_BYTES)
            check_key(request, body)
            received = datetime.now(UTC)
            try:
                if call == "batch":
                    found = translate_batch(body, mapping, received)
                else:
                    found = translate(body, mapping, received, call_type=call)
            except CallRejected as exc:
                raise _Refused(400, "invalid_request", str(exc), exc.reasons) from exc
            records = [(getattr(topics, kind), key, value) for kind, key, value in found.records]
            try:
                await state["producer"].send(records)
            except BrokerUnavailable as exc:
                logger.warning("ingest: %s; the client is told to retry", exc)
                raise _Refused(503, "unavailable", f"{exc}; retry later") from exc
            for topic, _key, _value in records:
                metrics.events.labels(topic).inc()
            for kind in found.ignored:
                metrics.ignored.labels(kind.split(" ", 1)[0]).inc()
            return JSONResponse({"success": True})
        except _Refused as refused:
            status = refused.status
            metrics.rejected.labels(_reason_label(refused.code)).inc()
            headers = {"Retry-After": "5"} if status == 503 else None
            content = {"success": False, "code": refused.code, "message": refused.message}
            if refused.reasons:
                content["reasons"] = refused.reasons
            return JSONResponse(content, status_code=status, headers=headers)
        finally:
            metrics.requests.labels(call, str(status)).inc()
            metrics.latency.labels(call).observe(time.perf_counter() - started)

    async def scrape(_request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def health(_request: Request) -> Response:
        return JSONResponse({"ok": True})

    origins = [o.strip() for o in settings.ingest_cors_origins.split(",") if o.strip()]
    app = Starlette(
        routes=[
            Route("/v1/{call}", tracking, methods=["POST"]),
            Route("/metrics", scrape, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            *live_routes(settings, model, state),
        ],
        middleware=[
            Middleware(
                CORSMiddleware,
                allow_origins=origins,
                allow_methods=["POST", "GET"],
                allow_headers=["authorization", "content-type", "content-encoding"],
            )
        ],
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    return app


def _reason_label(code: str) -> str:
    return {
        "unauthorized": "auth",
        "too_large": "size",
        "invalid_json": "json",
        "invalid_gzip": "json",
        "invalid_request": "invalid",
        "unavailable": "kafka",
        "not_found": "not_found",
    }[code]
