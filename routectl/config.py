"""One frozen, validated configuration built from YAML file → `ROUTECTL_*` env → flags (flags win).

Invariant: a `Config` that exists is valid; every rule is checked here, once, before the controller
touches the cluster or the cloud, and a broken rule is one `ConfigError` line naming the setting. Each
setting's own rule lives in its declared parser (so a value is judged the same from a flag, the env or
the file); only rules between settings are in `_validate`. The file must be UTF-8 YAML with each key
once (errors name file, line and column); every `ROUTECTL_*` variable must be a setting.
The provider settings, `--provider`'s choices and the provider's config object come from the installed
providers' specs (`providers.registry`); nothing here names a cloud.
"""

from __future__ import annotations

import argparse
import difflib
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
from providers import ConfigurationError, Network
from providers.registry import (
    COMMON_SETTINGS,
    GROUP,
    ConfiguredProvider,
    ProviderSpec,
    Registry,
    RegistryError,
    common_config,
    discover,
)
from providers.settings import Setting, choice, int_within, parse_bool
from routectl.ops.logs import FORMATS as LOG_FORMATS


class ConfigError(Exception):
    """Invalid configuration: the message names the setting and the rule broken."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_CLUSTER_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_DAY_S = 86_400.0
ENV_PREFIX = "ROUTECTL_"
CONFIG_ENV = "ROUTECTL_CONFIG"


def parse_duration(text: str) -> float:
    """Go-style durations as kube-controller-manager takes them: `90s`, `1m30s`, `500ms`, `2h`."""
    text = text.strip()
    if not text or _DURATION_PART.sub("", text) != "":
        raise ValueError(f"{text!r} is not a duration like 60s, 1m30s or 500ms")
    return sum(float(n) * _DURATION_UNITS[u] for n, u in _DURATION_PART.findall(text))


def duration(minimum_s: float, maximum_s: float = _DAY_S) -> Callable[[str], float]:
    """A duration within [minimum_s, maximum_s]; a minimum of 0 still refuses zero."""

    def parse(text: str) -> float:
        seconds = parse_duration(text)
        if not (minimum_s <= seconds <= maximum_s and seconds > 0):
            low = f"at least {minimum_s:g}s" if minimum_s else "more than 0s"
            raise ValueError(f"{text.strip()!r} is out of range: {low} and at most {maximum_s / 3600:g}h")
        return seconds

    return parse


def cluster_name(text: str) -> str:
    if len(text) > 63 or not _CLUSTER_NAME.fullmatch(text):
        raise ValueError(
            f"{text!r}: must be ≤ 63 lowercase letters, digits or '-', "
            "starting and ending with a letter or digit"
        )
    return text


def cidr(text: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as err:
        raise ValueError(f"{text!r}: {err}") from None


def label(text: str) -> tuple[str, str]:
    """`key=value`, both valid Kubernetes label syntax."""
    key, sep, value = text.partition("=")
    if not sep or not _LABEL_KEY.fullmatch(key) or len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(f"{text!r}: must be key=value with a valid label key and value")
    return key, value


def bind_address(text: str) -> tuple[str, int] | None:
    """`[host]:port`, or `0` to disable."""
    if text in ("0", ""):
        return None
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or any(c.isspace() for c in host):
        raise ValueError(f"{text!r}: must be [host]:port (port 0-65535) or 0 to disable")
    return host.strip("[]") or "0.0.0.0", int(port)


def directory(text: str) -> str:
    """An existing directory ("" for none)."""
    if text and not Path(text).is_dir():
        raise ValueError(f"{text!r} is not a directory")
    return text


def dns_label(text: str) -> str:
    if not _DNS_LABEL.fullmatch(text):
        raise ValueError(f"{text!r} is not a namespace name (≤ 63 lowercase letters, digits or '-')")
    return text


def dns_subdomain(text: str) -> str:
    if not _DNS_SUBDOMAIN.fullmatch(text):
        raise ValueError(f"{text!r} is not an object name (lowercase letters, digits, '-' or '.')")
    return text


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


_CLUSTER: tuple[Setting, ...] = (
    Setting("kubeconfig", "kubeconfig path; empty: in-cluster, then ~/.kube/config"),
    Setting("cluster-name", "name of this cluster; marks the routes it owns (required)", cluster_name),
    Setting("cluster-cidr", "cluster CIDRs, IPv4 and/or IPv6 (required)", cidr, many=True, default=()),
    Setting(
        "node-cidr-mask-size-ipv4", "prefix length of each node's IPv4 podCIDR (24)", int_within(1, 32), None
    ),
    Setting(
        "node-cidr-mask-size-ipv6", "prefix length of each node's IPv6 podCIDR (64)", int_within(1, 128), None
    ),
    Setting("reserved-cidr", "ranges never handed out (service CIDR …)", cidr, many=True, default=()),
    Setting("allocate-node-cidrs", "assign podCIDRs to nodes", parse_bool, True),
    Setting("configure-cloud-routes", "program one VPC route per node podCIDR", parse_bool, True),
    Setting(
        "adopt-routes",
        "make routes another route controller made for a node's block and instance routectl's, "
        "without a gap (GCP k8s-node-route, unmarked Alibaba entries); false: list them as adoptable",
        parse_bool,
        False,
    ),
    Setting(
        "route-policy",
        "sync: create, replace and delete owned routes; upsert-only: never delete one",
        choice("sync", "upsert-only"),
        "sync",
    ),
)
"""routectl's own settings shown before `--provider` and the provider settings."""

