"""Running the ingest app under uvicorn, configuration checked before anything connects."""

from __future__ import annotations

import sys
from pathlib import Path

import uvicorn

from leadstream.bootstrap import worker_model
from leadstream.config.settings import Settings
from leadstream.ingest.app import build_app, write_keys
from leadstream.ingest.live import lookup_tokens
from leadstream.ingest.mapping import load_mapping
from leadstream.kafka.clients import require_kafka
from leadstream.kafka.topics import ensure_topics

__all__ = ["serve"]


def serve(settings: Settings, host: str | None, port: int | None, mapping_path: Path | None) -> int:
    mapping = load_mapping(mapping_path or settings.ingest_mapping_path)  # a typo is said at once
    write_keys(settings)
    require_kafka(settings)
    ensure_topics(settings)
    # The lookup API and the live page explain scores with the model the workers run: the
    # registry's active version (else the model file), as of ingest's start.
    model, _follower = worker_model(settings)
    host, port = host or settings.ingest_host, settings.ingest_port if port is None else port
    print(
        f"leadstream ingest: Segment HTTP API on http://{host}:{port}/v1 "
        f"({len(mapping.track)} track events mapped), metrics on /metrics",
        file=sys.stderr,
    )
    if lookup_tokens(settings):
        print(
            f"leadstream ingest: live page on http://{host}:{port}/live, lookup API on "
            f"/v1/contacts/<id> and /v1/accounts/<domain> (a token of LEADSTREAM_LOOKUP_TOKENS)",
            file=sys.stderr,
        )
    else:
        print(
            "leadstream ingest: live page and lookup API off (set LEADSTREAM_LOOKUP_TOKENS to turn them on)",
            file=sys.stderr,
        )
    app = build_app(settings, mapping, model=model)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0
