"""One frozen, validated configuration built from YAML file → `ROUTECTL_*` env → flags (flags win).

Invariant: a `Config` that exists is valid; every rule is checked here, once, before the controller
touches the cluster or the cloud, and a broken rule is one `ConfigError` line naming the setting.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

import ipam
import providers
from providers import Network, ProviderConfig


class ConfigError(Exception):
    """Invalid configuration: the message names the setting and the rule broken."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_CLUSTER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def parse_duration(text: str) -> float:
    """Go-style durations as kube-controller-manager takes them: `90s`, `1m30s`, `500ms`, `2h`."""
    text = text.strip()
    if not text or _DURATION_PART.sub("", text) != "":
        raise ValueError(f"{text!r} is not a duration like 60s, 1m30s or 500ms")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"{text!r} is not true or false")


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


@dataclass(frozen=True, slots=True)
class _Setting:
    """One setting: its flag name, how to parse a string form of it, and its default."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    many: bool = False
    """A list: flags repeat or take commas; YAML takes a list; env takes commas."""
    commands: tuple[str, ...] = ("run", "plan")

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env(self) -> str:
        return "ROUTECTL_" + self.dest.upper()


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


_SETTINGS: tuple[_Setting, ...] = (
    _Setting("kubeconfig", str, "", "kubeconfig path; empty: in-cluster, then ~/.kube/config"),
    _Setting("cluster-name", str, "", "name of this cluster; marks the routes it owns (required)"),
    _Setting("cluster-cidr", str, (), "cluster CIDRs, IPv4 and/or IPv6 (required)", many=True),
    _Setting("node-cidr-mask-size-ipv4", int, None, "prefix length of each node's IPv4 podCIDR (24)"),
    _Setting("node-cidr-mask-size-ipv6", int, None, "prefix length of each node's IPv6 podCIDR (64)"),
    _Setting("reserved-cidr", str, (), "ranges never handed out (service CIDR …)", many=True),
    _Setting("allocate-node-cidrs", parse_bool, True, "assign podCIDRs to nodes"),
    _Setting("configure-cloud-routes", parse_bool, True, "program one VPC route per node podCIDR"),
    _Setting("provider", _choice(*providers.NAMES), "", "cloud provider: aws, gcp or alibaba"),
    _Setting("region", str, "", "cloud region (aws, alibaba)"),
    _Setting("project", str, "", "GCP project"),
    _Setting("network", str, "", "GCP VPC network name"),
    _Setting("route-priority", int, 1000, "GCP route priority"),
    _Setting("vpc-id", str, "", "VPC id (aws: optional discovery filter; alibaba: required)"),
    _Setting("route-table-id", str, (), "managed route tables; default: discover", many=True),
    _Setting("route-table-quota", int, 0, "routes per table; 0: ask the cloud or use its default"),
    _Setting("cloud-endpoint", str, "", "cloud API endpoint override (tests, emulators)"),
    _Setting("cloud-write-rate", float, 0.0, "cloud write calls per second; 0: provider default"),
    _Setting("cloud-write-burst", int, 0, "cloud write burst; 0: provider default"),
    _Setting("cloud-read-rate", float, 0.0, "cloud read calls per second; 0: provider default"),
    _Setting("cloud-read-burst", int, 0, "cloud read burst; 0: provider default"),
    _Setting("route-reconciliation-period", parse_duration, 60.0, "full resync period"),
    _Setting("concurrent-node-syncs", int, 10, "nodes reconciled in parallel"),
    _Setting("exclude-label", str, "routectl.io/exclude=true", "nodes with this label are left alone"),
    _Setting("leader-elect", parse_bool, True, "run leader election (needed with > 1 replica)"),
    _Setting("leader-elect-lease-duration", parse_duration, 15.0, "lease duration"),
    _Setting("leader-elect-renew-deadline", parse_duration, 10.0, "leader gives up after this"),
    _Setting("leader-elect-retry-period", parse_duration, 2.0, "interval between attempts"),
    _Setting("leader-elect-resource-namespace", str, "", "lease namespace; default $POD_NAMESPACE"),
    _Setting("leader-elect-resource-name", str, "routectl", "lease name"),
    _Setting("metrics-bind-address", str, ":10290", "Prometheus /metrics address; 0 disables"),
    _Setting(
        "metrics-secure",
        parse_bool,
        True,
        "serve /metrics over HTTPS to callers the API server authenticates and authorizes for "
        "GET /metrics; false: plain HTTP, loopback addresses only",
    ),
    _Setting("metrics-cert-dir", str, "", "directory with tls.crt and tls.key; empty: self-signed at start"),
    _Setting("health-probe-bind-address", str, "127.0.0.1:10291", "/healthz and /readyz address; 0 disables"),
    _Setting("dry-run", parse_bool, False, "compute and log the plan, change nothing"),
    _Setting("log-level", _choice("debug", "info", "warning", "error"), "info", "log level"),
    _Setting("once", parse_bool, False, "one full pass, then exit 0 if converged", commands=("run",)),
    _Setting("output", _choice("table", "json"), "table", "plan output format", commands=("plan",)),
)


@dataclass(frozen=True, slots=True)
class LeaderElection:
    enabled: bool
    lease_duration_s: float
    renew_deadline_s: float
    retry_period_s: float
    namespace: str
    name: str
    identity: str


@dataclass(frozen=True, slots=True)
class Config:
    command: str
    cluster_name: str
    cluster_cidrs: tuple[Network, ...]
    node_mask_v4: int | None
    """None: the default (/24); only an explicit mask requires a cluster CIDR of its family."""
    node_mask_v6: int | None
    """None: the default (/64)."""
    reserved_cidrs: tuple[Network, ...]
    warnings: tuple[str, ...]
    """Valid but suspicious settings (a reserved range outside every cluster CIDR), logged at start."""
    allocate_node_cidrs: bool
    configure_cloud_routes: bool
    provider: str
    provider_config: ProviderConfig
    resync_period_s: float
    concurrent_node_syncs: int
    exclude_label: tuple[str, str]
    leader_election: LeaderElection
    kubeconfig: str
    metrics_address: tuple[str, int] | None
    metrics_secure: bool
    """HTTPS with TokenReview authentication and SubjectAccessReview authorization; else plain HTTP,
    which validation allows on loopback only."""
    metrics_cert_dir: str
    """Where `tls.crt`/`tls.key` are mounted; "" = a self-signed certificate made at start."""
    health_address: tuple[str, int] | None
    dry_run: bool
    log_level: str
    once: bool
    output: str

    def pool(self) -> ipam.CIDRPool:
        """A fresh pool for these cluster CIDRs; validated already, so it cannot raise."""
        return ipam.CIDRPool(
            self.cluster_cidrs,
            node_mask_v4=self.node_mask_v4,
            node_mask_v6=self.node_mask_v6,
            reserved=self.reserved_cidrs,
        )


def settings(command: str) -> tuple[_Setting, ...]:
    return tuple(s for s in _SETTINGS if command in s.commands)


def build_parser(command: str, parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Flags for `command`; every default is None so the merge can tell "not given" from a value."""
    parser = parser or argparse.ArgumentParser(prog=f"routectl {command}")
    parser.add_argument(
        "--config",
        default=None,
        help="YAML file of settings, any command's (flags win); default $ROUTECTL_CONFIG",
    )
    for s in settings(command):
        if s.many:
            parser.add_argument(f"--{s.name}", action="append", default=None, help=s.help)
        elif s.parse is parse_bool:
            parser.add_argument(f"--{s.name}", nargs="?", const="true", default=None, help=s.help)
        else:
            parser.add_argument(f"--{s.name}", default=None, help=s.help)
    return parser


