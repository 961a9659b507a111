"""Every configuration error is exit 2 and one line naming the setting, before anything is touched —
for every setting, from a flag, the environment or the file, through `routectl.cli.main`.

The kubeconfig points at a closed port and the cloud endpoint at another: a configuration that got
past validation would end with exit 1 (unreachable), so exit 2 proves nothing was contacted."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.registry import discover
from routectl.cli import EXIT_CONFIG, main
from routectl.config import settings
from tests.unit.test_cli import a_kubeconfig

AWS = ["--cluster-name=c1", "--cluster-cidr=10.0.0.0/16", "--provider=aws", "--region=us-east-1"]
GCP = [
    "--cluster-name=c1",
    "--cluster-cidr=10.0.0.0/16",
    "--provider=gcp",
    "--project=proj-1234",
    "--network=n",
]
CLOSED = "--cloud-endpoint=http://127.0.0.1:1"

# (setting, command, base flags, invalid value, words the line must also carry)
CASES: list[tuple[str, str, list[str], str, str]] = [
    ("kubeconfig", "run", AWS, "/nonexistent/kubeconfig", "cannot load"),
    ("cluster-name", "run", AWS, "Bad_Name", "lowercase"),
    ("cluster-cidr", "run", AWS, "10.0.0.0/33", "10.0.0.0/33"),
    ("node-cidr-mask-size-ipv4", "run", AWS, "33", "1-32"),
    ("node-cidr-mask-size-ipv6", "run", AWS, "129", "1-128"),
    ("reserved-cidr", "run", AWS, "10.0.0.1/16", "host bits"),
    ("allocate-node-cidrs", "run", AWS, "maybe", "true or false"),
    ("configure-cloud-routes", "run", AWS, "perhaps", "true or false"),
    ("adopt-routes", "run", AWS, "gladly", "true or false"),
    ("route-policy", "plan", AWS, "upsert", "upsert-only"),
    ("provider", "run", AWS, "nimbus", "installed"),
    ("region", "run", AWS, "us east 1", "region name"),
    ("vpc-id", "run", AWS, "my vpc", "resource id"),
    ("route-table-id", "run", AWS, "rtb 1", "resource id"),
    ("project", "run", GCP, "P", "project id"),
    ("network", "run", GCP, "Bad Net", "network name"),
    ("route-priority", "run", GCP, "70000", "0-65535"),
    ("route-table-quota", "run", AWS, "-1", "negative"),
    ("cloud-endpoint", "run", AWS, "ftp://127.0.0.1:1", "endpoint URL"),
    ("cloud-endpoint", "run", AWS, "http://127.0.0.1:99999", "endpoint URL"),
    ("cloud-endpoint", "run", AWS, "http://exa mple.com", "endpoint URL"),
    ("cloud-write-rate", "run", AWS, "nan", "finite"),
    ("cloud-write-rate", "run", AWS, "inf", "finite"),
    ("cloud-write-burst", "run", AWS, "1.5", "int"),
    ("cloud-read-rate", "run", AWS, "-2", "finite"),
    ("cloud-read-burst", "run", AWS, "-5", "negative"),
    ("route-reconciliation-period", "run", AWS, "99999999999999999999h", "out of range"),
    ("route-reconciliation-period", "run", AWS, "0s", "out of range"),
    ("concurrent-node-syncs", "run", AWS, "0", "1-1000"),
    ("concurrent-node-syncs", "run", AWS, "100000", "1-1000"),
    ("exclude-label", "run", AWS, "novalue", "key=value"),
    ("leader-elect", "run", AWS, "sometimes", "true or false"),
    ("leader-elect-lease-duration", "run", AWS, "0s", "out of range"),
    ("leader-elect-lease-duration", "run", AWS, "5s", "greater than"),  # not above the renew deadline
    ("leader-elect-renew-deadline", "run", AWS, "forever", "duration"),
    ("leader-elect-retry-period", "run", AWS, "0s", "out of range"),
    ("leader-elect-resource-namespace", "run", AWS, "Bad_NS", "namespace"),
    ("leader-elect-resource-name", "run", AWS, "Bad Name", "object name"),
    ("metrics-bind-address", "run", AWS, "localhost", "host]:port"),
    ("metrics-secure", "run", AWS, "perhaps", "true or false"),
    ("metrics-cert-dir", "run", AWS, "/nonexistent/certs", "not a directory"),
    ("health-probe-bind-address", "run", AWS, ":99999", "host]:port"),
    ("dry-run", "run", AWS, "yesno", "true or false"),
    ("log-level", "run", AWS, "loud", "debug"),
    ("log-format", "run", AWS, "xml", "json"),
    ("once", "run", AWS, "twice", "true or false"),
    ("output", "plan", AWS, "xml", "table"),
]


def run(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """The command's exit code must be 2; returns its one line."""
    assert main(argv) == EXIT_CONFIG
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert captured.out == ""
    return lines[0]


