"""An HTTP emulator of the parts of Compute Engine `compute/v1` that the GCP adapter calls.

Serves routes list/get/insert/delete, globalOperations get/wait, instances get, networks get and
projects get (the ROUTES quota `routectl doctor` reads) on
127.0.0.1 at a port chosen at run time, with the documented error JSON, so the real
`google-cloud-compute` REST client can be pointed at it (tests, `routectl demo`, benchmarks).

Invariant: state changes only when an operation reaches DONE (routes appear or vanish then, as on
GCE); every state access happens under one lock, so concurrent clients see a consistent project.
Faults (latency, rate limit, injected errors, ROUTES quota, operation delay) are set per emulator.
"""

from __future__ import annotations

import collections
import dataclasses
import ipaddress
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from providers.emulators.throttling import Bucket, CloudBucket

Json = dict[str, Any]

BASE = "https://www.googleapis.com/compute/v1/"
"""Prefix of every selfLink and resource URL the emulator returns, as GCE writes them."""
MAX_RESULTS = 500
_NAME = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_INSTANCE_URL = re.compile(
    r"(?:(?:.*/)?projects/(?P<project>[^/]+)/)?zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)"
)
_NETWORK_URL = re.compile(r"(?:(?:.*/)?projects/(?P<project>[^/]+)/)?global/networks/(?P<name>[^/]+)")
_FILTER = re.compile(r'\(?\s*(?P<field>\w+)\s*(?P<op>=|!=|\beq\b|\bne\b)\s*"?(?P<value>[^"]*?)"?\s*\)?')
_PROJECT = r"/compute/v1/projects/(?P<project>[^/]+)"
_API_PATHS: tuple[tuple[str, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(_PROJECT + path), api)
    for method, path, api in (
        ("GET", r"/global/routes", "routes.list"),
        ("POST", r"/global/routes", "routes.insert"),
        ("GET", r"/global/routes/(?P<name>[^/]+)", "routes.get"),
        ("DELETE", r"/global/routes/(?P<name>[^/]+)", "routes.delete"),
        ("GET", r"/global/operations/(?P<name>[^/]+)", "globalOperations.get"),
        ("POST", r"/global/operations/(?P<name>[^/]+)/wait", "globalOperations.wait"),
        ("GET", r"/zones/(?P<zone>[^/]+)/instances/(?P<name>[^/]+)", "instances.get"),
        ("GET", r"/global/networks/(?P<name>[^/]+)", "networks.get"),
        ("GET", r"", "projects.get"),
    )
)
APIS = frozenset(api for _, _, api in _API_PATHS)
"""Every API name the emulator serves (the keys of `calls()`)."""


class ApiError(Exception):
    """A GCE error response: HTTP status plus the `errors[0].reason` GCE documents."""

    def __init__(self, status: int, reason: str, message: str, domain: str = "global") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.message = message
        self.domain = domain

    def body(self) -> Json:
        error = {"reason": self.reason, "domain": self.domain, "message": self.message}
        return {"error": {"code": self.status, "message": self.message, "errors": [error]}}


def _not_found(path: str) -> ApiError:
    return ApiError(404, "notFound", f"The resource '{path}' was not found")


def _bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid", message)


@dataclasses.dataclass(slots=True)
class _Operation:
    """A global operation; `effect` runs once at `done_at` and returns an error dict or None."""

    project: str
    name: str
    id: int
    kind: str
    target: str
    done_at: float
    effect: Callable[[], ApiError | None]
    error: ApiError | None = None
    done: bool = False

    def to_json(self) -> Json:
        body: Json = {
            "kind": "compute#operation",
            "id": str(self.id),
            "name": self.name,
            "operationType": self.kind,
            "targetLink": self.target,
            "status": "DONE" if self.done else "RUNNING",
            "progress": 100 if self.done else 0,
            "selfLink": f"{BASE}projects/{self.project}/global/operations/{self.name}",
        }
        if self.error is not None:
            body["httpErrorStatusCode"] = self.error.status
            body["httpErrorMessage"] = HTTPStatus(self.error.status).phrase.upper()
            code = self.error.reason
            body["error"] = {"errors": [{"code": code, "message": self.error.message}]}
        return body


