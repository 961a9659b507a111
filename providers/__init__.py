"""Cloud route providers: the RouteProvider protocol, error taxonomy and the adapters.

`providers` imports nothing from `routectl`: adapters depend on this port, never the other way round.
"""

from __future__ import annotations

import importlib

from providers.config import ProviderConfig
from providers.errors import (
    ConfigurationError,
    Conflict,
    Fatal,
    InvalidProviderID,
    MissingPackage,
    NotFound,
    ProviderError,
    QuotaExceeded,
    Throttled,
    Transient,
)
from providers.model import (
    CallObserver,
    Limits,
    Network,
    Outcome,
    Route,
    RouteProvider,
    RouteResult,
    RouteState,
    Target,
    WriteGuard,
)

NAMES = ("aws", "gcp", "alibaba")
"""Providers selectable with `--provider`; each lives in `providers/<name>.py` and exposes `build`."""


def get(name: str, config: ProviderConfig) -> RouteProvider:
    """Build the adapter for `name`; SDKs are imported only for the provider in use, so an installation
    without one (`routectl[aws]` alone) offers the others and names the extra this one needs."""
    if name not in NAMES:
        raise ConfigurationError(f"provider {name!r}: must be one of {', '.join(NAMES)}")
    try:
        module = importlib.import_module(f"providers.{name}")
    except ModuleNotFoundError as missing:
        if (missing.name or "").partition(".")[0] in ("providers", "routectl", "ipam"):
            raise  # our own module missing is a broken installation, not a left-out extra
        raise MissingPackage(missing, f"provider {name!r}", extra=name) from None
    provider: RouteProvider = module.build(config)
    return provider


__all__ = [
    "NAMES",
    "CallObserver",
    "ConfigurationError",
    "Conflict",
    "Fatal",
    "InvalidProviderID",
    "Limits",
    "MissingPackage",
    "Network",
    "NotFound",
    "Outcome",
    "ProviderConfig",
    "ProviderError",
    "QuotaExceeded",
    "Route",
    "RouteProvider",
    "RouteResult",
    "RouteState",
    "Target",
    "Throttled",
    "Transient",
    "WriteGuard",
    "get",
]
