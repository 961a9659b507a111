"""The shared fixture (tests/conftest.py) keeps every SDK's default credential chain off instance metadata.

Each chain is run with no credentials at all, while every connection attempt of the process is recorded:
none may go to a metadata address, and each chain must end with "no credentials", not a hang or a probe.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import pytest

from providers.emulators.isolation import METADATA_ADDRESSES, METADATA_PROBES_OFF

CREDENTIAL_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
    "ALIBABA_CLOUD_CREDENTIALS_FILE",
    "ALIBABA_CLOUD_ECS_METADATA",
    "ALIBABA_CLOUD_PROFILE",
)


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every host this process resolves or connects to while the test runs."""
    seen: list[str] = []
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(sock: socket.socket, address: Any) -> None:
        seen.append(str(address[0]) if isinstance(address, tuple) else str(address))
        real_connect(sock, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return seen


def _probed(seen: list[str]) -> list[str]:
    return [host for host in seen if host in METADATA_ADDRESSES]


def test_the_shared_fixture_sets_every_switch_for_this_process_and_its_children() -> None:
    for name, value in METADATA_PROBES_OFF.items():
        assert os.environ.get(name) == value, name


def test_boto3_default_chain_finds_nothing_without_asking_metadata(
    no_credentials: None, connections: list[str]
) -> None:
    import boto3

    assert boto3.Session(region_name="us-east-1").get_credentials() is None
    assert _probed(connections) == []


def test_google_auth_default_chain_finds_nothing_without_asking_metadata(
    no_credentials: None, connections: list[str]
) -> None:
    import google.auth
    from google.auth import exceptions

    with pytest.raises(exceptions.DefaultCredentialsError):
        google.auth.default()
    assert _probed(connections) == []
    assert all(host in ("127.0.0.1", "localhost") for host in connections), connections


def test_alibaba_default_chain_finds_nothing_without_asking_metadata(
    no_credentials: None, connections: list[str]
) -> None:
    from alibabacloud_credentials.client import Client

    with pytest.raises(Exception, match=r"(?i)credential|unable|not found|no "):
        Client().get_credential()
    assert _probed(connections) == []
