from __future__ import annotations

import pytest
from pydantic import ValidationError

from leadstream.config.settings import Settings, load_settings, settings_to_env


def test_defaults_point_at_the_local_stack(monkeypatch):
    for name in list(__import__("os").environ):
        if name.startswith("LEADSTREAM_"):
            monkeypatch.delenv(name)
    settings = load_settings()
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert settings.redis_url == "redis://127.0.0.1:6379/0"


def test_environment_and_nested_topics(monkeypatch):
    monkeypatch.setenv("LEADSTREAM_TOPICS__HANDOFFS", "crm.handoffs")
    monkeypatch.setenv("LEADSTREAM_BATCH_MAX", "250")
    settings = load_settings()
    assert settings.topics.handoffs == "crm.handoffs"
    assert settings.batch_max == 250


def test_settings_file_is_read_and_environment_wins(tmp_path, monkeypatch):
    path = tmp_path / "leadstream.env"
    path.write_text("LEADSTREAM_CONSUMER_GROUP=from-file\nLEADSTREAM_BATCH_MAX=7\n")
    monkeypatch.setenv("LEADSTREAM_BATCH_MAX", "9")
    settings = load_settings(path)
    assert settings.consumer_group == "from-file"
    assert settings.batch_max == 9


def test_missing_settings_file_says_which(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.env"):
        load_settings(tmp_path / "nope.env")


def test_secrets_are_hidden_and_settings_frozen():
    settings = Settings(kafka_sasl_password="hunter2")
    assert "hunter2" not in repr(settings)
    with pytest.raises(ValidationError):
        settings.batch_max = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("field", "value"),
    [("kafka_bootstrap_servers", "localhost"), ("redis_url", "http://x"), ("batch_max", 0)],
)
def test_bad_values_are_rejected(field, value):
    with pytest.raises(ValidationError, match=field):
        Settings(**{field: value})


def test_settings_round_trip_through_the_environment(monkeypatch):
    original = Settings(consumer_group="g1", redis_password="pw", topics={"handoffs": "h"})
    for name, value in settings_to_env(original).items():
        monkeypatch.setenv(name, value)
    assert load_settings() == original


def test_the_confluent_worker_fetch_wait_comes_from_the_settings(monkeypatch):
    from leadstream.kafka.confluent_loop import consumer_config

    monkeypatch.delenv("LEADSTREAM_FETCH_WAIT_MS", raising=False)
    assert consumer_config(Settings())["fetch.wait.max.ms"] == 25
    monkeypatch.setenv("LEADSTREAM_FETCH_WAIT_MS", "40")
    assert consumer_config(load_settings())["fetch.wait.max.ms"] == 40
    with pytest.raises(ValidationError):
        Settings(fetch_wait_ms=0)
