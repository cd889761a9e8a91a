"""Operator commands on top of the engine: replay, explain, report, demo, generator, sales simulation,
backtest, calibrate, and helpers for scripts (settled, worker_process)."""

__all__: list[str] = []
