"""The docs' provider tables come from the registry, and the operations guide's flag table lists exactly
routectl's own settings (the provider settings have a generated table of their own)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from providers.registry import COMMON_SETTINGS, discover
from routectl import config

ROOT = Path(__file__).resolve().parents[3]
FLAG_ROW = re.compile(r"^\| `--(?P<name>[a-z0-9-]+)[^`]*`[^|]*\|", re.MULTILINE)


def test_the_generated_provider_tables_match_the_registry() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "provider-docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _settings_section(text: str) -> tuple[str, str]:
    """(the main Settings table, the generated provider settings table) of docs/operations.md."""
    main = text.split("## Settings", 1)[1].split("### Provider settings", 1)[0]
    generated = text.split("<!-- registry:settings -->", 1)[1].split("<!-- /registry:settings -->", 1)[0]
    return main, generated


def test_the_operations_flag_tables_list_every_setting_once() -> None:
    main, generated = _settings_section((ROOT / "docs" / "operations.md").read_text())
    registry = discover()
    provider_owned = {s.name for s in (*registry.settings(), *COMMON_SETTINGS)}
    every = {s.name for command in ("run", "plan") for s in config.settings(command, registry)}

    assert sorted(FLAG_ROW.findall(main)) == sorted({"config", *(every - provider_owned)})
    assert sorted(FLAG_ROW.findall(generated)) == sorted(provider_owned)
