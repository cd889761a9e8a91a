"""Events in over HTTP: the Segment Tracking API (Segment, RudderStack, analytics.js) to Kafka."""

__all__: list[str] = []
