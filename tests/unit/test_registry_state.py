"""The registry's state from its records (pure: no Kafka)."""

from __future__ import annotations

import json

import pytest

from leadstream.config.loader import default_model_text, load_model
from leadstream.kafka.registry import Registry, RegistryError, diff, listing


def _version(name: str, text: str, at: str) -> bytes:
    return json.dumps({"version": name, "yaml": text, "at": at, "by": "ana", "reason": None}).encode()


def test_latest_record_per_key_wins_and_models_parse():
    state = Registry()
    first = load_model().version
    state.take(f"version/{first}", _version(first, default_model_text(), "2026-01-01T00:00:00+00:00"))
    state.take("active", json.dumps({"version": "x", "action": "promote", "at": "t", "by": "b"}).encode())
    state.take("active", json.dumps({"version": first, "action": "rollback", "at": "t", "by": "b"}).encode())
    assert state.active_version == first
    assert state.model(first).version == first
    with pytest.raises(RegistryError, match="not registered"):
        state.model("nope")
    assert listing(state, 0)[0].startswith(f"* {first}")


def test_freeze_window_and_its_end():
    state = Registry()
    state.take("freeze", json.dumps({"until": "2027-01-01T00:00:00+00:00", "reason": "Q4"}).encode())
    assert state.frozen_until(1_700_000_000) == "2027-01-01T00:00:00+00:00"
    assert state.frozen_until(1_900_000_000) is None
    state.take("freeze", json.dumps({"until": None}).encode())
    assert state.frozen_until(1_700_000_000) is None


def test_diff_names_both_versions():
    state = Registry()
    text = default_model_text()
    state.take("version/a", _version("a", text, "1"))
    state.take("version/b", _version("b", text.replace("points: 65", "points: 70"), "2"))
    out = diff(state, "a", "b")
    assert out.startswith("--- a\n+++ b\n") and "-    points: 65" in out and "+    points: 70" in out
    assert diff(state, "a", "a") == ""
    with pytest.raises(RegistryError):
        diff(state, "a", "zzz")


def test_compare_splits_handoffs_by_version_with_their_signals():
    from leadstream.engine.shadow import compare

    def mql(contact, version, score):
        return {
            "kind": "mql",
            "contact_id": contact,
            "model_version": version,
            "fit": {"score": 55.0},
            "engagement": {"score": score, "signals": [{"rule": "trial_signup", "value": score}]},
        }

    handoffs = [mql("a", "v1", 70), mql("a", "v2", 70), mql("b", "v2", 50), mql("c", "v1", 90)]
    result = compare(handoffs, "v1", "v2")
    assert (result["both"], result["only_a"], result["only_b"]) == (1, 1, 1)
    assert result["only_b_examples"] == ["mql b: fit 55, engagement 50 (trial_signup 50)"]