_CONTROLLER: tuple[Setting, ...] = (
    Setting("route-reconciliation-period", "full resync period (1s-24h)", duration(1.0), 60.0),
    Setting("concurrent-node-syncs", "nodes reconciled in parallel (1-1000)", int_within(1, 1000), 10),
    Setting(
        "exclude-label",
        "nodes with this label are left alone",
        label,
        ("routectl.io/exclude", "true"),
    ),
    Setting("leader-elect", "run leader election (needed with > 1 replica)", parse_bool, True),
    Setting("leader-elect-lease-duration", "lease duration", duration(0.0), 15.0),
    Setting("leader-elect-renew-deadline", "leader gives up after this", duration(0.0), 10.0),
    Setting("leader-elect-retry-period", "interval between attempts", duration(0.0), 2.0),
    Setting("leader-elect-resource-namespace", "lease namespace; default $POD_NAMESPACE", dns_label),
    Setting("leader-elect-resource-name", "lease name", dns_subdomain, "routectl"),
    Setting(
        "metrics-bind-address", "Prometheus /metrics address; 0 disables", bind_address, ("0.0.0.0", 10290)
    ),
    Setting(
        "metrics-secure",
        "serve /metrics over HTTPS to callers the API server authenticates and authorizes for "
        "GET /metrics; false: plain HTTP, loopback addresses only",
        parse_bool,
        True,
    ),
    Setting("metrics-cert-dir", "directory with tls.crt and tls.key; empty: self-signed at start", directory),
    Setting(
        "health-probe-bind-address",
        "/healthz, /readyz address; 0 disables",
        bind_address,
        ("127.0.0.1", 10291),
    ),
    Setting("dry-run", "compute and log the plan, change nothing", parse_bool, False),
    Setting("log-level", "log level", choice("debug", "info", "warning", "error"), "info"),
    Setting("log-format", "log line format: json lines or text", choice(*LOG_FORMATS), "json"),
    Setting("once", "one full pass, then exit 0 if converged", parse_bool, False, commands=("run",)),
    Setting(
        "output",
        "plan and doctor output format",
        choice("table", "json"),
        "table",
        commands=("plan", "doctor"),
    ),
)
"""routectl's own settings shown after the provider settings."""


def _provider_setting(registry: Registry) -> Setting:
    installed = ", ".join(registry.names) or "none"

    def parse(text: str) -> str:
        if text not in registry.names:
            raise ValueError(f"{text!r} is not an installed provider (installed: {installed})")
        return text

    return Setting("provider", f"cloud provider: {installed} (entry points {GROUP})", parse)


def settings(command: str, registry: Registry) -> tuple[Setting, ...]:
    """Every setting `command` takes: routectl's own, `--provider`, each provider's, the common ones."""
    return tuple(s for s in _every_setting(registry) if command in s.commands)


def _every_setting(registry: Registry) -> tuple[Setting, ...]:
    """The settings of every command (what a config file may hold)."""
    provider = _provider_setting(registry)
    taken = {s.name for s in (*_CLUSTER, provider, *_CONTROLLER)}
    for setting in registry.settings():
        if setting.name in taken:
            declared = ", ".join(registry.declaring(setting.name))
            raise ConfigError(f"provider {declared}: --{setting.name} is one of routectl's own settings")
    return (*_CLUSTER, provider, *registry.settings(), *COMMON_SETTINGS, *_CONTROLLER)


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
    adopt_routes: bool
    route_policy: str
    """`sync` or `upsert-only` (planner.RoutePolicy)."""
    provider: str
    cloud: ConfiguredProvider[Any] | None
    """The provider's spec and validated config (`cloud.build()` makes the adapter); None when routes
    are off for `run`, which then builds no provider."""
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
    log_format: str
    once: bool
    output: str

    def pool_rules(self) -> ipam.PoolConfig:
        """Cluster CIDRs, node masks and reserved ranges: the rules of block ownership."""
        return ipam.validate(
            self.cluster_cidrs,
            node_mask_v4=self.node_mask_v4,
            node_mask_v6=self.node_mask_v6,
            reserved=self.reserved_cidrs,
        )

    def pool(self) -> ipam.CIDRPool:
        """A fresh pool for these cluster CIDRs; validated already, so it cannot raise."""
        return ipam.CIDRPool(
            self.cluster_cidrs,
            node_mask_v4=self.node_mask_v4,
            node_mask_v6=self.node_mask_v6,
            reserved=self.reserved_cidrs,
        )


