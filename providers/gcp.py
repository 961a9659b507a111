"""GCP adapter: one static route per node podCIDR in the cluster's VPC network (google-cloud-compute).

Invariants:
- A listed route is owned only when its name carries this cluster's prefix (`<prefix>-<node-uid>`,
  `-v6` appended for IPv6) AND its description names this cluster; writes only ever name routes under
  the prefix and a delete refuses a route listed as not owned, so another cluster's or a legacy
  `k8s-node-route` route (which may carry the prefix) is never touched by create/replace/delete.
- Adoption (`adopt_routes`) touches only a route listed as adoptable: description `k8s-node-route`
  and name `<cluster name cut to 26>-…`, as the Kubernetes GCE provider (legacy-cloud-providers
  gce_routes.go) names the routes of its cluster; it re-reads that route, inserts the owned route,
  awaits it, and only then deletes the legacy one — the destination is routed throughout. When the
  owned name equals the legacy name (same cluster name, same node uid) the owned route is inserted
  as `<prefix>-<uid>-a` (IPv4 only, as legacy routes are).
- Every insert/delete is a global operation: a call submits all its writes first, then polls their
  operations together with capped, jittered backoff, so one call costs about one operation's latency.
- No google-api-core, google-auth or requests exception leaves this module: reads raise the
  `providers.errors` taxonomy, writes report a per-route `Outcome`.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import ipaddress
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import google.auth
import requests
from google.api_core import exceptions as api_exceptions
from google.api_core.client_options import ClientOptions
from google.auth import credentials as auth_credentials
from google.auth import exceptions as auth_exceptions
from google.cloud import compute_v1
from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    stop_when_event_set,
    wait_exponential_jitter,
)

from providers.diagnosis import failed, passed, quota_checks, warned
from providers.errors import (
    ConfigurationError,
    Conflict,
    Fatal,
    InvalidProviderID,
    NotFound,
    OutsideNetwork,
    ProviderError,
    QuotaExceeded,
    Throttled,
    Transient,
)
from providers.model import (
    CallObserver,
    Check,
    DiagnosisScope,
    Limits,
    Network,
    Outcome,
    Route,
    RouteResult,
    RouteState,
    Target,
    WriteGuard,
    no_guard,
)
from providers.specs.gcp import LIMITS, GcpConfig

T = TypeVar("T")

MAX_NAME = 63
UID_LENGTH = 36
IPV6_SUFFIX = "-v6"
PREFIX_LENGTH = MAX_NAME - 1 - UID_LENGTH - len(IPV6_SUFFIX)
"""23: the cluster part of a route name, so `<prefix>-<uid>-v6` still fits in 63 characters."""
DESCRIPTION = "routectl: cluster={cluster} node={node}"
LEGACY_DESCRIPTION = "k8s-node-route"
"""The description the Kubernetes GCE provider gives every node route it makes."""
LEGACY_CLUSTER_LENGTH = 26
"""gce_routes.go `truncateClusterName`: its route names start with the cluster name cut to 26."""
ADOPTED_SUFFIX = "-a"
PAGE_SIZE = 500

_API_ROOT = "https://www.googleapis.com/compute/v1/"
_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_DESCRIPTION = re.compile(r"routectl: cluster=(?P<cluster>\S+) node=(?P<node>\S*)")
_PROVIDER_ID = re.compile(r"gce://(?P<project>[^/]+)/(?P<zone>[^/]+)/(?P<name>[^/]+)")
_INSTANCE_URL = re.compile(
    r"(?:.*/)?projects/(?P<project>[^/]+)/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)"
)
_UID = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_THROTTLE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})
_QUOTA_REASONS = frozenset({"quotaExceeded", "QUOTA_EXCEEDED"})
_EXISTS_REASONS = frozenset({"alreadyExists", "RESOURCE_ALREADY_EXISTS"})
_NOT_READY_REASONS = frozenset({"resourceNotReady", "RESOURCE_NOT_READY"})
_BLACKHOLE_WARNING = "NEXT_HOP_INSTANCE_NOT_FOUND"
_SDK_ERRORS = (api_exceptions.GoogleAPIError, auth_exceptions.GoogleAuthError, requests.RequestException)


@dataclass(frozen=True, slots=True)
class Polling:
    """How long to wait for operations, and how often to look; `call_timeout` bounds every request."""

    initial: float = 0.2
    maximum: float = 2.0
    timeout: float = 180.0
    call_timeout: float = 30.0


def cluster_prefix(cluster_name: str) -> str:
    """The cluster part of route names: lowercase, RFC 1035, starts with a letter, ≤ 23 chars."""
    cleaned = re.sub(r"[^a-z0-9-]", "-", cluster_name.lower())
    if not cleaned[:1].isalpha():
        cleaned = "c" + cleaned
    prefix = cleaned[:PREFIX_LENGTH].rstrip("-")
    if not prefix:
        raise ConfigurationError(f"cluster name {cluster_name!r}: cannot derive a GCE route name prefix")
    return prefix


def route_name(prefix: str, node_uid: str, destination: Network) -> str:
    """`<prefix>-<node-uid>` for IPv4, `<prefix>-<node-uid>-v6` for IPv6: one name per (node, family)."""
    uid = node_uid.lower()
    if len(uid) > UID_LENGTH or _UID.fullmatch(uid) is None:
        raise ValueError(f"node uid {node_uid!r} cannot form a GCE route name")
    return f"{prefix}-{uid}{IPV6_SUFFIX if destination.version == 6 else ''}"


class _Kind(enum.Enum):
    THROTTLED = "throttled"
    TRANSIENT = "transient"
    QUOTA = "quota"
    NOT_FOUND = "not_found"
    EXISTS = "exists"
    FATAL = "fatal"


_OUTCOMES = {
    _Kind.THROTTLED: Outcome.RETRY,
    _Kind.TRANSIENT: Outcome.RETRY,
    _Kind.QUOTA: Outcome.QUOTA_EXCEEDED,
    _Kind.NOT_FOUND: Outcome.FATAL,
    _Kind.EXISTS: Outcome.CONFLICT,
    _Kind.FATAL: Outcome.FATAL,
}
_ERRORS: dict[_Kind, type[ProviderError]] = {
    _Kind.THROTTLED: Throttled,
    _Kind.TRANSIENT: Transient,
    _Kind.QUOTA: QuotaExceeded,
    _Kind.NOT_FOUND: NotFound,
    _Kind.EXISTS: Conflict,
    _Kind.FATAL: Fatal,
}


@dataclass(frozen=True, slots=True)
class _Failure:
    kind: _Kind
    message: str


def _classify(status: int | None, reasons: Sequence[str], message: str) -> _Failure:
    """One rule for both synchronous HTTP errors and errors reported in a DONE operation."""
    found = set(reasons)
    if found & _THROTTLE_REASONS or status == 429:
        return _Failure(_Kind.THROTTLED, message)
    if found & _QUOTA_REASONS:
        return _Failure(_Kind.QUOTA if "ROUTES" in message else _Kind.THROTTLED, message)
    if found & _EXISTS_REASONS or status == 409:
        return _Failure(_Kind.EXISTS, message)
    if status == 404 or "notFound" in found or "RESOURCE_NOT_FOUND" in found:
        return _Failure(_Kind.NOT_FOUND, message)
    if status is None or status >= 500 or found & _NOT_READY_REASONS:
        return _Failure(_Kind.TRANSIENT, message)
    return _Failure(_Kind.FATAL, message)


def _failure_of(exc: BaseException) -> _Failure:
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        reasons = [str(e.get("reason", "")) for e in exc.errors if isinstance(e, dict)]
        status = exc.code if isinstance(exc.code, int) else None
        return _classify(status, reasons, f"{status} {exc.message}")
    if isinstance(exc, auth_exceptions.TransportError | requests.RequestException):
        return _Failure(_Kind.TRANSIENT, f"{type(exc).__name__}: {exc}")
    return _Failure(_Kind.FATAL, f"{type(exc).__name__}: {exc}")


def _code_of(exc: BaseException) -> str:
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        reasons = [str(e.get("reason", "")) for e in exc.errors if isinstance(e, dict)]
        return next((r for r in reasons if r), str(exc.code))
    return type(exc).__name__


def _operation_failure(op: compute_v1.Operation) -> _Failure | None:
    """None when the operation succeeded (or is still running); its error otherwise."""
    errors = list(op.error.errors) if op.error else []
    if not errors and not op.http_error_status_code:
        return None
    codes = [e.code for e in errors]
    message = "; ".join(e.message for e in errors) or op.http_error_message
    return _classify(op.http_error_status_code or None, codes, f"operation {op.name}: {message}")


class _StillRunning(Exception):
    pass


@dataclass(frozen=True, slots=True)
class _Write:
    """One insert (`body` set) or delete (`body` None) of the route called `name`."""

    name: str
    body: compute_v1.Route | None = None


@dataclass(frozen=True, slots=True)
class _Clients:
    routes: compute_v1.RoutesClient
    operations: compute_v1.GlobalOperationsClient
    instances: compute_v1.InstancesClient
    networks: compute_v1.NetworksClient
    projects: compute_v1.ProjectsClient
    account: str = ""
    """The credentials' service account ("" when they name none: user or anonymous credentials)."""

    @classmethod
    def connect(cls, endpoint: str) -> _Clients:
        """ADC by default; an endpoint override (emulator) gets anonymous REST clients.

        Operations are polled through `operations`, built with the same options, instead of the
        ExtendedOperation poller the SDK would build itself against the default endpoint.
        """
        options = ClientOptions(api_endpoint=endpoint) if endpoint else None
        creds: auth_credentials.Credentials = (
            auth_credentials.AnonymousCredentials()  # type: ignore[no-untyped-call]
            if endpoint
            else google.auth.default(scopes=[_SCOPE])[0]
        )
        return cls(
            routes=compute_v1.RoutesClient(credentials=creds, client_options=options, transport="rest"),
            operations=compute_v1.GlobalOperationsClient(
                credentials=creds, client_options=options, transport="rest"
            ),
            instances=compute_v1.InstancesClient(credentials=creds, client_options=options, transport="rest"),
            networks=compute_v1.NetworksClient(credentials=creds, client_options=options, transport="rest"),
            projects=compute_v1.ProjectsClient(credentials=creds, client_options=options, transport="rest"),
            account=str(getattr(creds, "service_account_email", "") or ""),
        )

    def close(self) -> None:
        for client in (self.routes, self.operations, self.instances, self.networks, self.projects):
            client.transport.close()  # type: ignore[no-untyped-call]


