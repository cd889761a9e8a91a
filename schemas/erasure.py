"""Erasure events on the erasures topic (``leadstream forget``): what downstream consumers must
delete (or, for ``erasure_undone``, may hold again)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

__all__ = ["Erasure"]


class Erasure(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["erasure", "erasure_undone"]
    erasure_id: str  # deterministic per person and kind: asking again gives the same id
    subject: str  # the person's pseudonym (HMAC-SHA256 under the deployment's secret), the record key
    contact_id: str | None  # the contact id, in clear: consumers must find the person
    profiles: list[str]  # every profile erased together: contact ids, anon:<id>, email:<address>
    emails: list[str]
    at: AwareDatetime  # when the erasure was carried out (wall clock)
