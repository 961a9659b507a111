"""KubeCluster: the Cluster port on a real API server, through the official `kubernetes` client.

The only module of routectl that imports `kubernetes`. It uses the client's transport (kubeconfig or
in-cluster credentials, TLS, token refresh) but sends and parses JSON itself: the port speaks plain
values, MicroTime must always carry its six fractional digits (the generated models drop them when
they are zero, which the server refuses), and a watch is a stream of JSON lines.

Invariants:
- every request carries a (connect, read) timeout; a watch's read timeout exceeds its server-side
  `timeoutSeconds`, so a half-open connection ends the stream instead of hanging it;
- no request is retried here (urllib3 retries are off): callers own their retry policies;
- every failure leaves as a ClusterError subclass; a write whose outcome is unknown (timeout, broken
  connection, 5xx) is AmbiguousError, never a plain failure;
- podCIDRs are written only when the server still holds none (JSON patch `test` on the absent field);
- Events go through the aggregator of `events.py` (client-go's correlator): a repeat within the window
  bumps the existing Event's count, and writes per node are capped; each names its reporter as
  client-go's recorder does — controller `routectl`, instance (and `source.host`) this process's
  identity, the Lease holder name it stands for election under.
"""

from __future__ import annotations

import datetime
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import urllib3
from kubernetes import client, config

from routectl.cluster import (
    AmbiguousError,
    ClusterConfigError,
    ClusterError,
    Condition,
    ConflictError,
    EventType,
    ForbiddenError,
    GoneError,
    InvalidError,
    Lease,
    Node,
    NodePage,
    NotFoundError,
    WatchEvent,
)
from routectl.kube.events import EventAggregator, EventPolicy
from routectl.reasons import CONDITION_TYPE

log = logging.getLogger(__name__)

COMPONENT = "routectl"
_JSON = "application/json"
_JSON_PATCH = "application/json-patch+json"
_MERGE_PATCH = "application/strategic-merge-patch+json"
_NODES = "/api/v1/nodes"
_EVENTS = "/api/v1/namespaces/{namespace}/events"
_LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
_EVENT_NAMESPACE = "default"
"""Events about cluster-scoped objects (Nodes) live in `default`, as client-go records them."""

Json = dict[str, Any]


