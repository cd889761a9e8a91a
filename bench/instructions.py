"""The engine against the floor in instructions, not seconds: a figure this shared machine cannot move.

CPU time on these machines moves by a fifth from run to run (neighbours, frequency), which hides a
change of a few percent. valgrind's callgrind counts the instructions a process executes: the same
code on the same events gives the same count, whatever else the machine is doing. Each figure is
one process minus a baseline process that does everything but the measured loop (imports, event
generation, a warm-up of both loops on a few hundred events), so what remains is the loop's own.

    .venv/bin/python -m bench.instructions --contacts 1000        # ~3 minutes (valgrind is ~50x slower)
    .venv/bin/python -m bench.instructions --contacts 1000 --pure # the engine as pure Python too

Needs valgrind (Debian's package). Instructions are not time: memory stalls weigh more in a big
engine than in the small floor, so the CPU-time ratio (bench.floor) is larger than this one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence

import orjson

from bench.floor import engine_cpu, score_floor
from leadstream.config.loader import load_model
from leadstream.native import PURE_ENV
from leadstream.tools.generator import JourneyGenerator, default_start

__all__ = ["count", "main", "probe"]

WARM_UP = 200
_COLLECTED = re.compile(r"Collected : (\d+)")


def probe(contacts: int, seed: int, what: str) -> None:
    """The measured process: generate, warm both loops up, then run ``what`` (or nothing)."""
    lines = [orjson.dumps(e) for e in JourneyGenerator(seed, contacts, start=default_start()).events()]
    model = load_model()
    engine_cpu(lines[:WARM_UP], model)
    score_floor(lines[:WARM_UP], model)
    if what == "engine":
        engine_cpu(lines, model)
    elif what == "floor":
        score_floor(lines, model)
    print(len(lines))


def count(contacts: int, seed: int, what: str, pure: bool = False) -> tuple[int, int]:
    """(instructions, events) of one probe process under callgrind."""
    env = {k: v for k, v in os.environ.items() if k != PURE_ENV}
    # A fixed string-hash seed: set and dict orders (and with them some work) are the same each run.
    env["PYTHONHASHSEED"] = "0"
    if pure:
        env[PURE_ENV] = "1"
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.instructions",
            "--probe",
            what,
            *("--contacts", str(contacts), "--seed", str(seed)),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no instruction count:\n{done.stderr[-2000:]}")
    return int(found.group(1)), int(done.stdout.split()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.instructions", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--pure", action="store_true", help="also count the engine as pure Python")
    parser.add_argument("--probe", choices=["none", "engine", "floor"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.probe:
        probe(args.contacts, args.seed, args.probe)
        return 0
    if shutil.which("valgrind") is None:
        print("bench.instructions needs valgrind: apt-get install valgrind", file=sys.stderr)
        return 2
    runs = ["none", "floor", "engine"] + (["none-pure", "engine-pure"] if args.pure else [])
    counted: dict[str, int] = {}
    events = 0
    for run in runs:
        print(
            f"[instructions] {run} under callgrind ({args.contacts:,} contacts)", file=sys.stderr, flush=True
        )
        counted[run], events = count(args.contacts, args.seed, run.split("-")[0], pure=run.endswith("pure"))
    floor = (counted["floor"] - counted["none"]) / events
    print(f"events                          {events:>12,}")
    print(f"floor  instructions/event       {floor:>12,.0f}")
    engine = (counted["engine"] - counted["none"]) / events
    print(f"engine instructions/event       {engine:>12,.0f}   {engine / floor:.1f}x the floor")
    if args.pure:
        pure = (counted["engine-pure"] - counted["none-pure"]) / events
        print(f"engine as pure Python           {pure:>12,.0f}   {pure / floor:.1f}x the floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
