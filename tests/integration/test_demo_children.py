"""`leadstream demo` stopped by SIGTERM (or killed outright) leaves no worker behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leadstream.config.settings import settings_to_env

pytestmark = pytest.mark.integration


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"worker" in cmdline:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_the_demos_worker_dies_with_the_demo(settings, tmp_path, how):
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADSTREAM_")}
    env.update(settings_to_env(settings))
    demo = subprocess.Popen(
        [sys.executable, "-m", "leadstream.cli", "demo", "--contacts", "50", "--seed", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        assert _wait(lambda: _children(demo.pid), 60), "the demo started no worker"
        workers = _children(demo.pid)
        [worker] = workers
        demo.send_signal(how)
        demo.wait(30)
        assert _wait(lambda: not _alive(worker), 30), f"worker {worker} outlived the demo ({how.name})"
    finally:
        if demo.poll() is None:
            demo.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
