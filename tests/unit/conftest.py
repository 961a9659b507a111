"""Unit tier: routectl, run in-process or as a child, sees no `ROUTECTL_*` variable of the test harness
(the Makefile's ROUTECTL_BIN_CACHE, replay seeds): it refuses every such name that is not a setting."""

from __future__ import annotations

import os

import pytest

from routectl.config import ENV_PREFIX


@pytest.fixture(autouse=True)
def no_harness_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
