"""Unit tier: routectl, run in-process or as a child, sees no `ROUTECTL_*` variable of the test harness
(tests/conftest.py's `no_harness_variables`, here for every test)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _unit_tests_see_no_harness_variables(no_harness_variables: None) -> None:
    """Every unit test, in-process or with a child: the tier's rule."""