def build_parser(
    command: str, registry: Registry, parser: argparse.ArgumentParser | None = None
) -> argparse.ArgumentParser:
    """Flags for `command`; every default is None so the merge can tell "not given" from a value."""
    parser = parser or argparse.ArgumentParser(prog=f"routectl {command}")
    parser.add_argument(
        "--config",
        default=None,
        help="YAML file of settings, any command's (flags win); default $ROUTECTL_CONFIG",
    )
    cloud = parser.add_argument_group(
        "provider settings",
        f"Declared by the installed providers (entry points {GROUP}); each help names the providers that "
        "take the flag. The route-table-quota and cloud-* settings apply to every provider.",
    )
    in_cloud = {s.name for s in (*registry.settings(), *COMMON_SETTINGS)}
    for s in settings(command, registry):
        group = cloud if s.name in in_cloud else parser
        if s.many:
            group.add_argument(f"--{s.name}", action="append", default=None, help=s.help)
        elif s.parse is parse_bool:
            group.add_argument(f"--{s.name}", nargs="?", const="true", default=None, help=s.help)
        else:
            group.add_argument(f"--{s.name}", default=None, help=s.help)
    return parser


def _parse_value(setting: Setting, raw: Any, where: str) -> Any:
    """Turn a raw value (string from flag/env, or a YAML scalar/list) into the setting's type."""
    try:
        if setting.many:
            items = raw if isinstance(raw, list) else [raw]
            return tuple(setting.parse(part) for item in items for part in _split(str(item)))
        if isinstance(raw, bool) and setting.parse is parse_bool:
            return raw
        if isinstance(raw, list):
            raise ValueError("expected a single value, got a list")
        return setting.parse(str(raw))
    except ValueError as err:
        raise ConfigError(f"{where}: {err}") from None


class _UniqueKeys(yaml.SafeLoader):
    """The safe loader, refusing a mapping that gives one key twice (YAML would keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (each setting may appear once)", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _read_yaml(path: str) -> dict[str, Any]:
    """The file as a mapping; every way it can be wrong is one line naming the file (and, for YAML
    errors, the line and column)."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"--config {path}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"--config {path}: not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start})"
        ) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeys)  # a SafeLoader subclass: safe
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path
        problem = " ".join(f"{err.context or ''} {err.problem or ''}".split())
        raise ConfigError(f"--config {where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"--config {path}: not valid YAML: {' '.join(str(err).split())}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise ConfigError(f"--config {path}: must be a mapping of setting names to values")
    return data


def load(
    argv: Sequence[str], env: Mapping[str, str], command: str = "run", registry: Registry | None = None
) -> Config:
    """Merge file → env → flags for `command` and validate; raises ConfigError.

    The providers on offer are `registry`, by default those installed (`providers.registry.discover`)."""
    if registry is None:
        try:
            registry = discover()
        except RegistryError as err:
            raise ConfigError(str(err)) from None
    parser = build_parser(command, registry)
    parser.error = _raise_config_error  # type: ignore[method-assign]
    args = vars(parser.parse_args(list(argv)))
    return from_namespace(args, env, command, registry)


def _raise_config_error(message: str) -> NoReturn:
    raise ConfigError(message)


def from_namespace(
    args: Mapping[str, Any], env: Mapping[str, str], command: str, registry: Registry
) -> Config:
    """Build a Config from parsed flags (None = not given), applying YAML and env underneath."""
    known = settings(command, registry)
    _check_env_names(env, registry)
    values: dict[str, Any] = {s.dest: s.default for s in known}
    given: set[str] = set()
    config_path = args.get("config") or env.get(CONFIG_ENV)
    if config_path:
        # One file serves every command: a setting of another command (`once` for `plan`) is checked
        # for its form, then left out; a key no command knows is a typo.
        by_name = {s.name: s for s in _every_setting(registry)}
        for key, raw in _read_yaml(config_path).items():
            if key not in by_name:
                raise ConfigError(f"--config {config_path}: unknown setting {key!r}")
            value = _parse_value(by_name[key], raw, f"--config {config_path}: {key}")
            if command in by_name[key].commands:
                values[by_name[key].dest] = value
                given.add(key)
    for s in known:
        if s.env in env:
            values[s.dest] = _parse_value(s, env[s.env], f"env {s.env}")
            given.add(s.name)
    for s in known:
        if args.get(s.dest) is not None:
            values[s.dest] = _parse_value(s, args[s.dest], f"--{s.name}")
            given.add(s.name)
    return _validate(values, env, command, registry, given)


def _check_env_names(env: Mapping[str, str], registry: Registry) -> None:
    """Every `ROUTECTL_*` variable must name a setting (of any command): a typo is not ignored."""
    known = {s.env for s in _every_setting(registry)} | {CONFIG_ENV}
    for name in sorted(env):
        if name.startswith(ENV_PREFIX) and name not in known:
            closest = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.0)
            hint = f" (did you mean {closest[0]}?)" if closest else ""
            raise ConfigError(f"env {name}: not a routectl setting{hint}")


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: where it resolves is not ours to trust


