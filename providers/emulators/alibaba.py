"""An HTTP emulator of the Alibaba Cloud VPC 2016-04-28 route API, for tests and the demo.

It serves the real SDK (`alibabacloud_vpc20160428`) on 127.0.0.1 at a run-time port: the action comes from
the `x-acs-action` header or the `Action` query parameter, parameters arrive flattened in the query string
(`RouteEntries.1.DstCidrBlock`), signatures are ignored. Modelled behaviour: DescribeRouteTableList,
DescribeRouteEntryList (paged by NextToken, filtered by type / destination list), CreateRouteEntries and
DeleteRouteEntries with per-entry failures, ModifyRouteEntry (name, description, next hop), route entries
going Creating → Available and Deleting → gone after configurable delays, `TaskConflict` for a write while
the VPC has entries in flight, a per-table custom-route quota, ECS DescribeInstances for the VPC and
vSwitch an instance is in (`add_instances`), custom tables bound to vSwitches, `DryRun` on the two writes
(`DryRunOperation` once the request is valid and allowed), RAM refusing actions (`deny`: `Forbidden.RAM`,
checked before anything else), STS GetCallerIdentity (`caller_arn`), throttling with `x-acs-retry-after`
(milliseconds, as the SDK reads it), injected failures, latency, ClientToken replay, and a call counter by
action.

Invariant: every response is either a 200 JSON body of the documented shape or the documented JSON error
`{"RequestId", "Code", "Message", "HostId", "Recommend"}` with its HTTP status; state changes only under
one lock, and entry lifecycles advance lazily from the monotonic clock at the start of each request.
"""

from __future__ import annotations

import collections
import ipaddress
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, ClassVar

from providers.emulators.params import RpcHandler, request_params

JSON = dict[str, Any]

PAGE_MAX = 100
"""DescribeRouteEntryList's MaxResult upper bound."""
TABLE_PAGE_MAX = 50
DEFAULT_QUOTA = 200
_RAM_DENIED = "User not authorized to operate on the specified resource, or this API doesn't support RAM."
_DRY_RUN_ACTIONS = frozenset({"CreateRouteEntries", "DeleteRouteEntries"})


