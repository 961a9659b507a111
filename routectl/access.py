"""Who may read what the controller serves: the port the metrics server asks before it answers.

The metrics server (routectl.ops.serving) holds only this port; the implementation that asks the API
server (routectl.kube.authn: TokenReview, then SubjectAccessReview) is handed to it by the cli, so
neither the engine nor ops depends on the Kubernetes layer.
"""

from __future__ import annotations

import enum
from typing import Protocol


class Verdict(enum.Enum):
    """The answer for one request, mapped by the server onto its HTTP status."""

    ALLOWED = 200
    UNAUTHENTICATED = 401
    """No bearer token, or one the API server does not accept."""
    FORBIDDEN = 403
    """A known user whom RBAC does not allow the verb on the path."""
    UNAVAILABLE = 500
    """The API server could not be asked; the caller may retry (Prometheus does, next scrape)."""


class Gate(Protocol):
    def admit(self, token: str, verb: str, path: str) -> Verdict:
        """May the bearer of `token` (never empty: no token is refused before asking) do `verb`
        (lower-case HTTP method) on `path`?"""
        ...
