"""The ``leadstream`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from config.settings import load_settings
from streams.errors import LeadstreamError

logger = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leadstream", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run the scoring worker (consumes the input topics)")
    sub.add_parser("topics", help="create the leadstream topics that do not exist yet")
    demo = sub.add_parser("demo", help="run a worker, send generated events, print the handoffs")
    demo.add_argument("--events", type=int, default=20, help="how many events to send")
    demo.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for handoffs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except (ValidationError, FileNotFoundError) as exc:
        print(f"leadstream: invalid settings: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "worker":
            from streams.worker import run_worker

            run_worker(settings)
        elif args.command == "topics":
            from streams.topics import ensure_topics

            created = ensure_topics(settings)
            print("created: " + (", ".join(created) if created else "nothing, all topics exist"))
        elif args.command == "demo":
            from streams.demo import run_demo

            return run_demo(settings, events=args.events, timeout_s=args.timeout)
    except LeadstreamError as exc:
        print(f"leadstream: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
