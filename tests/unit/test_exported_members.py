"""The exported surface: one import name, and every public module says what it exports.

Modelled on httpx's tests/test_exported_members.py: ``__all__`` lists exactly the public names a
module defines, so a new public function is a deliberate addition and a typo is caught (ruff's
RUF022 keeps every ``__all__`` sorted).
"""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

import leadstream

ROOT = Path(__file__).resolve().parents[2]
# pyproject.toml's package-dir: the folders of the one import name
FOLDERS = {
    "leadstream": ROOT / "streams",
    "leadstream.schemas": ROOT / "schemas",
    "leadstream.config": ROOT / "config",
}


def _modules() -> list[str]:
    names = []
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("").parts
            if package == "leadstream" and rel[0] in ("schemas", "config"):
                continue
            parts = rel[:-1] if rel[-1] == "__init__" else rel
            names.append(".".join((package, *parts)))
    return names


def test_the_package_exports_its_public_names():
    public = [
        name
        for name, value in vars(leadstream).items()
        if (not name.startswith("_") or name == "__version__") and not isinstance(value, ModuleType)
    ]
    assert sorted(leadstream.__all__) == sorted(public)


@pytest.mark.parametrize("name", _modules())
def test_every_module_lists_what_it_defines(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}.__all__ lists a name twice"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
    defined = [
        n
        for n, value in vars(module).items()
        if not n.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == name
    ]
    unlisted = sorted(set(defined) - set(exported))
    assert not unlisted, f"{name} defines public {unlisted} without exporting them (or make them _private)"


def test_installing_adds_the_single_import_name_leadstream(tmp_path):
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("leadstream-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top = {n.split("/", 1)[0] for n in archive.namelist() if ".dist-info/" not in n}
        names = set(archive.namelist())
    assert top == {"leadstream"}
    for data in (
        "leadstream/py.typed",
        "leadstream/config/default_model.yaml",
        "leadstream/config/routing.yaml",
        "leadstream/schemas/json/event.schema.json",
        "leadstream/state/lua/leadstream.lua",
    ):
        assert data in names, f"the wheel lacks {data}"
