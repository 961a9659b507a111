#!/usr/bin/env python3
"""Write the metrics table of docs/operations.md from the code, or `--check` that it is current.

The table sits between `<!-- metrics:table -->` and `<!-- /metrics:table -->` and lists every series
family a controller's registry exports (routectl/metrics.py, with the process, platform and GC
collectors): name as scraped, type, labels, meaning. Run from the repository root:
    .venv/bin/python scripts/metrics-docs.py            # rewrite
    .venv/bin/python scripts/metrics-docs.py --check    # exit 1 and show the difference when stale
The tests load `catalogue()` from here to tie the alerts and the dashboard to the same names.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from routectl.metrics import Metrics

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
_NOT_LABELS = {"le", "quantile"}


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    """As scraped: a counter with `_total`, an info with `_info`; a histogram's base name."""
    kind: str
    labels: tuple[str, ...]
    help: str
    samples: tuple[str, ...]
    """Every sample name it exports (a histogram's `_bucket`, `_sum`, `_count`)."""


def catalogue() -> list[Family]:
    """Every family of a fresh controller registry; each labelled family is given one child first, so
    that its labels show (prometheus_client exports a labelled family only once it has one)."""
    metrics = Metrics(provider="aws")
    for value in vars(metrics).values():
        labelnames = getattr(value, "_labelnames", ())
        if labelnames:
            value.labels(*("x" for _ in labelnames))
    text = generate_latest(metrics.registry).decode()
    families = []
    for family in text_string_to_metric_families(text):
        samples = tuple(dict.fromkeys(s.name for s in family.samples))
        labels = tuple(dict.fromkeys(k for s in family.samples for k in s.labels if k not in _NOT_LABELS))
        shown = family.name + {"counter": "_total", "info": "_info"}.get(family.type, "")
        families.append(Family(shown, family.type, labels, family.documentation, samples))
    return families


def table(families: list[Family]) -> str:
    rows = ["| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    for family in families:
        kind = "gauge" if family.kind == "info" else family.kind
        labels = ", ".join(f"`{label}`" for label in family.labels)
        meaning = family.help.replace("|", "\\|")
        rows.append(f"| `{family.name}` | {kind} | {labels} | {meaning} |")
    return "\n".join(rows)


def render(text: str, body: str) -> str:
    block = re.compile(r"(<!-- metrics:table -->\n).*?(<!-- /metrics:table -->)", re.S)
    if not block.search(text):
        raise SystemExit(f"{DOC}: no <!-- metrics:table --> ... <!-- /metrics:table --> block")
    return block.sub(lambda m: f"{m.group(1)}{body}\n{m.group(2)}", text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when the table is stale")
    args = parser.parse_args()
    current = DOC.read_text()
    wanted = render(current, table(catalogue()))
    if wanted == current:
        return 0
    if args.check:
        print(
            "\n".join(
                difflib.unified_diff(current.splitlines(), wanted.splitlines(), str(DOC), "code", lineterm="")
            )
        )
        print("the metrics table is stale: run scripts/metrics-docs.py", file=sys.stderr)
        return 1
    DOC.write_text(wanted)
    print(f"rewrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
