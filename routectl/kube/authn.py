"""The API server decides who may read routectl's metrics, as it does for its own delegated endpoints
(kube-apiserver's webhook authn/authz; controller-runtime's metrics filter): the bearer token through a
TokenReview, then the reviewed user's right to the verb on the path through a SubjectAccessReview on the
non-resource URL.

Invariants: answers are cached with controller-runtime's TTLs (token 1 min; allowed 5 min, denied 30 s)
in bounded maps keyed by a SHA-256 of the token, so no raw token is kept and a flood of distinct tokens
cannot grow memory; an API failure is UNAVAILABLE and never cached; every review has its own timeout.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from routectl.access import Verdict
from routectl.cluster import ClusterError
from routectl.kube.client import KubeCluster

log = logging.getLogger(__name__)

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class User:
    """A TokenReview's `status.user`: what a SubjectAccessReview must be asked about."""

    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)


class _Expiring(Generic[T]):
    """A bounded map whose entries expire: least recently used out first when full."""

    def __init__(self, capacity: int, clock: Callable[[], float]) -> None:
        self._capacity = capacity
        self._clock = clock
        self._items: OrderedDict[object, tuple[float, T]] = OrderedDict()

    def get(self, key: object) -> tuple[bool, T | None]:
        found = self._items.get(key)
        if found is None or found[0] <= self._clock():
            self._items.pop(key, None)
            return False, None
        self._items.move_to_end(key)
        return True, found[1]

    def put(self, key: object, value: T, ttl_s: float) -> None:
        self._items[key] = (self._clock() + ttl_s, value)
        self._items.move_to_end(key)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)


class ApiServerGate:
    """`routectl.access.Gate` backed by the API server; thread-safe (the metrics server is threaded)."""

    def __init__(
        self,
        cluster: KubeCluster,
        *,
        timeout_s: float = 10.0,
        token_ttl_s: float = 60.0,
        allowed_ttl_s: float = 300.0,
        denied_ttl_s: float = 30.0,
        capacity: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cluster = cluster
        self._timeout_s = timeout_s
        self._token_ttl_s = token_ttl_s
        self._allowed_ttl_s = allowed_ttl_s
        self._denied_ttl_s = denied_ttl_s
        self._lock = threading.Lock()
        self._users: _Expiring[User | None] = _Expiring(capacity, clock)
        self._decisions: _Expiring[bool] = _Expiring(capacity, clock)

    def admit(self, token: str, verb: str, path: str) -> Verdict:
        try:
            user = self._authenticate(hashlib.sha256(token.encode()).hexdigest(), token)
            if user is None:
                return Verdict.UNAUTHENTICATED
            allowed = self._authorize(user, verb, path)
        except ClusterError as err:
            log.warning("metrics access review failed", extra={"op": "review", "error": str(err)})
            return Verdict.UNAVAILABLE
        if not allowed:
            log.debug("metrics access denied", extra={"op": "review", "outcome": user.name})
        return Verdict.ALLOWED if allowed else Verdict.FORBIDDEN

    def _authenticate(self, key: str, token: str) -> User | None:
        with self._lock:
            cached, user = self._users.get(key)
        if cached:
            return user
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        status = self._cluster.create_review(TOKEN_REVIEWS, body, self._timeout_s).get("status") or {}
        user = _user(status.get("user") or {}) if status.get("authenticated") else None
        with self._lock:
            self._users.put(key, user, self._token_ttl_s)
        return user

    def _authorize(self, user: User, verb: str, path: str) -> bool:
        key = (user.name, user.uid, user.groups, tuple(sorted(user.extra.items())), verb, path)
        with self._lock:
            cached, allowed = self._decisions.get(key)
        if cached:
            return bool(allowed)
        spec = {
            "user": user.name,
            "uid": user.uid,
            "groups": list(user.groups),
            "extra": {k: list(v) for k, v in user.extra.items()},
            "nonResourceAttributes": {"path": path, "verb": verb},
        }
        body = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
        status = self._cluster.create_review(ACCESS_REVIEWS, body, self._timeout_s).get("status") or {}
        allowed = bool(status.get("allowed")) and not status.get("denied")
        with self._lock:
            self._decisions.put(key, allowed, self._allowed_ttl_s if allowed else self._denied_ttl_s)
        return allowed


def _user(raw: Mapping[str, object]) -> User:
    groups = raw.get("groups")
    extra = raw.get("extra")
    return User(
        name=str(raw.get("username", "")),
        uid=str(raw.get("uid", "")),
        groups=tuple(str(g) for g in groups) if isinstance(groups, list) else (),
        extra={str(k): tuple(str(x) for x in v) for k, v in extra.items() if isinstance(v, list)}
        if isinstance(extra, dict)
        else {},
    )