class GcpProvider:
    """RouteProvider for one VPC network of one project (the only "table")."""

    name = "gcp"

    def __init__(self, config: GcpConfig, clients: _Clients, polling: Polling = Polling()) -> None:
        self._config = config
        self._project = config.project
        self._network = config.network.rsplit("/", 1)[-1]
        self._prefix = cluster_prefix(config.common.cluster_name)
        self._legacy_prefix = config.common.cluster_name[:LEGACY_CLUSTER_LENGTH] + "-"
        self._clients = clients
        self._polling = polling
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._link_lock = threading.Lock()
        self._network_link = ""
        self._forwarding: set[Target] = set()
        self._observers: list[CallObserver] = []
        self._write_guard: WriteGuard = no_guard

    @property
    def limits(self) -> Limits:
        return self._config.common.limits(LIMITS)

    # -- reads -----------------------------------------------------------------------------------

    def tables(self) -> Sequence[str]:
        self._link()
        return [self._network]

    def list_routes(self, table: str) -> list[Route]:
        request = compute_v1.ListRoutesRequest(
            project=self._project,
            filter=f'network = "{self._link(table)}"',
            max_results=PAGE_SIZE,
        )

        def fetch() -> list[Route]:
            pager = self._clients.routes.list(request=request, retry=None, timeout=self._polling.call_timeout)
            return [route for item in pager if (route := self._to_route(item)) is not None]

        return self._read(f"list routes of network {table}", "routes.list", fetch)

    def _link(self, table: str | None = None) -> str:
        """The network's selfLink, looked up once; a missing network is a configuration error."""
        if table is not None and table != self._network:
            raise ConfigurationError(f"table {table!r}: the gcp provider manages network {self._network!r}")
        with self._link_lock:  # one lookup even when many workers start at once
            if not self._network_link:
                self._network_link = self._fetch_link()
            return self._network_link

    def _fetch_link(self) -> str:
        what = f"network {self._network!r} in project {self._project!r}"
        try:
            network = self._read(
                f"get {what}",
                "networks.get",
                lambda: self._clients.networks.get(
                    project=self._project, network=self._network, timeout=self._polling.call_timeout
                ),
            )
        except NotFound:
            raise ConfigurationError(f"network: {what} does not exist") from None
        return network.self_link

    def _read(self, what: str, api: str, call: Callable[[], T]) -> T:
        try:
            return self._call(api, call)
        except _SDK_ERRORS as exc:
            failure = _failure_of(exc)
            raise _ERRORS[failure.kind](f"{what}: {failure.message}") from None

    def _to_route(self, item: compute_v1.Route) -> Route | None:
        try:
            destination: Network = ipaddress.ip_network(item.dest_range)
        except ValueError:
            return None
        owner = _DESCRIPTION.fullmatch(item.description)
        owned = item.name.startswith(self._prefix + "-") and (
            owner is not None and owner["cluster"] == self._config.common.cluster_name
        )
        hop = _INSTANCE_URL.fullmatch(item.next_hop_instance)
        gone = any(w.code == _BLACKHOLE_WARNING for w in item.warnings)
        target = None if hop is None or gone else Target(hop["name"], hop["zone"], hop["project"])
        uid = item.name.removeprefix(self._prefix + "-").removesuffix(IPV6_SUFFIX) if owned else ""
        legacy = item.description == LEGACY_DESCRIPTION and item.name.startswith(self._legacy_prefix)
        return Route(
            destination=destination,
            target=target,
            owned=owned,
            state=RouteState.BLACKHOLE if gone else RouteState.ACTIVE,
            node=owner["node"] if owned and owner is not None else "",
            node_uid=uid.removesuffix(ADOPTED_SUFFIX),
            cloud_id=item.name,
            next_hop=_next_hop(item),
            adoptable=legacy and not owned and target is not None,
        )

    # -- writes ----------------------------------------------------------------------------------

    def create_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        self._link(table)
        results: list[RouteResult | None] = [None] * len(routes)
        writes: dict[int, _Write] = {}
        for i, route in enumerate(routes):
            try:
                writes[i] = self._insert_of(route)
            except ValueError as exc:
                results[i] = RouteResult(route, Outcome.FATAL, str(exc))
        for i, failure in self._run(writes).items():
            route = routes[i]
            if failure is not None and failure.kind is _Kind.EXISTS:
                results[i] = self._settle_existing(route, writes[i])
            else:
                results[i] = _result(route, failure)
        return [r for r in results if r is not None]

    def replace_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        """Delete each route's current cloud route (its `cloud_id`, or its own name), then insert it."""
        results, failures = self._delete_all(table, routes, owned_only=False)
        for i, failure in failures.items():
            if failure is not None and failure.kind is not _Kind.NOT_FOUND:
                results[i] = _result(routes[i], failure)
        pending = [i for i, r in enumerate(results) if r is None]
        created = self.create_routes(table, [routes[i] for i in pending])
        for i, result in zip(pending, created, strict=True):
            results[i] = result
        return [r for r in results if r is not None]

    def _delete_all(
        self, table: str, routes: Sequence[Route], *, owned_only: bool
    ) -> tuple[list[RouteResult | None], dict[int, _Failure | None]]:
        """Delete each route's cloud route (its `cloud_id`, or its own name) and await them all; a route
        that cannot be named is FATAL at once, and with `owned_only` one listed as not owned is a
        CONFLICT (a legacy route may carry our prefix). Returns the settled results and the deletes'
        failures."""
        self._link(table)
        results: list[RouteResult | None] = [None] * len(routes)
        deletes: dict[int, _Write] = {}
        for i, route in enumerate(routes):
            try:
                write = self._delete_of(route.cloud_id or self._name_of(route))
            except ValueError as exc:
                results[i] = RouteResult(route, Outcome.FATAL, str(exc))
                continue
            if owned_only and not route.owned:
                owner = self._config.common.cluster_name
                message = f"refusing to delete route {write.name}: not owned by cluster {owner!r}"
                results[i] = RouteResult(route, Outcome.CONFLICT, message)
            else:
                deletes[i] = write
        return results, self._run(deletes)

    def delete_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        results, failures = self._delete_all(table, routes, owned_only=True)
        for i, failure in failures.items():
            gone = failure is not None and failure.kind is _Kind.NOT_FOUND
            results[i] = RouteResult(routes[i], Outcome.ALREADY_DONE) if gone else _result(routes[i], failure)
        return [r for r in results if r is not None]

    def adopt_routes(self, table: str, routes: Sequence[Route]) -> list[RouteResult]:
        """Each legacy route (`cloud_id`) is re-read and checked adoptable at the route's destination
        and target; then the owned routes are inserted and awaited together, and only the legacy routes
        whose owned route stands are deleted."""
        self._link(table)
        results: list[RouteResult | None] = [None] * len(routes)
        inserts: dict[int, _Write] = {}
        for i, route in enumerate(routes):
            refused = self._unadoptable(route)
            if refused:
                results[i] = RouteResult(route, Outcome.CONFLICT, refused)
                continue
            try:
                inserts[i] = self._insert_of(route, adopting=route.cloud_id)
            except ValueError as exc:
                results[i] = RouteResult(route, Outcome.FATAL, str(exc))
        standing: dict[int, _Write] = {}
        for i, failure in self._run(inserts).items():
            exists = failure is not None and failure.kind is _Kind.EXISTS
            created = self._settle_existing(routes[i], inserts[i]) if exists else _result(routes[i], failure)
            if created.outcome.succeeded:
                standing[i] = _Write(routes[i].cloud_id)
            else:
                results[i] = created
        for i, failure in self._run(standing).items():
            gone = failure is None or failure.kind is _Kind.NOT_FOUND
            owned = dataclasses.replace(routes[i], cloud_id=inserts[i].name)
            message = f"adopted {routes[i].cloud_id}"
            results[i] = RouteResult(owned, Outcome.OK, message) if gone else _result(routes[i], failure)
        return [r for r in results if r is not None]

    def _unadoptable(self, route: Route) -> str:
        """Why the listed route `route.cloud_id` may not be adopted for `route` ("" when it may)."""
        if not route.cloud_id:
            return f"route {route.destination}: no legacy route named to adopt"
        try:
            item = self._read(
                f"get route {route.cloud_id}",
                "routes.get",
                lambda: self._clients.routes.get(
                    project=self._project, route=route.cloud_id, timeout=self._polling.call_timeout
                ),
            )
        except ProviderError as exc:
            return str(exc)
        legacy = self._to_route(item)
        qualified = self._qualified(route.target) if route.target is not None else None
        if legacy is None or not legacy.adoptable:
            return f"route {route.cloud_id} is not a {LEGACY_DESCRIPTION} route of this cluster"
        if legacy.destination != route.destination or legacy.target != qualified:
            return f"route {route.cloud_id} routes {legacy.destination} via {legacy.next_hop}, not as asked"
        return ""

    def _name_of(self, route: Route) -> str:
        return route_name(self._prefix, route.node_uid, route.destination)

    def _insert_of(self, route: Route, adopting: str = "") -> _Write:
        """The insert of `route`; when `adopting` (a legacy route's name) is the owned name itself, the
        owned route takes the adopted name, so both stand until the legacy one is deleted."""
        if route.target is None:
            raise ValueError(f"route {route.destination} for node {route.node!r} has no target instance")
        name = self._name_of(route)
        if name == adopting:
            name += ADOPTED_SUFFIX
        target = self._qualified(route.target)
        body = compute_v1.Route(
            name=name,
            description=DESCRIPTION.format(cluster=self._config.common.cluster_name, node=route.node),
            network=self._network_link,
            dest_range=str(route.destination),
            priority=self._config.route_priority,
            next_hop_instance=f"projects/{target.project}/zones/{target.zone}/instances/{target.instance}",
        )
        return _Write(name, body)

    def _delete_of(self, name: str) -> _Write:
        if not name.startswith(self._prefix + "-"):
            raise ValueError(f"route {name!r} does not carry this cluster's prefix {self._prefix!r}-")
        return _Write(name)

    def _qualified(self, target: Target) -> Target:
        return Target(target.instance, target.zone, target.project or self._project)

    def _settle_existing(self, route: Route, write: _Write) -> RouteResult:
        """A 409 on insert: ours with the same next hop is done, ours with another is replaced."""
        try:
            item = self._read(
                f"get route {write.name}",
                "routes.get",
                lambda: self._clients.routes.get(
                    project=self._project, route=write.name, timeout=self._polling.call_timeout
                ),
            )
        except NotFound:
            return RouteResult(route, Outcome.RETRY, f"route {write.name} is being created or deleted")
        except ProviderError as exc:
            return RouteResult(route, Outcome.RETRY, str(exc))
        existing = self._to_route(item)
        if existing is None or not existing.owned:
            return RouteResult(
                route,
                Outcome.CONFLICT,
                f"route name {write.name} is taken by a route not owned by cluster "
                f"{self._config.common.cluster_name!r} (description {item.description!r})",
            )
        assert route.target is not None  # _insert_of checked it
        if existing.destination == route.destination and existing.target == self._qualified(route.target):
            return RouteResult(route, Outcome.ALREADY_DONE)
        for step in (self._delete_of(write.name), write):
            failure = self._run({0: step})[0]
            if failure is not None and not (step.body is None and failure.kind is _Kind.NOT_FOUND):
                return _result(route, failure)
        return RouteResult(route, Outcome.OK, f"replaced {existing.next_hop or 'its next hop'}")

    def _run(self, writes: dict[int, _Write]) -> dict[int, _Failure | None]:
        """Submit every write, then await the operations together; None = the write took effect."""
        done: dict[int, _Failure | None] = {}
        running: dict[int, str] = {}
        for i, write in writes.items():
            try:
                op = self._submit(write)
            except _SDK_ERRORS as exc:
                done[i] = _failure_of(exc)
                continue
            if op.status == compute_v1.Operation.Status.DONE:
                done[i] = _operation_failure(op)
            else:
                running[i] = op.name
        done.update(self._await(running))
        return done

    def _submit(self, write: _Write) -> compute_v1.Operation:
        routes, timeout = self._clients.routes, self._polling.call_timeout
        self._write_guard()
        if write.body is None:
            return self._call(
                "routes.delete",
                lambda: routes.delete_unary(
                    project=self._project, route=write.name, retry=None, timeout=timeout
                ),
            )
        body = write.body
        return self._call(
            "routes.insert",
            lambda: routes.insert_unary(
                project=self._project, route_resource=body, retry=None, timeout=timeout
            ),
        )

    def _call(self, api: str, call: Callable[[], T]) -> T:
        """Every SDK request goes through here, so observers see each one with its code and duration."""
        begun, code = time.monotonic(), "200"
        try:
            return call()
        except _SDK_ERRORS as exc:
            code = _code_of(exc)
            raise
        finally:
            with self._lock:
                observers = tuple(self._observers)
            for observer in observers:
                observer(api, code, time.monotonic() - begun)

    def guard_writes(self, guard: WriteGuard) -> None:
        self._write_guard = guard

    def observe(self, observer: CallObserver) -> None:
        """Report every API call (compute API name, HTTP status or error reason, seconds)."""
        with self._lock:
            self._observers.append(observer)

    def _await(self, running: dict[int, str]) -> dict[int, _Failure | None]:
        """Poll the running operations with backoff until all are DONE, the deadline, or close()."""
        done: dict[int, _Failure | None] = {}

        def poll() -> None:
            for i, name in list(running.items()):
                try:
                    op = self._call(
                        "globalOperations.get",
                        functools.partial(
                            self._clients.operations.get,
                            project=self._project,
                            operation=name,
                            retry=None,
                            timeout=self._polling.call_timeout,
                        ),
                    )
                except _SDK_ERRORS as exc:
                    failure = _failure_of(exc)
                    if failure.kind in (_Kind.THROTTLED, _Kind.TRANSIENT):
                        break  # look again after the next backoff
                    # Failing to read the operation says nothing about the write itself (a 404 here
                    # is the operation, not the route): its outcome is unknown, so it is retried.
                    done[i] = _Failure(_Kind.TRANSIENT, f"cannot read operation {name}: {failure.message}")
                    del running[i]
                    continue
                if op.status == compute_v1.Operation.Status.DONE:
                    done[i] = _operation_failure(op)
                    del running[i]
            if running:
                raise _StillRunning

        policy = self._polling
        retrying = Retrying(
            retry=retry_if_exception_type(_StillRunning),
            wait=wait_exponential_jitter(initial=policy.initial, max=policy.maximum, jitter=policy.initial),
            stop=stop_after_delay(policy.timeout) | stop_when_event_set(self._closed),
            sleep=self._nap,
        )
        if running:
            self._nap(policy.initial)  # an operation is never done the instant it is accepted
        try:
            retrying(poll)
        except RetryError:
            why = "provider closed" if self._closed.is_set() else f"not done after {policy.timeout:.0f}s"
            for i, name in running.items():
                done[i] = _Failure(_Kind.TRANSIENT, f"operation {name} {why}")
        return done

    def _nap(self, seconds: float) -> None:
        self._closed.wait(seconds)

    # -- targets ---------------------------------------------------------------------------------

    def target_for(self, provider_id: str) -> Target:
        match = _PROVIDER_ID.fullmatch(provider_id)
        if match is None:
            raise InvalidProviderID(
                f"providerID {provider_id!r}: expected gce://<project>/<zone>/<instance-name>"
            )
        return Target(instance=match["name"], zone=match["zone"], project=match["project"])

    def prepare_target(self, target: Target) -> None:
        """Verify the instance has a NIC in the managed network (else `OutsideNetwork`) and
        `canIpForward`; neither can be changed on a running VM, so only reads happen here."""
        target = self._qualified(target)
        managed = self._link()
        with self._lock:
            if target in self._forwarding:
                return
        instance = self._get_instance(target)
        networks = [nic.network for nic in instance.network_interfaces]
        if not any(_same_network(n, managed) for n in networks):
            shown = ", ".join(n.removeprefix(_API_ROOT) for n in networks)
            raise OutsideNetwork(str(target), shown, managed.removeprefix(_API_ROOT))
        if not instance.can_ip_forward:
            raise Fatal(
                f"instance {target} has canIpForward=false; it cannot be changed on a running VM: "
                "recreate the instance/template with --can-ip-forward"
            )
        with self._lock:
            self._forwarding.add(target)

    # -- doctor --------------------------------------------------------------------------------------

    def diagnose(self, scope: DiagnosisScope) -> list[Check]:
        """Identity, why permissions are not proven, the network, each node instance's NIC in it and
        canIpForward, and the project's ROUTES quota headroom. Reads only."""
        checks = [self._identity(), self._permissions()]
        try:
            link = self._link()
        except ProviderError as err:
            return [*checks, failed(self.name, "network", str(err), "fix --network / --project")]
        checks.append(passed(self.name, "network", f"network {link.removeprefix(_API_ROOT)}"))
        instances = {t: self._instance(t) for t in map(self._qualified, scope.targets)}
        checks.append(self._associations(link, instances))
        checks += [self._forwarding_check(t, i) for t, i in instances.items()]
        return checks + self._quota(scope)

    def _identity(self) -> Check:
        if self._clients.account:
            return passed(self.name, "identity", f"calling as {self._clients.account}")
        found = "the credentials name no service account (user or anonymous credentials, or an emulator)"
        return warned(
            self.name, "identity", found, "run as a service account (Workload Identity, docs/gcp.md)"
        )

    def _permissions(self) -> Check:
        found = (
            "not proven: Compute has no dry run, and routes are checked against the project, whose "
            "testIamPermissions is Resource Manager's (an API routectl neither needs nor is granted)"
        )
        fix = "grant docs/gcp.md's role; a denied first write shows as a FailedToCreateRoute Event"
        return warned(self.name, "permissions", found, fix)

    def _get_instance(self, target: Target) -> compute_v1.Instance:
        return self._read(
            f"get instance {target}",
            "instances.get",
            lambda: self._clients.instances.get(
                project=target.project,
                zone=target.zone,
                instance=target.instance,
                timeout=self._polling.call_timeout,
            ),
        )

    def _instance(self, target: Target) -> compute_v1.Instance | ProviderError:
        """The instance, or why it could not be read (doctor reports each instance apart)."""
        try:
            return self._get_instance(target)
        except ProviderError as err:
            return err

    def _associations(self, link: str, instances: dict[Target, compute_v1.Instance | ProviderError]) -> Check:
        outside = [
            f"{t}: {i}" if isinstance(i, ProviderError) else f"{t} (NICs in {_networks(i)})"
            for t, i in instances.items()
            if isinstance(i, ProviderError)
            or not any(_same_network(n.network, link) for n in i.network_interfaces)
        ]
        if outside:
            fix = f"run the nodes with a NIC in {link.removeprefix(_API_ROOT)}, or set --network to theirs"
            return failed(self.name, "associations", "; ".join(outside[:5]), fix)
        return passed(self.name, "associations", f"all {len(instances)} node instance(s) have a NIC in it")

    def _forwarding_check(self, target: Target, instance: compute_v1.Instance | ProviderError) -> Check:
        name = f"can-ip-forward {target}"
        if isinstance(instance, ProviderError):
            return failed(self.name, name, str(instance), "check the node's providerID")
        if instance.can_ip_forward:
            return passed(self.name, name, f"{target}: canIpForward=true")
        fix = (
            "recreate the instance (or its template) with --can-ip-forward; it cannot change on a running VM"
        )
        return failed(self.name, name, f"{target}: canIpForward=false: GCE drops its pods' traffic", fix)

    def _quota(self, scope: DiagnosisScope) -> list[Check]:
        """Every route in the project counts against ROUTES, not only this network's."""
        project = self._read(
            f"get project {self._project}",
            "projects.get",
            lambda: self._clients.projects.get(project=self._project, timeout=self._polling.call_timeout),
        )
        quota = next((q for q in project.quotas if q.metric == "ROUTES"), None)
        listed = self.list_routes(self._network)
        return quota_checks(
            self.name,
            f"project {self._project}",
            listed,
            scope.cluster_cidrs,
            len(scope.targets),
            self.limits.routes_per_table or (int(quota.limit) if quota is not None else None),
            per_family=False,
            elsewhere=int(quota.usage) - len(listed) if quota is not None else 0,
        )

    def close(self) -> None:
        self._closed.set()
        self._clients.close()


