"""``leadstream models purge-shadow VERSION``: delete a stopped shadow model's state from Redis.

A shadow scores with a key space of its own (``{prefix}:shadow:<version>:``, engine/shadow.py):
its contacts, accounts, journals and timer index. Once it is stopped, nothing reads that space
again, and without a purge its contacts would wait for the state TTL (400 days by default) and
its timer index for ever. The purge refuses the version the registry still shadows, and one a
worker still reports shadowing (it switches within a second of the registry; a worker that died
while shadowing leaves its report behind: ``force`` purges anyway).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from leadstream.bootstrap import redis_blocking
from leadstream.config.settings import Settings
from leadstream.engine.shadow import shadow_settings
from leadstream.errors import RegistryError
from leadstream.kafka.registry import read_registry, running_key

__all__ = ["BATCH", "purge_shadow", "shadow_space_pattern"]

logger = logging.getLogger(__name__)
BATCH = 1000  # keys per SCAN step and per UNLINK


def shadow_space_pattern(settings: Settings, version: str) -> str:
    """The SCAN pattern of every key in ``version``'s shadow key space (glob characters of the
    operator's prefix escaped)."""
    prefix = shadow_settings(settings, version).redis_key_prefix
    return re.sub(r"([\\*?\[\]])", r"\\\1", prefix) + ":*"


def purge_shadow(
    settings: Settings,
    version: str,
    force: bool = False,
    progress: Callable[[int], None] = lambda deleted: None,
) -> int:
    """Delete every key of ``version``'s shadow key space; the number deleted. Idempotent."""
    registry = read_registry(settings)
    if version not in registry.versions:
        raise RegistryError(
            f"model version {version!r} is not registered, so it was never shadowed: nothing purged "
            "(see `leadstream models list`)"
        )
    if registry.shadow_version == version:
        raise RegistryError(
            f"{version} is the running shadow: stop it first (leadstream models shadow --off)"
        )
    client = redis_blocking(settings)
    try:
        reported = client.hgetall(running_key(settings.redis_key_prefix))
        still = sorted(
            _text(field).removesuffix(":shadow")
            for field, value in reported.items()
            if _text(field).endswith(":shadow") and _text(value) == version
        )
        if still and not force:
            raise RegistryError(
                f"worker(s) {', '.join(still)} still report shadowing {version}: wait a second for "
                "them to follow the registry and purge again; a worker that is gone left its report "
                "behind: then purge with --force"
            )
        deleted = 0
        batch: list[bytes | str] = []
        for key in client.scan_iter(match=shadow_space_pattern(settings, version), count=BATCH):
            batch.append(key)
            if len(batch) >= BATCH:
                deleted += int(client.unlink(*batch))
                batch.clear()
                progress(deleted)
        if batch:
            deleted += int(client.unlink(*batch))
        logger.info("purged %d keys of shadow model %s", deleted, version)
        return deleted
    finally:
        client.close()


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
