"""The conformance kit's own rules: a world must explain every item it cannot model, and the kit's
pytest dependency never reaches the controller."""

from __future__ import annotations

import subprocess
import sys

import pytest

from providers.conformance import Supports


def test_an_unsupported_item_needs_a_reason() -> None:
    with pytest.raises(ValueError, match="retry_after"):
        Supports(retry_after=False)


def test_a_reason_for_a_supported_item_is_refused() -> None:
    with pytest.raises(ValueError, match="blackholes"):
        Supports(why_not={"blackholes": "stale"})


def test_a_reason_for_an_unknown_item_is_refused() -> None:
    with pytest.raises(ValueError, match="teleport"):
        Supports(why_not={"teleport": "no such thing"})


def test_every_item_is_supported_unless_the_world_says_why_not() -> None:
    partial = Supports(ipv6=False, why_not={"ipv6": "IPv4-only VPC"})

    assert not partial.ipv6
    assert Supports().why_not == {}
    assert all(getattr(Supports(), name) for name in ("ipv6", "throttling", "route_quota", "blackholes"))


def test_the_controller_and_every_adapter_import_without_pytest() -> None:
    """Only a test run imports the kit; the image ships without pytest."""
    modules = ("providers", "providers.aws", "providers.gcp", "providers.alibaba", "routectl.cli")
    test_only = ("pytest", "_pytest", "providers.conformance")
    code = "\n".join(
        [
            "import sys",
            f"for m in {modules!r}: __import__(m)",
            f"print(sorted(m for m in sys.modules if m.startswith({test_only!r})))",
        ]
    )

    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )

    assert loaded.stdout.strip() == "[]"