def _networks(instance: compute_v1.Instance) -> str:
    return ", ".join(n.network.removeprefix(_API_ROOT) for n in instance.network_interfaces) or "none"


def _same_network(a: str, b: str) -> bool:
    """Two network references name one network (full URLs or `projects/…/global/networks/…`)."""
    return a.partition("projects/")[2] == b.partition("projects/")[2]


def _next_hop(item: compute_v1.Route) -> str:
    for hop in (
        item.next_hop_instance,
        item.next_hop_ip,
        item.next_hop_gateway,
        item.next_hop_network,
        item.next_hop_peering,
        item.next_hop_ilb,
        item.next_hop_vpn_tunnel,
    ):
        if hop:
            return hop.removeprefix(_API_ROOT)
    return ""


def _result(route: Route, failure: _Failure | None) -> RouteResult:
    if failure is None:
        return RouteResult(route, Outcome.OK)
    gone = failure.kind is _Kind.NOT_FOUND and "/instances/" in failure.message
    throttled = failure.kind is _Kind.THROTTLED
    return RouteResult(route, _OUTCOMES[failure.kind], failure.message, target_gone=gone, throttled=throttled)


def build(config: GcpConfig) -> GcpProvider:
    """The adapter the registry's `gcp` spec builds: ADC, or the emulator at the endpoint override."""
    try:
        clients = _Clients.connect(config.common.endpoint)
    except auth_exceptions.DefaultCredentialsError as err:
        raise ConfigurationError(
            f"gcp: no Application Default Credentials ({err}); see docs/gcp.md for Workload Identity"
        ) from None
    return GcpProvider(config, clients)
