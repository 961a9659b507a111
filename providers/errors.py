"""Typed provider errors: adapters translate SDK exceptions into these at their boundary.

Per-route write failures are reported as `RouteResult` outcomes, not raised; these exceptions are for
whole-call failures (listing a table, discovering tables, preparing a target, parsing a providerID).
"""

from __future__ import annotations


class ProviderError(Exception):
    """A cloud call failed; the message names the call and the cause."""


class Throttled(ProviderError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Transient(ProviderError):
    """5xx, timeouts, busy resources: safe to retry."""


class QuotaExceeded(ProviderError):
    pass


class Conflict(ProviderError):
    pass


class NotFound(ProviderError):
    pass


class Fatal(ProviderError):
    """Retrying cannot help: permissions, bad request, bad credentials."""


class ConfigurationError(Fatal):
    """The provider's configuration cannot work (no route tables, unknown network, bad region …)."""


class MissingPackage(ConfigurationError):
    """What was asked for needs a package this installation left out (a cloud SDK in a single-cloud
    image, moto for the demo): one line naming the module and the extra of routectl that brings it."""

    def __init__(self, missing: ModuleNotFoundError, needed_by: str, extra: str) -> None:
        super().__init__(
            f"{needed_by} needs the Python module {missing.name!r}, which is not installed: "
            f"install routectl[{extra}] (pip install 'routectl[{extra}]')"
        )


class InvalidProviderID(Fatal):
    """A node's `spec.providerID` does not name an instance of this provider."""
