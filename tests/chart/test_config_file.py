"""The chart renders every setting into one config file (a ConfigMap at a fixed path) and passes only
`--config`: the controller's own loader accepts it for `run` and for a `plan` typed into the pod, and the
Config it builds holds exactly the chart's values."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
import yaml
from chartlib import (
    EXAMPLES,
    NAMESPACE,
    Helm,
    Manifest,
    chart_values,
    config_map,
    controller,
    one,
    pod_env,
    settings,
)

from providers.registry import discover
from routectl import config
from tests.sim_provider import with_sim

CONFIG_FILE = "/etc/routectl/config.yaml"
NAMED_SECTION = {"region": "region", "vpc-id": "vpcID", "project": "project", "network": "network"}
"""Provider settings with a value in the provider's own section of values.yaml (aws, gcp, alibaba)."""


def _families(cidrs: Iterable[str]) -> set[str]:
    """Node masks matter only for the IP families that have a cluster CIDR."""
    return {"v6" if ":" in cidr else "v4" for cidr in cidrs}


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
    metrics = values["metrics"]
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
        "adopt_routes": values["routes"]["adoptRoutes"],
        "route_policy": values["routes"]["policy"],
        "log_level": values["logLevel"],
        "log_format": values["logFormat"],
        "leader_elect": leader["enabled"],
        "lease_timing": tuple(
            config.parse_duration(leader[k]) for k in ("leaseDuration", "renewDeadline", "retryPeriod")
        ),
        "lease": (NAMESPACE, leader["leaseName"]),
        "metrics_address": (
            ("0.0.0.0" if metrics["secure"] else "127.0.0.1", metrics["port"]) if metrics["enabled"] else None
        ),
        "metrics_secure": metrics["secure"],
        "health_address": ("127.0.0.1", values["health"]["port"]),
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
        "adopt_routes": cfg.adopt_routes,
        "route_policy": cfg.route_policy,
        "log_level": cfg.log_level,
        "log_format": cfg.log_format,
        "leader_elect": lease.enabled,
        "lease_timing": (lease.lease_duration_s, lease.renew_deadline_s, lease.retry_period_s),
        "lease": (lease.namespace, lease.name),
        "metrics_address": cfg.metrics_address,
        "metrics_secure": cfg.metrics_secure,
        "health_address": cfg.health_address,
        "kubeconfig": cfg.kubeconfig,
        "once": cfg.once,
    }


def _mounted(objects: list[Manifest], tmp_path: Path) -> Path:
    """The ConfigMap's config.yaml written where a test can read it (the kubelet's mount, by hand)."""
    path = tmp_path / "config.yaml"
    path.write_text(config_map(objects)["data"]["config.yaml"])
    return path


def _with_file(argv: list[str], path: Path) -> list[str]:
    return [a.replace(CONFIG_FILE, str(path)) for a in argv]


def test_the_deployment_passes_only_the_config_file(rendered: list[Manifest]) -> None:
    container = controller(rendered)
    assert container["args"] == ["run", f"--config={CONFIG_FILE}"]
    assert pod_env(container)["ROUTECTL_CONFIG"] == CONFIG_FILE
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "config"]
    assert f"{mount['mountPath']}/config.yaml" == CONFIG_FILE


def test_the_config_file_loads_into_a_config_holding_the_values(
    rendered: list[Manifest], example: str, tmp_path: Path
) -> None:
    container = controller(rendered)
    path = _mounted(rendered, tmp_path)
    command, *flags = _with_file(container["args"], path)
    cfg = config.load(flags, pod_env(container), command)
    assert _actual(cfg) == _expected(chart_values(example))


def test_plan_typed_into_the_pod_reads_the_same_settings(rendered: list[Manifest], tmp_path: Path) -> None:
    """`kubectl exec deploy/routectl -- routectl plan`: no flag at all, the pod's env names the file."""
    container = controller(rendered)
    path = _mounted(rendered, tmp_path)
    env = {**pod_env(container), "ROUTECTL_CONFIG": str(path)}
    run = config.load(_with_file(container["args"], path)[1:], env, "run")
    plan = config.load([], env, "plan")
    assert (plan.cluster_name, plan.cluster_cidrs, plan.provider) == (
        run.cluster_name,
        run.cluster_cidrs,
        run.provider,
    )
    assert run.cloud is not None
    assert plan.cloud is not None
    assert plan.cloud.config == run.cloud.config


def test_leader_identity_is_the_pod_name_from_the_downward_api(
    rendered: list[Manifest], tmp_path: Path
) -> None:
    container = controller(rendered)
    env = {**pod_env(container), "ROUTECTL_CONFIG": str(_mounted(rendered, tmp_path))}
    assert config.load([], env).leader_election.identity.startswith(env["POD_NAME"] + "_")


@pytest.mark.parametrize("provider", ["aws", "gcp", "alibaba"])
def test_every_provider_value_is_a_setting_the_controller_knows(helm: Helm, provider: str) -> None:
    """The provider's section is rendered key by key: a value whose kebab-case name no command knows
    would stop the controller with 'unknown setting'."""
    defaults = yaml.safe_load((EXAMPLES["aws"].parent.parent / "values.yaml").read_text())
    section = {
        key: f"x-{key}" if isinstance(value, str) else value for key, value in defaults[provider].items()
    }
    objects = helm.template([EXAMPLES[provider]], sets={provider: section})
    rendered = settings(objects)
    known = {s.name for command in ("run", "plan") for s in config.settings(command, discover())}
    for key, value in section.items():
        kebab = next(name for name in rendered if name.replace("-", "") == key.lower())
        assert kebab in known
        assert str(rendered[kebab]) == str(value)


def test_a_changed_setting_rolls_the_pods_and_an_unchanged_one_does_not(helm: Helm) -> None:
    def checksum(objects: list[Manifest]) -> str:
        annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        return str(annotations["checksum/config"])

    base = checksum(helm.template([EXAMPLES["aws"]]))
    assert checksum(helm.template([EXAMPLES["aws"]])) == base
    assert checksum(helm.template([EXAMPLES["aws"]], sets={"logLevel": "debug"})) != base
    assert checksum(helm.template([EXAMPLES["aws"]], sets={"aws.vpcID": "vpc-1"})) != base


def test_a_provider_without_a_chart_section_gets_its_settings_from_provider_settings(
    helm: Helm, tmp_path: Path
) -> None:
    sets = {"provider": "sim", "providerSettings": {"sim-table": ["rtb-a", "rtb-b"]}}
    objects = helm.template([EXAMPLES["gcp"]], sets=sets)

    assert settings(objects)["sim-table"] == ["rtb-a", "rtb-b"]
    assert "project" not in settings(objects)  # only a built-in provider's own section is rendered
    env = {**pod_env(controller(objects)), "ROUTECTL_CONFIG": str(_mounted(objects, tmp_path))}
    cfg = config.load([], env, registry=with_sim())
    assert cfg.cloud is not None
    assert cfg.cloud.build().tables() == ("rtb-a", "rtb-b")