@dataclasses.dataclass(slots=True)
class _Fault:
    """The next `times` calls of any of `apis` answer this error."""

    apis: frozenset[str]
    times: int
    status: int
    reason: str
    message: str


class GceEmulator:
    """The emulated project(s): networks, instances, routes and operations, plus fault settings.

    Use as a context manager or `start()`/`stop()`; point clients at `endpoint`.
    """

    def __init__(
        self,
        *,
        routes_quota: int | None = None,
        operation_delay: float = 0.0,
        latency: float = 0.0,
    ) -> None:
        self.routes_quota = routes_quota
        """Project-wide ROUTES quota (every route in the project counts); None = unlimited."""
        self.operation_delay = operation_delay
        """Seconds from an insert/delete until its operation is DONE and takes effect."""
        self.latency = latency
        """Seconds added to every call before it is handled."""
        self._lock = threading.Lock()
        self._ids = itertools.count(1_000_000_000_001)
        self._networks: dict[tuple[str, str], Json] = {}
        self._instances: dict[tuple[str, str, str], Json] = {}
        self._routes: dict[tuple[str, str], Json] = {}
        self._operations: dict[tuple[str, str], _Operation] = {}
        self._pending: list[_Operation] = []
        self._calls: collections.Counter[str] = collections.Counter()
        self._faults: list[_Fault] = []
        self._bucket: CloudBucket | None = None
        self._limited: frozenset[str] = frozenset()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="gce-emulator"
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._server.server_close()
            self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- seeding and inspection ------------------------------------------------------------------

    def add_network(self, project: str, name: str, *, default_route: bool = True) -> str:
        """Create a network (with GCE's default internet route unless told not to); returns its URL."""
        link = f"{BASE}projects/{project}/global/networks/{name}"
        with self._lock:
            self._networks[project, name] = {
                "kind": "compute#network",
                "id": str(next(self._ids)),
                "name": name,
                "selfLink": link,
                "autoCreateSubnetworks": False,
                "routingConfig": {"routingMode": "REGIONAL"},
            }
            if default_route:
                gateway = f"{BASE}projects/{project}/global/gateways/default-internet-gateway"
                self._store_route(
                    project,
                    {
                        "name": f"default-route-{next(self._ids):x}",
                        "description": "Default route to the Internet.",
                        "network": link,
                        "destRange": "0.0.0.0/0",
                        "priority": 1000,
                        "nextHopGateway": gateway,
                    },
                )
        return link

    def add_instance(
        self,
        project: str,
        zone: str,
        name: str,
        *,
        can_ip_forward: bool = True,
        network_ip: str = "",
        network: str = "",
    ) -> str:
        """Create a RUNNING instance with one NIC in `network` (a network name or URL; default: the
        project's first network); returns its URL (what routes name as `nextHopInstance`).

        With `network_ip`, the NIC reports that primary internal address (the dataplane tier gives each
        node namespace the address the cloud reports).
        """
        link = f"{BASE}projects/{project}/zones/{zone}/instances/{name}"
        instance: Json = {
            "kind": "compute#instance",
            "id": "",
            "name": name,
            "zone": f"{BASE}projects/{project}/zones/{zone}",
            "status": "RUNNING",
            "canIpForward": can_ip_forward,
            "selfLink": link,
        }
        with self._lock:
            own = next((n for p, n in self._networks if p == project), "default")
            nic: Json = {"name": "nic0", "network": network if network.startswith(BASE) else ""}
            nic["network"] = nic["network"] or f"{BASE}projects/{project}/global/networks/{network or own}"
            if network_ip:
                nic["networkIP"] = network_ip
            instance["networkInterfaces"] = [nic]
            instance["id"] = str(next(self._ids))
            self._instances[project, zone, name] = instance
        return link

    def delete_instance(self, project: str, zone: str, name: str) -> None:
        """Remove an instance; routes to it stay and report NEXT_HOP_INSTANCE_NOT_FOUND, as on GCE."""
        with self._lock:
            del self._instances[project, zone, name]

    def add_route(self, project: str, route: Json) -> None:
        """Store a route as-is (another cluster's, a legacy `k8s-node-route`, a peering …)."""
        with self._lock:
            self._store_route(project, dict(route))

    def routes(self, project: str) -> list[Json]:
        """Every route of the project as `routes.get` would return it, sorted by name."""
        with self._lock:
            self._settle()
            return [self._render(r) for (p, _), r in sorted(self._routes.items()) if p == project]

    def finish_operations(self) -> None:
        """Make every running operation due now (a test that must not wait for `operation_delay`)."""
        with self._lock:
            for op in self._pending:
                op.done_at = 0.0
            self._settle()

    def calls(self) -> collections.Counter[str]:
        """Calls received so far, by API name (`routes.insert`, `globalOperations.get` …)."""
        with self._lock:
            return collections.Counter(self._calls)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # -- faults ----------------------------------------------------------------------------------

    def fail_next(
        self,
        api: str | Collection[str],
        *,
        status: int = 503,
        reason: str = "backendError",
        message: str = "Internal error. Please try again.",
        count: int = 1,
    ) -> None:
        """The next `count` calls of `api` (or of several APIs, counted together) answer with this
        error instead of being served."""
        apis = frozenset({api} if isinstance(api, str) else api)
        if not apis <= APIS:
            raise ValueError(f"unknown api {sorted(apis - APIS)}")
        with self._lock:
            self._faults.append(_Fault(apis, count, status, reason, message))

    def rate_limit(self, rate: float, burst: int, apis: Iterable[str] = APIS) -> None:
        """Answer 403 rateLimitExceeded to calls of `apis` beyond `rate`/s (bursts of `burst`)."""
        with self._lock:
            self._bucket = CloudBucket(Bucket(burst, rate), time.monotonic())
            self._limited = frozenset(apis)

    # -- request handling (called by the HTTP handler) -------------------------------------------

    def dispatch(self, method: str, raw_path: str, body: bytes) -> tuple[int, Json]:
        url = urllib.parse.urlsplit(raw_path)
        query = dict(urllib.parse.parse_qsl(url.query))
        found = _resolve(method, url.path)
        if found is None:
            return 404, ApiError(404, "notFound", f"no such API: {method} {url.path}").body()
        api, args = found
        if self.latency:
            time.sleep(self.latency)
        try:
            payload: Json = json.loads(body) if body else {}
            wait = self._wait_for(api, args["project"], args.get("name", ""))
            if wait > 0:
                time.sleep(wait)
            with self._lock:
                self._calls[api] += 1
                self._admit(api)
                self._settle()
                return 200, self._serve(api, args, query, payload)
        except ApiError as error:
            return error.status, error.body()

    def _wait_for(self, api: str, project: str, name: str) -> float:
        """globalOperations.wait blocks (outside the lock) until the operation is due."""
        if api != "globalOperations.wait":
            return 0.0
        with self._lock:
            op = self._operations.get((project, name))
            return 0.0 if op is None else max(0.0, op.done_at - time.monotonic())

    def _admit(self, api: str) -> None:
        if self._bucket is not None and api in self._limited and not self._bucket.take(time.monotonic()):
            raise ApiError(403, "rateLimitExceeded", "Rate Limit Exceeded", domain="usageLimits")
        fault = next((f for f in self._faults if api in f.apis and f.times > 0), None)
        if fault is not None:
            fault.times -= 1
            self._faults = [f for f in self._faults if f.times > 0]
            raise ApiError(fault.status, fault.reason, fault.message)

    def _serve(self, api: str, args: dict[str, str], query: dict[str, str], payload: Json) -> Json:
        project, name = args["project"], args.get("name", "")
        if api == "routes.list":
            return self._list_routes(project, query)
        if api == "routes.get":
            route = self._routes.get((project, name))
            if route is None:
                raise _not_found(f"projects/{project}/global/routes/{name}")
            return self._render(route)
        if api == "routes.insert":
            return self._insert_route(project, payload).to_json()
        if api == "routes.delete":
            return self._delete_route(project, name).to_json()
        if api in ("globalOperations.get", "globalOperations.wait"):
            op = self._operations.get((project, name))
            if op is None:
                raise _not_found(f"projects/{project}/global/operations/{name}")
            return op.to_json()
        if api == "projects.get":
            return self._project(project)
        if api == "instances.get":
            instance = self._instances.get((project, args["zone"], name))
            if instance is None:
                raise _not_found(f"projects/{project}/zones/{args['zone']}/instances/{name}")
            return dict(instance)
        network = self._networks.get((project, name))
        if network is None:
            raise _not_found(f"projects/{project}/global/networks/{name}")
        return dict(network)

    def _project(self, project: str) -> Json:
        """The project with its ROUTES quota as GCE reports it (limit and usage, both floats), or no
        quota at all while `routes_quota` is None (unlimited); a project exists once it has a network."""
        if not any(p == project for p, _ in self._networks):
            raise _not_found(f"projects/{project}")
        usage = float(self._route_count(project))
        quotas = (
            []
            if self.routes_quota is None
            else [{"metric": "ROUTES", "limit": float(self.routes_quota), "usage": usage}]
        )
        return {
            "kind": "compute#project",
            "name": project,
            "quotas": quotas,
            "selfLink": f"{BASE}projects/{project}",
        }

    # -- routes ----------------------------------------------------------------------------------

    def _list_routes(self, project: str, query: dict[str, str]) -> Json:
        keep = _parse_filter(query.get("filter", ""))
        rendered = [self._render(r) for (p, _), r in sorted(self._routes.items()) if p == project]
        items = [r for r in rendered if keep(r)]
        size = min(int(query.get("maxResults") or MAX_RESULTS), MAX_RESULTS)
        start = int(query.get("pageToken") or 0)
        body: Json = {
            "kind": "compute#routeList",
            "id": f"projects/{project}/global/routes",
            "items": items[start : start + size],
            "selfLink": f"{BASE}projects/{project}/global/routes",
        }
        if start + size < len(items):
            body["nextPageToken"] = str(start + size)
        return body

    def _insert_route(self, project: str, resource: Json) -> _Operation:
        name = str(resource.get("name", ""))
        if _NAME.fullmatch(name) is None:
            raise _bad_request(f"Invalid value for field 'resource.name': '{name}'.")
        try:
            ipaddress.ip_network(str(resource.get("destRange", "")))
        except ValueError:
            raise _bad_request(
                f"Invalid value for field 'resource.destRange': '{resource.get('destRange')}'."
            ) from None
        link = f"projects/{project}/global/routes/{name}"
        if (project, name) in self._routes or any(
            op.kind == "insert" and op.target.endswith("/" + link) for op in self._pending
        ):
            raise ApiError(409, "alreadyExists", f"The resource '{link}' already exists")
        route = dict(resource)
        route["network"] = self._network_url(project, str(route.get("network", "")))
        if "nextHopInstance" in route:
            route["nextHopInstance"] = self._instance_url(project, str(route["nextHopInstance"]))

        def effect() -> ApiError | None:
            if self.routes_quota is not None and self._route_count(project) >= self.routes_quota:
                limit = f"{float(self.routes_quota or 0):.1f}"
                return ApiError(403, "QUOTA_EXCEEDED", f"Quota 'ROUTES' exceeded.  Limit: {limit} globally.")
            self._store_route(project, route)
            return None

        return self._operation(project, "insert", BASE + link, effect)

    def _delete_route(self, project: str, name: str) -> _Operation:
        link = f"projects/{project}/global/routes/{name}"
        if (project, name) not in self._routes:
            raise _not_found(link)

        def effect() -> ApiError | None:
            return None if self._routes.pop((project, name), None) else _not_found(link)

        return self._operation(project, "delete", BASE + link, effect)

    def _route_count(self, project: str) -> int:
        """What the ROUTES quota is checked against when an insert completes: every stored route."""
        return sum(1 for p, _ in self._routes if p == project)

    def _store_route(self, project: str, route: Json) -> None:
        name = route["name"]
        route.setdefault("priority", 1000)
        route.update(
            kind="compute#route",
            id=str(next(self._ids)),
            creationTimestamp=time.strftime("%Y-%m-%dT%H:%M:%S.000-00:00", time.gmtime()),
            selfLink=f"{BASE}projects/{project}/global/routes/{name}",
            routeType="STATIC",
        )
        self._routes[project, name] = route

    def _render(self, route: Json) -> Json:
        """The route as GCE reports it now: with a warning when its next-hop instance is gone."""
        out = dict(route)
        hop = _INSTANCE_URL.fullmatch(str(route.get("nextHopInstance", "")))
        if hop is None:
            return out
        instance = self._instances.get((hop["project"], hop["zone"], hop["name"]))
        if instance is None:
            code, message = "NEXT_HOP_INSTANCE_NOT_FOUND", "Next hop instance not found."
        elif not instance["canIpForward"]:
            code, message = "NEXT_HOP_CANNOT_IP_FORWARD", "Next hop instance cannot ip forward."
        else:
            return out
        out["warnings"] = [{"code": code, "message": message, "data": [{"key": "instance", "value": hop[0]}]}]
        return out

    def _network_url(self, project: str, ref: str) -> str:
        match = _NETWORK_URL.fullmatch(ref)
        if match is None:
            raise _bad_request(f"Invalid value for field 'resource.network': '{ref}'.")
        key = (match["project"] or project, match["name"])
        if key not in self._networks:
            raise _not_found(f"projects/{key[0]}/global/networks/{key[1]}")
        return str(self._networks[key]["selfLink"])

    def _instance_url(self, project: str, ref: str) -> str:
        match = _INSTANCE_URL.fullmatch(ref)
        if match is None:
            raise _bad_request(f"Invalid value for field 'resource.nextHopInstance': '{ref}'.")
        key = (match["project"] or project, match["zone"], match["name"])
        if key not in self._instances:
            raise _not_found("projects/{}/zones/{}/instances/{}".format(*key))
        return "{}projects/{}/zones/{}/instances/{}".format(BASE, *key)

    # -- operations ------------------------------------------------------------------------------

    def _operation(
        self, project: str, kind: str, target: str, effect: Callable[[], ApiError | None]
    ) -> _Operation:
        op_id = next(self._ids)
        op = _Operation(
            project=project,
            name=f"operation-{op_id}-{kind}",
            id=op_id,
            kind=kind,
            target=target,
            done_at=time.monotonic() + self.operation_delay,
            effect=effect,
        )
        self._operations[project, op.name] = op
        self._pending.append(op)
        self._settle()
        return op

    def _settle(self) -> None:
        """Complete, in submission order, every operation whose time has come."""
        now = time.monotonic()
        due = [op for op in self._pending if op.done_at <= now]
        if not due:
            return
        self._pending = [op for op in self._pending if op.done_at > now]
        for op in due:
            op.error = op.effect()
            op.done = True


