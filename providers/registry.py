"""The provider registry: every cloud adapter is one `ProviderSpec`, found through the entry-point group
`routectl.providers`, the three built-in adapters exactly like one installed from another distribution.

A spec says everything routectl needs to offer a provider without knowing it: its name, its settings
(flags, env, YAML keys, required or default), its default limits, `build` (validated config → adapter)
and, optionally, where the demo finds an embedded cloud for it. docs/providers.md shows how to write one.

Invariants: discovery imports spec modules only, never a cloud SDK (a spec names its adapter's `build` and
its embedded cloud as "module:attribute", imported when the provider is selected). A broken,
mistyped or duplicate entry point, or two specs declaring one flag differently, is one `RegistryError`
line naming the entry point and the distribution it came from. An adapter whose SDK is not installed is
one `MissingPackage` line naming what to install: the extra named like the provider of the distribution
that ships the adapter (`routectl[aws]`), or that distribution itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import pkgutil
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from providers.errors import ConfigurationError, MissingPackage
from providers.model import Limits, RouteProvider
from providers.settings import Setting, endpoint_url, missing, non_negative_float, non_negative_int

GROUP = "routectl.providers"
"""The entry-point group a distribution registers its `ProviderSpec` under (name = the provider name)."""

C = TypeVar("C")
_NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")


class RegistryError(ConfigurationError):
    """The installed providers cannot be offered: one line naming the entry point and its distribution."""


@dataclass(frozen=True, slots=True)
class CommonConfig:
    """The settings every provider takes, whatever its cloud. Zero means "the provider's default"."""

    cluster_name: str
    """Marks the routes this cluster owns."""
    endpoint: str = ""
    """API endpoint override for tests and emulators; empty means the real cloud."""
    write_rate: float = 0.0
    write_burst: int = 0
    read_rate: float = 0.0
    read_burst: int = 0
    route_table_quota: int = 0

    def limits(self, defaults: Limits) -> Limits:
        """`defaults` (the spec's) with every override given here applied."""
        return dataclasses.replace(
            defaults,
            write_rate=self.write_rate or defaults.write_rate,
            write_burst=self.write_burst or defaults.write_burst,
            read_rate=self.read_rate or defaults.read_rate,
            read_burst=self.read_burst or defaults.read_burst,
            routes_per_table=self.route_table_quota or defaults.routes_per_table,
        )


COMMON_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "route-table-quota",
        "routes per table; 0: ask the cloud or use the provider's default",
        non_negative_int,
        0,
    ),
    Setting(
        "cloud-endpoint", "cloud API endpoint override (tests, emulators)", endpoint_url, field="endpoint"
    ),
    Setting(
        "cloud-write-rate",
        "cloud write calls per second; 0: provider default",
        non_negative_float,
        0.0,
        field="write_rate",
    ),
    Setting(
        "cloud-write-burst",
        "cloud write burst; 0: provider default",
        non_negative_int,
        0,
        field="write_burst",
    ),
    Setting(
        "cloud-read-rate",
        "cloud read calls per second; 0: provider default",
        non_negative_float,
        0.0,
        field="read_rate",
    ),
    Setting(
        "cloud-read-burst", "cloud read burst; 0: provider default", non_negative_int, 0, field="read_burst"
    ),
)
"""The settings behind `CommonConfig` (all but the cluster name, which is routectl's own)."""


def common_config(cluster_name: str, values: Mapping[str, Any] | None = None) -> CommonConfig:
    """A CommonConfig from values keyed by setting name (`cloud-endpoint`); absent ones take defaults."""
    given = values or {}
    return CommonConfig(
        cluster_name=cluster_name, **{s.attribute: given.get(s.name, s.default) for s in COMMON_SETTINGS}
    )


DEMO_CLUSTER = "demo"
"""The cluster name `routectl demo` runs as: an embedded cloud marks its route tables for it."""


@dataclass(frozen=True, slots=True)
class EmbeddedCloud:
    """A running embedded cloud (`routectl demo`): the flags that point routectl at it, one providerID
    per node."""

    flags: tuple[str, ...]
    provider_ids: tuple[str, ...]


EmbeddedFactory = Callable[[int], contextlib.AbstractContextManager[EmbeddedCloud]]
"""Given a node count, a context manager that runs the cloud with one instance per node."""


