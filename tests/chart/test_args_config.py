"""The Deployment's args are `routectl run` flags the controller's own config loader accepts, and the
Config it builds holds exactly the chart's values."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chartlib import EXAMPLES, NAMESPACE, Helm, Manifest, chart_values, controller

from providers.registry import discover
from routectl import config
from tests.sim_provider import with_sim

NAMED_SECTION = {"region": "region", "vpc-id": "vpcID", "project": "project", "network": "network"}
"""Provider settings with a value in the provider's own section of values.yaml (aws, gcp, alibaba)."""


def _pod_env(container: Manifest) -> dict[str, str]:
    """The container's env as the kubelet resolves it (downward API for the pod's own identity)."""
    downward = {"metadata.name": "routectl-6d4f8b7c9-x2x7k", "metadata.namespace": NAMESPACE}
    env = {}
    for var in container["env"]:
        if "value" in var:
            env[var["name"]] = var["value"]
        else:
            env[var["name"]] = downward[var["valueFrom"]["fieldRef"]["fieldPath"]]
    return env


def _families(cidrs: Iterable[str]) -> set[str]:
    """Node masks matter only for the IP families that have a cluster CIDR."""
    return {"v6" if ":" in cidr else "v4" for cidr in cidrs}


def _bind(enabled: bool, port: int) -> tuple[str, int] | None:
    return ("0.0.0.0", port) if enabled else None


def _provider_settings(values: dict[str, Any]) -> dict[str, object]:
    """Each setting of the selected provider as the chart's values say: its section, the route tables of
    `routes`, `providerSettings` (lists as tuples), or else the spec's default."""
    section = values.get(values["provider"], {})
    given: dict[str, object] = {flag: section[key] for flag, key in NAMED_SECTION.items() if section.get(key)}
    if "routePriority" in section:
        given["route-priority"] = section["routePriority"]
    if values["routes"]["routeTableIDs"]:
        given["route-table-id"] = tuple(values["routes"]["routeTableIDs"])
    for flag, value in values["providerSettings"].items():
        given[flag] = tuple(value) if isinstance(value, list) else value
    return {s.name: given.get(s.name, s.default) for s in discover()[values["provider"]].settings}


def _expected(values: dict[str, Any]) -> dict[str, object]:
    leader = values["leaderElection"]
    key, _, label_value = values["ipam"]["excludeLabel"].partition("=")
    return {
        "cluster_name": values["clusterName"],
        "cluster_cidrs": tuple(values["clusterCIDRs"]),
        "node_masks": {
            family: values["ipam"][f"nodeCIDRMaskSizeIP{family}"]
            for family in _families(values["clusterCIDRs"])
        },
        "reserved_cidrs": tuple(values["ipam"]["reservedCIDRs"]),
        "allocate_node_cidrs": values["ipam"]["allocateNodeCIDRs"],
        "configure_cloud_routes": values["routes"]["configureCloudRoutes"],
        "provider": values["provider"],
        "provider_settings": _provider_settings(values),
        "route_table_quota": values["routes"]["routeTableQuota"],
        "endpoint": values["cloud"]["endpoint"],
        "rates": tuple(values["cloud"][k] for k in ("writeRate", "writeBurst", "readRate", "readBurst")),
        "resync_period_s": config.parse_duration(values["routes"]["reconciliationPeriod"]),
        "concurrent_node_syncs": values["routes"]["concurrentNodeSyncs"],
        "exclude_label": (key, label_value),
        "dry_run": values["routes"]["dryRun"],
        "log_level": values["logLevel"],
        "log_format": values["logFormat"],
        "leader_elect": leader["enabled"],
        "lease_timing": tuple(
            config.parse_duration(leader[k]) for k in ("leaseDuration", "renewDeadline", "retryPeriod")
        ),
        "lease": (NAMESPACE, leader["leaseName"]),
        "metrics_address": _bind(values["metrics"]["enabled"], values["metrics"]["port"]),
        "health_address": _bind(True, values["health"]["port"]),
        "kubeconfig": "",
        "once": False,
    }


def _actual(cfg: config.Config) -> dict[str, object]:
    assert cfg.cloud is not None
    cloud, common = cfg.cloud.config, cfg.cloud.config.common
    lease = cfg.leader_election
    return {
        "cluster_name": cfg.cluster_name,
        "cluster_cidrs": tuple(str(n) for n in cfg.cluster_cidrs),
        "node_masks": {
            family: {"v4": cfg.node_mask_v4, "v6": cfg.node_mask_v6}[family]
            for family in _families(str(n) for n in cfg.cluster_cidrs)
        },
        "reserved_cidrs": tuple(str(n) for n in cfg.reserved_cidrs),
        "allocate_node_cidrs": cfg.allocate_node_cidrs,
        "configure_cloud_routes": cfg.configure_cloud_routes,
        "provider": cfg.provider,
        "provider_settings": {s.name: getattr(cloud, s.attribute) for s in cfg.cloud.spec.settings},
        "route_table_quota": common.route_table_quota,
        "endpoint": common.endpoint,
        "rates": (common.write_rate, common.write_burst, common.read_rate, common.read_burst),
        "resync_period_s": cfg.resync_period_s,
        "concurrent_node_syncs": cfg.concurrent_node_syncs,
        "exclude_label": cfg.exclude_label,
        "dry_run": cfg.dry_run,
        "log_level": cfg.log_level,
        "log_format": cfg.log_format,
        "leader_elect": lease.enabled,
        "lease_timing": (lease.lease_duration_s, lease.renew_deadline_s, lease.retry_period_s),
        "lease": (lease.namespace, lease.name),
        "metrics_address": cfg.metrics_address,
        "health_address": cfg.health_address,
        "kubeconfig": cfg.kubeconfig,
        "once": cfg.once,
    }


def test_rendered_args_load_into_a_config_holding_the_values(rendered: list[Manifest], example: str) -> None:
    container = controller(rendered)
    command, *flags = container["args"]
    assert command == "run"
    cfg = config.load(flags, _pod_env(container), command)
    assert _actual(cfg) == _expected(chart_values(example))


def test_leader_identity_is_the_pod_name_from_the_downward_api(rendered: list[Manifest]) -> None:
    container = controller(rendered)
    env = _pod_env(container)
    cfg = config.load(container["args"][1:], env)
    assert cfg.leader_election.identity.startswith(env["POD_NAME"] + "_")


def test_a_provider_without_a_chart_section_gets_its_settings_from_provider_settings(helm: Helm) -> None:
    sets = {"provider": "sim", "providerSettings": {"sim-table": ["rtb-a", "rtb-b"]}}
    container = controller(helm.template([EXAMPLES["gcp"]], sets=sets))

    assert [f for f in container["args"] if f.startswith("--sim-")] == [
        "--sim-table=rtb-a",
        "--sim-table=rtb-b",
    ]
    cfg = config.load(container["args"][1:], _pod_env(container), registry=with_sim())
    assert cfg.cloud is not None
    assert cfg.cloud.build().tables() == ("rtb-a", "rtb-b")
