"""The way in: bytes to validated events (decode.py), and what does not decode to dead letters."""

__all__: list[str] = []