def _parse_value(setting: _Setting, raw: Any, where: str) -> Any:
    """Turn a raw value (string from flag/env, or a YAML scalar/list) into the setting's type."""
    try:
        if setting.many:
            items = raw if isinstance(raw, list) else [raw]
            return tuple(part for item in items for part in _split(str(item)))
        if isinstance(raw, bool) and setting.parse is parse_bool:
            return raw
        if isinstance(raw, list):
            raise ValueError("expected a single value, got a list")
        return setting.parse(str(raw))
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


def _read_yaml(path: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"--config {path}: cannot read: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"--config {path}: not valid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: must be a mapping of setting names to values")
    return data


def load(argv: Sequence[str], env: Mapping[str, str], command: str = "run") -> Config:
    """Merge file → env → flags for `command` and validate; raises ConfigError."""
    parser = build_parser(command)
    parser.error = _raise_config_error  # type: ignore[method-assign]
    args = vars(parser.parse_args(list(argv)))
    return from_namespace(args, env, command)


def _raise_config_error(message: str) -> NoReturn:
    raise ConfigError(message)


def from_namespace(args: Mapping[str, Any], env: Mapping[str, str], command: str) -> Config:
    """Build a Config from parsed flags (None = not given), applying YAML and env underneath."""
    known = settings(command)
    values: dict[str, Any] = {s.dest: s.default for s in known}
    config_path = args.get("config") or env.get("ROUTECTL_CONFIG")
    if config_path:
        # One file serves every command: a setting of another command (`once` for `plan`) is checked
        # for its form, then left out; a key no command knows is a typo.
        by_name = {s.name: s for s in _SETTINGS}
        for key, raw in _read_yaml(config_path).items():
            if key not in by_name:
                raise ConfigError(f"--config {config_path}: unknown setting {key!r}")
            value = _parse_value(by_name[key], raw, f"--config {config_path}: {key}")
            if command in by_name[key].commands:
                values[by_name[key].dest] = value
    for s in known:
        if s.env in env:
            values[s.dest] = _parse_value(s, env[s.env], f"env {s.env}")
    for s in known:
        if args.get(s.dest) is not None:
            values[s.dest] = _parse_value(s, args[s.dest], f"--{s.name}")
    return _validate(values, env, command)


def _network(text: str, setting: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as err:
        raise ConfigError(f"--{setting} {text!r}: {err}") from None


def _bind_address(text: str, setting: str) -> tuple[str, int] | None:
    if text in ("0", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"--{setting} {text!r}: must be [host]:port (port 0-65535) or 0 to disable")
    return host.strip("[]") or "0.0.0.0", int(port)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: where it resolves is not ours to trust


def _positive(values: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if values[name.replace("-", "_")] < 0:
            raise ConfigError(f"--{name} {values[name.replace('-', '_')]}: must not be negative")


def _validate(v: dict[str, Any], env: Mapping[str, str], command: str) -> Config:
    name = v["cluster_name"]
    if not name:
        raise ConfigError("--cluster-name: required (it marks the routes this cluster owns)")
    if len(name) > 63 or not _CLUSTER_NAME.fullmatch(name):
        raise ConfigError(
            f"--cluster-name {name!r}: must be ≤ 63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit"
        )
    if not v["cluster_cidr"]:
        raise ConfigError("--cluster-cidr: required (comma list of IPv4 and/or IPv6 CIDRs)")
    cidrs = tuple(_network(c, "cluster-cidr") for c in v["cluster_cidr"])
    reserved = tuple(_network(c, "reserved-cidr") for c in v["reserved_cidr"])
    try:
        pool = ipam.validate(
            cidrs,
            node_mask_v4=v["node_cidr_mask_size_ipv4"],
            node_mask_v6=v["node_cidr_mask_size_ipv6"],
            reserved=reserved,
        )
    except ipam.IPAMError as err:
        raise ConfigError(f"--cluster-cidr/--node-cidr-mask-size/--reserved-cidr: {err}") from None
    _positive(
        v,
        "route-table-quota",
        "cloud-write-rate",
        "cloud-write-burst",
        "cloud-read-rate",
        "cloud-read-burst",
    )
    if v["concurrent_node_syncs"] < 1:
        raise ConfigError(f"--concurrent-node-syncs {v['concurrent_node_syncs']}: must be at least 1")
    if v["route_reconciliation_period"] < 1:
        raise ConfigError(f"--route-reconciliation-period {v['route_reconciliation_period']}s: must be ≥ 1s")
    if v["configure_cloud_routes"] or command == "plan":
        _validate_provider(v)
    key, sep, label_value = v["exclude_label"].partition("=")
    if not sep or not _LABEL_KEY.fullmatch(key):
        raise ConfigError(f"--exclude-label {v['exclude_label']!r}: must be key=value with a valid label key")
    lease = _leader_election(v, env)
    metrics_address = _bind_address(v["metrics_bind_address"], "metrics-bind-address")
    if metrics_address is not None and not v["metrics_secure"] and not _loopback(metrics_address[0]):
        raise ConfigError(
            f"--metrics-secure=false: plain HTTP is served on loopback only, not on {metrics_address[0]!r}; "
            "bind --metrics-bind-address to 127.0.0.1:PORT or [::1]:PORT, or keep HTTPS"
        )
    return Config(
        command=command,
        cluster_name=name,
        cluster_cidrs=cidrs,
        node_mask_v4=v["node_cidr_mask_size_ipv4"],
        node_mask_v6=v["node_cidr_mask_size_ipv6"],
        reserved_cidrs=reserved,
        warnings=pool.warnings,
        allocate_node_cidrs=v["allocate_node_cidrs"],
        configure_cloud_routes=v["configure_cloud_routes"],
        provider=v["provider"],
        provider_config=ProviderConfig(
            cluster_name=name,
            region=v["region"],
            project=v["project"],
            network=v["network"],
            vpc_id=v["vpc_id"],
            route_table_ids=v["route_table_id"],
            route_priority=v["route_priority"],
            route_table_quota=v["route_table_quota"],
            endpoint=v["cloud_endpoint"],
            write_rate=v["cloud_write_rate"],
            write_burst=v["cloud_write_burst"],
            read_rate=v["cloud_read_rate"],
            read_burst=v["cloud_read_burst"],
        ),
        resync_period_s=v["route_reconciliation_period"],
        concurrent_node_syncs=v["concurrent_node_syncs"],
        exclude_label=(key, label_value),
        leader_election=lease,
        kubeconfig=v["kubeconfig"],
        metrics_address=metrics_address,
        metrics_secure=v["metrics_secure"],
        metrics_cert_dir=v["metrics_cert_dir"],
        health_address=_bind_address(v["health_probe_bind_address"], "health-probe-bind-address"),
        dry_run=v["dry_run"],
        log_level=v["log_level"],
        once=v.get("once", False),
        output=v.get("output", "table"),
    )


_PROVIDER_REQUIRES: dict[str, tuple[tuple[str, str], ...]] = {
    "aws": (("region", "AWS region"),),
    "gcp": (("project", "GCP project"), ("network", "GCP VPC network")),
    "alibaba": (("region", "Alibaba Cloud region"),),
}


def _validate_provider(v: Mapping[str, Any]) -> None:
    provider = v["provider"]
    if not provider:
        raise ConfigError("--provider: required when --configure-cloud-routes is true (aws, gcp or alibaba)")
    for setting, what in _PROVIDER_REQUIRES[provider]:
        if not v[setting]:
            raise ConfigError(f"--{setting}: the {what} is required for --provider {provider}")
    if provider == "alibaba" and not v["vpc_id"] and not v["route_table_id"]:
        raise ConfigError("--vpc-id: required for --provider alibaba unless --route-table-id is given")
    if not 0 <= v["route_priority"] <= 65535:
        raise ConfigError(f"--route-priority {v['route_priority']}: must be within 0-65535")


def _leader_election(v: Mapping[str, Any], env: Mapping[str, str]) -> LeaderElection:
    lease_s = v["leader_elect_lease_duration"]
    renew_s = v["leader_elect_renew_deadline"]
    retry_s = v["leader_elect_retry_period"]
    # client-go's rules: the leader must give up (renew deadline) before others may take over (lease
    # duration), and must get more than one retry within the deadline.
    if not lease_s > renew_s:
        raise ConfigError(
            f"--leader-elect-lease-duration {lease_s}s: must be greater than "
            f"--leader-elect-renew-deadline {renew_s}s"
        )
    if not renew_s > 1.2 * retry_s:
        raise ConfigError(
            f"--leader-elect-renew-deadline {renew_s}s: must be greater than 1.2 x "
            f"--leader-elect-retry-period {retry_s}s"
        )
    if retry_s <= 0:
        raise ConfigError(f"--leader-elect-retry-period {retry_s}s: must be positive")
    pod = env.get("POD_NAME") or socket.gethostname()
    return LeaderElection(
        enabled=v["leader_elect"],
        lease_duration_s=lease_s,
        renew_deadline_s=renew_s,
        retry_period_s=retry_s,
        namespace=v["leader_elect_resource_namespace"] or env.get("POD_NAMESPACE") or "kube-system",
        name=v["leader_elect_resource_name"],
        identity=f"{pod}_{os.urandom(4).hex()}",
    )
