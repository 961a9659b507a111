from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from routectl.config import Config, ConfigError, load, parse_duration

BASE = ["--cluster-name=prod", "--cluster-cidr=10.0.0.0/16", "--provider=aws", "--region=eu-west-1"]


def a_config(*extra: str, env: dict[str, str] | None = None, command: str = "run") -> Config:
    return load([*BASE, *extra], env or {}, command)


def test_defaults_follow_kube_controller_manager() -> None:
    cfg = load(BASE, {"POD_NAME": "routectl-0", "POD_NAMESPACE": "net"})
    assert cfg.cluster_cidrs == (ipaddress.ip_network("10.0.0.0/16"),)
    assert (cfg.node_mask_v4, cfg.node_mask_v6) == (None, None)
    assert [u.node_mask for u in cfg.pool().usage()] == [24]
    assert cfg.resync_period_s == 60.0
    le = cfg.leader_election
    assert (le.lease_duration_s, le.renew_deadline_s, le.retry_period_s) == (15.0, 10.0, 2.0)
    assert le.namespace == "net"
    assert le.identity.startswith("routectl-0_")
    assert cfg.metrics_address == ("0.0.0.0", 10290)
    assert cfg.metrics_secure is True
    assert cfg.metrics_cert_dir == ""
    assert cfg.health_address == ("127.0.0.1", 10291)
    assert cfg.exclude_label == ("routectl.io/exclude", "true")
    assert (cfg.log_level, cfg.log_format) == ("info", "json")


def test_log_format_text_from_a_flag_or_the_environment() -> None:
    assert a_config("--log-format=text").log_format == "text"
    assert a_config(env={"ROUTECTL_LOG_FORMAT": "text"}).log_format == "text"


def test_flags_win_over_env_which_wins_over_file(tmp_path: Path) -> None:
    file = tmp_path / "routectl.yaml"
    file.write_text(
        "cluster-name: from-file\ncluster-cidr: [10.1.0.0/16, 'fd00::/48']\nroute-table-id: [rtb-a]\n"
        "provider: aws\nregion: us-east-1\nnode-cidr-mask-size-ipv4: 26\n"
    )
    env = {"ROUTECTL_CLUSTER_NAME": "from-env", "ROUTECTL_NODE_CIDR_MASK_SIZE_IPV4": "25"}
    cfg = load([f"--config={file}", "--cluster-name=from-flag"], env)
    assert cfg.cluster_name == "from-flag"
    assert cfg.node_mask_v4 == 25
    assert [str(c) for c in cfg.cluster_cidrs] == ["10.1.0.0/16", "fd00::/48"]
    assert cfg.cloud is not None
    assert cfg.cloud.config.route_table_ids == ("rtb-a",)
    assert cfg.cloud.config.region == "us-east-1"


def test_repeatable_flags_accept_repeats_and_commas() -> None:
    cfg = a_config("--route-table-id=rtb-1", "--route-table-id=rtb-2,rtb-3", "--reserved-cidr=10.0.255.0/24")
    assert cfg.cloud is not None
    assert cfg.cloud.config.route_table_ids == ("rtb-1", "rtb-2", "rtb-3")
    assert [str(r) for r in cfg.reserved_cidrs] == ["10.0.255.0/24"]


def test_bare_boolean_flag_means_true() -> None:
    assert a_config("--dry-run").dry_run is True
    assert a_config("--dry-run=false").dry_run is False


