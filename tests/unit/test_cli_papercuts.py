"""Command-line papercuts: clear one-line errors, said before any work, never a traceback."""

from __future__ import annotations

import json

import pytest

from leadstream.cli import main
from tests.factories import at, form


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("leadstream ")


def test_route_with_a_missing_or_broken_routing_file_says_so_without_connecting(tmp_path, capsys):
    # No Kafka is configured here: an error after connecting would take seconds, not this.
    assert main(["route", "--routing", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read the routing file" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("queues: [\n")
    assert main(["route", "--routing", str(broken)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("leadstream route: invalid routing file") and "Traceback" not in err


def test_replay_checks_its_output_directory_before_replaying(tmp_path, capsys):
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(form("c1", "demo_request", at(0))) + "\n")
    assert main(["replay", str(events), "--handoffs-out", str(tmp_path / "missing" / "h.jsonl")]) == 2
    captured = capsys.readouterr()
    assert "no such directory" in captured.err and "summary" not in captured.out


def test_generate_refuses_a_negative_count(capsys):
    with pytest.raises(SystemExit) as info:
        main(["generate", "--contacts", "-5"])
    assert info.value.code == 2
    assert "must be a positive number" in capsys.readouterr().err


def _closed_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    "command", [["topics"], ["report"], ["simulate-sales"], ["generate", "--contacts", "3", "--to-topics"]]
)
def test_kafka_down_is_one_clear_line_at_once(command, monkeypatch, capsys):
    monkeypatch.setenv("LEADSTREAM_KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{_closed_port()}")
    assert main(command) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach Kafka" in err[0] and "scripts/stack up" in err[0], err


def test_stack_down_reports_stray_leadstream_processes(tmp_path):
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    # A process that looks like a worker a killed demo left behind.
    stray = subprocess.Popen(["bash", "-c", 'exec -a "leadstream worker" sleep 60'])
    try:
        env = {**os.environ, "LEADSTREAM_STACK_DIR": str(tmp_path / "stack")}
        down = subprocess.run(
            [str(root / "scripts/stack"), "down"], env=env, capture_output=True, text=True, timeout=60
        )
        assert down.returncode == 0
        assert "leadstream processes still running" in down.stderr
        assert str(stray.pid) in down.stderr
        assert stray.poll() is None  # said, not killed
    finally:
        stray.kill()
        stray.wait()


@pytest.mark.parametrize("succeeds", [True, False], ids=["resolved", "maven-fails"])
def test_first_kafka_resolution_shows_maven_progress(tmp_path, succeeds):
    """A first `scripts/stack up` resolves Kafka's jars with Maven: it says how far it got, and on
    failure shows Maven's last lines and what to check. (A stand-in mvn on PATH.)"""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "mvn"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        'for n in 1 2 3; do echo "[INFO] Downloaded from central: https://repo/a$n.jar"; sleep 1.5; done\n'
        + ("exit 0\n" if succeeds else "echo '[ERROR] Could not resolve dependencies'; exit 1\n")
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "LEADSTREAM_CACHE_DIR": str(tmp_path)}
    run = subprocess.run(
        [str(root / "scripts/stack"), "jars"], env=env, capture_output=True, text=True, timeout=60
    )
    assert "[stack] resolving Kafka" in run.stderr
    assert "[stack] maven: " in run.stderr and "files downloaded" in run.stderr, run.stderr
    if succeeds:
        assert run.returncode == 0 and "jars in" in run.stderr
    else:
        assert run.returncode != 0
        assert "Could not resolve dependencies" in run.stderr and "Maven Central reachable" in run.stderr
