"""The least privilege each leadstream process needs, as Kafka ACL bindings and a Redis ACL rule.

One definition, used three ways: ``scripts/stack up`` grants them to the local secure listener's
and Redis's application user, the security tests grant them to a test's own user, and the README's
"Least privilege" section lists them for operators.

    python -m leadstream.acls redis ls     # the Redis ACL rule for key prefix ls
"""

from __future__ import annotations

import sys

from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AclBinding,
    AclOperation,
    AclPermissionType,
    ResourcePatternType,
    ResourceType,
)

__all__ = ["REDIS_APP_COMMANDS", "kafka_app_acls", "main", "redis_app_rule"]

# Sent by the worker, router, ingest and tools, and called by the leadstream function library.
# FUNCTION LOAD: each process loads the library at start (replace=True: the same code again).
# CLUSTER SLOTS/SHARDS and READONLY: the Redis Cluster client's discovery. SCAN: the lookup API's
# and the live page's score distribution (ingest), and `leadstream explain` (tools) only.
REDIS_APP_COMMANDS = (
    "fcall",
    "function|load",
    "hgetall",
    "hmget",
    "hset",
    # the suppression list (engine/input/suppressions.py): its mark and length every batch, its
    # members when either moved
    "get",
    "hlen",
    "hkeys",
    "zadd",
    "zrangebyscore",
    "scan",
    "ping",
    "info",
    "client|setname",
    "cluster|slots",
    "cluster|shards",
    "readonly",
    # inside the function library (FCALL checks each command a function runs)
    "hget",
    "hdel",
    "hsetnx",
    "hincrby",
    "incr",
    "expire",
    "zrem",
    "zscore",
)


def redis_app_rule(key_prefix: str) -> list[str]:
    """The ACL rule words (``ACL SETUSER <user> on >password <words>``): the deployment's keys
    only, no channels, and only the commands above."""
    return [f"~{key_prefix}:*", "resetchannels", "-@all", *(f"+{c}" for c in REDIS_APP_COMMANDS)]


def kafka_app_acls(user: str, topic_prefix: str, group_prefix: str) -> list[AclBinding]:
    """What the worker, router and ingest need on Kafka: Read, Write and Describe on their topics,
    Read on their consumer groups (Describe comes with it), Write on the router's transactional
    ids (``<group>-router-<instance>``). No Create (topics are made by an admin,
    LEADSTREAM_CREATE_TOPICS=false), no cluster rights (idempotent producers need only Write since
    Kafka 3.0)."""
    principal = f"User:{user}"
    allow, prefixed = AclPermissionType.ALLOW, ResourcePatternType.PREFIXED
    bindings = [
        AclBinding(ResourceType.TOPIC, topic_prefix, prefixed, principal, "*", operation, allow)
        for operation in (AclOperation.READ, AclOperation.WRITE, AclOperation.DESCRIBE)
    ]
    bindings.append(
        AclBinding(ResourceType.GROUP, group_prefix, prefixed, principal, "*", AclOperation.READ, allow)
    )
    bindings.append(
        AclBinding(
            ResourceType.TRANSACTIONAL_ID, group_prefix, prefixed, principal, "*", AclOperation.WRITE, allow
        )
    )
    return bindings


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "redis":
        print(" ".join(redis_app_rule(argv[1])))
        return 0
    print("usage: python -m leadstream.acls redis <key prefix>", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