@dataclass(frozen=True, slots=True)
class ConfiguredProvider(Generic[C]):
    """A spec and its validated config: what `--provider` and the provider settings resolved to."""

    spec: ProviderSpec[C]
    config: C

    @property
    def name(self) -> str:
        return self.spec.name

    def build(self) -> RouteProvider:
        """The adapter; imports its module now when the spec names `build` as "module:attribute"."""
        build = self.spec.build
        if isinstance(build, str):
            build = cast(Callable[[C], RouteProvider], _resolve(build, self.name, "build"))
        return build(self.config)


@dataclass(frozen=True, slots=True)
class ProviderSpec(Generic[C]):
    """Everything routectl needs to offer one provider; an adapter declares exactly one.

    Invariant: a spec that exists is well formed: its name and settings are valid, and `config` is a
    dataclass with a `common` field and one field per setting."""

    name: str
    """`--provider NAME`; must equal the entry point's name."""
    summary: str
    """One line for the docs and `--help`: the cloud and what the adapter manages."""
    config: Callable[..., C]
    """A frozen dataclass: `common: CommonConfig` plus one field per setting (`Setting.attribute`)."""
    build: Callable[[C], RouteProvider] | str
    """Validated config → adapter: the function, or "module:attribute" of it when its module imports a
    cloud SDK (then imported only once the provider is selected, so discovery stays light)."""
    limits: Limits
    """The defaults the adapter starts from; `CommonConfig.limits` applies the operator's overrides."""
    settings: tuple[Setting, ...] = ()
    embedded: str = ""
    """"module:attribute" of an `EmbeddedFactory` for `routectl demo`; empty: no demo cloud."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"provider {self.name!r}: a name is lowercase words joined by '-'")
        names = [s.name for s in self.settings]
        shared = {s.name for s in COMMON_SETTINGS}
        for name in names:
            if names.count(name) > 1 or name in shared:
                raise ValueError(f"provider {self.name}: --{name} is declared twice or is a common setting")
        for what, reference in (("build", self.build), ("embedded", self.embedded)):
            if isinstance(reference, str) and reference and not _REFERENCE.fullmatch(reference):
                raise ValueError(f"provider {self.name}: {what} {reference!r} is not 'module:attribute'")
        if not dataclasses.is_dataclass(self.config):
            raise TypeError(f"provider {self.name}: config must be a dataclass")
        fields = {f.name for f in dataclasses.fields(cast(Any, self.config))}
        expected = {"common", *(s.attribute for s in self.settings)}
        if fields != expected:
            raise TypeError(
                f"provider {self.name}: config fields {sorted(fields)} do not match the settings' "
                f"{sorted(expected)}"
            )

    def configure(
        self, common: CommonConfig, values: Mapping[str, Any] | None = None
    ) -> ConfiguredProvider[C]:
        """Validate `values` (keyed by setting name; absent ones take their default) into the config.

        Raises ConfigurationError naming the first required setting missing, or the rule the config
        object itself refuses (its `__post_init__`)."""
        given = values or {}
        unknown = sorted(set(given) - {s.name for s in self.settings})
        if unknown:
            raise ConfigurationError(f"--{unknown[0]}: not a setting of --provider {self.name}")
        fields: dict[str, Any] = {}
        for s in self.settings:
            value = given.get(s.name, s.default)
            if s.required and missing(value):
                raise ConfigurationError(f"--{s.name}: required for --provider {self.name} ({s.help})")
            fields[s.attribute] = value
        return ConfiguredProvider(self, self.config(common=common, **fields))

    def embedded_cloud(self) -> EmbeddedFactory | None:
        """The demo's cloud for this provider, imported now; None when the spec names none."""
        if not self.embedded:
            return None
        return cast(EmbeddedFactory, _resolve(self.embedded, self.name, "embedded cloud"))


