"""Ingest throughput: generated journeys sent as Segment batch calls to `leadstream ingest`.

    .venv/bin/python -m bench.ingest --contacts 3000 [--threads 4] [--batch 100]

Starts `leadstream ingest` on fresh topics, converts generated journeys to the Segment calls a
website would make (page, track, identify, group), and posts them as `/v1/batch` requests from
several client threads; every request is answered only after Kafka acknowledged its events. The
ceiling, measured in the same run on the same events: producing them straight to Kafka from one
process (no HTTP, no validation). Prints events/s of both, ingest's CPU per event, and the ratio.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import requests

from bench.run import clean_up, fresh_settings
from leadstream.ingest.mapping import load_mapping
from leadstream.ingest.segment import translate
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.tools.generator import JourneyGenerator, default_start
from leadstream.tools.ingest_process import WRITE_KEY, IngestProcess

__all__ = ["main", "segment_call"]

_TRACK_NAMES = {
    (m.type, m.form_type or m.action): name for name, m in reversed(list(load_mapping().track.items()))
}


def segment_call(event: dict[str, Any]) -> dict[str, Any] | None:
    """The Segment call a website or CDP would have sent for a generated event (None: none would)."""
    call: dict[str, Any] = {"messageId": event.get("event_id"), "timestamp": event.get("occurred_at")}
    if event.get("contact_id"):
        call["userId"] = event["contact_id"]
    if event.get("anonymous_id"):
        call["anonymousId"] = event["anonymous_id"]
    kind = event["type"]
    if kind == "page_view":
        return {**call, "type": "page", "properties": {"url": event["url"]}}
    if kind == "identify":
        traits = {**event.get("traits", {}), "email": event.get("email")}
        traits["title"] = traits.pop("job_title", None)
        return {**call, "type": "identify", "traits": {k: v for k, v in traits.items() if v is not None}}
    if kind in ("form_submission", "trial", "webinar"):
        name = _TRACK_NAMES.get((kind, event.get("form_type") or event.get("action")))
        if name is None:
            return None
        properties = {"form_id": event.get("form_id"), "webinar_id": event.get("webinar_id")}
        return {
            **call,
            "type": "track",
            "event": name,
            "properties": {k: v for k, v in properties.items() if v},
        }
    return None


def _post_all(url: str, bodies: list[bytes], threads: int) -> list[str]:
    """POST every body to ``/v1/batch`` from ``threads`` clients; the failed answers' texts."""
    queue, lock, failures = list(bodies), threading.Lock(), list[str]()

    def send() -> None:
        session = requests.Session()
        while True:
            with lock:
                if not queue:
                    return
                body = queue.pop()
            answer = session.post(f"{url}/v1/batch", data=body, auth=(WRITE_KEY, ""), timeout=60)
            if answer.status_code != 200:
                failures.append(answer.text)

    clients = [threading.Thread(target=send) for _ in range(threads)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    return failures


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, clock ticks of 1/100 s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100, help="calls per /v1/batch request")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    events = JourneyGenerator(args.seed, args.contacts, start=default_start()).events()
    calls = [c for c in (segment_call(e) for e in events) if c is not None]
    bodies = [orjson.dumps({"batch": calls[i : i + args.batch]}) for i in range(0, len(calls), args.batch)]
    print(f"[ingest] {len(calls):,} calls in {len(bodies):,} batch requests", file=sys.stderr)
    mapping = load_mapping()
    rates, ceilings, cpu_per_event = [], [], []
    log = Path("bench/out/ingest.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    for run in range(args.repeats):
        settings = fresh_settings(4)
        ensure_topics(settings)
        ingest = IngestProcess(settings, log).start()
        try:
            assert ingest.process is not None
            cpu_before, started = _cpu_s(ingest.process.pid), time.perf_counter()
            failures = _post_all(ingest.url, bodies, args.threads)
            wall = time.perf_counter() - started
            cpu = _cpu_s(ingest.process.pid) - cpu_before
        finally:
            ingest.stop()
        if failures:
            print(f"[ingest] {len(failures)} requests failed: {failures[:2]}", file=sys.stderr)
            return 1
        records = [
            (getattr(settings.topics, kind), key, value)
            for call in calls
            for kind, key, value in translate(call, mapping, default_start()).records
        ]
        ceiling = fresh_settings(4)
        ensure_topics(ceiling)
        produced_at = time.perf_counter()
        produce_all(
            make_producer(ceiling),
            [(getattr(ceiling.topics, t.rsplit(".", 1)[1]), k, v) for t, k, v in records],
        )
        ceilings.append(len(records) / (time.perf_counter() - produced_at))
        rates.append(len(records) / wall)
        cpu_per_event.append(1e6 * cpu / len(records))
        print(
            f"[ingest] run {run + 1}: {rates[-1]:,.0f} events/s, ceiling {ceilings[-1]:,.0f}", file=sys.stderr
        )
        clean_up(settings)
        clean_up(ceiling)
    result = {
        "events": len(calls),
        "ingest_events_per_s": statistics.median(rates),
        "produce_ceiling_events_per_s": statistics.median(ceilings),
        "ingest_cpu_us_per_event": statistics.median(cpu_per_event),
    }
    result["ingest_over_ceiling"] = result["ingest_events_per_s"] / result["produce_ceiling_events_per_s"]
    print(f"ingest events/s (median of {args.repeats})   {result['ingest_events_per_s']:>10,.0f}")
    print(f"produce ceiling events/s         {result['produce_ceiling_events_per_s']:>10,.0f}")
    print(f"ingest / ceiling                 {result['ingest_over_ceiling']:>10.2f}")
    print(f"ingest CPU µs per event          {result['ingest_cpu_us_per_event']:>10.1f}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
