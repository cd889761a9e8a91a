"""Running ``leadstream worker`` as a child process: for the demo, the tests and the benchmarks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import ConsumerGroupState

from leadstream.config.settings import Settings, settings_to_env
from leadstream.kafka.clients import make_admin

__all__ = ["WorkerProcess", "die_with_parent"]

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In a child, before it runs: SIGTERM it when its parent dies, however the parent died
    (SIGKILL included), so no worker outlives the demo, test or bench that started it and joins
    the next one's consumer group. Linux only; elsewhere the parent's own clean-up must do."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class WorkerProcess:
    """A ``leadstream worker`` child; ``start`` returns once its consumer group is stable."""

    def __init__(self, settings: Settings, log_path: Path, extra_env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.log_path = log_path
        self.extra_env = extra_env or {}
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 90.0) -> WorkerProcess:
        # Only the settings given here: a stray LEADSTREAM_* variable must not redirect the child.
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSTREAM_")}
        env.update(settings_to_env(self.settings))
        env.update(self.extra_env)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "leadstream.cli", "worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
        self._wait_stable(timeout_s)
        return self

    def _wait_stable(self, timeout_s: float) -> None:
        admin = make_admin(self.settings)
        deadline = time.monotonic() + timeout_s
        group = self.settings.consumer_group
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                description = admin.describe_consumer_groups([group])[group].result(timeout=5)
                if description.state == ConsumerGroupState.STABLE and description.members:
                    assigned = sum(len(m.assignment.topic_partitions) for m in description.members)
                    if assigned:
                        return
            except Exception:  # the group does not exist until the worker joins
                pass
            time.sleep(0.5)
        raise TimeoutError(f"worker did not join group {group} in {timeout_s}s:\n{self.log_tail()}")

    def memory_kib(self) -> tuple[int, int]:
        """(resident now, peak resident) of the running worker, in KiB."""
        assert self.process is not None
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])

    def cpu_seconds(self) -> float:
        """User plus system CPU seconds the running worker has used (all its threads)."""
        assert self.process is not None
        # Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def kill(self) -> None:
        """SIGKILL: the worker gets no chance to flush or commit."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
