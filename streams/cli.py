"""The ``leadstream`` command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from leadstream.config.loader import load_model
from leadstream.config.settings import Settings, load_settings
from leadstream.errors import ConfigurationError, LeadstreamError, ModelFileError, SettingsError

__all__ = ["main"]

logger = logging.getLogger(__name__)


def _models(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from leadstream.kafka import registry
    from leadstream.kafka.topics import ensure_topics

    ensure_topics(settings)
    action = args.action
    if action == "register":
        if not args.file.is_file():
            print(f"leadstream models register: no such file: {args.file}", file=sys.stderr)
            return 2
        version = registry.register(settings, args.file.read_text(), str(args.file), args.reason)
        print(f"registered {version}")
        return 0
    if action == "promote":
        registry.promote(settings, args.version, args.force, args.reason)
        print(f"promoted {args.version}: workers switch at their next batch boundary")
        return 0
    if action == "rollback":
        print(f"rolled back to {registry.rollback(settings, args.reason)}")
        return 0
    if action == "shadow":
        registry.shadow(settings, None if args.off else args.version, args.reason)
        if args.off:
            print("shadow scoring stopped; `leadstream models purge-shadow VERSION` deletes its state")
        else:
            print(f"shadow scoring {args.version} on every worker")
        return 0
    if action == "purge-shadow":
        from leadstream.tools.purge_shadow import purge_shadow

        def progress(deleted: int) -> None:
            if deleted % 100_000 < 1000:
                print(f"purge-shadow: {deleted} keys deleted so far", file=sys.stderr)

        deleted = purge_shadow(settings, args.version, args.force, progress)
        print(f"purged shadow model {args.version}: {deleted} keys deleted")
        return 0
    if action == "compare":
        from leadstream.engine.shadow import compare, shadow_topic
        from leadstream.kafka.topic_io import read_topic

        records = read_topic(settings, settings.topics.handoffs) + read_topic(
            settings, shadow_topic(settings)
        )
        result = compare(records, args.a, args.b, args.examples)
        print(f"handed off by both: {result['both']}")
        for side, name in (("a", args.a), ("b", args.b)):
            print(f"only by {name}: {result['only_' + side]}")
            for line in result[f"only_{side}_examples"]:
                print(f"  {line}")
        return 0
    if action == "freeze":
        until = None
        if not args.off:
            until = args.until if args.until.tzinfo else args.until.replace(tzinfo=UTC)
        registry.freeze(settings, until, args.reason)
        print(f"promotions frozen until {until.isoformat()}" if until else "freeze ended")
        return 0
    state = registry.read_registry(settings)
    if action == "list":
        print("\n".join(registry.listing(state, time.time())))
    elif action == "show":
        record = state.versions.get(args.version)
        if record is None:
            print(f"leadstream models show: {args.version!r} is not registered", file=sys.stderr)
            return 2
        print(record["yaml"], end="")
    elif action == "diff":
        print(registry.diff(state, args.a, args.b) or "no differences", end="")
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from leadstream.native import mode

    try:
        return f"{version('leadstream')}, {mode()}"
    except PackageNotFoundError:
        return f"unknown (not installed), {mode()}"


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, not {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadstream", description="Real-time lead scoring on Kafka and Redis."
    )
    parser.add_argument(
        "--model",
        type=Path,
        help="scoring model YAML (default: LEADSTREAM_MODEL_PATH or the built-in model)",
    )
    parser.add_argument("--version", action="version", version=f"leadstream {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("worker", help="run the scoring worker (consumes the input topics)")
    sub.add_parser("topics", help="create the leadstream topics that do not exist yet")
    validate = sub.add_parser(
        "validate", help="check a scoring model file; report each error with file and line"
    )
    validate.add_argument("file", nargs="?", type=Path, help="model file (default: the configured model)")
    generate = sub.add_parser("generate", help="synthetic B2B journeys, deterministic for a seed")
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--contacts", type=_positive, default=1000)
    generate.add_argument("--accounts", type=int, default=None)
    generate.add_argument("--days", type=float, default=60.0, help="spread of journey start times")
    generate.add_argument(
        "--start",
        type=datetime.fromisoformat,
        help="first journey start, ISO 8601 with zone (default: 120 days before today, UTC)",
    )
    generate.add_argument(
        "--outcomes-out",
        type=Path,
        help="also write planted sales outcomes (a hidden propensity per contact, see "
        "streams/tools/ground_truth.py) as JSON lines, for backtests",
    )
    target = generate.add_mutually_exclusive_group()
    target.add_argument("--out", type=Path, help="write JSON lines to this file (default: stdout)")
    target.add_argument("--to-topics", action="store_true", help="produce to the input topics")
    replay = sub.add_parser("replay", help="score a file of events in memory (no Kafka, no Redis)")
    replay.add_argument("file", type=Path, help="a file of JSON lines, or - for standard input")
    replay.add_argument("--quiet", action="store_true", help="print only the summary")
    replay.add_argument("--handoffs-out", type=Path, help="also write the handoff records as JSON lines")
    backtest = sub.add_parser(
        "backtest", help="replay history through candidate models and measure them against sales outcomes"
    )
    backtest.add_argument(
        "--model",
        dest="candidates",
        action="append",
        type=Path,
        default=[],
        help="a candidate model YAML (repeat for several; default: the configured model)",
    )
    source = backtest.add_mutually_exclusive_group(required=True)
    source.add_argument("--events", type=Path, help="events as JSON lines")
    source.add_argument(
        "--from-topics",
        action="store_true",
        help="the input topics from offset 0 (outcomes: the feedback topic)",
    )
    backtest.add_argument("--png", type=Path, help="also draw the compression curve to this PNG")
    backtest.add_argument(
        "--outcomes", type=Path, help="sales_outcome events as JSON lines (default: those in --events)"
    )
    backtest.add_argument(
        "--bars",
        type=lambda text: [float(v) for v in text.split(",") if v.strip()],
        default=None,
        help="engagement bars to sweep, comma-separated (default: each model's bar -20, -10, +10, +20)",
    )
    backtest.add_argument("--json", action="store_true", help="the report as JSON")
    models = sub.add_parser("models", help="the model registry: versions, promote, rollback, freeze")
    actions = models.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="registered versions, the active one, the freeze")
    show = actions.add_parser("show", help="a version's model file")
    show.add_argument("version")
    compare = actions.add_parser("diff", help="what changed between two versions")
    compare.add_argument("a")
    compare.add_argument("b")
    enrol = actions.add_parser("register", help="register a model file under its version (immutable)")
    enrol.add_argument("file", type=Path)
    enrol.add_argument("--reason")
    promote = actions.add_parser("promote", help="make a version active: workers switch between batches")
    promote.add_argument("version")
    promote.add_argument("--force", action="store_true", help="promote inside a freeze (needs --reason)")
    promote.add_argument("--reason")
    back = actions.add_parser("rollback", help="make the previously active version active again")
    back.add_argument("--reason")
    shade = actions.add_parser("shadow", help="score a version beside the active one, never routed")
    which = shade.add_mutually_exclusive_group(required=True)
    which.add_argument("version", nargs="?")
    which.add_argument("--off", action="store_true", help="stop shadow scoring")
    shade.add_argument("--reason")
    purge = actions.add_parser(
        "purge-shadow", help="delete a stopped shadow's state from Redis (its contacts, accounts, timers)"
    )
    purge.add_argument("version")
    purge.add_argument(
        "--force", action="store_true", help="purge although a worker that is gone still reports shadowing it"
    )
    versus = actions.add_parser("compare", help="what two versions handed off: both, only A, only B, and why")
    versus.add_argument("a")
    versus.add_argument("b")
    versus.add_argument("--examples", type=int, default=10, help="differences to show on each side")
    hold = actions.add_parser("freeze", help="refuse promotions until a date (unless --force --reason)")
    until = hold.add_mutually_exclusive_group(required=True)
    until.add_argument("--until", type=datetime.fromisoformat, help="ISO date or time, e.g. 2027-01-01")
    until.add_argument("--off", action="store_true", help="end the freeze")
    hold.add_argument("--reason")
    calibrate = sub.add_parser(
        "calibrate", help="learn rule weights from sales outcomes; write a candidate model file"
    )
    calibrate.add_argument("--events", type=Path, required=True, help="events as JSON lines")
    calibrate.add_argument(
        "--outcomes", type=Path, help="sales_outcome events as JSON lines (default: those in --events)"
    )
    calibrate.add_argument(
        "--out", type=Path, default=Path("calibrated_model.yaml"), help="candidate model file"
    )
    aim = calibrate.add_mutually_exclusive_group()
    aim.add_argument("--target-mql-to-sql", type=float, help="propose the bar for this MQL->SQL, e.g. 0.25")
    aim.add_argument("--target-volume", type=int, help="propose the bar for about this many MQLs")
    explain = sub.add_parser("explain", help="a contact's live score breakdown from Redis")
    explain.add_argument("contact", help="contact id, or with --account an account domain")
    explain.add_argument("--account", action="store_true", help="explain an account's buying group")
    explain.add_argument(
        "--at",
        type=datetime.fromisoformat,
        help="score at this ISO time (default: the stream's event time, as the engine scores)",
    )
    explain.add_argument("--json", action="store_true", help="print the breakdown as JSON (the lookup API's)")
    forget = sub.add_parser("forget", help="erase a person (GDPR art. 17) and drop their later events")
    who = forget.add_mutually_exclusive_group(required=True)
    who.add_argument("--contact", help="the contact id (or anon:<id>)")
    who.add_argument("--email", help="an email address of theirs")
    forget.add_argument(
        "--undo", action="store_true", help="lift the suppression (deleted data stays deleted)"
    )
    sub.add_parser(
        "migrate-keys", help="rename contact keys of earlier releases to their pseudonyms (workers stopped)"
    )
    route = sub.add_parser("route", help="assign handoffs to SDR queues and reps (a downstream consumer)")
    route.add_argument(
        "--routing", type=Path, help="routing rules YAML (default: the built-in config/routing.yaml)"
    )
    route.add_argument("--idle-exit", type=float, default=None, help="stop after this many idle seconds")
    sim = sub.add_parser("simulate-sales", help="a simulated sales team answering the handoffs so far")
    sim.add_argument("--idle-exit", type=float, default=3.0)
    report = sub.add_parser(
        "report", help="MQL->SQL and MQL->won conversion, SLA breaches, by model version and week"
    )
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    ingest = sub.add_parser(
        "ingest", help="serve the Segment HTTP Tracking API: website and CDP events in, Kafka out"
    )
    ingest.add_argument("--host", help="address to listen on (default LEADSTREAM_INGEST_HOST, 127.0.0.1)")
    ingest.add_argument("--port", type=int, help="port to listen on (default LEADSTREAM_INGEST_PORT, 8088)")
    ingest.add_argument(
        "--mapping", type=Path, help="Segment calls -> events YAML (default: the built-in config/ingest.yaml)"
    )
    demo = sub.add_parser("demo", help="run a worker, stream generated journeys through it, print handoffs")
    demo.add_argument("--contacts", type=int, default=400)
    demo.add_argument("--seed", type=int, default=None, help="default: a new seed each run")
    demo.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the worker")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"leadstream: invalid settings: {exc}", file=sys.stderr)
        return 2
    if args.model is not None:
        settings = settings.model_copy(update={"model_path": args.model})
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return _run(args, settings)
    except ModelFileError as exc:
        print(f"leadstream: invalid scoring model:\n{exc}", file=sys.stderr)
        return 2
    except ConfigurationError as exc:
        print(f"leadstream: {exc}", file=sys.stderr)
        return 2
    except LeadstreamError as exc:
        print(f"leadstream: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _warn_unscored_feedback(settings: Settings) -> None:
    """The report reads outcomes as the worker scored them (lifecycle events): sales outcomes still
    waiting on the feedback topic are missing from it, and a bar judged without them is wrong."""
    from leadstream.kafka.topic_io import consumer_lags

    waiting = sum(consumer_lags(settings, [settings.topics.feedback]).values())
    if waiting:
        print(
            f"leadstream report: warning: {waiting} record(s) on {settings.topics.feedback} not yet "
            f"processed by consumer group {settings.consumer_group!r}; their outcomes are missing "
            "below. Start `leadstream worker` (or wait for it to catch up) and run the report again.",
            file=sys.stderr,
        )


def _run(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "validate":
        path = args.file or settings.model_path
        model = load_model(path)
        print(
            f"{path or 'built-in model'}: valid (version {model.version}, "
            f"{len(model.engagement_rules)} engagement rules, {len(model.fit_rules)} fit rules)"
        )
        return 0
    if command == "worker":
        from leadstream.worker import run_worker

        run_worker(settings)
        return 0
    if command == "topics":
        from leadstream.kafka.topics import ensure_topics

        created = ensure_topics(settings, create=True)  # the admin's command: it always creates
        print("created: " + (", ".join(created) if created else "nothing, all topics exist"))
        return 0
    if command == "generate":
        return _generate(args, settings)
    if command == "replay":
        from leadstream.tools.replay import run_replay

        out = args.handoffs_out
        if out is not None and not out.parent.is_dir():
            # said before the replay, not after it
            print(f"leadstream replay: --handoffs-out: no such directory: {out.parent}", file=sys.stderr)
            return 2
        return run_replay(args.file, settings, load_model(settings.model_path), args.quiet, out)
    if command == "backtest":
        from leadstream.tools.backtest import backtest_command

        candidates = args.candidates or ([settings.model_path] if settings.model_path else [])
        return backtest_command(
            args.events, candidates, args.outcomes, args.bars, settings, args.json, png=args.png
        )
    if command == "models":
        return _models(args, settings)
    if command == "calibrate":
        from leadstream.tools.calibrate import calibrate_command

        return calibrate_command(
            args.events,
            args.outcomes,
            load_model(settings.model_path),
            args.out,
            args.target_mql_to_sql,
            args.target_volume,
            settings,
        )
    if command == "explain":
        from leadstream.tools.explain import explain, explain_account

        show = explain_account if args.account else explain
        return show(settings, load_model(settings.model_path), args.contact, args.at, sys.stdout, args.json)
    if command == "migrate-keys":
        from leadstream.tools.migrate_keys import run_migrate_keys

        return run_migrate_keys(settings, print)
    if command == "forget":
        from leadstream.tools.forget import run_forget

        return run_forget(settings, args.contact, args.email, args.undo, print)
    if command == "route":
        from leadstream.bootstrap import build_router
        from leadstream.config.routing import load_routing
        from leadstream.errors import RoutingFileError
        from leadstream.kafka.metrics import router_registry, serve_metrics
        from leadstream.kafka.topics import ensure_topics
        from leadstream.router.service import router_group

        try:
            routing = load_routing(args.routing)  # before anything connects: a typo is said at once
        except RoutingFileError as exc:
            print(f"leadstream route: {exc}", file=sys.stderr)
            return 2
        ensure_topics(settings)
        router = build_router(settings, routing)
        registry, count_assignment = router_registry(settings, router_group(settings))
        serve_metrics(settings, registry, "router")

        def on_assignment(a: dict[str, Any]) -> None:
            count_assignment(a)
            print(
                f"{a['handoff_kind']:<12} {a['contact_id'] or a['account_domain']:<24} "
                f"-> {a['queue']}/{a['rep']} ({a['reason']})"
            )

        count = router.run(args.idle_exit, on_assignment)
        print(f"assigned {count} handoffs", file=sys.stderr)
        return 0
    if command == "ingest":
        from leadstream.ingest.serve import serve

        return serve(settings, args.host, args.port, args.mapping)
    if command == "simulate-sales":
        from leadstream.kafka.clients import require_kafka
        from leadstream.tools.sales_sim import simulate_sales

        require_kafka(settings)
        sent = simulate_sales(settings, args.idle_exit, datetime.now(UTC))
        print(f"sent {sent} sales outcomes to {settings.topics.feedback}", file=sys.stderr)
        return 0
    if command == "report":
        from leadstream.kafka.clients import require_kafka
        from leadstream.kafka.topic_io import read_topic
        from leadstream.tools.report import conversion, format_report

        require_kafka(settings)
        _warn_unscored_feedback(settings)
        handoffs = read_topic(settings, settings.topics.handoffs)
        lifecycle = read_topic(settings, settings.topics.lifecycle)
        result = conversion(handoffs, lifecycle)
        print(json.dumps(result, indent=2) if args.json else format_report(result))
        return 0
    if command == "demo":
        from leadstream.tools.demo import run_demo

        return run_demo(settings, contacts=args.contacts, seed=args.seed, timeout_s=args.timeout)
    raise AssertionError(command)


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from leadstream.tools.generator import JourneyGenerator, default_start, to_records

    start = args.start or default_start()
    if start.tzinfo is None:
        print(
            "leadstream generate: --start needs a time zone, e.g. 2026-01-05T00:00:00+00:00",
            file=sys.stderr,
        )
        return 2
    events = JourneyGenerator(args.seed, args.contacts, args.accounts, start=start, days=args.days).events()
    if args.outcomes_out:
        from leadstream.tools.ground_truth import planted_outcomes

        outcomes = planted_outcomes(events, args.seed)
        with args.outcomes_out.open("w") as handle:
            for outcome in outcomes:
                handle.write(json.dumps(outcome, separators=(",", ":")) + "\n")
        print(f"wrote {len(outcomes)} planted sales outcomes to {args.outcomes_out}", file=sys.stderr)
    if args.to_topics:
        from leadstream.kafka.clients import make_producer
        from leadstream.kafka.topic_io import produce_all
        from leadstream.kafka.topics import ensure_topics

        ensure_topics(settings)
        count = produce_all(
            make_producer(settings),
            to_records(events, settings.topics),
            progress=lambda n: print(f"  produced {n}/{len(events)}", file=sys.stderr),
        )
        print(
            f"produced {count} events for {args.contacts} contacts to the input topics",
            file=sys.stderr,
        )
        return 0
    handle = args.out.open("w") if args.out else sys.stdout
    try:
        for event in events:
            handle.write(json.dumps(event, separators=(",", ":")) + "\n")
    finally:
        if args.out:
            handle.close()
            print(
                f"wrote {len(events)} events for {args.contacts} contacts to {args.out}",
                file=sys.stderr,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
