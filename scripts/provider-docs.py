#!/usr/bin/env python3
"""Write the parts of the docs that come from the provider registry, or `--check` that they are current.

docs/providers.md: the table of installed providers; docs/operations.md: the provider settings. Each part
sits between `<!-- registry:NAME -->` and `<!-- /registry:NAME -->`. Run from the repository root:
    .venv/bin/python scripts/provider-docs.py            # rewrite
    .venv/bin/python scripts/provider-docs.py --check    # exit 1 and show the difference when stale
The tables describe the providers routectl's own distribution registers, whatever else is installed.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.metadata
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from providers.model import Limits
from providers.registry import COMMON_SETTINGS, GROUP, ProviderSpec, Registry, discover
from providers.settings import Setting, missing

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(value: Any) -> str:
    if missing(value):
        return "none" if value == () else '`""`'
    return f"`{value:g}`" if isinstance(value, float) else f"`{value}`"


def _batch(limits: Limits) -> str:
    if limits.max_batch <= 1:
        return "1"
    return f"{limits.max_batch} per request" if limits.batch_api else f"{limits.max_batch}, pipelined"


def _writes(limits: Limits) -> str:
    notes = [f"{limits.write_rate:g}/s, burst {limits.write_burst}"]
    if limits.writers_per_table is not None:
        notes.append(f"{limits.writers_per_table} writer per table")
    if limits.prepare_writes:
        notes.append("instance setup counts as a write")
    return "; ".join(notes)


def _quota(limits: Limits) -> str:
    if limits.routes_per_table is None:
        return "unknown: set `--route-table-quota`"
    return f"{limits.routes_per_table}{' per IP family' if limits.quota_per_family else ''}"


def _settings(spec: ProviderSpec[Any]) -> str:
    shown = []
    for s in spec.settings:
        note = "required" if s.required else ("" if missing(s.default) else f"default {s.default}")
        shown.append(f"`--{s.name}`" + (f" ({note})" if note else ""))
    return ", ".join(shown) or "none"


def providers_table(registry: Registry) -> str:
    rows = [
        "| Provider | Cloud | Settings | Writes | Reads | Batch | Routes per table | Demo |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for spec in registry.specs:
        limits = spec.limits
        cells = (
            f"`{spec.name}`",
            spec.summary,
            _settings(spec),
            _writes(limits),
            f"{limits.read_rate:g}/s, burst {limits.read_burst}",
            _batch(limits),
            _quota(limits),
            "yes" if spec.embedded else "no",
        )
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def settings_table(registry: Registry) -> str:
    rows = ["| Flag | Providers | Default | Meaning |", "|---|---|---|---|"]
    for merged in registry.settings():
        declared = [(spec.name, s) for spec in registry.specs for s in spec.settings if s.name == merged.name]
        required = [name for name, s in declared if s.required]
        if len(required) == len(declared):
            default = "**required**"
        elif required:
            default = f"{_default(merged.default)}; **required** for {', '.join(required)}"
        else:
            default = _default(merged.default)
        meaning = " ".join(f"**{name}**: {s.help}." for name, s in declared)
        rows.append(_row(merged, ", ".join(name for name, _ in declared), default, meaning))
    for s in COMMON_SETTINGS:
        rows.append(_row(s, "every provider", _default(s.default), s.help))
    return "\n".join(rows)


def _row(setting: Setting, providers: str, default: str, meaning: str) -> str:
    flag = f"`--{setting.name}`" + (" (list)" if setting.many else "")
    return "| " + " | ".join(_cell(c) for c in (flag, providers, default, meaning)) + " |"


PARTS: dict[str, tuple[Path, Callable[[Registry], str]]] = {
    "providers": (DOCS / "providers.md", providers_table),
    "settings": (DOCS / "operations.md", settings_table),
}


def render(text: str, name: str, body: str) -> str:
    block = re.compile(rf"(<!-- registry:{name} -->\n).*?(<!-- /registry:{name} -->)", re.S)
    if not block.search(text):
        raise SystemExit(f"no <!-- registry:{name} --> ... <!-- /registry:{name} --> block")
    return block.sub(lambda m: f"{m.group(1)}{body}\n{m.group(2)}", text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a part is stale")
    args = parser.parse_args()
    own = [e for e in importlib.metadata.entry_points(group=GROUP) if e.dist and e.dist.name == "routectl"]
    registry = discover(own)
    stale = 0
    for name, (path, make) in PARTS.items():
        current = path.read_text()
        wanted = render(current, name, make(registry))
        if wanted == current:
            continue
        if args.check:
            stale += 1
            diff = difflib.unified_diff(
                current.splitlines(), wanted.splitlines(), str(path), "registry", lineterm=""
            )
            print("\n".join(diff))
        else:
            path.write_text(wanted)
            print(f"rewrote {path}")
    if stale:
        print(f"{stale} part(s) stale: run scripts/provider-docs.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
