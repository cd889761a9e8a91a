"""Choosing a queue for a handoff: pure."""

from __future__ import annotations

from typing import Any

from leadstream.config.routing import Queue, RoutingConfig

__all__ = ["account_of", "choose_queue"]


def choose_queue(config: RoutingConfig, handoff: dict[str, Any]) -> Queue:
    firmographics = handoff.get("firmographics") or {}
    for queue in config.queues:
        match = queue.match
        if match.kind is not None and handoff.get("kind") not in match.kind:
            continue
        if match.region is not None and str(firmographics.get("region", "")).lower() not in match.region:
            continue
        if (
            match.industry is not None
            and str(firmographics.get("industry", "")).lower() not in match.industry
        ):
            continue
        if match.employees is not None:
            employees = firmographics.get("employees")
            if not isinstance(employees, int) or not match.employees[0] <= employees <= match.employees[1]:
                continue
        return queue
    return config.queues[-1]


def account_of(handoff: dict[str, Any]) -> str:
    """The account's domain: what keys an account in leadstream, on MQL and buying-group handoffs
    alike (``account_id`` is the CRM's id from the accounts topic, often unknown)."""
    return str(handoff.get("account_domain") or handoff.get("domain") or "")
