"""Event time: the stream's clock, the watermarks that say how far every partition has been read, timers."""

__all__: list[str] = []
