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
    NotFound,
    OutsideNetwork,
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
    """Build the adapter for `name`; SDKs are imported only for the provider in use."""
    if name not in NAMES:
        raise ConfigurationError(f"provider {name!r}: must be one of {', '.join(NAMES)}")
    module = importlib.import_module(f"providers.{name}")
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
    "Network",
    "NotFound",
    "Outcome",
    "OutsideNetwork",
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
