"""The GCP adapter's spec and config: routes of one VPC network through google-cloud-compute
(providers/gcp.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from providers.model import Limits
from providers.registry import CommonConfig, ProviderSpec
from providers.settings import Setting, int_within

MAX_BATCH = 10
"""Routes per write call: GCP has no batch API, but one call pipelines this many operations."""
LIMITS = Limits(write_rate=10.0, write_burst=20, read_rate=20.0, read_burst=50, max_batch=MAX_BATCH)
"""Conservative: the project's route quota is unknown unless given (--route-table-quota)."""


_PROJECT = re.compile(r"([a-z][-a-z0-9.]*[a-z0-9]:)?[a-z][-a-z0-9]{4,28}[a-z0-9]")
_RESOURCE = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def project_id(text: str) -> str:
    """A GCP project id: 6-30 of lowercase letters, digits and '-' (optionally `domain:` scoped)."""
    if not _PROJECT.fullmatch(text):
        raise ValueError(f"{text!r} is not a GCP project id (6-30 lowercase letters, digits or '-')")
    return text


def network_name(text: str) -> str:
    """A network name (RFC 1035, up to 63), or a selfLink / path ending in one."""
    if not _RESOURCE.fullmatch(text.rstrip("/").rsplit("/", 1)[-1]) or any(c.isspace() for c in text):
        raise ValueError(f"{text!r} is not a network name (lowercase letters, digits and '-', up to 63)")
    return text


@dataclass(frozen=True, slots=True)
class GcpConfig:
    common: CommonConfig
    project: str
    network: str
    """The network's name (a selfLink or path is cut to its last part)."""
    route_priority: int = 1000


SPEC = ProviderSpec(
    name="gcp",
    summary="GCP: routes of one VPC network (google-cloud-compute)",
    config=GcpConfig,
    build="providers.gcp:build",
    limits=LIMITS,
    settings=(
        Setting("project", "GCP project of the VPC network", project_id, required=True),
        Setting("network", "VPC network name", network_name, required=True),
        Setting("route-priority", "priority of the routes routectl creates", int_within(0, 65535), 1000),
    ),
    embedded="providers.emulators.embedded:gcp_cloud",
)