def _validate(
    v: dict[str, Any], env: Mapping[str, str], command: str, registry: Registry, given: set[str]
) -> Config:
    name = v["cluster_name"]
    if not name:
        raise ConfigError("--cluster-name: required (it marks the routes this cluster owns)")
    if not v["cluster_cidr"]:
        raise ConfigError("--cluster-cidr: required (comma list of IPv4 and/or IPv6 CIDRs)")
    cidrs: tuple[Network, ...] = v["cluster_cidr"]
    reserved: tuple[Network, ...] = v["reserved_cidr"]
    try:
        pool = ipam.validate(
            cidrs,
            node_mask_v4=v["node_cidr_mask_size_ipv4"],
            node_mask_v6=v["node_cidr_mask_size_ipv6"],
            reserved=reserved,
        )
    except ipam.IPAMError as err:
        raise ConfigError(f"--cluster-cidr/--node-cidr-mask-size/--reserved-cidr: {err}") from None
    cloud: ConfiguredProvider[Any] | None = None
    ignored: tuple[str, ...] = ()
    if v["configure_cloud_routes"] or command == "plan":
        cloud, ignored = _provider(v, registry, name, given)
    lease = _leader_election(v, env)
    metrics_address: tuple[str, int] | None = v["metrics_bind_address"]
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
        warnings=(*pool.warnings, *ignored),
        allocate_node_cidrs=v["allocate_node_cidrs"],
        configure_cloud_routes=v["configure_cloud_routes"],
        adopt_routes=v["adopt_routes"],
        route_policy=v["route_policy"],
        provider=v["provider"],
        cloud=cloud,
        resync_period_s=v["route_reconciliation_period"],
        concurrent_node_syncs=v["concurrent_node_syncs"],
        exclude_label=v["exclude_label"],
        leader_election=lease,
        kubeconfig=v["kubeconfig"],
        metrics_address=metrics_address,
        metrics_secure=v["metrics_secure"],
        metrics_cert_dir=v["metrics_cert_dir"],
        health_address=v["health_probe_bind_address"],
        dry_run=v["dry_run"],
        log_level=v["log_level"],
        log_format=v["log_format"],
        once=v.get("once", False),
        output=v.get("output", "table"),
    )


def _provider(
    v: Mapping[str, Any], registry: Registry, cluster_name: str, given: set[str]
) -> tuple[ConfiguredProvider[Any], tuple[str, ...]]:
    """The selected provider's spec with its validated config, and a warning per provider setting given
    that this provider does not take (harmless, but likely a mistake)."""
    name = v["provider"]
    if not name:
        installed = ", ".join(registry.names) or "none installed"
        raise ConfigError(f"--provider: required when --configure-cloud-routes is true ({installed})")
    spec: ProviderSpec[Any] = registry[name]
    common = common_config(cluster_name, {s.name: v[s.dest] for s in COMMON_SETTINGS})
    try:
        cloud = spec.configure(common, {s.name: v[s.dest] for s in spec.settings})
    except ConfigurationError as err:
        raise ConfigError(str(err)) from None
    except (TypeError, ValueError) as err:  # an adapter's config refusing its values its own way
        raise ConfigError(f"--provider {name}: {' '.join(str(err).split())}") from None
    own = {s.name for s in spec.settings}
    ignored = tuple(
        f"--{s.name}: not a setting of --provider {name} (only of {', '.join(registry.declaring(s.name))}); "
        "ignored"
        for s in registry.settings()
        if s.name in given and s.name not in own
    )
    return cloud, ignored


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
