"""The lookup API and the live page of a running `leadstream ingest` (real Kafka, real Redis, a real
worker), the page checked in headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pytest
import requests

from leadstream.config.loader import load_model
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all
from leadstream.scoring import mql_handoff_id
from leadstream.tools.ingest_process import WRITE_KEY
from tests.integration.helpers import segment_journey, wait_caught_up

pytestmark = pytest.mark.integration
MODEL = load_model()
TOKEN = "sdr-sidebar-token"
HOSTILE = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("Debian's chromium is not installed: scripts/bootstrap test installs it")
    return found


@pytest.fixture
def live(settings, start_worker, start_ingest):
    ingest = start_ingest(settings, {"LEADSTREAM_LOOKUP_TOKENS": f"other-token,{TOKEN}"})
    start_worker(settings)
    return ingest


def send_buyer(ingest, user: str, hours_ago: float = 2) -> None:
    from segment.analytics import Client

    errors: list[Exception] = []
    client = Client(WRITE_KEY, host=ingest.url, on_error=lambda e, _b: errors.append(e))
    segment_journey(client, user, datetime.now(UTC) - timedelta(hours=hours_ago))
    client.shutdown()
    assert errors == []


def get(ingest, path: str, token: str | None = TOKEN, **params: str) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{ingest.url}{path}", headers=headers, params=params, timeout=30)


def test_lookup_api_explains_a_contact_and_its_account(settings, live):
    send_buyer(live, "look-buyer")
    wait_caught_up(settings)

    assert get(live, "/v1/contacts/look-buyer", token=None).status_code == 401
    assert get(live, "/v1/contacts/look-buyer", token="guess").status_code == 401
    answer = get(live, "/v1/contacts/look-buyer")
    assert answer.status_code == 200, answer.text
    contact = answer.json()
    assert contact["stage"] == "mql" and contact["model_version"] == MODEL.version
    assert contact["scored_at_source"] == "stream" and contact["account_domain"] == "acme-labs.com"
    assert contact["fit"]["score"] >= contact["fit"]["threshold"]
    assert contact["engagement"]["score"] >= contact["engagement"]["threshold"]
    assert {r["rule"] for r in contact["engagement"]["rules"]} >= {"demo_request"}
    assert contact["mql"]["count"] == 1 and contact["mql"]["armed"] is False
    # The same breakdown at a chosen event time: two months on, engagement has decayed.
    later = get(live, "/v1/contacts/look-buyer", at=(datetime.now(UTC) + timedelta(days=60)).isoformat())
    assert later.json()["scored_at_source"] == "requested"
    assert later.json()["engagement"]["score"] < contact["engagement"]["score"] / 2
    assert get(live, "/v1/contacts/look-buyer", at="yesterday").status_code == 400
    missing = get(live, "/v1/contacts/nobody-here")
    assert missing.status_code == 404 and "nobody-here" in missing.json()["message"]

    # The account applies a member once the stream's event time has passed it (watermarks);
    # until then it lists it as pending.
    account = get(live, "/v1/accounts/ACME-Labs.com")  # a domain as typed: the account's key
    assert account.status_code == 200, account.text
    body = account.json()
    assert body["domain"] == "acme-labs.com"
    assert [m["contact_id"] for m in body["members"]] + body["pending_members"] == ["look-buyer"]
    assert body["roles_missing"] and body["min_engaged_contacts"] >= 1


def test_lookup_api_and_page_are_off_without_tokens(settings, start_ingest):
    ingest = start_ingest(settings)
    for path in ("/v1/contacts/x", "/live", "/live/data"):
        answer = get(ingest, path)
        assert answer.status_code == 403 and "LEADSTREAM_LOOKUP_TOKENS" in answer.json()["message"]


def test_live_page_in_chromium_shows_handoffs_as_they_happen_and_escapes_everything(settings, live, tmp_path):
    from playwright.sync_api import sync_playwright

    # A handoff whose fields carry markup, as any producer to the handoff topic could write.
    hostile = {
        "kind": "mql",
        "handoff_id": "hostile-1",
        "contact_id": HOSTILE,
        "email_display": HOSTILE,
        "account_domain": HOSTILE,
        "qualified_at": "2026-03-02T10:00:00Z",
        "model_version": "<b>bold</b>",
        "fit": {"score": 1},
        "engagement": {"score": 2, "signals": [{"rule": HOSTILE}]},
    }
    produce_all(make_producer(settings), [(settings.topics.handoffs, b"x", json.dumps(hostile).encode())])

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            # Without the token a browser gets a 401 that asks for it (basic auth), not the page.
            anonymous = get(live, "/live", token=None)
            assert anonymous.status_code == 401 and "Basic" in anonymous.headers["WWW-Authenticate"]
            context = browser.new_context(
                http_credentials={"username": "sdr", "password": TOKEN},
                viewport={"width": 1400, "height": 1000},
            )
            page = context.new_page()
            page.goto(f"{live.url}/live")
            page.wait_for_selector('#feed tr[data-handoff-id="hostile-1"]', timeout=30_000)

            # A buyer's journey arrives while the page is open: its MQL appears without a reload.
            send_buyer(live, "live-buyer")
            expected = mql_handoff_id("live-buyer", MODEL.version, 1)
            page.wait_for_selector(f'#feed tr[data-handoff-id="{expected}"]', timeout=60_000)
            row = page.locator(f'#feed tr[data-handoff-id="{expected}"]').inner_text()
            assert "ana@acme-labs.com" in row and "MQL" in row and "demo_request" in row

            hostile_row = page.locator('#feed tr[data-handoff-id="hostile-1"]')
            assert HOSTILE in hostile_row.inner_text() and "<b>bold</b>" in hostile_row.inner_text()
            assert page.locator("#feed img, #feed script, #feed b").count() == 0
            assert page.evaluate("window.__pwned") is None

            # The aggregates: MQLs per day, conversion by model version, score distributions.
            page.wait_for_function("document.querySelectorAll('#conversion tr').length > 0")
            conversion = page.locator("#conversion").inner_text()
            assert MODEL.version in conversion
            assert page.locator("#per-day .col").count() >= 1
            page.wait_for_function("document.getElementById('engagement-note').textContent.length > 0")
            note = page.locator("#engagement-note").inner_text()
            assert "contacts sampled" in note and f"bar {MODEL.thresholds.engagement:g}" in note
            assert page.locator("#error").inner_text() == ""
            page.screenshot(path=str(tmp_path / "live.png"), full_page=True)
        finally:
            browser.close()
