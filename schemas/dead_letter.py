"""The dead-letter record: the original key, value and headers, plus these headers.

Names mirror Kafka Connect's ``__connect.errors.*`` so existing DLQ tooling reads them unchanged.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DeadLetterHeaders"]


class DeadLetterHeaders(BaseModel):
    """Headers leadstream adds to a dead-lettered record (header values are UTF-8 text)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    topic: str = Field(alias="__connect.errors.topic", description="topic the record came from")
    # Header values are text: the numbers are their decimal digits, as Kafka Connect writes them.
    partition: str = Field(alias="__connect.errors.partition", pattern=r"^[0-9]+$")
    offset: str = Field(alias="__connect.errors.offset", pattern=r"^[0-9]+$")
    stage: str = Field(alias="__connect.errors.stage", description="decode | process | suppress")
    exception_class_name: str = Field(
        alias="__connect.errors.exception.class.name",
        description=(
            "InvalidEvent.<reason>: json, schema, size, timestamp, key, unreadable, suppressed, processing"
        ),
    )
    exception_message: str = Field(alias="__connect.errors.exception.message")
