"""docker-compose.yml cannot run here; check that it agrees with the settings and the stack script."""

from __future__ import annotations

from pathlib import Path

import yaml

from leadstream.config.settings import Settings, Topics

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _setting_variables() -> set[str]:
    names = set()
    for name in Settings.model_fields:
        names.add(f"LEADSTREAM_{name.upper()}")
    for name in Topics.model_fields:
        names.add(f"LEADSTREAM_TOPICS__{name.upper()}")
    return names


def test_compose_has_the_three_services():
    assert {"kafka", "redis", "worker"} <= set(_compose()["services"])


def test_worker_variables_are_settings_fields():
    environment = _compose()["services"]["worker"]["environment"]
    unknown = set(environment) - _setting_variables()
    assert not unknown, f"compose sets variables the settings model does not know: {unknown}"
    # Every value the compose file gives must validate.
    Settings(
        kafka_bootstrap_servers=environment["LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS"],
        redis_url=environment["LEADSTREAM_REDIS_URL"],
    )


def test_published_ports_match_the_settings_defaults():
    services = _compose()["services"]
    defaults = Settings()
    kafka_port = defaults.kafka_bootstrap_servers.rsplit(":", 1)[1]
    redis_port = defaults.redis_url.rsplit(":", 1)[1].split("/")[0]
    assert f"{kafka_port}:9092" in services["kafka"]["ports"]
    assert f"{redis_port}:6379" in services["redis"]["ports"]
    advertised = services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"PLAINTEXT_HOST://{defaults.kafka_bootstrap_servers}" in advertised


def test_stack_script_uses_the_same_default_ports():
    script = (ROOT / "scripts" / "stack").read_text()
    assert 'kafka_port="${LEADSTREAM_KAFKA_PORT:-9092}"' in script
    assert 'redis_port="${LEADSTREAM_REDIS_PORT:-6379}"' in script


def test_compose_kafka_version_matches_the_stack_pom():
    pom = (ROOT / "scripts" / "kafka" / "pom.xml").read_text()
    image = _compose()["services"]["kafka"]["image"]
    assert f"<kafka.version>{image.split(':')[1]}</kafka.version>" in pom
