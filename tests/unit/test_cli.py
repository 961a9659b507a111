from __future__ import annotations

import sys
from pathlib import Path

import pytest

import routectl
from routectl.cli import EXIT_CONFIG, main


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"routectl {routectl.__version__}"


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["run", "--cluster-cidr=10.0.0.0/16", "--provider=aws", "--region=r"], "--cluster-name"),
        (
            ["plan", "--cluster-name=c", "--cluster-cidr=10.0.0.0/33", "--provider=aws", "--region=r"],
            "10.0.0.0/33",
        ),
        (["run", "--cluster-name=c", "--cluster-cidr=10.0.0.0/16", "--provider=nimbus"], "--provider"),
    ],
)
def test_invalid_configuration_exits_2_with_one_line_before_any_connection(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Any attempt to reach the cluster would fail loudly: the kubeconfig does not exist.
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")

    assert main(argv) == EXIT_CONFIG

    err = capsys.readouterr().err.strip()
    assert named in err
    assert len(err.splitlines()) == 1


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == EXIT_CONFIG
    assert "run" in capsys.readouterr().out


BASE = ["--cluster-name=c", "--cluster-cidr=10.0.0.0/16", "--provider=aws", "--region=us-east-1"]


def a_kubeconfig(tmp_path: Path) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]\n'
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    return str(path)


def test_unloadable_kubeconfig_is_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", *BASE, f"--kubeconfig={tmp_path / 'missing'}"]) == EXIT_CONFIG
    err = capsys.readouterr().err.strip()
    assert "--kubeconfig" in err
    assert len(err.splitlines()) == 1


def test_missing_cloud_credentials_are_a_configuration_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    assert main(["plan", *BASE, f"--kubeconfig={a_kubeconfig(tmp_path)}"]) == EXIT_CONFIG

    assert "credentials" in capsys.readouterr().err


def test_unreachable_cloud_at_start_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    argv = ["plan", *BASE, "--cloud-endpoint=http://127.0.0.1:1", f"--kubeconfig={a_kubeconfig(tmp_path)}"]

    assert main(argv) == 1

    err = capsys.readouterr().err.strip()
    assert "DescribeRouteTables" in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("provider", "module"),
    [("aws", "boto3"), ("gcp", "google.cloud.compute_v1"), ("alibaba", "alibabacloud_credentials")],
)
def test_a_provider_whose_sdk_is_not_installed_names_its_extra_in_one_line(
    provider: str,
    module: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As in a single-cloud image: the SDK cannot be imported (None in sys.modules makes `import` fail)."""
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delitem(sys.modules, f"providers.{provider}", raising=False)
    flags = {
        "aws": ["--region=r"],
        "gcp": ["--project=my-project", "--network=n"],
        "alibaba": ["--region=r", "--vpc-id=vpc-1"],
    }
    argv = [
        "run",
        "--cluster-name=c",
        "--cluster-cidr=10.0.0.0/16",
        f"--provider={provider}",
        *flags[provider],
    ]

    assert main([*argv, f"--kubeconfig={a_kubeconfig(tmp_path)}"]) == EXIT_CONFIG

    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"install routectl[{provider}]" in err


def test_doctor_takes_the_run_and_plan_settings_and_validates_them_first(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent")
    assert main(["doctor", "--cluster-name=c", "--cluster-cidr=10.0.0.0/33", "--provider=aws"]) == EXIT_CONFIG
    assert "10.0.0.0/33" in capsys.readouterr().err


def test_doctor_against_an_unreachable_api_server_is_a_cross_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["doctor", *BASE, "--configure-cloud-routes=false", f"--kubeconfig={a_kubeconfig(tmp_path)}"]

    assert main(argv) == 1

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("✗ kubernetes/api-reachable: ")
    assert lines[1].startswith("! cloud/skipped: configure-cloud-routes=false")
    assert lines[-1] == "broken: 0 passed, 1 failed, 1 warning(s)"
