"""The wheel as a user installs it: `pip install routectl` into a clean venv, without the test extras and
offline, from the wheels the image is built from; then each cloud's extra on top.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from email.parser import Parser
from importlib.metadata import Distribution
from pathlib import Path

import pytest

from routectl.config import ENV_PREFIX
from tests.image.imagelib import a_kubeconfig, one_line

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
TIMEOUT_S = 300


def _run(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    """`argv` in a user's environment: none of the harness's `ROUTECTL_*` variables, which routectl
    would refuse as unknown settings."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(ENV_PREFIX)}
    return subprocess.run(
        [str(arg) for arg in argv], capture_output=True, text=True, timeout=TIMEOUT_S, check=False, env=env
    )


class Venv:
    """A fresh venv of this interpreter, installing only from the wheelhouse (no index)."""

    def __init__(self, path: Path, wheelhouse: Path) -> None:
        done = _run(sys.executable, "-m", "venv", path)
        assert done.returncode == 0, done.stderr
        self.path = path
        self.wheelhouse = wheelhouse

    def install(self, requirement: str) -> None:
        sources = ["--no-index", "--find-links", self.wheelhouse / "dist", "--find-links"]
        sources += [self.wheelhouse / "wheels", "--constraint", self.wheelhouse / "constraints.txt"]
        done = _run(
            self.path / "bin" / "python", "-m", "pip", "install", "-q", "--no-compile", *sources, requirement
        )
        assert done.returncode == 0, done.stdout + done.stderr

    def routectl(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return _run(self.path / "bin" / "routectl", *args)

    def importable(self, module: str) -> bool:
        return _run(self.path / "bin" / "python", "-c", f"import {module}").returncode == 0

    def distribution(self) -> Distribution:
        (site,) = (self.path / "lib").glob("python3.*/site-packages")
        (found,) = Distribution.discover(name="routectl", path=[str(site)])
        return found


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Venv:
    venv = Venv(tmp_path_factory.mktemp("clean") / "venv", wheelhouse)
    venv.install("routectl")
    return venv


def a_run_of(provider: str, kubeconfig: Path) -> list[str | Path]:
    """`routectl run` as far as choosing the provider: valid flags, a kubeconfig that loads."""
    flags: dict[str, list[str]] = {
        "aws": ["--region=us-east-1"],
        "gcp": ["--project=my-project", "--network=n"],
        "alibaba": ["--region=cn-hangzhou", "--vpc-id=vpc-1"],
    }
    return [
        "run",
        f"--kubeconfig={kubeconfig}",
        "--cluster-name=c",
        "--cluster-cidr=10.244.0.0/16",
        f"--provider={provider}",
        *flags[provider],
    ]


def test_the_wheel_installs_without_any_extra_and_reports_its_version(venv: Venv) -> None:
    done = venv.routectl("version")
    assert (done.returncode, done.stdout.strip()) == (0, f"routectl {PROJECT['version']}")
    check = _run(venv.path / "bin" / "python", "-m", "pip", "check")
    assert check.returncode == 0, check.stdout
    for left_out in (
        "pytest",
        "moto",
        "hypothesis",
        "boto3",
        "google.cloud.compute_v1",
        "alibabacloud_vpc20160428",
    ):
        assert not venv.importable(left_out), f"{left_out} was installed without being asked for"


def test_the_wheel_carries_the_license_the_metadata_and_the_type_markers(venv: Venv) -> None:
    distribution = venv.distribution()
    metadata = Parser().parsestr(distribution.read_text("METADATA") or "")
    assert metadata["License-Expression"] == "Apache-2.0"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert (REPO / "LICENSE").read_text() == distribution.read_text("licenses/LICENSE")
    assert set(metadata.get_all("Classifier") or ()) == set(PROJECT["classifiers"])
    assert {url.split(",")[0] for url in metadata.get_all("Project-URL") or ()} == set(PROJECT["urls"])
    assert set(metadata.get_all("Provides-Extra") or ()) >= {"aws", "gcp", "alibaba", "all"}
    files = {str(path) for path in distribution.files or ()}
    assert {"routectl/py.typed", "providers/py.typed", "ipam/py.typed"} <= files


@pytest.mark.parametrize("provider", ["aws", "gcp", "alibaba"])
def test_a_provider_whose_sdk_is_left_out_names_its_extra_in_one_line_and_exits_2(
    venv: Venv, provider: str, tmp_path: Path
) -> None:
    done = venv.routectl(*a_run_of(provider, a_kubeconfig(tmp_path / "kubeconfig")))
    line = one_line(done.stderr)
    assert done.returncode == 2, line
    assert line.startswith("routectl: invalid configuration: --provider ")
    assert f"install routectl[{provider}]" in line


def test_a_cloud_extra_brings_that_sdk_and_no_other(tmp_path: Path, wheelhouse: Path) -> None:
    venv = Venv(tmp_path / "venv", wheelhouse)
    venv.install("routectl[aws]")
    assert venv.importable("boto3")
    assert not venv.importable("google.cloud.compute_v1")
    done = venv.routectl(*a_run_of("gcp", a_kubeconfig(tmp_path / "kubeconfig")))
    assert done.returncode == 2
    assert "install routectl[gcp]" in one_line(done.stderr)