def _resolve(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """The API name and path parameters of a request, or None when the emulator does not serve it."""
    for verb, pattern, api in _API_PATHS:
        match = pattern.fullmatch(path)
        if verb == method and match is not None:
            return api, match.groupdict()
    return None


def _parse_filter(text: str) -> Callable[[Json], bool]:
    """`field = "v"`, `field != "v"` (exact) and `field eq v`, `field ne v` (RE2 full match)."""
    if not text.strip():
        return lambda _: True
    match = _FILTER.fullmatch(text.strip())
    if match is None:
        raise _bad_request(f"Invalid value for field 'filter': '{text}'. Invalid list filter expression.")
    field, op, value = match["field"], match["op"], match["value"]
    if op in ("eq", "ne"):
        pattern = re.compile(value)
        return lambda r: (pattern.fullmatch(str(r.get(field, ""))) is not None) == (op == "eq")
    return lambda r: (str(r.get(field, "")) == value) == (op == "=")


def _handler_for(emulator: GceEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            status, payload = emulator.dispatch(self.command, self.path, self.rfile.read(length))
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            """Silent: tests and the demo read `calls()` instead of an access log."""

    for verb in ("GET", "POST", "DELETE"):
        setattr(Handler, f"do_{verb}", Handler._handle)
    return Handler
