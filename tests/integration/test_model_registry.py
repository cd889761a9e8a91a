"""The model registry on a real Kafka and Redis: a running worker switches to a promoted version
between two batches and back on a rollback; no handoff lost or doubled; freezes hold."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from leadstream.config.loader import default_model_text, load_model
from leadstream.kafka import registry
from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.state.keys import contact_token
from leadstream.tools.generator import TOPIC_OF_TYPE
from tests.factories import buyer_journey, encode
from tests.integration.helpers import handoffs, renamed_model, wait_caught_up

pytestmark = pytest.mark.integration


def _produce(settings, contacts, day):
    records = [
        (getattr(settings.topics, TOPIC_OF_TYPE[e["type"]]), e["contact_id"].encode(), encode(e))
        for contact in contacts
        for e in buyer_journey(contact, start_day=day)
    ]
    produce_all(make_producer(settings), records)


def _wait_running(redis_client, settings, version, timeout_s=30.0):
    key = registry.running_key(settings.redis_key_prefix)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        held = redis_client.hgetall(key).items()
        running = {v.decode() for k, v in held if not k.endswith(b":shadow")}
        if running == {version}:
            return
        time.sleep(0.2)
    raise AssertionError(f"workers run {redis_client.hgetall(key)}, not {version}")


def test_promote_and_roll_back_while_a_worker_runs(settings, redis_client, start_worker):
    ensure_topics(settings)
    first, second = load_model().version, "registry-test-v2"
    assert registry.register(settings, default_model_text(), "default") == first
    assert registry.register(settings, renamed_model(second), "v2.yaml", "same rules, new name") == second
    registry.promote(settings, first, reason="the start")
    start_worker(settings)
    _wait_running(redis_client, settings, first)

    _produce(settings, ["before-1", "before-2"], day=0)
    wait_caught_up(settings)
    registry.promote(settings, second, reason="try v2")
    _wait_running(redis_client, settings, second)
    _produce(settings, ["during-1", "during-2"], day=1)
    wait_caught_up(settings)
    assert registry.rollback(settings, "v2 was a mistake") == first
    _wait_running(redis_client, settings, first)
    _produce(settings, ["after-1", "after-2"], day=2)
    wait_caught_up(settings)

    mqls = [h for h in handoffs(settings) if h["kind"] == "mql"]
    by_contact = {}
    for handoff in mqls:
        by_contact.setdefault(handoff["contact_id"], []).append(handoff["model_version"])
    assert by_contact == {
        "before-1": [first],
        "before-2": [first],
        "during-1": [second],
        "during-2": [second],
        "after-1": [first],
        "after-2": [first],
    }
    state = registry.read_registry(settings)
    assert [h["action"] for h in state.active["history"]] == ["promote", "promote", "rollback"]
    assert state.active["reason"] == "v2 was a mistake"


def test_versions_are_immutable_and_freezes_hold(settings):
    ensure_topics(settings)
    first = load_model().version
    registry.register(settings, default_model_text(), "default")
    registry.register(settings, default_model_text(), "default")  # the same text again: a no-op
    with pytest.raises(registry.RegistryError, match="immutable"):
        registry.register(settings, default_model_text().replace("points: 65", "points: 66"), "edited")
    with pytest.raises(registry.RegistryError, match="not registered"):
        registry.promote(settings, "no-such-version")
    registry.freeze(settings, datetime.now(UTC) + timedelta(days=30), "end of quarter")
    with pytest.raises(registry.RegistryError, match="frozen until"):
        registry.promote(settings, first)
    with pytest.raises(registry.RegistryError, match="needs --reason"):
        registry.promote(settings, first, force=True)
    registry.promote(settings, first, force=True, reason="hotfix")
    state = registry.read_registry(settings)
    assert state.active["version"] == first and state.active["action"] == "promote (forced in freeze)"
    assert json.loads(json.dumps(state.active))["reason"] == "hotfix"
    with pytest.raises(registry.RegistryError, match="nothing to roll back"):
        registry.rollback(settings)


def test_a_shadow_version_scores_beside_the_active_one_and_is_never_routed(
    settings, redis_client, start_worker
):
    from leadstream.engine.shadow import compare, shadow_topic
    from leadstream.kafka.topic_io import read_topic
    from tests.factories import GOOD_FIT, at, identify, trial

    ensure_topics(settings)
    first, loose = load_model().version, "registry-test-loose"
    registry.register(settings, default_model_text(), "default")
    text = renamed_model(loose).replace("  engagement: 60 ", "  engagement: 40 ", 1)
    assert "engagement: 40" in text
    registry.register(settings, text, "loose.yaml")
    registry.promote(settings, first)
    registry.shadow(settings, loose, "try a lower bar")
    worker = start_worker(settings, {"LEADSTREAM_INSTANCE_ID": "shadow-test"})
    assert worker is not None
    key = registry.running_key(settings.redis_key_prefix)
    deadline = time.monotonic() + 30
    while redis_client.hget(key, "shadow-test:shadow") != loose.encode():
        assert time.monotonic() < deadline, redis_client.hgetall(key)
        time.sleep(0.2)

    _produce(settings, ["both-1", "both-2"], day=0)
    # A fitting trial signup alone: 50 points, under the active bar (60), over the shadow's (40).
    trials = [identify("loose-1", at(0), "l1@acme-labs.com", **GOOD_FIT), trial("loose-1", "signup", at(0.5))]
    produce_all(
        make_producer(settings),
        [(getattr(settings.topics, TOPIC_OF_TYPE[e["type"]]), b"loose-1", encode(e)) for e in trials],
    )
    wait_caught_up(settings)
    deadline = time.monotonic() + 30
    while len(read_topic(settings, shadow_topic(settings))) < 3:
        assert time.monotonic() < deadline, "the shadow's handoffs did not arrive"
        time.sleep(0.5)

    routed = handoffs(settings)
    shadowed = read_topic(settings, shadow_topic(settings))
    assert {h["model_version"] for h in routed} == {first}
    assert {h["contact_id"] for h in routed if h["kind"] == "mql"} == {"both-1", "both-2"}
    assert {h["model_version"] for h in shadowed} == {loose}
    assert {h["contact_id"] for h in shadowed if h["kind"] == "mql"} == {"both-1", "both-2", "loose-1"}
    overlap = compare(routed + shadowed, first, loose)
    assert (overlap["both"], overlap["only_a"], overlap["only_b"]) == (2, 0, 1)
    assert overlap["only_b_examples"][0].startswith("mql loose-1: fit")
    # The router reads the handoffs topic only: it assigns the active version's two handoffs.
    from leadstream.bootstrap import build_router
    from leadstream.config.routing import load_routing

    router = build_router(settings, load_routing())
    assert router.run(idle_exit_s=3) == 2
    # The shadow's state lives in a key space of its own.
    shadow_key = f"{settings.redis_key_prefix}:shadow:*{{c:{contact_token('loose-1')}}}"
    assert list(redis_client.scan_iter(shadow_key))
    _purge_the_stopped_shadow(settings, redis_client, loose)


def _purge_the_stopped_shadow(settings, redis_client, version):
    """Its whole key space goes, once no one shadows it any more; the active model's stays."""
    from leadstream.state.keys import contact_key
    from leadstream.tools.purge_shadow import purge_shadow, shadow_space_pattern

    with pytest.raises(registry.RegistryError, match="running shadow"):
        purge_shadow(settings, version)
    space = shadow_space_pattern(settings, version)
    assert len(list(redis_client.scan_iter(space))) > 3
    registry.shadow(settings, None, "seen enough")
    key = registry.running_key(settings.redis_key_prefix)
    deadline = time.monotonic() + 30
    while redis_client.hget(key, "shadow-test:shadow") != b"":
        assert time.monotonic() < deadline, redis_client.hgetall(key)
        time.sleep(0.2)
    redis_client.hset(key, "gone-worker:shadow", version)  # a worker killed while shadowing
    with pytest.raises(registry.RegistryError, match="gone-worker still report"):
        purge_shadow(settings, version)
    active = [k for k in redis_client.scan_iter(f"{settings.redis_key_prefix}:*") if b":shadow:" not in k]
    held = len(list(redis_client.scan_iter(space)))
    assert purge_shadow(settings, version, force=True) == held
    assert list(redis_client.scan_iter(space)) == []
    assert redis_client.exists(contact_key(settings.redis_key_prefix, "both-1"))
    assert all(redis_client.exists(k) for k in active)
    assert purge_shadow(settings, version, force=True) == 0  # idempotent


