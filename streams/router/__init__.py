"""The SDR router: a downstream consumer of the handoff topic, written as users would write one."""

__all__: list[str] = []
