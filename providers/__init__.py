"""Cloud route providers: the RouteProvider protocol, error taxonomy, the registry and the adapters.

`providers` imports nothing from `routectl`: adapters depend on this port, never the other way round.
Adapters are found through `providers.registry` (entry points `routectl.providers`), never by name here.
"""

from __future__ import annotations

from providers.errors import (
    ConfigurationError,
    Conflict,
    Fatal,
    InvalidProviderID,
    MissingPackage,
    NotFound,
    OutsideNetwork,
    ProviderError,
    QuotaExceeded,
    Throttled,
    Transient,
)
from providers.model import (
    CallObserver,
    Check,
    CheckStatus,
    Diagnosable,
    DiagnosisScope,
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

__all__ = [
    "CallObserver",
    "Check",
    "CheckStatus",
    "ConfigurationError",
    "Conflict",
    "Diagnosable",
    "DiagnosisScope",
    "Fatal",
    "InvalidProviderID",
    "Limits",
    "MissingPackage",
    "Network",
    "NotFound",
    "Outcome",
    "OutsideNetwork",
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
]