class _ApiError(Exception):
    """A whole-call error, rendered as the documented JSON error body."""

    def __init__(self, status: int, code: str, message: str, retry_after_ms: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms


@dataclass(frozen=True, slots=True)
class EmulatedRoute:
    """A snapshot of one route entry, for test assertions."""

    id: str
    table_id: str
    destination: str
    next_hop: str
    next_hop_type: str
    name: str
    description: str
    type: str
    status: str
    enabled: bool


@dataclass(slots=True)
class _Entry:
    id: str
    table_id: str
    destination: str
    next_hop: str
    next_hop_type: str
    name: str
    description: str
    type: str
    status: str
    settles_at: float = 0.0
    enabled: bool = True

    def snapshot(self) -> EmulatedRoute:
        return EmulatedRoute(
            id=self.id,
            table_id=self.table_id,
            destination=self.destination,
            next_hop=self.next_hop,
            next_hop_type=self.next_hop_type,
            name=self.name,
            description=self.description,
            type=self.type,
            status=self.status,
            enabled=self.enabled,
        )

    def as_json(self, region: str) -> JSON:
        hop: JSON = {
            "NextHopId": self.next_hop,
            "NextHopType": self.next_hop_type,
            "Enabled": 1 if self.enabled else 0,
            "Weight": 0,
            "NextHopRegionId": region,
            "NextHopRelatedInfo": {},
        }
        return {
            "RouteEntryId": self.id,
            "RouteTableId": self.table_id,
            "DestinationCidrBlock": self.destination,
            "RouteEntryName": self.name,
            "Description": self.description,
            "Type": self.type,
            "Status": self.status,
            "IpVersion": "ipv6" if ":" in self.destination else "ipv4",
            "NextHops": {"NextHop": [hop] if self.next_hop else []},
        }


@dataclass(slots=True)
class _Table:
    id: str
    vpc_id: str
    quota: int
    entries: dict[str, _Entry] = field(default_factory=dict)
    """By destination; insertion order is listing order."""
    vswitch_ids: tuple[str, ...] = ()
    """A custom table's bound vSwitches; empty for the VPC's system table (every other vSwitch)."""

    def custom_count(self) -> int:
        return sum(1 for e in self.entries.values() if e.type == "Custom")


@dataclass(slots=True)
class _Fault:
    """An injected whole-call error for the next `times` calls of `actions` (None = any action)."""

    actions: frozenset[str] | None
    times: int
    error: _ApiError
    after: bool = False
    """Apply the call first, then answer with the error: the response is lost on the way back."""


class AlibabaVpcEmulator:
    """The emulated VPC service plus its HTTP server; use as a context manager or `start()`/`stop()`."""

    def __init__(
        self,
        *,
        region: str = "cn-hangzhou",
        create_delay: float = 0.02,
        delete_delay: float = 0.02,
        latency: float = 0.0,
        pending_status: str = "Creating",
        busy_code: str = "TaskConflict",
        honour_client_token: bool = True,
    ) -> None:
        self.region = region
        self.create_delay = create_delay
        self.delete_delay = delete_delay
        self.latency = latency
        self.pending_status = pending_status
        self.busy_code = busy_code
        self.honour_client_token = honour_client_token
        self._lock = threading.Lock()
        self._tables: dict[str, _Table] = {}
        self._vpcs: dict[str, set[str]] = {}
        """VPC id → the instances that live in it (valid next hops)."""
        self._vswitch_of: dict[str, str] = {}
        """Instance id → its vSwitch."""
        self._denied: set[str] = set()
        self.caller_arn = "acs:ram::1234567890123456:role/routectl"
        """What STS GetCallerIdentity answers (the RAM role the credentials stand for)."""
        self._terminated: set[str] = set()
        self._faults: list[_Fault] = []
        self._tokens: dict[tuple[str, str], JSON] = {}
        self._calls: collections.Counter[str] = collections.Counter()
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> AlibabaVpcEmulator:
        handler = type("_BoundHandler", (_Handler,), {"emulator": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="alibaba-vpc-emulator", kwargs={"poll_interval": 0.05}
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> AlibabaVpcEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """`127.0.0.1:PORT`, the form the SDK's `Config(endpoint=…, protocol="HTTP")` takes."""
        if self._server is None:
            raise RuntimeError("emulator not started")
        return f"127.0.0.1:{self._server.server_address[1]}"

    # ---- world building --------------------------------------------------------------------------------

    def add_vpc(self, vpc_id: str) -> str:
        with self._lock:
            self._vpcs.setdefault(vpc_id, set())
        return vpc_id

    def add_table(
        self,
        vpc_id: str,
        table_id: str = "",
        *,
        quota: int = DEFAULT_QUOTA,
        vswitch_cidrs: tuple[str, ...] = ("192.168.0.0/24",),
        vswitch_ids: tuple[str, ...] = (),
    ) -> str:
        """A route table with its system routes (one per vSwitch CIDR plus 100.64.0.0/10); with
        `vswitch_ids`, a custom table bound to those vSwitches (they no longer use the system table)."""
        self.add_vpc(vpc_id)
        with self._lock:
            table_id = table_id or f"vtb-{next(self._ids):08d}"
            table = _Table(id=table_id, vpc_id=vpc_id, quota=quota, vswitch_ids=vswitch_ids)
            self._tables[table_id] = table
            for cidr in (*vswitch_cidrs, "100.64.0.0/10"):
                self._insert(
                    table, cidr, next_hop="", next_hop_type="local", name="", description="", type_="System"
                )
        return table_id

    def add_instances(self, vpc_id: str, *instance_ids: str, vswitch_id: str = "vsw-default") -> None:
        self.add_vpc(vpc_id)
        with self._lock:
            self._vpcs[vpc_id].update(instance_ids)
            self._vswitch_of.update(dict.fromkeys(instance_ids, vswitch_id))

    def deny(self, *actions: str) -> None:
        """RAM refuses these actions from now on (`Forbidden.RAM`, before validation or DryRun)."""
        with self._lock:
            self._denied.update(actions)

    def terminate_instance(self, instance_id: str) -> None:
        """Release an instance: its routes stay but their next hop reports `Enabled: 0`."""
        with self._lock:
            for members in self._vpcs.values():
                members.discard(instance_id)
            self._terminated.add(instance_id)
            for table in self._tables.values():
                for entry in table.entries.values():
                    if entry.next_hop == instance_id:
                        entry.enabled = False

    def add_route(
        self,
        table_id: str,
        destination: str,
        next_hop: str,
        *,
        name: str = "",
        description: str = "",
        type_: str = "Custom",
        next_hop_type: str = "Instance",
        status: str = "Available",
    ) -> str:
        """Place a route directly (a foreign route, a CCM-style unnamed route, a stuck `Creating` one)."""
        with self._lock:
            entry = self._insert(
                self._tables[table_id],
                destination,
                next_hop=next_hop,
                next_hop_type=next_hop_type,
                name=name,
                description=description,
                type_=type_,
            )
            entry.status = status
            entry.settles_at = float("inf") if status != "Available" else 0.0
            return entry.id

    def set_quota(self, table_id: str, quota: int) -> None:
        """The table's custom-entry quota from now on (entries beyond it stay; new ones are refused)."""
        with self._lock:
            self._tables[table_id].quota = quota

    def set_route_status(self, table_id: str, destination: str, status: str) -> None:
        with self._lock:
            entry = self._tables[table_id].entries[destination]
            entry.status = status
            entry.settles_at = 0.0 if status == "Available" else float("inf")

    def routes(self, table_id: str, *, type_: str | None = None) -> list[EmulatedRoute]:
        with self._lock:
            self._settle()
            entries = self._tables[table_id].entries.values()
            return [e.snapshot() for e in entries if type_ is None or e.type == type_]

    # ---- faults and counters ---------------------------------------------------------------------------

    def throttle(
        self,
        action: str | Collection[str] | None = None,
        *,
        times: int = 1,
        retry_after_ms: int = 1000,
        code: str = "Throttling.User",
    ) -> None:
        """The next `times` calls of `action` are throttled with an `x-acs-retry-after` header."""
        self.fail(action, times=times, status=400, code=code, retry_after_ms=retry_after_ms)

    def fail(
        self,
        action: str | Collection[str] | None = None,
        *,
        times: int = 1,
        status: int = 503,
        code: str = "ServiceUnavailable",
        message: str = "The request has failed due to a temporary failure of the server.",
        retry_after_ms: int | None = None,
    ) -> None:
        """The next `times` calls of `action` (several actions count together; None = any action) fail
        with `code` and HTTP `status` (5xx by default)."""
        error = _ApiError(status, code, message, retry_after_ms)
        with self._lock:
            self._faults.append(_Fault(_actions(action), times, error))

    def lose_response(self, action: str, *, times: int = 1) -> None:
        """The next `times` calls of `action` take effect, but the caller gets a 503 instead of the result."""
        error = _ApiError(503, "ServiceUnavailable", "The request has failed due to a temporary failure.")
        with self._lock:
            self._faults.append(_Fault(_actions(action), times, error, after=True))

    @property
    def calls(self) -> dict[str, int]:
        """Requests received, by action (including the ones answered with an error)."""
        with self._lock:
            return dict(self._calls)

    def reset_calls(self) -> None:
        with self._lock:
            self._calls.clear()

    # ---- request dispatch ------------------------------------------------------------------------------

    def handle(self, action: str, params: Mapping[str, str]) -> JSON:
        """Serve one API call; raises _ApiError for a whole-call error."""
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            self._calls[action] += 1
            self._inject_fault(action, after=False)
            self._settle()
            handler = self._ACTIONS.get(action)
            if handler is None:
                raise _ApiError(404, "InvalidAction.NotFound", f"Specified api {action} is not found.")
            if action in self._denied:
                raise _ApiError(403, "Forbidden.RAM", _RAM_DENIED)
            if action in _DRY_RUN_ACTIONS and params.get("DryRun", "").lower() == "true":
                self._writer_tables(_indexed_records(params, "RouteEntries"))  # validates, like the cloud
                raise _ApiError(
                    400, "DryRunOperation", "Request validation has been passed with DryRun flag set."
                )
            token = params.get("ClientToken", "")
            if token and self.honour_client_token and (action, token) in self._tokens:
                return self._tokens[(action, token)]
            body = handler(self, params)
            if token:
                self._tokens[(action, token)] = body
            self._inject_fault(action, after=True)
            return body

    def _inject_fault(self, action: str, *, after: bool) -> None:
        for fault in self._faults:
            if (
                fault.times > 0
                and fault.after is after
                and (fault.actions is None or action in fault.actions)
            ):
                fault.times -= 1
                raise fault.error
        self._faults = [f for f in self._faults if f.times > 0]

    def _settle(self) -> None:
        """Advance lifecycles: in-flight entries whose delay has passed become Available or disappear."""
        now = time.monotonic()
        for table in self._tables.values():
            for destination, entry in list(table.entries.items()):
                if entry.settles_at > now:
                    continue
                if entry.status == "Deleting":
                    del table.entries[destination]
                elif entry.status != "Available":
                    entry.status = "Available"

    def _insert(
        self,
        table: _Table,
        destination: str,
        *,
        next_hop: str,
        next_hop_type: str,
        name: str,
        description: str,
        type_: str,
    ) -> _Entry:
        entry = _Entry(
            id=f"rte-{next(self._ids):08d}",
            table_id=table.id,
            destination=destination,
            next_hop=next_hop,
            next_hop_type=next_hop_type,
            name=name,
            description=description,
            type=type_,
            status="Available",
            enabled=next_hop not in self._terminated,
        )
        table.entries[destination] = entry
        return entry

    def _table(self, table_id: str) -> _Table:
        table = self._tables.get(table_id)
        if table is None:
            raise _ApiError(
                404, "InvalidRouteTableId.NotFound", f"Specified route table {table_id} does not exist."
            )
        return table

    def _vpc_busy(self, vpc_id: str) -> bool:
        return any(
            e.status != "Available"
            for t in self._tables.values()
            if t.vpc_id == vpc_id
            for e in t.entries.values()
        )

    def _writer_tables(self, entries: list[dict[str, str]]) -> list[_Table]:
        """The tables a batch writes to; the whole call is refused while any of their VPCs is busy."""
        if not entries:
            raise _ApiError(
                400, "MissingParameter", "The input parameter RouteEntries that is mandatory is missing."
            )
        if len(entries) > 50:
            raise _ApiError(400, "InvalidParameter", "RouteEntries accepts at most 50 entries.")
        tables = [self._table(e.get("RouteTableId", "")) for e in entries]
        if any(self._vpc_busy(t.vpc_id) for t in tables):
            raise _ApiError(
                400,
                self.busy_code,
                "The operation is failed because of another task in progress on this VPC.",
            )
        return tables

    # ---- actions ---------------------------------------------------------------------------------------

    def _describe_route_table_list(self, params: Mapping[str, str]) -> JSON:
        vpc_id, table_id = params.get("VpcId", ""), params.get("RouteTableId", "")
        page, size = int(params.get("PageNumber", "1")), int(params.get("PageSize", "10"))
        if not 1 <= size <= TABLE_PAGE_MAX:
            raise _ApiError(400, "InvalidParameter", f"PageSize must be 1 to {TABLE_PAGE_MAX}.")
        tables = [
            t
            for t in self._tables.values()
            if (not vpc_id or t.vpc_id == vpc_id) and (not table_id or t.id == table_id)
        ]
        chunk = tables[(page - 1) * size : page * size]
        return {
            "RequestId": _request_id(),
            "TotalCount": len(tables),
            "PageNumber": page,
            "PageSize": size,
            "RouterTableList": {
                "RouterTableListType": [
                    {
                        "RouteTableId": t.id,
                        "VpcId": t.vpc_id,
                        "RouteTableType": "Custom" if t.vswitch_ids else "System",
                        "RouterType": "VRouter",
                        "Status": "Available",
                        "VSwitchIds": {"VSwitchId": list(t.vswitch_ids)},
                    }
                    for t in chunk
                ]
            },
        }

    def _describe_route_entry_list(self, params: Mapping[str, str]) -> JSON:
        table = self._table(params.get("RouteTableId", ""))
        size = int(params.get("MaxResult", "10"))
        if not 1 <= size <= PAGE_MAX:
            raise _ApiError(400, "InvalidParameter", f"MaxResult must be 1 to {PAGE_MAX}.")
        type_ = params.get("RouteEntryType", "")
        wanted = set(_indexed(params, "DestCidrBlockList"))
        if "DestinationCidrBlock" in params:
            wanted.add(params["DestinationCidrBlock"])
        entries = [
            e
            for e in table.entries.values()
            if (not type_ or e.type == type_)
            and (not wanted or e.destination in wanted)
            and (not params.get("NextHopId") or e.next_hop == params["NextHopId"])
            and (not params.get("RouteEntryId") or e.id == params["RouteEntryId"])
        ]
        start = int(params["NextToken"]) if params.get("NextToken") else 0
        page = entries[start : start + size]
        more = start + size < len(entries)
        return {
            "RequestId": _request_id(),
            "TotalCount": str(len(entries)),
            "NextToken": str(start + size) if more else "",
            "RouteEntrys": {"RouteEntry": [e.as_json(self.region) for e in page]},
        }

    def _create_route_entries(self, params: Mapping[str, str]) -> JSON:
        entries = _indexed_records(params, "RouteEntries")
        tables = self._writer_tables(entries)
        failed: list[JSON] = []
        ids: list[str] = []
        settles_at = time.monotonic() + self.create_delay
        for spec, table in zip(entries, tables, strict=True):
            destination, next_hop = spec.get("DstCidrBlock", ""), spec.get("NextHop", "")
            error = self._create_error(table, destination, next_hop)
            if error is not None:
                failed.append(
                    {
                        "DstCidrBlock": destination,
                        "NextHop": next_hop,
                        "FailedCode": error[0],
                        "FailedMessage": error[1],
                    }
                )
                continue
            entry = self._insert(
                table,
                str(ipaddress.ip_network(destination, strict=False)),
                next_hop=next_hop,
                next_hop_type=spec.get("NextHopType", "Instance"),
                name=spec.get("Name", ""),
                description=spec.get("Description", ""),
                type_="Custom",
            )
            entry.status, entry.settles_at = self.pending_status, settles_at
            ids.append(entry.id)
        return {
            "RequestId": _request_id(),
            "SuccessCount": len(ids),
            "FailedCount": len(failed),
            "RouteEntryIds": ids,
            "FailedRouteEntries": failed,
        }

    def _create_error(self, table: _Table, destination: str, next_hop: str) -> tuple[str, str] | None:
        try:
            network = str(ipaddress.ip_network(destination, strict=False))
        except ValueError:
            return (
                "InvalidDestinationCidrBlock.Malformed",
                f"Specified CIDR block {destination!r} is not valid.",
            )
        if network in table.entries:
            return (
                "VPC_ROUTE_ENTRY_CIDR_BLOCK_DUPLICATE",
                f"Specified CIDR block is already exists, entry.cidrBlock={network}",
            )
        if next_hop not in self._vpcs.get(table.vpc_id, set()):
            return (
                "InvalidInstanceId.NotFound",
                f"The specified instance {next_hop} does not exist in this VPC.",
            )
        if table.custom_count() >= table.quota:
            return (
                "QuotaExceeded.RouteEntryNum",
                f"Custom route entries exceed the quota {table.quota} of the table.",
            )
        return None

    def _delete_route_entries(self, params: Mapping[str, str]) -> JSON:
        entries = _indexed_records(params, "RouteEntries")
        tables = self._writer_tables(entries)
        failed: list[JSON] = []
        settles_at = time.monotonic() + self.delete_delay
        for spec, table in zip(entries, tables, strict=True):
            entry = _find(table, spec)
            if entry is None or entry.type != "Custom":
                failed.append(
                    {
                        "DstCidrBlock": spec.get("DstCidrBlock", ""),
                        "NextHop": spec.get("NextHop", ""),
                        "RouteEntryId": spec.get("RouteEntryId", ""),
                        "FailedCode": "InvalidRouteEntry.NotFound",
                        "FailedMessage": "The specified route entry does not exist.",
                    }
                )
                continue
            entry.status, entry.settles_at = "Deleting", settles_at
        return {
            "RequestId": _request_id(),
            "SuccessCount": len(entries) - len(failed),
            "FailedCount": len(failed),
            "FailedRouteEntries": failed,
        }

    def _modify_route_entry(self, params: Mapping[str, str]) -> JSON:
        """ModifyRouteEntry: name and description of one custom entry (by RouteEntryId), and its next
        hop when `NewNextHopId` is given; refused while the VPC has a task in flight."""
        entry_id = params.get("RouteEntryId", "")
        found = [(t, e) for t in self._tables.values() for e in t.entries.values() if e.id == entry_id]
        if not found or found[0][1].type != "Custom":
            raise _ApiError(404, "InvalidRouteEntry.NotFound", "The specified route entry does not exist.")
        table, entry = found[0]
        if self._vpc_busy(table.vpc_id):
            raise _ApiError(
                400, self.busy_code, "The operation is failed because of another task in progress."
            )
        if "RouteEntryName" in params:
            entry.name = params["RouteEntryName"]
        if "Description" in params:
            entry.description = params["Description"]
        if params.get("NewNextHopId"):
            entry.next_hop = params["NewNextHopId"]
            entry.next_hop_type = params.get("NewNextHopType", "Instance")
            entry.enabled = entry.next_hop not in self._terminated
        return {"RequestId": _request_id()}

    def _describe_instances(self, params: Mapping[str, str]) -> JSON:
        """ECS DescribeInstances (the one ECS read the adapter makes): each live instance named in
        `InstanceIds` (a JSON list) with the VPC it is in."""
        wanted = json.loads(params.get("InstanceIds") or "[]")
        found = [
            {
                "InstanceId": i,
                "Status": "Running",
                "VpcAttributes": {"VpcId": vpc, "VSwitchId": self._vswitch_of.get(i, "")},
            }
            for i in wanted
            for vpc, members in sorted(self._vpcs.items())
            if i in members
        ]
        return {
            "RequestId": _request_id(),
            "TotalCount": len(found),
            "PageNumber": 1,
            "PageSize": max(10, len(found)),
            "Instances": {"Instance": found},
        }

    def _get_caller_identity(self, params: Mapping[str, str]) -> JSON:
        """STS GetCallerIdentity: who the credentials are (RAM role or user), as STS answers."""
        account = self.caller_arn.split(":")[3]
        return {
            "RequestId": _request_id(),
            "AccountId": account,
            "Arn": self.caller_arn,
            "IdentityType": "AssumedRoleUser" if ":role/" in self.caller_arn else "RAMUser",
            "PrincipalId": "300000000000000000",
            "UserId": "300000000000000000",
        }

    _ACTIONS: ClassVar[dict[str, Callable[[AlibabaVpcEmulator, Mapping[str, str]], JSON]]] = {
        "GetCallerIdentity": _get_caller_identity,
        "DescribeInstances": _describe_instances,
        "DescribeRouteTableList": _describe_route_table_list,
        "DescribeRouteEntryList": _describe_route_entry_list,
        "CreateRouteEntries": _create_route_entries,
        "DeleteRouteEntries": _delete_route_entries,
        "ModifyRouteEntry": _modify_route_entry,
    }


def _actions(action: str | Collection[str] | None) -> frozenset[str] | None:
    if action is None:
        return None
    return frozenset({action} if isinstance(action, str) else action)


def _find(table: _Table, spec: Mapping[str, str]) -> _Entry | None:
    """Match a delete spec by RouteEntryId, or by destination and next hop."""
    if spec.get("RouteEntryId"):
        return next((e for e in table.entries.values() if e.id == spec["RouteEntryId"]), None)
    entry = table.entries.get(spec.get("DstCidrBlock", ""))
    if entry is None or entry.next_hop != spec.get("NextHop", ""):
        return None
    return entry


def _indexed(params: Mapping[str, str], prefix: str) -> Iterator[str]:
    """`Prefix.1`, `Prefix.2`, … in index order."""
    for n in itertools.count(1):
        value = params.get(f"{prefix}.{n}")
        if value is None:
            return
        yield value


def _indexed_records(params: Mapping[str, str], prefix: str) -> list[dict[str, str]]:
    """`Prefix.N.Field` flattened parameters, regrouped into one dict per N (in index order)."""
    records: dict[int, dict[str, str]] = {}
    head = prefix + "."
    for key, value in params.items():
        if key.startswith(head):
            index, _, name = key[len(head) :].partition(".")
            if index.isdigit() and name:
                records.setdefault(int(index), {})[name] = value
    return [records[i] for i in sorted(records)]


def _request_id() -> str:
    return str(uuid.uuid4()).upper()


class _Handler(RpcHandler):
    emulator: ClassVar[AlibabaVpcEmulator]

    def serve(self) -> None:
        params = request_params(self)
        action = self.headers.get("x-acs-action") or params.get("Action", "")
        headers: dict[str, str] = {}
        try:
            status, payload = 200, self.emulator.handle(action, params)
        except _ApiError as err:
            status = err.status
            payload = {
                "RequestId": _request_id(),
                "Code": err.code,
                "Message": err.message,
                "HostId": "vpc.aliyuncs.com",
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={err.code}",
            }
            if err.retry_after_ms is not None:
                headers["x-acs-retry-after"] = str(err.retry_after_ms)
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "application/json;charset=utf-8")
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


__all__ = ["AlibabaVpcEmulator", "EmulatedRoute"]