class KubeCluster:
    def __init__(
        self,
        api: client.ApiClient,
        *,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 30.0,
        watch_read_margin_s: float = 15.0,
        events: EventPolicy | None = None,
        reporting_instance: str = "",
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        """`api` should have urllib3 retries disabled (`from_kubeconfig` does so). A watch's read
        timeout is its server-side timeout plus `watch_read_margin_s`. `reporting_instance` names this
        process on its Events (default: the host name)."""
        self._api = api
        self._instance = reporting_instance or socket.gethostname()
        self._watch_margin_s = watch_read_margin_s
        self._connect_s = connect_timeout_s
        self._request_s = request_timeout_s
        self._events = EventAggregator(events or EventPolicy(), clock)
        self._wall = wall

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str = "", **options: Any) -> KubeCluster:
        """From `kubeconfig`; "" = in-cluster service account, then ~/.kube/config. A fresh
        Configuration: the client's process-wide default is never read or written."""
        configuration = client.Configuration()
        source = kubeconfig or "in-cluster service account, then ~/.kube/config"
        try:
            if kubeconfig:
                config.load_kube_config(  # type: ignore[no-untyped-call]
                    config_file=kubeconfig, client_configuration=configuration, persist_config=False
                )
            else:
                try:
                    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                except config.ConfigException:
                    config.load_kube_config(  # type: ignore[no-untyped-call]
                        client_configuration=configuration, persist_config=False
                    )
        except (config.ConfigException, OSError, ValueError) as err:
            raise ClusterConfigError(
                f"--kubeconfig {source}: cannot load Kubernetes credentials: {err}"
            ) from None
        configuration.retries = False
        api = client.ApiClient(configuration)
        api.user_agent = COMPONENT
        return cls(api, **options)

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    # --- nodes -----------------------------------------------------------------------------------

    def list_nodes(self, limit: int, continue_token: str = "") -> NodePage:
        query = [("limit", str(limit))] if limit > 0 else []
        if continue_token:
            query.append(("continue", continue_token))
        body = self._request("GET", _NODES, query=query)
        meta = body.get("metadata") or {}
        return NodePage(
            tuple(_node(item) for item in body.get("items") or ()),
            str(meta.get("resourceVersion", "")),
            str(meta.get("continue") or ""),
        )

    def watch_nodes(self, resource_version: str, timeout_s: float) -> Iterator[WatchEvent]:
        seconds = max(1, round(timeout_s))
        query = [
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(seconds)),
        ]
        for event in self._watch("watch nodes", _NODES, {}, query, seconds):
            yield _watch_event(event)

    def get_node(self, name: str) -> Node:
        return _node(self._request("GET", f"{_NODES}/{{name}}", path={"name": name}))

    def set_pod_cidrs(self, name: str, cidrs: Sequence[str]) -> Node:
        """A JSON patch whose first op tests that `spec.podCIDR` is still absent (`test` null): the
        server applies all of it or nothing, so a second writer (a stale leader) is refused whatever
        it read, with no read beforehand."""
        patch: list[Json] = [
            {"op": "test", "path": "/spec/podCIDR", "value": None},
            {"op": "add", "path": "/spec/podCIDR", "value": cidrs[0]},
            {"op": "add", "path": "/spec/podCIDRs", "value": list(cidrs)},
        ]
        try:
            body = self._request(
                "PATCH", f"{_NODES}/{{name}}", path={"name": name}, body=patch, content_type=_JSON_PATCH
            )
        except InvalidError as err:
            # A failed `test` and a refused change are both a bare 422; only the node tells whether it
            # was already allocated (conflict) or our value is bad (invalid).
            current = self.get_node(name)
            if current.pod_cidrs:
                raise ConflictError(
                    f"node {name}: podCIDRs already set to {','.join(current.pod_cidrs)}"
                ) from err
            raise
        return _node(body)

    def set_network_unavailable(
        self, name: str, condition: Condition, before_write: Callable[[], None] = lambda: None
    ) -> None:
        """Strategic merge on `status.conditions` (merge key `type`) through nodes/status; the
        transition time moves only when the status changes, and an unchanged condition is not
        written at all."""
        current = _condition_json(self._request("GET", f"{_NODES}/{{name}}", path={"name": name}))
        if current is not None and (
            current.get("status"),
            current.get("reason"),
            current.get("message"),
        ) == (condition.status, condition.reason, condition.message):
            return
        now = _rfc3339(self._wall())
        transition = (
            now
            if current is None or current.get("status") != condition.status
            else current.get("lastTransitionTime", now)
        )
        patch = {
            "status": {
                "conditions": [
                    {
                        "type": CONDITION_TYPE,
                        "status": condition.status,
                        "reason": condition.reason,
                        "message": condition.message,
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": transition,
                    }
                ]
            }
        }
        before_write()
        self._request(
            "PATCH",
            f"{_NODES}/{{name}}/status",
            path={"name": name},
            body=patch,
            content_type=_MERGE_PATCH,
        )

    # --- events ----------------------------------------------------------------------------------

    def record_event(self, node: Node, type_: str, reason: str, message: str) -> None:
        """Best effort, like client-go's recorder: a failure is logged, never raised."""
        key = (node.name, node.uid, type_, reason, message)
        write = self._events.admit(key)
        if write is None:
            return
        now = _rfc3339(self._wall())
        try:
            if write.name:
                try:
                    self._patch_event(write.name, write.count, now)
                    return
                except NotFoundError:
                    pass  # expired (Events live one hour): start a new one
            name = self._create_event(node, type_, reason, message, count=write.count, now=now)
            self._events.created(key, name)
        except ClusterError as err:
            log.warning(
                "event not recorded",
                extra={"node": node.name, "reason": reason, "error": str(err)},
            )

    def _create_event(
        self, node: Node, type_: str, reason: str, message: str, *, count: int, now: str
    ) -> str:
        name = f"{node.name}.{time.time_ns():x}"
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": _EVENT_NAMESPACE},
            "involvedObject": {"apiVersion": "v1", "kind": "Node", "name": node.name, "uid": node.uid},
            "type": type_,
            "reason": reason,
            "message": message,
            "count": count,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "source": {"component": COMPONENT, "host": self._instance},
            "reportingComponent": COMPONENT,
            "reportingInstance": self._instance,
        }
        self._request("POST", _EVENTS, path={"namespace": _EVENT_NAMESPACE}, body=body, write_ambiguous=False)
        return name

    def _patch_event(self, name: str, count: int, now: str) -> None:
        self._request(
            "PATCH",
            f"{_EVENTS}/{{name}}",
            path={"namespace": _EVENT_NAMESPACE, "name": name},
            body={"count": count, "lastTimestamp": now},
            content_type=_MERGE_PATCH,
            write_ambiguous=False,
        )

    # --- leases ----------------------------------------------------------------------------------

    def get_lease(self, namespace: str, name: str, timeout_s: float) -> Lease | None:
        try:
            body = self._request(
                "GET",
                f"{_LEASES}/{{name}}",
                path={"namespace": namespace, "name": name},
                timeout_s=timeout_s,
            )
        except NotFoundError:
            return None
        return _lease(body)

    def create_lease(self, lease: Lease, timeout_s: float) -> Lease:
        body = self._request(
            "POST",
            _LEASES,
            path={"namespace": lease.namespace},
            body=_lease_json(lease),
            timeout_s=timeout_s,
        )
        return _lease(body)

    def update_lease(self, lease: Lease, timeout_s: float) -> Lease:
        body = self._request(
            "PUT",
            f"{_LEASES}/{{name}}",
            path={"namespace": lease.namespace, "name": lease.name},
            body=_lease_json(lease),
            timeout_s=timeout_s,
        )
        return _lease(body)

    def watch_lease(
        self, namespace: str, name: str, resource_version: str, timeout_s: float
    ) -> Iterator[Lease]:
        """A watch of the collection narrowed to one name by field selector (authorised by the Role's
        `resourceNames` for `watch`); bookmarks and deletions are skipped."""
        seconds = max(1, round(timeout_s))
        query = [
            ("watch", "true"),
            ("fieldSelector", f"metadata.name={name}"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(seconds)),
        ]
        what = f"watch lease {namespace}/{name}"
        for event in self._watch(what, _LEASES, {"namespace": namespace}, query, seconds):
            if event.get("type") in ("ADDED", "MODIFIED"):
                yield _lease(event.get("object") or {})

    # --- reviews -----------------------------------------------------------------------------------

    def create_review(self, collection: str, body: Json, timeout_s: float) -> Json:
        """POST a TokenReview or SubjectAccessReview to `collection`; the server's answer (with
        `status`). Reviews store nothing, so a failed one is a plain ClusterError, never ambiguous."""
        return self._request("POST", collection, body=body, timeout_s=timeout_s, write_ambiguous=False)

    # --- transport -------------------------------------------------------------------------------

    def read(
        self,
        path_template: str,
        *,
        path: Mapping[str, str] | None = None,
        query: Sequence[tuple[str, str]] = (),
    ) -> Json:
        """One GET of any object or list, as the server's JSON (`routectl doctor` reads managedFields,
        ConfigMaps and DaemonSets, which the Cluster port has no values for)."""
        return self._request("GET", path_template, path=path, query=query)

    def _request(
        self,
        method: str,
        path_template: str,
        *,
        path: Mapping[str, str] | None = None,
        query: Sequence[tuple[str, str]] = (),
        body: Json | list[Json] | None = None,
        content_type: str = _JSON,
        timeout_s: float | None = None,
        write_ambiguous: bool = True,
    ) -> Json:
        """One JSON request; `write_ambiguous=False` for writes nobody needs to reconcile (Events)."""
        write = method != "GET" and write_ambiguous
        what = f"{method} {_fill(path_template, path)}"
        with _translated(what, write=write):
            response = self._send(
                method,
                path_template,
                query=query,
                body=body,
                content_type=content_type,
                read_timeout_s=timeout_s,
                path=path,
            )
            _raise_for_status(response, what, write=write)
            parsed: Json = json.loads(response.data or b"{}")
            return parsed

    def _watch(
        self,
        what: str,
        path_template: str,
        path: Mapping[str, str],
        query: Sequence[tuple[str, str]],
        seconds: int,
    ) -> Iterator[Json]:
        """The events of one watch request as JSON objects; an ERROR event raises its status error.
        The read timeout exceeds the server-side `seconds`, so a half-open connection ends it."""
        with _translated(what, write=False):
            response = self._send(
                "GET", path_template, path=path, query=query, read_timeout_s=seconds + self._watch_margin_s
            )
            try:
                _raise_for_status(response, what, write=False)
                for line in _lines(response):
                    event: Json = json.loads(line)
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        code = int(status.get("code") or 500)
                        raise _status_error(code, f"{what}: {code} {status.get('message', '')}", write=False)
                    yield event
            finally:
                response.close()
                response.release_conn()

    def _send(
        self,
        method: str,
        path_template: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Json | list[Json] | None = None,
        content_type: str = _JSON,
        read_timeout_s: float | None = None,
        path: Mapping[str, str] | None = None,
    ) -> urllib3.BaseHTTPResponse:
        headers = {"Accept": _JSON}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self._api.param_serialize(
            method=method,
            resource_path=path_template,
            path_params=dict(path or {}),
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        timeout = (self._connect_s, read_timeout_s or self._request_s)
        response: urllib3.BaseHTTPResponse = self._api.call_api(*request, _request_timeout=timeout).response
        return response


# --- error translation ---------------------------------------------------------------------------

_BY_STATUS: Mapping[int, type[ClusterError]] = {
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    422: InvalidError,
}


@contextmanager
def _translated(what: str, *, write: bool) -> Iterator[None]:
    """Transport failures become ClusterError; for writes, AmbiguousError (it may have happened)."""
    unknown_outcome = AmbiguousError if write else ClusterError
    try:
        yield
    except ClusterError:
        raise
    except client.ApiException as err:  # the client's wrapper of TLS errors
        raise unknown_outcome(f"{what}: {err.reason}") from err
    except (urllib3.exceptions.HTTPError, OSError) as err:
        raise unknown_outcome(f"{what}: {type(err).__name__}: {err}") from err


def _raise_for_status(response: urllib3.BaseHTTPResponse, what: str, *, write: bool) -> None:
    if 200 <= response.status < 300:
        return
    message = _status_message(response.data, response.reason or "")
    raise _status_error(response.status, f"{what}: {response.status} {message}", write=write)


def _status_error(code: int, message: str, *, write: bool) -> ClusterError:
    error = _BY_STATUS.get(code)
    if error is not None:
        return error(message)
    if write and code >= 500:
        return AmbiguousError(message)  # e.g. 504: the server may still complete the write
    return ClusterError(message)


def _status_message(data: bytes, fallback: str) -> str:
    try:
        status = json.loads(data)
    except ValueError:
        return fallback
    return str(status.get("message", fallback)) if isinstance(status, dict) else fallback


def _fill(template: str, path: Mapping[str, str] | None) -> str:
    return template.format(**path) if path else template


# --- conversion ----------------------------------------------------------------------------------


def _lines(response: urllib3.BaseHTTPResponse) -> Iterator[bytes]:
    """Complete, non-empty lines of a streamed body as they arrive."""
    buffer = b""
    for chunk in response.stream(amt=None, decode_content=False):
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        yield from (line for line in complete if line.strip())
    if buffer.strip():
        yield buffer


def _watch_event(event: Json) -> WatchEvent:
    kind, obj = event.get("type"), event.get("object") or {}
    if kind == "BOOKMARK":
        version = str((obj.get("metadata") or {}).get("resourceVersion", ""))
        return WatchEvent(EventType.BOOKMARK, None, version)
    node = _node(obj)
    return WatchEvent(EventType(kind), node, node.resource_version)


def _node(obj: Json) -> Node:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    pod_cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    condition = _condition_json(obj)
    return Node(
        name=meta["name"],
        uid=meta.get("uid", ""),
        resource_version=str(meta.get("resourceVersion", "")),
        provider_id=spec.get("providerID", ""),
        pod_cidrs=tuple(pod_cidrs),
        labels=dict(meta.get("labels") or {}),
        deleting=bool(meta.get("deletionTimestamp")),
        created=_epoch(meta.get("creationTimestamp")) or 0.0,
        network_unavailable=None
        if condition is None
        else Condition(
            str(condition.get("status", "Unknown")),
            str(condition.get("reason", "")),
            str(condition.get("message", "")),
        ),
    )


def _condition_json(node: Json) -> Json | None:
    conditions = (node.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == CONDITION_TYPE), None)


