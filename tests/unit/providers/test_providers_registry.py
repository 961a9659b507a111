"""The provider registry: built-in adapters are found through their entry points, a provider routectl does
not ship is offered by its spec alone, and a broken installation is one clear line."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from providers.emulators import embedded
from providers.errors import ConfigurationError, MissingPackage
from providers.model import Limits
from providers.registry import (
    GROUP,
    CommonConfig,
    Registry,
    RegistryError,
    common_config,
    discover,
)
from providers.settings import Setting
from routectl import config
from routectl.cli import EXIT_CONFIG, main
from routectl.demo import command as demo
from tests.sim_provider import SIM, SimConfig, with_sim

BUILT_IN = ("alibaba", "aws", "gcp")
BASE = ["--cluster-name=c", "--cluster-cidr=10.0.0.0/16"]


def an_entry_point(name: str, value: str) -> importlib.metadata.EntryPoint:
    return importlib.metadata.EntryPoint(name=name, value=value, group=GROUP)


def install_distribution(root: Path, name: str, entry_points: str) -> None:
    """A distribution's metadata on sys.path, as pip leaves it: importlib.metadata reads it from there."""
    info = root / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n{textwrap.dedent(entry_points)}")


# --- discovery -------------------------------------------------------------------------------------


def test_built_in_providers_are_found_through_routectls_own_entry_points() -> None:
    registered = {e.name: e for e in importlib.metadata.entry_points(group=GROUP)}

    for name in BUILT_IN:
        assert registered[name].value == f"providers.specs.{name}:SPEC"
        assert registered[name].dist is not None
        assert registered[name].dist.name == "routectl"
    assert set(BUILT_IN) <= set(discover().names)


def test_without_entry_points_there_is_no_provider_at_all() -> None:
    """No list of names hides behind discovery: what is registered is what is offered."""
    assert discover([]).names == ()
    assert discover([an_entry_point("gcp", "providers.specs.gcp:SPEC")]).names == ("gcp",)


def test_discovery_imports_no_cloud_sdk() -> None:
    probe = (
        "import sys; from providers.registry import discover; discover(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'google', "
        "'alibabacloud_vpc20160428', 'moto')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("entry_points", "complaint"),
    [
        (
            [("nimbus", "no_such_module:SPEC")],
            "nimbus = no_such_module:SPEC: cannot load: ModuleNotFoundError",
        ),
        ([("nimbus", "providers.specs.aws:NO_SPEC")], "cannot load: AttributeError"),
        ([("nimbus", "providers.registry:GROUP")], "is a str, not a providers.registry.ProviderSpec"),
        ([("nimbus", "providers.specs.aws:SPEC")], "the spec is named 'aws'"),
        (
            [("aws", "providers.specs.aws:SPEC"), ("aws", "tests.sim_provider:SIM")],
            "'aws' is registered twice",
        ),
    ],
    ids=["missing-module", "missing-attribute", "not-a-spec", "misnamed", "duplicate"],
)
def test_a_broken_entry_point_is_one_line_naming_it(
    entry_points: list[tuple[str, str]], complaint: str
) -> None:
    with pytest.raises(RegistryError) as err:
        discover([an_entry_point(name, value) for name, value in entry_points])

    assert complaint in str(err.value)
    assert "\n" not in str(err.value)


