from __future__ import annotations

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