@pytest.mark.parametrize(
    ("argv", "env", "names"),
    [
        (["--cluster-cidr=10.0.0.0/16", "--provider=aws", "--region=r"], {}, "--cluster-name"),
        (["--cluster-name=Prod_1", *BASE[1:]], {}, "--cluster-name"),
        (["--cluster-name=prod", "--provider=aws", "--region=r"], {}, "--cluster-cidr"),
        ([*BASE[:1], "--cluster-cidr=10.0.0.1/16", *BASE[2:]], {}, "--cluster-cidr"),
        ([*BASE[:1], "--cluster-cidr=banana", *BASE[2:]], {}, "--cluster-cidr"),
        ([*BASE, "--node-cidr-mask-size-ipv4=8"], {}, "mask"),
        ([*BASE, "--node-cidr-mask-size-ipv4=x"], {}, "--node-cidr-mask-size-ipv4"),
        ([*BASE, "--provider=azure"], {}, "--provider"),
        (["--cluster-name=prod", "--cluster-cidr=10.0.0.0/16"], {}, "--provider"),
        (["--cluster-name=prod", "--cluster-cidr=10.0.0.0/16", "--provider=aws"], {}, "--region"),
        (
            ["--cluster-name=prod", "--cluster-cidr=10.0.0.0/16", "--provider=gcp", "--project=proj-1234"],
            {},
            "--network",
        ),
        (
            ["--cluster-name=prod", "--cluster-cidr=10.0.0.0/16", "--provider=alibaba", "--region=cn"],
            {},
            "--vpc-id",
        ),
        ([*BASE, "--leader-elect-renew-deadline=20s"], {}, "--leader-elect-lease-duration"),
        ([*BASE, "--leader-elect-retry-period=9s"], {}, "--leader-elect-renew-deadline"),
        ([*BASE, "--route-reconciliation-period=soon"], {}, "--route-reconciliation-period"),
        ([*BASE, "--concurrent-node-syncs=0"], {}, "--concurrent-node-syncs"),
        ([*BASE, "--metrics-bind-address=localhost"], {}, "--metrics-bind-address"),
        ([*BASE, "--exclude-label=novalue"], {}, "--exclude-label"),
        ([*BASE, "--cloud-write-rate=-1"], {}, "--cloud-write-rate"),
        ([*BASE, "--unknown-flag=1"], {}, "--unknown-flag"),
        ([*BASE, "--log-format=yaml"], {}, "--log-format"),
        (BASE, {"ROUTECTL_DRY_RUN": "maybe"}, "ROUTECTL_DRY_RUN"),
    ],
)
def test_invalid_setting_is_one_error_naming_it(argv: list[str], env: dict[str, str], names: str) -> None:
    with pytest.raises(ConfigError) as err:
        load(argv, env)
    message = str(err.value)
    assert names in message
    assert "\n" not in message


def test_unknown_key_in_file_is_named(tmp_path: Path) -> None:
    file = tmp_path / "c.yaml"
    file.write_text("cluster-nmae: typo\n")
    with pytest.raises(ConfigError, match="cluster-nmae"):
        load([*BASE, f"--config={file}"], {})


def test_routes_off_needs_no_provider() -> None:
    cfg = load(["--cluster-name=c", "--cluster-cidr=10.0.0.0/16", "--configure-cloud-routes=false"], {})
    assert cfg.configure_cloud_routes is False
    assert cfg.provider == ""


@pytest.mark.parametrize(
    ("text", "seconds"), [("60s", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0), ("1.5s", 1.5)]
)
def test_go_style_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_plan_accepts_output_and_run_does_not() -> None:
    assert a_config("--output=json", command="plan").output == "json"
    with pytest.raises(ConfigError, match="--output"):
        a_config("--output=json", command="run")


def test_one_file_serves_run_and_plan(tmp_path: Path) -> None:
    """A setting of one command in the file is left out by the other: the chart's one ConfigMap serves
    `run` and a `plan` typed into the pod."""
    file = tmp_path / "config.yaml"
    file.write_text(
        "cluster-name: shared\ncluster-cidr: [10.1.0.0/16]\nprovider: aws\nregion: eu-west-1\n"
        "once: true\noutput: json\nmetrics-secure: false\nmetrics-bind-address: 127.0.0.1:9\n"
    )
    run = load([f"--config={file}"], {}, "run")
    plan = load([], {"ROUTECTL_CONFIG": str(file)}, "plan")
    assert (run.cluster_name, run.once, run.output) == ("shared", True, "table")
    assert (plan.cluster_name, plan.once, plan.output) == ("shared", False, "json")
    assert plan.cloud is not None
    assert run.cloud is not None
    assert plan.cloud.config.region == run.cloud.config.region == "eu-west-1"


def test_a_setting_of_another_command_in_the_file_is_still_checked(tmp_path: Path) -> None:
    file = tmp_path / "config.yaml"
    file.write_text("cluster-name: c\ncluster-cidr: [10.1.0.0/16]\nprovider: aws\nregion: r\nonce: maybe\n")
    with pytest.raises(ConfigError, match="once"):
        load([f"--config={file}"], {}, "plan")


@pytest.mark.parametrize("address", ["127.0.0.1:9090", "[::1]:9090", "127.0.0.53:1"])
def test_plain_http_metrics_are_allowed_on_loopback(address: str) -> None:
    cfg = a_config("--metrics-secure=false", f"--metrics-bind-address={address}")
    assert cfg.metrics_secure is False
    assert cfg.metrics_address is not None
    assert cfg.metrics_address[1] in (9090, 1)


@pytest.mark.parametrize("address", [":10290", "0.0.0.0:10290", "10.0.0.5:10290", "localhost:10290"])
def test_plain_http_metrics_are_refused_off_loopback(address: str) -> None:
    with pytest.raises(ConfigError) as err:
        a_config("--metrics-secure=false", f"--metrics-bind-address={address}")
    assert "--metrics-secure=false" in str(err.value)
    assert "\n" not in str(err.value)
