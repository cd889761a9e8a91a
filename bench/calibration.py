"""How well `leadstream calibrate` learns on generated history with planted outcomes: held-out
ROC AUC of the learned weights against the hand-set default model's, and the rank correlation
between the recovered and the planted signal weights.

    .venv/bin/python -m bench.calibration --contacts 6000 --seed 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

from scipy.stats import spearmanr

from leadstream.config.loader import load_model
from leadstream.config.settings import Settings
from leadstream.tools.backtest import read_outcomes
from leadstream.tools.calibrate import calibrate, dataset
from leadstream.tools.generator import JourneyGenerator, default_start
from leadstream.tools.ground_truth import MEASURED_BY, SIGNAL_WEIGHTS, planted_outcomes
from leadstream.tools.replay import file_records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calibration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=6000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    started = time.monotonic()
    events = JourneyGenerator(args.seed, args.contacts, start=default_start()).events()
    outcomes = planted_outcomes(events, args.seed)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        path.write_text("".join(json.dumps(e) + "\n" for e in events))
        settings, model = Settings(), load_model()
        print(f"{len(events)} events, {len(outcomes)} planted outcomes; replaying", file=sys.stderr)
        records = list(file_records(path, settings.topics.accounts))
        data = asyncio.run(
            dataset(records, settings, model, read_outcomes([json.dumps(o).encode() for o in outcomes]))
        )
    result = calibrate(data, model)
    planted = [SIGNAL_WEIGHTS[s] for s in MEASURED_BY]
    learned = [result["coefficients"][f"engagement:{rule}"] for rule in MEASURED_BY.values()]
    rho = spearmanr(planted, learned).statistic
    print(f"contacts {result['contacts']}, accepted {result['accepted']}, held out {result['held_out']}")
    print(f"held-out ROC AUC: learned {result['auc_learned']}, default model {result['auc_current']}")
    print(f"rank correlation (Spearman) of recovered vs planted signal weights: {rho:.3f}")
    for signal, value in zip(MEASURED_BY, learned, strict=True):
        print(f"  {signal:<18} planted {SIGNAL_WEIGHTS[signal]:+.2f}  recovered {value:+.3f}")
    print(f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
