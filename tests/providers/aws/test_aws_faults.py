"""EC2 errors injected with botocore `before-call` handlers, translated into per-route outcomes and typed
provider errors; and the `observe` hook that reports every call."""

from __future__ import annotations

from typing import Any

import pytest
from awsworld import OWNED_TAG, World, a_provider, a_route, fail
from botocore.exceptions import NoCredentialsError, ReadTimeoutError

from providers import Fatal, NotFound, Outcome, Throttled, Transient
from providers.aws import AwsProvider


@pytest.fixture
def table(world: World) -> str:
    return world.table(OWNED_TAG)


@pytest.fixture
def instance(world: World) -> str:
    return world.instances(1)[0]


def time_out(provider: AwsProvider, operation: str) -> None:
    """The read timeout where botocore raises it when EC2 does not answer: while sending the request."""

    def handler(**_: Any) -> None:
        raise ReadTimeoutError(endpoint_url="https://ec2.us-east-1.amazonaws.com/")

    provider._ec2.meta.events.register_first(f"before-send.ec2.{operation}", handler)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("RequestLimitExceeded", 503, Outcome.RETRY),
        ("InternalError", 500, Outcome.RETRY),
        ("SomethingNew", 503, Outcome.RETRY),
        ("RouteLimitExceeded", 400, Outcome.QUOTA_EXCEEDED),
        ("UnauthorizedOperation", 403, Outcome.FATAL),
    ],
)
@pytest.mark.parametrize("operation", ["CreateRoute", "ReplaceRoute", "DeleteRoute"])
def test_write_errors_become_outcomes_naming_the_api_and_code(
    world: World, table: str, instance: str, operation: str, code: str, status: int, expected: Outcome
) -> None:
    provider = a_provider()
    write = {
        "CreateRoute": provider.create_routes,
        "ReplaceRoute": provider.replace_routes,
        "DeleteRoute": provider.delete_routes,
    }[operation]
    fail(provider._ec2, operation, code, status)

    (result,) = write(table, [a_route("10.244.1.0/24", instance)])

    assert result.outcome is expected
    assert operation in result.message
    assert code in result.message
    assert not result.target_gone
    assert result.throttled is (code == "RequestLimitExceeded")


@pytest.mark.parametrize("operation", ["CreateRoute", "DeleteRoute"])
def test_timeout_on_a_write_is_retry(world: World, table: str, instance: str, operation: str) -> None:
    provider = a_provider()
    time_out(provider, operation)
    write = provider.create_routes if operation == "CreateRoute" else provider.delete_routes

    (result,) = write(table, [a_route("10.244.1.0/24", instance)])

    assert result.outcome is Outcome.RETRY
    assert "timeout" in result.message.lower()


def test_already_exists_with_another_owned_target_is_replaced(world: World, table: str) -> None:
    old, new = world.instances(2)
    world.add_route(table, "10.244.1.0/24", InstanceId=old)
    provider = a_provider()
    replaced: list[str] = []
    provider._ec2.meta.events.register("before-call.ec2.ReplaceRoute", lambda **_: replaced.append("x"))

    (result,) = provider.create_routes(table, [a_route("10.244.1.0/24", new)])

    assert result.outcome is Outcome.OK
    assert replaced == ["x"]
    assert world.raw_routes(table)["10.244.1.0/24"]["InstanceId"] == new


def test_already_exists_when_the_listing_then_fails_is_retry_not_an_exception(
    world: World, table: str, instance: str
) -> None:
    provider = a_provider()
    fail(provider._ec2, "CreateRoute", "RouteAlreadyExists")
    fail(provider._ec2, "DescribeRouteTables", "RequestLimitExceeded", 503)

    (result,) = provider.create_routes(table, [a_route("10.244.1.0/24", instance)])

    assert result.outcome is Outcome.RETRY
    assert "RequestLimitExceeded" in result.message


def test_already_exists_but_not_listed_yet_is_retry(world: World, table: str, instance: str) -> None:
    """EC2 reads are eventually consistent: the route may exist before DescribeRouteTables shows it."""
    provider = a_provider()
    fail(provider._ec2, "CreateRoute", "RouteAlreadyExists")

    (result,) = provider.create_routes(table, [a_route("10.244.1.0/24", instance)])

    assert result.outcome is Outcome.RETRY


def test_replace_and_create_that_keep_contradicting_each_other_end_in_retry(world: World, table: str) -> None:
    """Create says the route exists, replace says it does not (a racing writer): one round each way,
    then the route is left to the next sync instead of recursing."""
    old, new = world.instances(2)
    world.add_route(table, "10.244.1.0/24", InstanceId=old)
    provider = a_provider()
    fail(provider._ec2, "ReplaceRoute", "InvalidRoute.NotFound")

    (result,) = provider.replace_routes(table, [a_route("10.244.1.0/24", new)])

    assert result.outcome is Outcome.RETRY
    assert world.raw_routes(table)["10.244.1.0/24"]["InstanceId"] == old


@pytest.mark.parametrize(
    ("code", "status", "error"),
    [
        ("RequestLimitExceeded", 503, Throttled),
        ("ServiceUnavailable", 503, Transient),
        ("InvalidRouteTableID.NotFound", 400, NotFound),
        ("AuthFailure", 401, Fatal),
    ],
)
def test_listing_errors_are_typed_provider_errors(
    world: World, table: str, code: str, status: int, error: type[Exception]
) -> None:
    provider = a_provider()
    fail(provider._ec2, "DescribeInstances", code, status)
    world.add_route(table, "10.244.1.0/24", InstanceId=world.instances(1)[0])

    with pytest.raises(error, match=code):
        provider.list_routes(table)


def test_listing_timeout_is_transient(world: World, table: str) -> None:
    provider = a_provider()
    time_out(provider, "DescribeRouteTables")

    with pytest.raises(Transient):
        provider.list_routes(table)


def test_observe_reports_each_api_with_its_status_or_error_code(
    world: World, table: str, instance: str
) -> None:
    provider = a_provider()
    seen: list[tuple[str, str]] = []
    provider.observe(lambda api, code, seconds: seen.append((api, code)))
    fail(provider._ec2, "DeleteRoute", "RequestLimitExceeded", 503)
    time_out(provider, "ReplaceRoute")

    provider.create_routes(table, [a_route("10.244.1.0/24", instance)])
    provider.delete_routes(table, [a_route("10.244.1.0/24", instance)])
    provider.replace_routes(table, [a_route("10.244.1.0/24", instance)])

    assert seen == [
        ("CreateRoute", "200"),
        ("DeleteRoute", "RequestLimitExceeded"),
        ("ReplaceRoute", "ReadTimeoutError"),
    ]


def test_a_write_without_credentials_is_fatal_not_retried_forever(
    world: World, table: str, instance: str
) -> None:
    provider = a_provider()

    def no_credentials(**_: Any) -> None:
        raise NoCredentialsError

    provider._ec2.meta.events.register_first("before-send.ec2.CreateRoute", no_credentials)

    (result,) = provider.create_routes(table, [a_route("10.244.1.0/24", instance)])

    assert result.outcome is Outcome.FATAL
    assert "credentials" in result.message
