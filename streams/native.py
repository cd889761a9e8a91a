"""Whether leadstream runs its hot path compiled (mypyc, see setup.py) or as pure Python.

``scripts/compile`` puts a C extension beside each compiled module's source and records the
sources' hashes in ``_native.json``. Python imports an extension in preference to its source, so
an extension older than its source (an edit, a git pull without a rebuild) would silently run old
code. :func:`choose` runs once, when the package is imported, before any compiled module is: if
any recorded hash differs from its source, or ``LEADSTREAM_PURE_PYTHON=1``, it puts a finder first
on ``sys.meta_path`` that loads every leadstream module from its source, so the extensions are
never imported. Either way the results are the same; compiled is faster.

Compiled classes: a ``@dataclass`` on the hot path is declared ``init=False`` with its
``__init__`` written out, because mypyc compiles only the code it sees; the ``__init__`` that
dataclasses generates at import time stays interpreted and was ~9% of the engine's time.

Compiled module constants are declared ``Final``: mypyc keeps a ``Final`` name in a C static (a
literal is inlined), while any other module-level name is a dictionary lookup in the module's
globals at every use (~48 of them an event before this, tests/unit/test_architecture.py holds it).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["PURE_ENV", "choose", "mode", "stale_modules"]

PURE_ENV = "LEADSTREAM_PURE_PYTHON"
_HERE = Path(__file__).resolve().parent
_STAMP = _HERE / "_native.json"
_mode = "pure Python"


def mode() -> str:
    """How this process runs leadstream, for logs and ``leadstream --version``."""
    return _mode


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Finds leadstream's modules as source files, ahead of their compiled extensions."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith("leadstream.") or path is None:
            return None
        leaf = fullname.rpartition(".")[2]
        for entry in path:
            package = Path(entry) / leaf
            if (package / "__init__.py").is_file():
                return importlib.util.spec_from_file_location(
                    fullname, package / "__init__.py", submodule_search_locations=[str(package)]
                )
            if (Path(entry) / f"{leaf}.py").is_file():
                return importlib.util.spec_from_file_location(fullname, Path(entry) / f"{leaf}.py")
        return None


def stale_modules(recorded: dict[str, str], package: Path = _HERE) -> list[str]:
    """The compiled modules whose source under ``package`` no longer has the recorded hash."""
    stale = []
    for name, digest in recorded.items():
        parts = name.split(".")[1:]
        source = package.joinpath(*parts).with_suffix(".py")
        if not source.exists():
            source = package.joinpath(*parts, "__init__.py")
        try:
            if hashlib.sha256(source.read_bytes()).hexdigest() != digest:
                stale.append(name)
        except OSError:
            stale.append(name)
    return stale


def choose() -> str:
    """Decide, once, before any compiled module is imported; returns :func:`mode`."""
    global _mode
    if not _STAMP.exists():
        # Never compiled (or scripts/compile --clean): any leftover extension must not be used.
        _mode = "pure Python (not compiled: scripts/compile builds the fast path)"
        _sources_first()
        return _mode
    try:
        recorded: dict[str, str] = json.loads(_STAMP.read_text())["modules"]
    except (OSError, ValueError, KeyError):
        recorded = {}
    stale = stale_modules(recorded) if recorded else ["(unreadable _native.json)"]
    if os.environ.get(PURE_ENV) == "1":
        _mode = f"pure Python ({PURE_ENV}=1)"
    elif stale:
        _mode = f"pure Python ({len(stale)} compiled modules older than their sources)"
        warnings.warn(
            f"leadstream: {len(stale)} compiled modules are older than their sources (e.g. {stale[0]}): "
            "running as pure Python (slower, same results). Run scripts/compile to compile them again.",
            RuntimeWarning,
            stacklevel=3,
        )
    else:
        _mode = f"compiled ({len(recorded)} modules, mypyc)"
        return _mode
    _sources_first()
    return _mode


def _sources_first() -> None:
    if not any(isinstance(f, _SourcesFirst) for f in sys.meta_path):
        sys.meta_path.insert(0, _SourcesFirst())
