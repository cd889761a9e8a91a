"""The scoring core stays pure, the schemas import nothing of ours, the JSON Schemas are current."""

from __future__ import annotations

import ast
from pathlib import Path

from leadstream.schemas.export import documents, render

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN_IN_CORE = {
    "faust",
    "redis",
    "confluent_kafka",
    "aiokafka",
    "asyncio",
    "socket",
    "os",
    "time",
    "random",
    "logging",
    "subprocess",
    "pydantic_settings",
    "leadstream.state",
    "leadstream.kafka",
    "leadstream.engine",
    "leadstream.tools",
    "leadstream.bootstrap",
    "leadstream.config.settings",
}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_scoring_core_does_no_io():
    for path in (ROOT / "streams" / "scoring").glob("*.py"):
        for name in _imports(path):
            bad = {f for f in FORBIDDEN_IN_CORE if name == f or name.startswith(f + ".")}
            assert not bad, f"{path.name} imports {name}: the scoring core must stay pure"


def test_schemas_import_nothing_of_ours():
    for path in (ROOT / "schemas").glob("*.py"):
        for name in _imports(path):
            assert not name.startswith("leadstream") or name.startswith("leadstream.schemas"), (
                f"{path.name} imports {name}"
            )


def test_checked_in_json_schemas_match_the_models():
    for name, doc in documents().items():
        path = ROOT / "schemas" / "json" / name
        assert path.exists(), f"missing {path}; run python -m leadstream.schemas.export"
        assert path.read_text() == render(doc), (
            f"{name} drifted from the models; run python -m leadstream.schemas.export"
        )


def test_contact_decisions_are_pure():
    """The per-contact decisions take what was loaded and return an outcome: no I/O, no awaiting."""
    path = ROOT / "streams" / "engine" / "stages" / "contact_decisions.py"
    io = {"asyncio", "redis", "faust", "confluent_kafka", "aiokafka", "logging", "time", "socket", "os"}
    io |= {"leadstream.kafka", "leadstream.state.redis_store", "leadstream.bootstrap"}
    for name in _imports(path):
        assert not any(name == f or name.startswith(f + ".") for f in io), f"contact_decisions imports {name}"
    tree = ast.parse(path.read_text())
    assert not [n.name for n in ast.walk(tree) if isinstance(n, ast.AsyncFunctionDef)]


def test_the_engine_imports_no_transport():
    """Kafka lives in leadstream.kafka: the engine talks to it through engine/ports.py."""
    transports = ("faust", "confluent_kafka", "aiokafka", "leadstream.kafka")
    for path in (ROOT / "streams" / "engine").rglob("*.py"):
        for name in _imports(path):
            assert not name.startswith(transports), f"{path.relative_to(ROOT)} imports {name}"


def test_at_most_eight_loose_modules_at_the_top_of_each_package():
    for package in (ROOT / "streams", ROOT / "streams" / "engine"):
        loose = [p.name for p in package.glob("*.py") if p.name != "__init__.py"]
        assert len(loose) <= 8, f"{package.relative_to(ROOT)} has {len(loose)} loose modules: {loose}"


def test_event_models_have_no_subclasses():
    """The scoring core tells events apart by ``type(event) is`` (pydantic's isinstance runs in
    Python): a subclass of an event model would be scored as no event type at all."""
    import typing

    from leadstream.schemas.events import AnyEvent
    from leadstream.scoring import events

    for model in (*typing.get_args(AnyEvent), *typing.get_args(events.AnyEvent)):
        assert model.__subclasses__() == [], f"{model.__module__}.{model.__name__} has subclasses"


def _compiled_sources() -> list[Path]:
    """The modules setup.py compiles with mypyc."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("leadstream_setup", ROOT / "setup.py")
    assert spec is not None and spec.loader is not None
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)  # its setup() runs only as __main__
    compiled: list[Path] = setup.compiled_sources()
    assert len(compiled) > 30, "setup.py names fewer compiled modules than the hot path has"
    return compiled


def test_compiled_modules_await_nothing_inside_an_except_clause():
    """mypyc's coroutines lose the exception being handled across an ``await`` in its handler
    (seen as "TypeError: invalid exception object", then a crash in the garbage collector):
    compiled code keeps the exception and awaits after the clause (stages/contact.py)."""
    found = [
        f"{path.relative_to(ROOT)}:{handler.lineno}"
        for path in _compiled_sources()
        for handler in ast.walk(ast.parse(path.read_text()))
        if isinstance(handler, ast.ExceptHandler)
        and any(isinstance(node, ast.Await) for node in ast.walk(handler))
    ]
    assert not found, "await after the except clause, not inside it: " + ", ".join(found)


def test_compiled_modules_declare_their_constants_final():
    """A module constant of a compiled module is Final (see leadstream/native.py): any other
    module-level name is a dictionary lookup at every use in compiled code."""
    compiled = _compiled_sources()
    loose = []
    for path in compiled:
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign):
                targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
                annotation = None
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                targets, annotation = [node.target.id], ast.unparse(node.annotation)
            else:
                continue
            value = ast.unparse(node.value) if node.value is not None else ""
            for name in targets:
                constant = name.lstrip("_").isupper() and name != "__all__" and "TypeVar" not in value
                if constant and not (annotation or "").startswith("Final"):
                    loose.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert not loose, "declare these Final (or rename them if they change): " + ", ".join(loose)
