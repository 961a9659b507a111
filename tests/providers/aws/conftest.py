"""Fixtures for the AWS adapter tests: dummy credentials, moto's in-process EC2 and a small world."""

from __future__ import annotations

from collections.abc import Iterator

import botocore.loaders
import botocore.session
import pytest
from awsworld import World, a_world, use_dummy_credentials
from moto import mock_aws


@pytest.fixture(scope="session", autouse=True)
def _parse_service_models_once() -> Iterator[None]:
    """Every boto3 Session (the adapter makes one per build) re-parses the EC2 model, ~0.5 s each;
    one shared loader is only a parse cache, so the tier stays fast without changing any call."""
    loader = botocore.loaders.create_loader()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", lambda *_: loader)
        yield


@pytest.fixture(autouse=True)
def _dummy_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    use_dummy_credentials(monkeypatch)
    # The tests launch instances from a made-up image id; moto's real-AMI catalogue costs ~0.5 s per mock.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws():
        yield a_world()
