"""The two stages of a batch: contacts (with their journal of points), then accounts."""

__all__: list[str] = []
