"""Rewrite the values table of helm/routectl/README.md from values.yaml: every value the schema declares
by name, its default, and the `# --` comment above it (tests/chart/test_chart_docs.py checks the table).

Usage: .venv/bin/python scripts/chart-values-table.py
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[1] / "helm" / "routectl"
HEADER = "| Key | Default | Description |"


def leaves(values: Any, schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every value the schema declares by name (a free-form map such as `resources` is one value)."""
    if isinstance(values, dict) and "properties" in schema:
        for key, value in values.items():
            yield from leaves(value, schema["properties"].get(key, {}), f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), values


def descriptions(text: str) -> dict[str, str]:
    """Dotted key -> the `# -- ...` comment block right above it (continued by plain `#` lines)."""
    found: dict[str, str] = {}
    path: list[str] = []
    pending: list[str] = []
    for line in text.splitlines():
        if match := re.match(r"^\s*# -- (.*)$", line):
            pending = [match.group(1)]
        elif (match := re.match(r"^\s*#\s?(.*)$", line)) and pending:
            pending.append(match.group(1))
        elif match := re.match(r"^(\s*)([A-Za-z0-9_]+):", line):
            path = [*path[: len(match.group(1)) // 2], match.group(2)]
            if pending:
                found[".".join(path)] = " ".join(pending)
            pending = []
        elif not line.strip():
            pending = []
    return found


def table() -> str:
    text = (CHART / "values.yaml").read_text()
    schema = json.loads((CHART / "values.schema.json").read_text())
    described = descriptions(text)
    rows = [HEADER, "|---|---|---|"]
    for key, default in leaves(yaml.safe_load(text), schema):
        description = described.get(key, "").replace("|", "\\|")
        rows.append(f"| `{key}` | `{json.dumps(default)}` | {description} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    readme = CHART / "README.md"
    text = readme.read_text()
    readme.write_text(text[: text.index(HEADER)] + table())


if __name__ == "__main__":
    main()
