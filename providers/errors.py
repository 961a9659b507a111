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


class OutsideNetwork(Fatal):
    """`prepare_target`: the instance is not in the network this provider manages (AWS/Alibaba: its VPC
    is not the managed route tables' VPC; GCP: no NIC in the managed network). Raised after reads only:
    nothing on the instance was changed, and no route to it may be written."""

    def __init__(self, instance: str, network: str, managed: str) -> None:
        shown = network or "no network"
        super().__init__(
            f"instance {instance} is in {shown}, outside the managed network {managed}: "
            "no route to it, the instance left unchanged"
        )
        self.instance = instance
        self.network = network
        self.managed = managed


class MissingPackage(ConfigurationError):
    """What was asked for needs a package this installation left out (a cloud SDK in a single-cloud
    image, moto for the demo): one line naming the module and what to install to bring it."""

    def __init__(self, missing: ModuleNotFoundError, needed_by: str, install: str) -> None:
        """`install` is a requirement (`routectl[aws]`, another adapter's distribution), or "" when no
        installed distribution is known to bring the module."""
        hint = (
            f"install {install} (pip install '{install}')"
            if install
            else "install the distribution that provides it"
        )
        super().__init__(
            f"{needed_by} needs the Python module {missing.name!r}, which is not installed: {hint}"
        )
        self.module = missing.name
        self.install = install


class InvalidProviderID(Fatal):
    """A node's `spec.providerID` does not name an instance of this provider."""
