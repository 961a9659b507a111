"""ApiServerGate's decisions and caches, against an in-memory stand-in for the two review APIs (the
real API server answers them in tests/e2e/test_metrics_access_e2e.py)."""

from __future__ import annotations

from typing import Any

import pytest

from routectl.access import Verdict
from routectl.cluster import ClusterError
from routectl.kube.authn import ACCESS_REVIEWS, TOKEN_REVIEWS, ApiServerGate

USERS = {
    "scraper-token": {
        "username": "system:serviceaccount:monitoring:prometheus",
        "uid": "u1",
        "groups": ["system:serviceaccounts"],
        "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
    },
    "stranger-token": {"username": "system:serviceaccount:default:nobody", "uid": "u2"},
}
ALLOWED = {"system:serviceaccount:monitoring:prometheus"}


class Reviews:
    """Answers TokenReviews from USERS and SubjectAccessReviews from ALLOWED; counts the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failing = False

    def create_review(self, collection: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.calls.append((collection, body))
        assert timeout_s == 3.0
        if self.failing:
            raise ClusterError("POST tokenreviews: connection refused")
        if collection == TOKEN_REVIEWS:
            user = USERS.get(body["spec"]["token"])
            return {"status": {"authenticated": True, "user": user} if user else {"authenticated": False}}
        assert collection == ACCESS_REVIEWS
        return {"status": {"allowed": body["spec"]["user"] in ALLOWED}}

    def count(self, collection: str) -> int:
        return sum(1 for c, _ in self.calls if c == collection)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world() -> tuple[ApiServerGate, Reviews, Clock]:
    reviews, clock = Reviews(), Clock()
    gate = ApiServerGate(reviews, timeout_s=3.0, clock=clock, capacity=4)  # type: ignore[arg-type]
    return gate, reviews, clock


def test_tokens_map_onto_401_403_200(world: tuple[ApiServerGate, Reviews, Clock]) -> None:
    gate, reviews, _ = world
    assert gate.admit("bogus", "get", "/metrics") is Verdict.UNAUTHENTICATED
    assert gate.admit("stranger-token", "get", "/metrics") is Verdict.FORBIDDEN
    assert gate.admit("scraper-token", "get", "/metrics") is Verdict.ALLOWED
    assert reviews.count(ACCESS_REVIEWS) == 2  # nobody asks whether an unknown token may do anything


def test_the_access_review_names_the_reviewed_user_and_the_non_resource_url(
    world: tuple[ApiServerGate, Reviews, Clock],
) -> None:
    gate, reviews, _ = world
    gate.admit("scraper-token", "get", "/metrics")
    (spec,) = [body["spec"] for c, body in reviews.calls if c == ACCESS_REVIEWS]
    assert spec == {
        "user": "system:serviceaccount:monitoring:prometheus",
        "uid": "u1",
        "groups": ["system:serviceaccounts"],
        "extra": {"authentication.kubernetes.io/pod-name": ["p"]},
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
    }


def test_answers_are_cached_for_controller_runtimes_ttls(world: tuple[ApiServerGate, Reviews, Clock]) -> None:
    gate, reviews, clock = world
    for _ in range(3):
        gate.admit("scraper-token", "get", "/metrics")
        gate.admit("stranger-token", "get", "/metrics")
    assert (reviews.count(TOKEN_REVIEWS), reviews.count(ACCESS_REVIEWS)) == (2, 2)
    clock.now += 31  # the denial expires (30 s), the token reviews and the allowance do not
    gate.admit("scraper-token", "get", "/metrics")
    gate.admit("stranger-token", "get", "/metrics")
    assert (reviews.count(TOKEN_REVIEWS), reviews.count(ACCESS_REVIEWS)) == (2, 3)
    clock.now += 30  # 61 s: the token reviews expire (1 min); the allowance (5 min) does not
    gate.admit("scraper-token", "get", "/metrics")
    assert (reviews.count(TOKEN_REVIEWS), reviews.count(ACCESS_REVIEWS)) == (3, 3)
    clock.now += 240  # past 5 min: asked again
    gate.admit("scraper-token", "get", "/metrics")
    assert reviews.count(ACCESS_REVIEWS) == 4


def test_an_unreachable_api_server_is_500_and_is_not_remembered(
    world: tuple[ApiServerGate, Reviews, Clock],
) -> None:
    gate, reviews, _ = world
    reviews.failing = True
    assert gate.admit("scraper-token", "get", "/metrics") is Verdict.UNAVAILABLE
    reviews.failing = False
    assert gate.admit("scraper-token", "get", "/metrics") is Verdict.ALLOWED


def test_many_distinct_tokens_keep_the_cache_bounded(world: tuple[ApiServerGate, Reviews, Clock]) -> None:
    gate, reviews, _ = world
    for i in range(10):
        assert gate.admit(f"forged-{i}", "get", "/metrics") is Verdict.UNAUTHENTICATED
    assert gate.admit("forged-0", "get", "/metrics") is Verdict.UNAUTHENTICATED
    assert reviews.count(TOKEN_REVIEWS) == 11  # forged-0 was pushed out by the capacity of 4


def test_the_token_cache_holds_a_hash_not_the_token(world: tuple[ApiServerGate, Reviews, Clock]) -> None:
    gate, _, _ = world
    gate.admit("scraper-token", "get", "/metrics")
    keys = list(gate._users._items)
    assert len(keys) == 1
    assert "scraper-token" not in str(keys)
