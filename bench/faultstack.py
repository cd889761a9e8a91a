"""A Kafka broker and a Redis of the fault suite's own, on their own ports and data directories.

Started with ``scripts/stack`` like the main stack, but persistent (Kafka keeps its log across a
restart) and with Redis appending every write to its AOF before answering (``appendfsync
always``): the suite kills both, and what they acknowledged must survive. Faults are signals to
the processes the pid files name; ``up`` starts again whatever is down.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class FaultStack:
    def __init__(
        self,
        directory: Path | None = None,
        kafka_port: int = 9192,
        controller_port: int = 9193,
        redis_port: int = 6390,
    ) -> None:
        self.directory = directory or ROOT / ".leadstream" / "faults"
        self.kafka_port = kafka_port
        self.redis_port = redis_port
        self._env = {
            **os.environ,
            "LEADSTREAM_STACK_DIR": str(self.directory),
            "LEADSTREAM_KAFKA_PORT": str(kafka_port),
            "LEADSTREAM_KAFKA_CONTROLLER_PORT": str(controller_port),
            "LEADSTREAM_REDIS_PORT": str(redis_port),
            "LEADSTREAM_STACK_PERSIST": "1",
            "LEADSTREAM_REDIS_APPENDFSYNC": "always",
        }

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def up(self) -> None:
        done = subprocess.run(
            [ROOT / "scripts" / "stack", "up"], env=self._env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise RuntimeError(f"the fault suite's stack did not start:\n{done.stderr[-3000:]}")

    def down(self) -> None:
        subprocess.run([ROOT / "scripts" / "stack", "down"], env=self._env, capture_output=True, check=False)

    def pid(self, service: str) -> int | None:
        path = self.directory / f"{service}.pid"
        try:
            return int(path.read_text().strip())
        except (OSError, ValueError):
            return None

    def kill(self, service: str, sig: signal.Signals) -> None:
        """Send ``sig`` to ``service`` (kafka or redis) and wait until it is gone."""
        pid = self.pid(service)
        if pid is None:
            raise RuntimeError(f"{service} of the fault suite is not running")
        os.kill(pid, sig)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)

    def restart(self, service: str, sig: signal.Signals, down_s: float = 2.0) -> None:
        """A fault: stop ``service`` with ``sig``, leave it down a moment, start it again."""
        self.kill(service, sig)
        time.sleep(down_s)
        self.up()
