"""The README's two set-up commands exist, and CI runs exactly its test command."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"## Set up.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README.md needs a '## Set up' section with a bash block"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["scripts/run-demo", "scripts/run-tests"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nscripts/run-tests\n" in ci


def test_every_command_of_the_cli_is_documented():
    from leadstream.cli import _parser

    readme = (ROOT / "README.md").read_text()
    subcommands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in subcommands:
        assert f"`leadstream {name}" in readme, f"README does not document `leadstream {name}`"
