"""The compiled hot path (mypyc, scripts/compile) and its pure-Python twin, as a user runs them:
the switch, and the same handoffs from both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import leadstream
from leadstream.native import PURE_ENV

pytestmark = pytest.mark.e2e
COMPILED = (Path(leadstream.__file__).resolve().parent / "_native.json").exists()


def _where_engine_loads_from(env: dict[str, str]) -> tuple[str, str]:
    probe = (
        "import leadstream.native as n, leadstream.scoring.engine as e; "
        "print(n.mode()); print(type(e.__spec__.loader).__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    mode, loader = done.stdout.splitlines()
    return mode, loader


def test_pure_python_on_request_loads_every_module_from_its_source():
    mode, loader = _where_engine_loads_from({**os.environ, PURE_ENV: "1"})
    assert mode.startswith("pure Python") and PURE_ENV in mode
    assert loader == "SourceFileLoader"


@pytest.mark.skipif(not COMPILED, reason="not compiled here (scripts/compile)")
def test_compiled_by_default_when_built():
    mode, loader = _where_engine_loads_from({k: v for k, v in os.environ.items() if k != PURE_ENV})
    assert mode.startswith("compiled"), mode
    assert loader == "ExtensionFileLoader"


@pytest.mark.skipif(not COMPILED, reason="not compiled here (scripts/compile)")
def test_compiled_and_pure_python_hand_off_the_same(tmp_path):
    """The same generated journeys through `leadstream replay` both ways: byte-identical handoffs."""
    events = tmp_path / "events.jsonl"
    base = {k: v for k, v in os.environ.items() if k != PURE_ENV}
    cli = [sys.executable, "-m", "leadstream.cli"]
    start = "2026-05-01T00:00:00+00:00"
    subprocess.run(
        [*cli, "generate", "--seed", "11", "--contacts", "600", "--start", start, "--out", str(events)],
        env=base,
        check=True,
        timeout=300,
    )
    outputs = {}
    for name, env in (("compiled", base), ("pure", {**base, PURE_ENV: "1"})):
        out = tmp_path / f"{name}.jsonl"
        subprocess.run(
            [*cli, "replay", "--quiet", "--handoffs-out", str(out), str(events)],
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )
        outputs[name] = out.read_bytes()
    kinds = [json.loads(line)["kind"] for line in outputs["pure"].splitlines()]
    # enough of both kinds to mean something (111 MQL and 34 buying groups when written)
    assert kinds.count("mql") > 50 and kinds.count("buying_group") > 10
    assert outputs["compiled"] == outputs["pure"]