@dataclass(frozen=True, slots=True)
class Registry:
    """The providers on offer, sorted by name.

    Invariant: names are unique, and a flag declared by several providers means one thing (same parser,
    default, list-ness and field), so it is one flag."""

    specs: tuple[ProviderSpec[Any], ...]

    def __post_init__(self) -> None:
        if len({s.name for s in self.specs}) != len(self.specs):
            raise RegistryError(f"providers {', '.join(self.names)}: a name appears twice")
        first: dict[str, tuple[str, Setting]] = {}
        for spec in self.specs:
            for setting in spec.settings:
                owner, seen = first.setdefault(setting.name, (spec.name, setting))
                if _meaning(seen) != _meaning(setting):
                    raise RegistryError(
                        f"providers {owner} and {spec.name} declare --{setting.name} differently (parser, "
                        "default, list or field); a flag shared by providers must mean one thing"
                    )

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.specs)

    def __getitem__(self, name: str) -> ProviderSpec[Any]:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def settings(self) -> tuple[Setting, ...]:
        """Every provider setting once, in provider order; a shared flag's help names each provider."""
        merged: dict[str, list[tuple[str, Setting]]] = {}
        for spec in self.specs:
            for setting in spec.settings:
                merged.setdefault(setting.name, []).append((spec.name, setting))
        return tuple(
            dataclasses.replace(
                declared[0][1],
                required=False,  # required per provider: checked by ProviderSpec.configure
                help=" | ".join(f"{p}: {s.help}{' (required)' if s.required else ''}" for p, s in declared),
            )
            for declared in merged.values()
        )

    def declaring(self, setting: str) -> tuple[str, ...]:
        """The providers that take `--setting`."""
        return tuple(spec.name for spec in self.specs if any(s.name == setting for s in spec.settings))


def _resolve(reference: str, provider: str, what: str) -> Any:
    """The object `reference` names. A module the referenced one imports that is not installed (a cloud
    SDK left out) is a MissingPackage naming what to install; anything else is a RegistryError."""
    try:
        return pkgutil.resolve_name(reference)
    except ModuleNotFoundError as err:
        module = reference.partition(":")[0]
        if err.name and err.name.partition(".")[0] != module.partition(".")[0]:
            raise MissingPackage(err, module, requirement(module, provider)) from None
        failure: Exception = err
    except (ImportError, AttributeError, ValueError) as err:
        failure = err
    raise RegistryError(f"provider {provider}: {what} {reference}: {type(failure).__name__}: {failure}")


def requirement(module: str, extra: str) -> str:
    """What to install for what `module` needs: the distribution that ships `module`, with `extra` when
    that distribution declares it (`routectl[aws]`); "" when no installed distribution ships it."""
    for name in dict.fromkeys(importlib.metadata.packages_distributions().get(module.partition(".")[0], ())):
        extras = importlib.metadata.distribution(name).metadata.get_all("Provides-Extra") or ()
        return f"{name}[{extra}]" if extra in extras else name
    return ""


def _meaning(setting: Setting) -> tuple[object, ...]:
    return (setting.parse, setting.default, setting.many, setting.attribute)


def discover(entry_points: Iterable[importlib.metadata.EntryPoint] | None = None) -> Registry:
    """Load every spec registered under `GROUP` (or the given entry points); raises RegistryError."""
    found = importlib.metadata.entry_points(group=GROUP) if entry_points is None else entry_points
    loaded: dict[str, tuple[ProviderSpec[Any], str]] = {}
    for entry in sorted(found, key=lambda e: (e.name, e.value)):
        origin = _origin(entry)
        if entry.name in loaded:
            first = loaded[entry.name][1]
            raise RegistryError(f"provider {entry.name!r} is registered twice: {first}; {origin}")
        loaded[entry.name] = (_load(entry, origin), origin)
    return Registry(tuple(spec for spec, _ in loaded.values()))


def _origin(entry: importlib.metadata.EntryPoint) -> str:
    dist = entry.dist
    source = f" (distribution {dist.name} {dist.version})" if dist is not None else ""
    return f"entry point {GROUP} {entry.name} = {entry.value}{source}"


def _load(entry: importlib.metadata.EntryPoint, origin: str) -> ProviderSpec[Any]:
    try:
        spec = entry.load()
    except Exception as err:  # whatever a third-party module raises on import is one line, not a traceback
        detail = " ".join(str(err).split())
        raise RegistryError(f"{origin}: cannot load: {type(err).__name__}: {detail}") from None
    if not isinstance(spec, ProviderSpec):
        raise RegistryError(f"{origin}: is a {type(spec).__name__}, not a providers.registry.ProviderSpec")
    if spec.name != entry.name:
        raise RegistryError(f"{origin}: the spec is named {spec.name!r}; the entry point must carry its name")
    return spec


__all__ = [
    "COMMON_SETTINGS",
    "DEMO_CLUSTER",
    "GROUP",
    "CommonConfig",
    "ConfiguredProvider",
    "EmbeddedCloud",
    "EmbeddedFactory",
    "ProviderSpec",
    "Registry",
    "RegistryError",
    "Setting",
    "common_config",
    "discover",
    "requirement",
]