def test_a_broken_installed_adapter_stops_routectl_with_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_distribution(tmp_path, "nimbus_routes", "nimbus = nimbus_routes:SPEC\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    assert main(["plan", *BASE, "--provider=aws", "--region=r"]) == EXIT_CONFIG

    err = capsys.readouterr().err.strip()
    assert "nimbus = nimbus_routes:SPEC (distribution nimbus_routes 1.0): cannot load" in err
    assert len(err.splitlines()) == 1


def test_an_installed_distribution_adds_its_provider(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_distribution(tmp_path, "sim_routes", "sim = tests.sim_provider:SIM\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    cfg = config.load([*BASE, "--provider=sim", "--sim-table=rtb-1"], {}, "plan")

    assert cfg.cloud is not None
    assert cfg.cloud.spec is SIM
    assert cfg.cloud.build().tables() == ("rtb-1",)


# --- specs and their settings ----------------------------------------------------------------------


def test_a_flag_two_providers_declare_alike_is_one_flag_whose_help_names_both() -> None:
    parser = config.build_parser("run", discover())
    (region,) = [a for a in parser._actions if "--region" in a.option_strings]

    assert region.help is not None
    assert "aws: AWS region (required)" in region.help
    assert "alibaba: Alibaba Cloud region (required)" in region.help
    assert discover().declaring("region") == ("alibaba", "aws")


def test_a_flag_two_providers_declare_differently_is_refused() -> None:
    @dataclass(frozen=True)
    class Numbered(SimConfig):
        region: int = 0

    numbered = replace(
        SIM, config=Numbered, settings=(*SIM.settings, Setting("region", "region number", int, 0))
    )

    with pytest.raises(RegistryError, match=r"providers aws and sim declare --region differently"):
        Registry((discover()["aws"], numbered))


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"name": "Sim Cloud"}, "a name is lowercase words"),
        ({"embedded": "providers.emulators.embedded"}, "is not 'module:attribute'"),
        ({"settings": ()}, "config fields"),
        ({"settings": (Setting("cloud-endpoint", "mine"),)}, "is a common setting"),
    ],
)
def test_a_malformed_spec_cannot_be_made(change: dict[str, object], complaint: str) -> None:
    with pytest.raises((TypeError, ValueError), match=complaint):
        replace(SIM, **change)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("setting", "complaint"),
    [
        (lambda: Setting("Region", "r"), "lowercase words"),
        (lambda: Setting("zone", "z", required=True, default="a"), "has no default"),
        (lambda: Setting("zones", "z", many=True), "default is a tuple"),
    ],
)
def test_a_malformed_setting_cannot_be_made(setting: object, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        setting()  # type: ignore[operator]


def test_configure_checks_required_settings_and_applies_defaults() -> None:
    common = CommonConfig(cluster_name="c")
    with pytest.raises(ConfigurationError, match=r"--sim-table: required for --provider sim"):
        SIM.configure(common)

    gcp = discover()["gcp"].configure(common, {"project": "p", "network": "n"})
    assert (gcp.config.project, gcp.config.network, gcp.config.route_priority) == ("p", "n", 1000)


def test_common_overrides_apply_to_the_specs_default_limits() -> None:
    defaults = Limits(write_rate=5.0, write_burst=10, read_rate=20.0, read_burst=40, max_batch=50)
    common = common_config("c", {"cloud-write-rate": 2.5, "route-table-quota": 300})

    limits = common.limits(defaults)

    assert (limits.write_rate, limits.write_burst, limits.read_rate, limits.read_burst) == (2.5, 10, 20.0, 40)
    assert (limits.max_batch, limits.routes_per_table) == (50, 300)


# --- config loading from the registry --------------------------------------------------------------


def test_a_providers_settings_load_from_flags_env_and_file_like_routectls_own(tmp_path: Path) -> None:
    file = tmp_path / "routectl.yaml"
    file.write_text("provider: sim\nsim-table: [rtb-file]\n")

    from_file = config.load([*BASE, f"--config={file}"], {}, "plan", with_sim())
    from_env = config.load(
        [*BASE, f"--config={file}"], {"ROUTECTL_SIM_TABLE": "rtb-e1,rtb-e2"}, "plan", with_sim()
    )
    from_flag = config.load(
        [*BASE, f"--config={file}", "--sim-table=rtb-flag"], {"ROUTECTL_SIM_TABLE": "x"}, "plan", with_sim()
    )

    assert [c.cloud.config.tables for c in (from_file, from_env, from_flag) if c.cloud] == [
        ("rtb-file",),
        ("rtb-e1", "rtb-e2"),
        ("rtb-flag",),
    ]


def test_a_missing_required_provider_setting_is_one_line_naming_it() -> None:
    with pytest.raises(config.ConfigError) as err:
        config.load([*BASE, "--provider=sim"], {}, "plan", with_sim())

    assert str(err.value) == "--sim-table: required for --provider sim (route tables of the simulated cloud)"


def test_provider_choices_and_help_come_from_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        config.load(["--help"], {}, "plan", with_sim())
    shown = capsys.readouterr().out

    assert "cloud provider: alibaba, aws, gcp, sim" in shown
    assert "--sim-table SIM_TABLE" in shown
    with pytest.raises(config.ConfigError, match=r"'sim' is not an installed provider \(installed: alibaba"):
        config.load([*BASE, "--provider=sim"], {}, "plan")


def test_a_setting_of_another_provider_is_ignored_with_a_warning() -> None:
    cfg = config.load([*BASE, "--provider=sim", "--sim-table=t", "--region=eu-1"], {}, "plan", with_sim())

    assert "--region: not a setting of --provider sim (only of alibaba, aws); ignored" in cfg.warnings


def test_a_provider_setting_named_like_routectls_own_is_refused() -> None:
    @dataclass(frozen=True)
    class Clashing(SimConfig):
        dry_run: str = ""

    clash = replace(SIM, config=Clashing, settings=(*SIM.settings, Setting("dry-run", "mine")))
    with pytest.raises(
        config.ConfigError, match=r"provider sim: --dry-run is one of routectl's own settings"
    ):
        config.load(BASE, {}, "plan", Registry((clash,)))


# --- the demo --------------------------------------------------------------------------------------


def test_the_demo_offers_the_providers_whose_spec_names_an_embedded_cloud() -> None:
    (provider,) = [a for a in demo._parser(with_sim())._actions if "--provider" in a.option_strings]

    assert tuple(provider.choices or ()) == BUILT_IN  # sim names no embedded cloud
    assert discover()["aws"].embedded_cloud() is embedded.aws_cloud
    assert discover()["gcp"].embedded_cloud() is embedded.gcp_cloud
    assert discover()["alibaba"].embedded_cloud() is embedded.alibaba_cloud


def test_an_unresolvable_embedded_cloud_or_build_is_a_registry_error() -> None:
    broken = replace(
        discover()["aws"],
        embedded="providers.emulators.embedded:no_such_cloud",
        build="providers.aws:no_build",
    )
    with pytest.raises(RegistryError, match=r"provider aws: embedded cloud .*no_such_cloud"):
        broken.embedded_cloud()
    with pytest.raises(RegistryError, match=r"provider aws: build providers.aws:no_build: AttributeError"):
        broken.configure(CommonConfig("c"), {"region": "r"}).build()


def test_an_adapter_module_of_the_providers_own_package_missing_is_a_registry_error() -> None:
    """A broken installation, not a left-out SDK: nothing to install would fix it."""
    broken = replace(discover()["aws"], build="providers.no_such_adapter:build")
    with pytest.raises(RegistryError, match=r"provider aws: build providers.no_such_adapter:build: Module"):
        broken.configure(CommonConfig("c"), {"region": "r"}).build()


def test_a_built_in_adapter_whose_sdk_is_missing_names_routectls_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "alibabacloud_ecs20140526", None)  # None: `import` fails
    monkeypatch.delitem(sys.modules, "providers.alibaba", raising=False)
    configured = discover()["alibaba"].configure(CommonConfig("c"), {"region": "r", "vpc-id": "vpc-1"})

    with pytest.raises(MissingPackage) as err:
        configured.build()

    assert str(err.value) == (
        "providers.alibaba needs the Python module 'alibabacloud_ecs20140526', which is not installed: "
        "install routectl[alibaba] (pip install 'routectl[alibaba]')"
    )


