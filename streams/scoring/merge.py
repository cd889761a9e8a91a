"""Stitching: one person's profiles become one contact, their intent counted once, decayed from
when it happened."""

from __future__ import annotations

from leadstream.scoring.engagement import merge_rules
from leadstream.scoring.signals import CompiledModel
from leadstream.scoring.state import RECENT_EVENT_IDS, RECENT_SIGNALS, TOP_PAGES, ContactState

__all__ = ["merge_contacts"]


def merge_contacts(
    target: ContactState, source: ContactState, source_key: str, compiled: CompiledModel
) -> None:
    """Fold ``source`` (an anonymous profile, an email-only profile or another contact id) into
    ``target``, in place. What the target already knows wins; the source fills gaps."""
    merge_rules(target.rules, source.rules, compiled)
    for name, count in source.nurture.items():
        target.nurture[name] = target.nurture.get(name, 0) + count
    target.recent = sorted(target.recent + source.recent, key=lambda s: (-s[0], s[1]))[:RECENT_SIGNALS]
    for path, visits in source.pages.items():
        target.pages[path] = target.pages.get(path, 0) + visits
    if len(target.pages) > TOP_PAGES:
        kept = sorted(target.pages.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_PAGES]
        target.pages = dict(kept)
    if source.first_touch is not None and (
        target.first_touch is None or source.first_touch["at"] < target.first_touch["at"]
    ):
        target.first_touch = dict(source.first_touch)
    seen = dict.fromkeys(target.seen_ids + source.seen_ids)
    target.seen_ids = list(seen)[-RECENT_EVENT_IDS:]
    # The source's watermarks come along: records consumed again are skipped on the target too.
    for source_partition, offset in source.applied.items():
        target.applied[source_partition] = max(offset, target.applied.get(source_partition, -1))
    target.clock = max(target.clock, source.clock)
    if source.since is not None and (target.since is None or source.since < target.since):
        target.since = source.since
    for name, value in source.traits.items():
        target.traits.setdefault(name, value)
    target.email = target.email or source.email
    target.company_domain = target.company_domain or source.company_domain
    for key in [source_key, *source.linked]:
        if key not in target.linked:
            target.linked.append(key)
