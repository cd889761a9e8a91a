"""`leadstream ingest` on a real Kafka broker, driven by the real Segment and RudderStack clients.

Each client, configured with nothing but our host and a write key, sends a buyer's journey; the
worker (real Kafka, real Redis) turns it into an MQL on the handoff topic.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime, timedelta

import pytest
import requests

from leadstream.config.loader import load_model
from leadstream.config.settings import Settings
from leadstream.scoring import mql_handoff_id
from leadstream.tools.ingest_process import WRITE_KEY, IngestProcess
from tests.integration.helpers import TRAITS, handoffs, read_all, segment_journey, wait_caught_up

pytestmark = pytest.mark.integration
MODEL = load_model()


def _mqls(settings: Settings) -> list[tuple[str, str]]:
    return [(h["contact_id"], h["handoff_id"]) for h in handoffs(settings) if h.get("kind", "mql") == "mql"]


@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_segment_python_client_journey_becomes_an_mql(settings, start_worker, start_ingest, gzipped):
    from segment.analytics import Client

    ingest = start_ingest(settings)
    start_worker(settings)
    errors: list[Exception] = []
    client = Client(WRITE_KEY, host=ingest.url, gzip=gzipped, on_error=lambda e, _b: errors.append(e))
    segment_journey(client, "seg-buyer", datetime.now(UTC) - timedelta(hours=2))
    client.shutdown()
    assert errors == []
    wait_caught_up(settings)
    assert _mqls(settings) == [("seg-buyer", mql_handoff_id("seg-buyer", MODEL.version, 1))]


def test_rudderstack_python_sdk_stitches_the_anonymous_visit_into_the_mql(
    settings, start_worker, start_ingest
):
    from rudderstack.analytics.client import Client

    ingest = start_ingest(settings)
    start_worker(settings)
    errors: list[Exception] = []
    client = Client(WRITE_KEY, host=ingest.url, on_error=lambda e, _b: errors.append(e))
    start = datetime.now(UTC) - timedelta(hours=3)
    # An anonymous visitor reads pricing twice and a case study, then signs up for a trial...
    for minutes, path in ((0, "/pricing"), (5, "/pricing"), (9, "/case-studies/b")):
        client.page(
            anonymous_id="anon-r1",
            properties={"url": f"https://www.example.com{path}"},
            timestamp=start + timedelta(minutes=minutes),
        )
    client.identify("rud-buyer", TRAITS, anonymous_id="anon-r1", timestamp=start + timedelta(minutes=12))
    client.track("rud-buyer", "Trial Started", timestamp=start + timedelta(minutes=13))
    client.flush()
    client.join()
    assert errors == []
    wait_caught_up(settings)
    # ...a trial alone is 10 points short of the bar: the anonymous pricing visits count.
    assert _mqls(settings) == [("rud-buyer", mql_handoff_id("rud-buyer", MODEL.version, 1))]


def _post(ingest: IngestProcess, path: str, body: object, key: str | None = WRITE_KEY, **kwargs):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    auth = (key, "") if key is not None else None
    return requests.post(f"{ingest.url}{path}", data=data, auth=auth, timeout=30, **kwargs)


def test_bad_requests_are_refused_with_reasons_and_produce_nothing(settings, start_ingest):
    ingest = start_ingest(settings)
    now = datetime.now(UTC).isoformat()
    good = {
        "type": "track",
        "userId": "u1",
        "event": "Demo Requested",
        "messageId": "m-good",
        "timestamp": now,
    }

    assert _post(ingest, "/v1/track", good, key=None).status_code == 401
    assert _post(ingest, "/v1/track", good, key="wrong").json()["code"] == "unauthorized"
    not_json = _post(ingest, "/v1/track", b"{not json")
    assert (not_json.status_code, not_json.json()["code"]) == (400, "invalid_json")
    # One bad call rejects its whole batch: the good call in it is not produced either.
    mixed = {"batch": [good, {"type": "page", "userId": "u1"}, {"type": "track", "event": "Demo Requested"}]}
    answer = _post(ingest, "/v1/batch", mixed)
    assert answer.status_code == 400
    assert [r.split(":")[0] for r in answer.json()["reasons"]] == ["batch[1]", "batch[2]"]
    # Over Segment's 32 KB per call and 500 KB per batch (also when it only inflates that large).
    huge = {**good, "properties": {"blob": "x" * 40_000}}
    assert _post(ingest, "/v1/track", huge).status_code == 413
    bomb = gzip.compress(json.dumps({"batch": [good] * 1, "pad": "y" * 600_000}).encode())
    assert _post(ingest, "/v1/batch", bomb, headers={"Content-Encoding": "gzip"}).status_code == 413

    assert read_all(settings, settings.topics.forms, settle_s=0.5) == []
    accepted = _post(ingest, "/v1/batch", {"batch": [good, {**good, "type": "screen", "name": "Home"}]})
    assert accepted.json() == {"success": True}
    assert len(read_all(settings, settings.topics.forms)) == 1

    scraped = requests.get(f"{ingest.url}/metrics", timeout=10).text
    assert 'leadstream_ingest_rejected_total{reason="auth"} 2.0' in scraped
    assert 'leadstream_ingest_rejected_total{reason="size"} 2.0' in scraped
    assert f'leadstream_ingest_events_total{{topic="{settings.topics.forms}"}} 1.0' in scraped
    assert 'leadstream_ingest_ignored_total{kind="screen"} 1.0' in scraped
    assert 'leadstream_ingest_requests_total{endpoint="batch",status="200"} 1.0' in scraped


def test_group_call_gives_the_account_and_the_members_company(settings, start_ingest):
    ingest = start_ingest(settings)
    call = {
        "userId": "g-user",
        "groupId": "acct-42",
        "messageId": "g-1",
        "timestamp": datetime.now(UTC).isoformat(),
        "traits": {
            "name": "Acme Labs",
            "website": "https://www.acme-labs.com/",
            "industry": "software",
            "employees": 300,
        },
    }
    assert _post(ingest, "/v1/group", call).json() == {"success": True}
    accounts = [json.loads(m.value()) for m in read_all(settings, settings.topics.accounts)]
    members = [json.loads(m.value()) for m in read_all(settings, settings.topics.identify)]
    assert [(a["account_id"], a["domain"], a["employees"]) for a in accounts] == [
        ("acct-42", "acme-labs.com", 300)
    ]
    assert [(m["contact_id"], m["company_domain"]) for m in members] == [("g-user", "acme-labs.com")]