@pytest.fixture
def kubeconfig(tmp_path: Path) -> str:
    return f"--kubeconfig={a_kubeconfig(tmp_path)}"


@pytest.mark.parametrize(("name", "command", "base", "value", "words"), CASES)
def test_an_invalid_flag_is_exit_2_and_one_line_naming_it(
    name: str,
    command: str,
    base: list[str],
    value: str,
    words: str,
    kubeconfig: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = run(capsys, [command, *base, CLOSED, kubeconfig, f"--{name}={value}"])
    assert f"--{name}" in line
    assert words in line


def test_every_setting_has_an_invalid_value_in_the_table() -> None:
    registry = discover()
    every = {s.name for command in ("run", "plan") for s in settings(command, registry)}
    assert every - {name for name, *_ in CASES} == set()


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("cloud-write-rate", "inf", "finite"),
        ("route-reconciliation-period", "99999999999999999999h", "range"),
    ],
)
def test_the_environment_is_judged_by_the_same_parser(
    name: str,
    value: str,
    words: str,
    kubeconfig: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = "ROUTECTL_" + name.replace("-", "_").upper()
    monkeypatch.setenv(env, value)
    line = run(capsys, ["run", *AWS, CLOSED, kubeconfig])
    assert env in line
    assert words in line


def test_a_mistyped_variable_names_the_closest_setting(
    kubeconfig: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTECTL_CLUSTR_NAME", "c1")
    line = run(capsys, ["run", *AWS, CLOSED, kubeconfig])
    assert "ROUTECTL_CLUSTR_NAME: not a routectl setting (did you mean ROUTECTL_CLUSTER_NAME?)" in line


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (
            b"cluster-name: c1\nregion: us-east-1\ncluster-name: c2\n",
            ":3:1: not valid YAML: duplicate key 'cluster-name'",
        ),
        (b"cluster-name: c1\nregion: [us-east-1\n", ":3:1: not valid YAML:"),
        (b"cluster-name: c1\n  region: x\n", ":2:9: not valid YAML:"),
        ("cluster-name: c\u00e9\n".encode("latin-1"), "not UTF-8 text (byte 0xe9 at offset 15)"),
        (b"- just\n- a list\n", "must be a mapping"),
        (b"regoin: us-east-1\n", "unknown setting 'regoin'"),
        (b"cloud-write-rate: .nan\n", "cloud-write-rate: 'nan' is not a finite number"),
    ],
)
def test_a_bad_config_file_is_exit_2_and_one_line_naming_file_line_and_column(
    content: bytes, words: str, tmp_path: Path, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "routectl.yaml"
    path.write_bytes(content)
    line = run(capsys, ["run", *AWS, CLOSED, kubeconfig, f"--config={path}"])
    assert f"--config {path}" in line
    assert words in line


def test_an_unreadable_config_file_is_exit_2(
    tmp_path: Path, kubeconfig: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = run(capsys, ["run", *AWS, CLOSED, kubeconfig, f"--config={tmp_path}"])
    assert f"--config {tmp_path}: cannot read" in line


def test_missing_alibaba_credentials_are_exit_2_and_one_line(
    tmp_path: Path, kubeconfig: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.aliyun or ~/.alibabacloud profile
    for name in ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    argv = ["plan", "--cluster-name=c1", "--cluster-cidr=10.0.0.0/16", "--provider=alibaba"]
    line = run(capsys, [*argv, "--region=cn-hangzhou", "--vpc-id=vpc-1", kubeconfig])
    assert "alibaba: no usable credentials" in line
