"""Figures measured by tests (outage recovery, failover gaps on the real API server): printed, and
merged into `bench/results/<file>.json` under the scenario's name so docs cite the last run. Reported,
never asserted: speed goals live in `bench/`."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def record(file: str, scenario: str, figures: Mapping[str, object]) -> Path:
    """Print `figures` and store them as `scenario` in `bench/results/<file>.json`, keeping the other
    scenarios' entries; `measured_at` (UTC) says which run they come from."""
    entry = {**figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"\nfigure {file}/{scenario}: {json.dumps(entry)}")
    path = RESULTS / f"{file}.json"
    RESULTS.mkdir(parents=True, exist_ok=True)
    stored = json.loads(path.read_text()) if path.exists() else {}
    stored[scenario] = entry
    path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return path