NIMBUS_SPEC = """\
from dataclasses import dataclass

from providers.model import Limits
from providers.registry import CommonConfig, ProviderSpec


@dataclass(frozen=True)
class NimbusConfig:
    common: CommonConfig


SPEC = ProviderSpec(
    name="nimbus",
    summary="a cloud whose SDK is not installed",
    config=NimbusConfig,
    build="nimbus_routes.adapter:build",
    limits=Limits(write_rate=1.0, write_burst=1, read_rate=1.0, read_burst=1),
)
"""


@pytest.mark.parametrize(
    ("extras", "install"), [("", "nimbus-routes"), ("Provides-Extra: nimbus\n", "nimbus-routes[nimbus]")]
)
def test_an_installed_adapter_whose_sdk_is_missing_names_its_own_distribution(
    extras: str, install: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The distribution the adapter came from, with its extra named like the provider if it has one."""
    package = tmp_path / "nimbus_routes"
    package.mkdir()
    (package / "__init__.py").write_text(NIMBUS_SPEC)
    (package / "adapter.py").write_text("import nimbus_sdk\n")
    info = tmp_path / "nimbus_routes-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: nimbus-routes\nVersion: 1.0\n{extras}")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nnimbus = nimbus_routes:SPEC\n")
    (info / "RECORD").write_text("nimbus_routes/__init__.py,,\nnimbus_routes/adapter.py,,\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = config.load([*BASE, "--provider=nimbus"], {}, "plan")
    assert cfg.cloud is not None

    with pytest.raises(MissingPackage) as err:
        cfg.cloud.build()

    assert str(err.value) == (
        "nimbus_routes.adapter needs the Python module 'nimbus_sdk', which is not installed: "
        f"install {install} (pip install '{install}')"
    )


def test_every_built_in_config_is_frozen() -> None:
    for spec in discover().specs:
        assert spec.config.__dataclass_params__.frozen, spec.name  # type: ignore[attr-defined]


def test_specs_are_ordered_by_name() -> None:
    assert list(discover().names) == sorted(discover().names)


def test_registry_settings_keep_every_documented_flag_and_env_name() -> None:
    names = {s.name: s.env for s in config.settings("run", discover())}
    for flag in (
        "region",
        "project",
        "network",
        "vpc-id",
        "route-table-id",
        "route-priority",
        "cloud-endpoint",
    ):
        assert names[flag] == "ROUTECTL_" + flag.upper().replace("-", "_")


def test_unknown_setting_handed_to_configure_is_named() -> None:
    with pytest.raises(ConfigurationError, match=r"--region: not a setting of --provider gcp"):
        discover()["gcp"].configure(CommonConfig("c"), {"project": "p", "network": "n", "region": "r"})