def test_models_command_line(settings, tmp_path, capsys, monkeypatch):
    from leadstream.cli import main
    from leadstream.config.settings import settings_to_env

    for name, value in settings_to_env(settings).items():
        monkeypatch.setenv(name, value)
    first, second = load_model().version, "cli-test-v2"
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text(default_model_text())
    two.write_text(renamed_model(second).replace("points: 65", "points: 70", 1))
    assert main(["models", "register", str(one), "--reason", "baseline"]) == 0
    assert main(["models", "register", str(two)]) == 0
    assert main(["models", "promote", first]) == 0
    assert main(["models", "promote", second, "--reason", "more weight on demos"]) == 0
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"* {second}" in listed and first in listed and "more weight on demos" in listed
    assert main(["models", "show", second]) == 0
    assert capsys.readouterr().out == two.read_text()
    assert main(["models", "diff", first, second]) == 0
    changes = capsys.readouterr().out
    assert "-    points: 65" in changes and "+    points: 70" in changes
    assert main(["models", "freeze", "--until", "2099-01-01", "--reason", "quarter"]) == 0
    assert main(["models", "promote", first]) == 1
    assert "frozen until 2099-01-01" in capsys.readouterr().err
    assert main(["models", "rollback", "--reason", "back"]) == 0
    assert f"rolled back to {first}" in capsys.readouterr().out
    assert main(["models", "purge-shadow", "no-such-version"]) == 1
    assert "'no-such-version' is not registered" in capsys.readouterr().err
    assert main(["models", "shadow", second]) == 0
    assert main(["models", "purge-shadow", second]) == 1
    assert "is the running shadow: stop it first" in capsys.readouterr().err
    assert main(["models", "shadow", "--off"]) == 0
    assert main(["models", "purge-shadow", second]) == 0
    assert f"purged shadow model {second}: 0 keys deleted" in capsys.readouterr().out
    assert main(["models", "show", "nope"]) == 2
