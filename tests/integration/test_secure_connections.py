"""Encrypted, authenticated connections for real: the local stack's SASL_SSL listener (SCRAM, ACLs
enforced) and its TLS-only Redis (client certificates required, ACL users), both started by
``scripts/stack up``. The worker and the router run as a least-privileged user each: no
CreateTopics right on Kafka, only the documented commands and their own keys on Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis
from confluent_kafka.admin import AdminClient

from leadstream.acls import kafka_app_acls, redis_app_rule
from leadstream.bootstrap import redis_blocking
from leadstream.config.routing import load_routing
from leadstream.config.settings import Settings, settings_to_env
from leadstream.kafka.topics import ensure_topics
from leadstream.router.service import Router
from leadstream.scoring import mql_handoff_id
from tests.factories import buyer_journey
from tests.integration.helpers import handoffs, read_all, wait_caught_up
from tests.integration.test_scoring_worker import MODEL, produce

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        os.environ.get("LEADSTREAM_REDIS_CLUSTER", "").lower() in ("1", "true"),
        reason="the SASL_SSL listener and the TLS Redis belong to the single-node stack (scripts/stack up)",
    ),
]
ROOT = Path(__file__).resolve().parents[2]
STACK = Path(os.environ.get("LEADSTREAM_STACK_DIR", ROOT / ".leadstream" / "stack"))


def _secure_env() -> dict[str, str]:
    path = STACK / "secure.env"
    if not path.is_file():
        pytest.fail(f"{path} is missing: start the local stack with scripts/stack up", pytrace=False)
    pairs = (line.removeprefix("export ").split("=", 1) for line in path.read_text().splitlines() if line)
    return dict(pairs)


@pytest.fixture
def secure(settings: Settings, redis_url: str) -> tuple[Settings, Settings]:
    """(admin, app): the test's topics made by the admin on the PLAINTEXT listener; an app user of
    its own on Kafka (SCRAM) and on Redis (ACL) granted exactly the documented rights."""
    env = _secure_env()
    run = uuid.uuid4().hex[:8]
    user, password = f"app-{run}", uuid.uuid4().hex
    admin = settings
    ensure_topics(admin, create=True)
    prefix = admin.topics.handoffs.split(".", 1)[0]  # the test's topics share "t<run>."
    kafka_admin = AdminClient({"bootstrap.servers": admin.kafka_bootstrap_servers})
    _scram_user(kafka_admin, user, password)
    for future in kafka_admin.create_acls(kafka_app_acls(user, f"{prefix}.", admin.consumer_group)).values():
        future.result(timeout=30)
    redis_admin = _redis(env, "leadstream-admin", (STACK / "tls" / "admin.password").read_text())
    redis_admin.acl_setuser(user, enabled=True, passwords=[f"+{password}"], reset=True)
    redis_admin.execute_command("ACL", "SETUSER", user, *redis_app_rule(admin.redis_key_prefix))
    app = admin.model_copy(
        update={
            "kafka_bootstrap_servers": env["LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS"],
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-512",
            "kafka_sasl_username": user,
            "kafka_sasl_password": password,
            "kafka_ssl_ca_file": Path(env["LEADSTREAM_KAFKA_SSL_CA_FILE"]),
            "create_topics": False,
            "redis_url": env["LEADSTREAM_REDIS_URL"],
            "redis_username": user,
            "redis_password": password,
            "redis_ssl_ca_file": Path(env["LEADSTREAM_REDIS_SSL_CA_FILE"]),
            "redis_ssl_cert_file": Path(env["LEADSTREAM_REDIS_SSL_CERT_FILE"]),
            "redis_ssl_key_file": Path(env["LEADSTREAM_REDIS_SSL_KEY_FILE"]),
        }
    )
    return admin, Settings(
        **{**app.model_dump(), "kafka_sasl_password": password, "redis_password": password}
    )


def _scram_user(admin: AdminClient, user: str, password: str) -> None:
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    upsert = UserScramCredentialUpsertion(
        user, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), password.encode()
    )
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)


def _redis(env: dict[str, str], user: str, password: str) -> redis.Redis:
    return redis.Redis.from_url(
        env["LEADSTREAM_REDIS_URL"],
        username=user,
        password=password,
        ssl_ca_certs=env["LEADSTREAM_REDIS_SSL_CA_FILE"],
        ssl_certfile=env["LEADSTREAM_REDIS_SSL_CERT_FILE"],
        ssl_keyfile=env["LEADSTREAM_REDIS_SSL_KEY_FILE"],
    )


@pytest.mark.parametrize("engine", ["faust", "confluent"])
def test_worker_and_router_run_over_sasl_ssl_and_tls_redis_with_least_privilege(secure, start_worker, engine):
    admin, app = secure
    app = app.model_copy(update={"worker_engine": engine})
    start_worker(app)
    journey = buyer_journey(f"secure-{engine}")
    produce(admin, journey)
    wait_caught_up(admin)
    expected = mql_handoff_id(f"secure-{engine}", MODEL.version, 1)
    assert [h["handoff_id"] for h in handoffs(admin)] == [expected]

    # The router, as the same user: assigns the handoff over the same connections.
    router = Router(app, load_routing(), redis_blocking(app))
    assert router.run(idle_exit_s=3) == 1
    assignments = [json.loads(m.value()) for m in read_all(admin, admin.topics.assignments)]
    assert [a["handoff_id"] for a in assignments] == [expected]

    # Least privilege held: the app user may neither create topics nor touch other keys.
    client = redis_blocking(app)
    assert client.hgetall(f"{app.redis_key_prefix}:watermarks-probe") == {}
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.hgetall("someone-else:key")
    with pytest.raises(redis.exceptions.NoPermissionError):
        client.flushdb()


def test_the_app_user_cannot_create_topics_and_says_so(secure):
    _admin, app = secure
    extra = app.model_copy(update={"topics": app.topics.model_copy(update={"handoffs": "nobody.handoffs"})})
    done = _cli(extra, "topics")
    assert done.returncode != 0
    assert "does not allow user" in done.stderr and "nobody.handoffs" in done.stderr


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"kafka_sasl_password": "wrong"}, "Kafka refused the credentials"),
        ({"kafka_ssl_ca_file": None}, "TLS with Kafka failed"),
    ],
)
def test_a_wrong_password_or_an_untrusted_certificate_is_one_clear_error(secure, change, said):
    _admin, app = secure
    done = _cli(Settings(**{**app.model_dump(), **change}), "worker", timeout=90)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.startswith("leadstream:")]
    assert len(lines) == 1 and said in lines[0], done.stderr[-2000:]


def test_redis_refuses_a_wrong_password_and_a_client_without_certificate(secure):
    _admin, app = secure
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis_blocking(Settings(**{**app.model_dump(), "redis_password": "wrong"})).ping()
    no_cert = Settings(**{**app.model_dump(), "redis_ssl_cert_file": None, "redis_ssl_key_file": None})
    with pytest.raises(redis.exceptions.ConnectionError):
        redis_blocking(no_cert).ping()


def _cli(settings: Settings, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSTREAM_")}
    env.update(settings_to_env(settings))
    return subprocess.run(
        [sys.executable, "-m", "leadstream.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
