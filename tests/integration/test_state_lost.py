"""Redis run without persistence (as ../INFRA.md starts it) and restarted mid-stream comes back
empty, or, with RDB snapshots, as an older copy, while the consumer group's offsets are committed.
The worker's next connection notices (state/progress.py), it starts over, and reads its partitions
again from where the state stands: from the first offset when it is lost, from the snapshot's
marks when it is older. Either way it hands off exactly what a replay of the same events does."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from leadstream.kafka.clients import make_producer
from leadstream.kafka.topic_io import produce_all
from leadstream.kafka.topics import ensure_topics
from leadstream.state.keys import progress_key
from leadstream.tools.generator import JourneyGenerator, default_start, to_records
from tests.integration.helpers import handoffs, single_redis, wait_caught_up
from tests.integration.test_partitions_in_step import replayed

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("workers", [1, 2])
def test_a_redis_restarted_empty_mid_stream_is_rebuilt_from_kafka(
    settings, start_worker, tmp_path: Path, workers: int
):
    logs = run_with_a_restart(settings, start_worker, tmp_path, workers, snapshot=False)
    assert all("starting the worker over" in log for log in logs)
    assert sum("Rebuilding it from Kafka" in log for log in logs) == 1  # one opens it


def test_a_redis_restarted_from_an_older_snapshot_is_caught_up_from_its_marks(
    settings, start_worker, tmp_path: Path
):
    [log] = run_with_a_restart(settings, start_worker, tmp_path, 1, snapshot=True)
    assert "Redis holds an older copy of the state" in log and "starting the worker over" in log
    assert "Rebuilding it from Kafka" not in log  # from the snapshot's marks, not from the start


def run_with_a_restart(settings, start_worker, tmp_path: Path, workers: int, snapshot: bool) -> list[str]:
    """A third of the journeys' records, (a snapshot), a third, Redis SIGKILLed and started again
    on what it saved, the last third; the handoffs compared with a replay. The workers' logs."""
    events = JourneyGenerator(seed=47, contacts=300, start=default_start()).events()
    records = to_records(events, settings.topics)
    thirds = [records[: len(records) // 3], records[len(records) // 3 : 2 * len(records) // 3]]
    thirds.append(records[2 * len(records) // 3 :])
    with single_redis(tmp_path) as (server, port):
        settings = settings.model_copy(
            update={
                "redis_url": f"redis://127.0.0.1:{port}/0",
                "redis_cluster": False,
                "worker_engine": "confluent",
            }
        )
        client = redis.Redis(port=port)
        ensure_topics(settings)
        producer = make_producer(settings)
        produce_all(producer, thirds[0])
        started = [start_worker(settings) for _ in range(workers)]
        deadline = time.monotonic() + 60
        while not all("partitions assigned" in w.log_path.read_text() for w in started):
            assert time.monotonic() < deadline, "a worker never joined the group"
            time.sleep(0.2)
        wait_caught_up(settings, timeout_s=180)
        if snapshot:
            client.save()  # what Redis comes back with: dump.rdb in tmp_path
        produce_all(producer, thirds[1])
        wait_caught_up(settings, timeout_s=180)

        server.send_signal(signal.SIGKILL)  # no AOF: it comes back empty, or as the snapshot
        server.wait(10)
        again = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 10
            while not _pings(client):
                assert time.monotonic() < deadline, "redis-server did not start again"
                time.sleep(0.05)
            assert (client.dbsize() > 0) == snapshot

            produce_all(producer, thirds[2])
            wait_caught_up(settings, timeout_s=240)

            marks = client.hgetall(progress_key(settings.redis_key_prefix, settings.consumer_group))
            assert b"incarnation" in marks and len(marks) > 1
            live = {(h["kind"], h["handoff_id"]) for h in handoffs(settings)}
            assert live == replayed(settings, events)
            return [worker.log_path.read_text() for worker in started]
        finally:
            for worker in started:
                worker.stop()
            again.terminate()
            again.wait(10)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
