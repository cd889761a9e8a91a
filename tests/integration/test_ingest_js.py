"""Segment's JavaScript clients, unchanged, against `leadstream ingest`: `@segment/analytics-node`
in Node, `@segment/analytics-next` in a page loaded by headless Chromium. Each is configured with
nothing but our host and a write key; its journey ends as an MQL on the handoff topic (real Kafka,
real Redis, a real worker). The npm packages come from tests/js (scripts/bootstrap test)."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from leadstream.config.loader import load_model
from leadstream.scoring import mql_handoff_id
from leadstream.tools.ingest_process import WRITE_KEY
from tests.integration.helpers import handoffs, wait_caught_up
from tests.integration.test_live_page import chromium

pytestmark = pytest.mark.integration
MODEL = load_model()
JS = Path(__file__).resolve().parents[1] / "js"
NEXT_UMD = JS / "node_modules" / "@segment" / "analytics-next" / "dist" / "umd"

PAGE = """<!doctype html><html><head><title>Pricing</title>
<script src="/analytics-next/index.js"></script>
<script>
  const analytics = AnalyticsNext.AnalyticsBrowser.load({
    writeKey: "%(key)s",
    cdnURL: "%(site)s",
    // Segment's settings, given inline instead of fetched from Segment's CDN: our host.
    cdnSettings: { integrations: { "Segment.io": {
      apiKey: "%(key)s", apiHost: "%(host)s/v1", protocol: "http" } } },
  });
  window.journey = async (user) => {
    const traits = { email: "web@acme-labs.com", title: "VP Marketing", industry: "software",
                     employees: 400, region: "emea" };
    await analytics.identify(user, traits);
    await analytics.page("Pricing", { url: "https://www.example.com/pricing" });
    await analytics.page("Pricing", { url: "https://www.example.com/pricing?x=1" });
    await analytics.page("Case study", { url: "https://www.example.com/case-studies/a" });
    await analytics.track("Demo Requested", { form_id: "demo" });
    return "sent";
  };
</script></head><body>shop</body></html>"""


def node_modules() -> None:
    if not (JS / "node_modules" / "@segment").is_dir():
        pytest.fail("tests/js has no node_modules: scripts/bootstrap test installs them (npm ci)")


def wait_for_mql(settings, contact: str, timeout_s: float = 60) -> list[tuple[str, str]]:
    deadline = time.monotonic() + timeout_s
    while True:
        wait_caught_up(settings)
        found = [(h["contact_id"], h["handoff_id"]) for h in handoffs(settings) if h["kind"] == "mql"]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_segment_analytics_node_journey_becomes_an_mql(settings, start_worker, start_ingest):
    node_modules()
    node = shutil.which("node")
    assert node, "Node.js is needed: scripts/bootstrap test installs it"
    ingest = start_ingest(settings)
    start_worker(settings)
    start = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    sent = subprocess.run(
        [node, str(JS / "send_journey.mjs"), ingest.url, WRITE_KEY, "node-buyer", start],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=JS,
    )
    assert sent.returncode == 0, sent.stderr + ingest.log_tail()
    assert wait_for_mql(settings, "node-buyer") == [
        ("node-buyer", mql_handoff_id("node-buyer", MODEL.version, 1))
    ]


class Website:
    """The customer's website: one page and analytics-next's bundle (and the chunks it loads
    lazily from cdnURL/analytics-next/bundles/), on loopback like ingest, since Chromium keeps a
    public http:// page from calling a loopback address (in production both are public)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.html = b""


@pytest.fixture
def website() -> Iterator[Website]:
    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.split("?")[0].rsplit("/", 1)[-1]
            if self.path.startswith("/analytics-next/") and (NEXT_UMD / name).is_file():
                body, kind = (NEXT_UMD / name).read_bytes(), "text/javascript"
            elif self.path.startswith("/analytics-next/"):
                self.send_error(404)
                return
            else:
                body, kind = site.html, "text/html"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    site = Website(f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield site
    finally:
        server.shutdown()


def test_segment_analytics_next_in_chromium_journey_becomes_an_mql(
    settings, start_worker, start_ingest, website
):
    from playwright.sync_api import sync_playwright

    node_modules()
    ingest = start_ingest(settings)
    start_worker(settings)
    host = ingest.url.removeprefix("http://")
    website.html = (PAGE % {"key": WRITE_KEY, "site": website.url, "host": host}).encode()

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{website.url}/pricing")
            page.wait_for_function("typeof window.journey === 'function'")
            assert page.evaluate("window.journey('web-buyer')") == "sent"
            found = wait_for_mql(settings, "web-buyer")
        finally:
            browser.close()
    assert found == [("web-buyer", mql_handoff_id("web-buyer", MODEL.version, 1))], ingest.log_tail()
