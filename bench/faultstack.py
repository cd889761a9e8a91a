"""A Kafka broker and a Redis of the fault suite's own, on their own ports and data directories.

Started with ``scripts/stack`` like the main stack, but persistent (Kafka keeps its log across a
restart) and with Redis appending every write to its AOF before answering (``appendfsync
always``): the suite kills both, and what they acknowledged must survive. Faults are signals to
the processes the pid files name; ``up`` starts again whatever is down.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parent.parent


class FaultStack:
    def __init__(
        self,
        directory: Path | None = None,
        kafka_port: int = 9192,
        controller_port: int = 9193,
        redis_port: int = 6390,
        persist: bool = True,
    ) -> None:
        """``persist=False``: the stack as ``scripts/stack up`` runs it by default (its data cleared
        by ``down``, Redis's AOF fsynced every second)."""
        self.directory = directory or ROOT / ".leadstream" / "faults"
        self.kafka_port = kafka_port
        self.redis_port = redis_port
        self._env = {
            **os.environ,
            "LEADSTREAM_STACK_DIR": str(self.directory),
            "LEADSTREAM_KAFKA_PORT": str(kafka_port),
            "LEADSTREAM_KAFKA_CONTROLLER_PORT": str(controller_port),
            "LEADSTREAM_REDIS_PORT": str(redis_port),
        }
        if persist:
            self._env.update(LEADSTREAM_STACK_PERSIST="1", LEADSTREAM_REDIS_APPENDFSYNC="always")
        else:
            for variable in ("LEADSTREAM_STACK_PERSIST", "LEADSTREAM_REDIS_APPENDFSYNC"):
                self._env.pop(variable, None)

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
        for service, port in (("kafka", self.kafka_port), ("redis", self.redis_port)):
            if self.pid(service) is None:
                # scripts/stack reuses a healthy server it did not start (no pid file): the suite
                # could not kill it, and its scenarios would fail for that alone.
                raise RuntimeError(
                    f"port {port} is held by a {service} the fault suite did not start (one left "
                    f"running by an interrupted run?): stop it, or give the suite other ports"
                )

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
        _kill(pid, sig)

    def restart(self, service: str, sig: signal.Signals, down_s: float = 2.0, wipe: bool = False) -> None:
        """A fault: stop ``service`` with ``sig``, leave it down a moment, start it again; with
        ``wipe``, without its data (a Redis run without persistence comes back empty)."""
        self.kill(service, sig)
        if wipe:
            shutil.rmtree(self.directory / f"{service}-data", ignore_errors=True)
        time.sleep(down_s)
        self.up()


class ClusterFaultStack:
    """The cluster stack (``scripts/stack cluster``) as the fault suite's: 3 Kafka brokers with
    replication factor 3, a Redis Cluster of 3 masters with a replica each. A fault takes one node
    down: a Redis master (its replica is promoted: a failover) or a Kafka broker (the partitions it
    led elect new leaders), and starts it again on its data (it rejoins as a replica / follower)."""

    cluster = True
    brokers = (19092, 19094, 19096)
    redis_ports = (17000, 17001, 17002, 17003, 17004, 17005)

    def __init__(self) -> None:
        base = os.environ.get("LEADSTREAM_STACK_DIR", str(ROOT / ".leadstream" / "stack"))
        self.directory = Path(f"{base}-cluster")
        self.victims: list[str] = []

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.brokers)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_ports[0]}/0"

    def _stack(self, *args: str) -> None:
        done = subprocess.run([ROOT / "scripts" / "stack", "cluster", *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"scripts/stack cluster {' '.join(args)} failed:\n{done.stderr[-3000:]}")

    def up(self) -> None:
        self._stack("up")

    def down(self) -> None:
        self._stack("down")

    def _master(self) -> int:
        """A Redis master's port (the one serving slot 0, so a failover moves real keys)."""
        import redis

        for port in self.redis_ports:
            try:
                client = redis.Redis(port=port, socket_timeout=2)
                for start, _end, master, *_ in cast(Any, client).execute_command("CLUSTER SLOTS"):
                    if int(start) == 0:
                        return int(master[1])
            except redis.RedisError:
                continue
        raise RuntimeError("no Redis Cluster node answers CLUSTER SLOTS")

    def _cluster_ok(self, skip: int) -> bool:
        import redis

        for port in self.redis_ports:
            if port == skip:
                continue
            try:
                info = cast(Any, redis.Redis(port=port, socket_timeout=2)).execute_command("CLUSTER INFO")
                if isinstance(info, dict):  # redis-py parses CLUSTER INFO
                    return bool(info.get("cluster_state") == "ok")
                text = info.decode() if isinstance(info, bytes) else str(info)
                return "cluster_state:ok" in text
            except redis.RedisError:
                continue
        return False

    def restart(self, service: str, sig: signal.Signals, down_s: float = 2.0) -> None:
        if service == "redis":
            port = self._master()
            node = f"redis-{port}"
            _signal(self.directory / f"{node}.pid", sig)
            time.sleep(1.0)  # the others see it gone only after cluster-node-timeout (2 s)
            deadline = time.monotonic() + 60
            while not (self._cluster_ok(port) and self._master() != port):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no failover within 60 s after {node} went down")
                time.sleep(0.2)
        else:
            node = "kafka-1"
            _signal(self.directory / f"{node}.pid", sig)
            time.sleep(down_s)
        self.victims.append(node)
        self._stack("start", node)


def _signal(pid_file: Path, sig: signal.Signals) -> None:
    """Send ``sig`` to the process ``pid_file`` names and wait until it is gone."""
    _kill(int(pid_file.read_text().strip()), sig)


def _kill(pid: int, sig: signal.Signals) -> None:
    """Send ``sig`` to ``pid`` and wait until it is gone (SIGKILL after a minute)."""
    os.kill(pid, sig)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
