"""The hot path compiled to C with mypyc, when asked (``scripts/compile`` asks; see README "Compiled").

pyproject.toml holds the project's metadata; this file adds only the mypyc extensions, and only
when ``LEADSTREAM_MYPYC=1``: a plain ``pip install`` builds the pure-Python package. The modules
compiled are the ones every event goes through (the scoring core, the batch engine, the state
codecs and the in-memory store); the I/O adapters (Kafka, redis-py subclasses), the tools and the
pydantic schemas stay interpreted. mypyc type-checks what it compiles and enforces the
annotations at run time, which the code already passes under ``mypy --strict``.

Why a view: setuptools maps the import name ``leadstream`` onto three folders (streams/, schemas/,
config/), and mypyc names a module after its path. It compiles the symbolic-link view
``build/mypyc/view/leadstream`` (the same view ``scripts/typecheck`` builds), so a module is
named ``leadstream.scoring.engine``, and ``build_ext --inplace`` puts each extension beside its
source through the same mapping (``streams/scoring/engine.cpython-311-x86_64-linux-gnu.so``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from setuptools import setup

ROOT = Path(__file__).resolve().parent
VIEW = ROOT / "build" / "mypyc" / "view"
MAPPED = {"schemas": ROOT / "schemas", "config": ROOT / "config"}

# Compiled, by folder under streams/. Left out on purpose: engine/guard.py (its StreamStopped
# must carry its cause: mypyc ignores ``raise ... from``), state/cluster.py and state/packing.py
# (subclasses of redis-py's classes), state/redis_store.py and state/redis_watermarks.py (I/O
# adapters whose errors chain their cause for the operator; their time is spent in redis-py).
COMPILED = {
    "scoring": ["*"],
    "engine": [
        "outbox",
        "pipeline",
        "policy",
        "ports",
        "records",
        "shadow",
        "stages/*",
        "input/*",
        "eventtime/*",
    ],
    "state": [
        "aliases",
        "codec",
        "decoded_cache",
        "keys",
        "memory",
        "port",
        "pseudonyms",
    ],
}


def compiled_sources() -> list[Path]:
    """The source files compiled, under streams/ (their paths in the repository). Packages'
    ``__init__`` modules stay interpreted: mypyc derives a compiled package's ``__path__`` from
    where its shared library lies, which setuptools' folder mapping breaks (and they only
    re-export)."""
    found: list[Path] = []
    for folder, patterns in COMPILED.items():
        for pattern in patterns:
            found += sorted((ROOT / "streams" / folder).glob(f"{pattern}.py"))
    return [path for path in found if path.name != "__init__.py"]


def module_name(source: Path) -> str:
    parts = source.relative_to(ROOT / "streams").with_suffix("").parts
    return ".".join(("leadstream", *parts)).removesuffix(".__init__")


def source_hashes() -> dict[str, str]:
    """Compiled module -> sha256 of its source: leadstream/native.py runs pure Python when a
    source no longer matches what was compiled."""
    return {module_name(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in compiled_sources()}


def build_view() -> None:
    """``build/mypyc/view/leadstream``: symbolic links onto the package's three folders."""
    shutil.rmtree(VIEW, ignore_errors=True)
    package = VIEW / "leadstream"
    package.mkdir(parents=True)
    for entry in (ROOT / "streams").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name, target in MAPPED.items():
        (package / name).symlink_to(target)


def extensions() -> list[object]:
    if os.environ.get("LEADSTREAM_MYPYC") != "1":
        return []
    from mypyc.build import mypycify  # only here: a pure install needs no mypy

    build_view()
    # Written first: the sources as they were when compiled (a failed build leaves no wheel, and
    # scripts/compile removes the stamp with the extensions).
    (ROOT / "streams" / "_native.json").write_text(
        json.dumps({"modules": source_hashes()}, indent=1, sort_keys=True) + "\n"
    )
    paths = [str(VIEW / "leadstream" / p.relative_to(ROOT / "streams")) for p in compiled_sources()]
    return list(
        mypycify(
            paths,
            opt_level=os.environ.get("LEADSTREAM_MYPYC_OPT", "3"),
            # One shared library inside the package (streams/_native__mypyc.*.so), not a
            # top-level module with a hashed name.
            group_name="leadstream._native",
            target_dir=str(ROOT / "build" / "mypyc" / "c"),
            # Traceback lines for compiled frames: an operator's stack trace still names the code.
            debug_level="1",
        )
    )


if __name__ == "__main__":  # setuptools runs this file as __main__; scripts/compile imports it
    setup(ext_modules=extensions())
