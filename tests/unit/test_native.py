"""The compiled hot path's stale check: an extension older than its source is never used."""

from __future__ import annotations

import hashlib

from leadstream.native import stale_modules


def test_a_source_edited_after_compiling_is_stale(tmp_path):
    (tmp_path / "scoring").mkdir()
    engine, fit = tmp_path / "scoring" / "engine.py", tmp_path / "scoring" / "fit.py"
    engine.write_text("x = 1\n")
    fit.write_text("y = 2\n")
    recorded = {
        f"leadstream.scoring.{p.stem}": hashlib.sha256(p.read_bytes()).hexdigest() for p in (engine, fit)
    }
    assert stale_modules(recorded, tmp_path) == []
    engine.write_text("x = 2\n")
    assert stale_modules(recorded, tmp_path) == ["leadstream.scoring.engine"]
    fit.unlink()  # a compiled module whose source is gone is stale too
    assert stale_modules(recorded, tmp_path) == ["leadstream.scoring.engine", "leadstream.scoring.fit"]
