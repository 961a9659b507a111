"""Event reasons and condition values: the one place their spellings live (docs/architecture.md,
"Status, Events, metrics")."""

from __future__ import annotations

import enum

CONDITION_TYPE = "NetworkUnavailable"


class Reason(enum.StrEnum):
    CIDR_ASSIGNED = "CIDRAssigned"
    CIDR_NOT_AVAILABLE = "CIDRNotAvailable"
    CIDR_ASSIGNMENT_FAILED = "CIDRAssignmentFailed"
    FAILED_TO_CREATE_ROUTE = "FailedToCreateRoute"
    FAILED_TO_DELETE_ROUTE = "FailedToDeleteRoute"
    ROUTE_CONFLICT = "RouteConflict"
    ROUTE_QUOTA_EXCEEDED = "RouteQuotaExceeded"
    ROUTE_CONTESTED = "RouteContested"


class EventKind(enum.StrEnum):
    NORMAL = "Normal"
    WARNING = "Warning"


class ConditionReason(enum.StrEnum):
    ROUTE_CREATED = "RouteCreated"
    NO_ROUTE_CREATED = "NoRouteCreated"


ROUTE_CREATED_MESSAGE = "RouteController created a route"