def _lease(obj: Json) -> Lease:
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    return Lease(
        namespace=meta.get("namespace", ""),
        name=meta["name"],
        holder=spec.get("holderIdentity") or "",
        lease_duration_s=int(spec.get("leaseDurationSeconds") or 0),
        acquire_time=_epoch(spec.get("acquireTime")),
        renew_time=_epoch(spec.get("renewTime")),
        transitions=int(spec.get("leaseTransitions") or 0),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def _lease_json(lease: Lease) -> Json:
    meta: Json = {"name": lease.name, "namespace": lease.namespace}
    if lease.resource_version:
        meta["resourceVersion"] = lease.resource_version
    spec: Json = {"holderIdentity": lease.holder, "leaseTransitions": lease.transitions}
    if lease.lease_duration_s > 0:
        spec["leaseDurationSeconds"] = lease.lease_duration_s
    if lease.acquire_time is not None:
        spec["acquireTime"] = _micro_time(lease.acquire_time)
    if lease.renew_time is not None:
        spec["renewTime"] = _micro_time(lease.renew_time)
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": meta, "spec": spec}


def _micro_time(epoch: float) -> str:
    """metav1.MicroTime: RFC 3339, UTC, always six fractional digits."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _rfc3339(epoch: float) -> str:
    """metav1.Time: RFC 3339, UTC, whole seconds."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str | None) -> float | None:
    return None if not text else datetime.datetime.fromisoformat(text).timestamp()
