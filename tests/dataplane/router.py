"""The VPC router follows the cloud, not routectl: its kernel table is synced from the cloud's own state.

Each cloud is read through its own API, the way its router would see it — never through routectl:
- AWS (moto, boto3): the routes of the route table associated with the nodes' subnet that target an
  instance and are `active`; each instance's private IP and its source/destination check.
- GCP (GCE emulator, REST): the network's routes with a `nextHopInstance` (lowest priority value wins per
  destination); each instance's `networkIP` and `canIpForward`.
- Alibaba (VPC emulator, REST): the table's `Available` custom entries whose next hop is an enabled
  instance; instance addresses come from the test's address plan (the VPC API has no instance call).
A route whose next hop may not forward (AWS source/destination check on, GCP `canIpForward` false),
is gone, or has no address is a blackhole; an instance that may not forward also has packets with a
foreign source address dropped where they enter the router (both halves of those checks).
`kernel_routes` is the pure translation; `RouterSync` polls a view and applies the difference.
Invariant: the router's table holds exactly `kernel_routes(last state read)` (routes it adds carry proto 99).
"""

from __future__ import annotations

import ipaddress
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tests.dataplane import netns
from tests.dataplane.topology import Fabric, Host

IPv4 = ipaddress.IPv4Address
Net = ipaddress.IPv4Network
PROTO = "99"
_HTTP_TIMEOUT_S = 5.0
_RULE_PREF = 1000


@dataclass(frozen=True, slots=True)
class Instance:
    address: IPv4 | None
    """The primary private address the cloud reports; None if it reports none."""
    forwards: bool
    """May send and receive packets not addressed to itself (AWS: source/dest check off)."""


@dataclass(frozen=True, slots=True)
class CloudState:
    routes: Mapping[Net, str]
    """Destination → next-hop instance id, for the routes the cloud's router would use."""
    instances: Mapping[str, Instance]


def kernel_routes(state: CloudState) -> dict[Net, IPv4 | None]:
    """Destination → next-hop address, or None for a blackhole (the hop is gone or may not forward)."""
    routes: dict[Net, IPv4 | None] = {}
    for destination, hop in state.routes.items():
        instance = state.instances.get(hop)
        usable = instance is not None and instance.forwards and instance.address is not None
        routes[destination] = instance.address if usable and instance is not None else None
    return routes


def not_forwarding(state: CloudState) -> frozenset[IPv4]:
    """Addresses of instances that may not forward: packets they send with another source are dropped."""
    return frozenset(i.address for i in state.instances.values() if i.address is not None and not i.forwards)


class CloudView(Protocol):
    def read(self) -> CloudState: ...


# --- the three clouds, read through their own APIs -----------------------------------------------


@dataclass(frozen=True, slots=True)
class AwsView:
    ec2: Any
    """A boto3 EC2 client bound to moto's endpoint."""
    subnet_id: str

    def read(self) -> CloudState:
        association = [{"Name": "association.subnet-id", "Values": [self.subnet_id]}]
        (table,) = self.ec2.describe_route_tables(Filters=association)["RouteTables"]
        routes = {
            Net(r["DestinationCidrBlock"]): str(r["InstanceId"])
            for r in table["Routes"]
            if r.get("InstanceId") and r.get("DestinationCidrBlock") and r.get("State", "active") == "active"
        }
        in_subnet = [{"Name": "subnet-id", "Values": [self.subnet_id]}]
        reservations = self.ec2.describe_instances(Filters=in_subnet)["Reservations"]
        instances = {
            str(i["InstanceId"]): Instance(IPv4(i["PrivateIpAddress"]), not i.get("SourceDestCheck", True))
            for r in reservations
            for i in r["Instances"]
            if i["State"]["Name"] == "running" and i.get("PrivateIpAddress")
        }
        return CloudState(routes, instances)


def get_json(url: str) -> Any:
    """GET a JSON document from an emulator on 127.0.0.1."""
    with urllib.request.urlopen(url, timeout=_HTTP_TIMEOUT_S) as response:
        return json.loads(response.read())


@dataclass(frozen=True, slots=True)
class GceView:
    endpoint: str
    """http://127.0.0.1:PORT of the GCE emulator."""
    project: str
    network_url: str

    def read(self) -> CloudState:
        best: dict[Net, tuple[int, str]] = {}
        token = ""
        while True:
            query = urllib.parse.urlencode({"pageToken": token} if token else {})
            page = get_json(f"{self.endpoint}/compute/v1/projects/{self.project}/global/routes?{query}")
            for route in page.get("items", []):
                hop = route.get("nextHopInstance")
                if route.get("network") != self.network_url or not hop:
                    continue
                destination, priority = Net(route["destRange"]), int(route.get("priority", 1000))
                if destination not in best or priority < best[destination][0]:
                    best[destination] = (priority, str(hop))
            token = page.get("nextPageToken", "")
            if not token:
                break
        routes = {destination: hop for destination, (_, hop) in best.items()}
        instances: dict[str, Instance] = {}
        for hop in set(routes.values()):
            path = urllib.parse.urlsplit(hop).path  # /compute/v1/projects/…/zones/…/instances/…
            try:
                found = get_json(self.endpoint + path)
            except urllib.error.HTTPError as err:
                if err.code == 404:
                    continue  # the instance is gone: its routes are blackholes
                raise
            nics = found.get("networkInterfaces") or [{}]
            address = nics[0].get("networkIP")
            instances[hop] = Instance(IPv4(address) if address else None, bool(found.get("canIpForward")))
        return CloudState(routes, instances)


@dataclass(frozen=True, slots=True)
class AlibabaView:
    endpoint: str
    """127.0.0.1:PORT of the Alibaba VPC emulator."""
    table_id: str
    addresses: Mapping[str, IPv4]
    """Instance id → private address (the test's plan inside the vSwitch CIDR)."""

    def read(self) -> CloudState:
        routes: dict[Net, str] = {}
        token = ""
        while True:
            params = {"Action": "DescribeRouteEntryList", "RouteTableId": self.table_id, "MaxResult": "100"}
            if token:
                params["NextToken"] = token
            page = get_json(f"http://{self.endpoint}/?{urllib.parse.urlencode(params)}")
            for entry in page["RouteEntrys"]["RouteEntry"]:
                hops = entry["NextHops"]["NextHop"]
                if entry["Status"] != "Available" or len(hops) != 1 or hops[0]["NextHopType"] != "Instance":
                    continue
                # A released instance's entry stays, its next hop disabled: a blackhole.
                routes[Net(entry["DestinationCidrBlock"])] = (
                    hops[0]["NextHopId"] if hops[0]["Enabled"] else ""
                )
            token = page.get("NextToken", "")
            if not token:
                break
        instances = {instance: Instance(address, True) for instance, address in self.addresses.items()}
        return CloudState(routes, instances)


# --- the router's kernel table ---------------------------------------------------------------------


@dataclass(slots=True)
class RouterSync:
    """Polls `view` every `period_s` and makes the router's table and rules match (module docstring)."""

    fabric: Fabric
    view: CloudView
    period_s: float = 0.25
    routes: dict[Net, IPv4 | None] = field(default_factory=dict)
    """What the router's table holds now (destination → hop, None = blackhole)."""
    changes: list[tuple[float, Net, IPv4 | None]] = field(default_factory=list)
    """(monotonic time, destination, new hop) of every change applied; a removal is recorded as None."""
    errors: list[str] = field(default_factory=list)
    _blocked: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _due: float = 0.0
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self.sync_now()
        self._thread = threading.Thread(target=self._loop, name="router-sync")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(max(0.0, self._due - time.monotonic())):
            try:
                self.sync_now()
            except Exception as err:  # a failed read or apply is retried at the next period
                self.errors.append(f"{type(err).__name__}: {err}")
                self._due = time.monotonic() + self.period_s

    def sync_now(self) -> CloudState:
        """Read the cloud and apply it at once; the next background sync is a full period away."""
        with self._lock:
            state = self.view.read()
            self._apply(state)
            self._due = time.monotonic() + self.period_s
            return state

    def _apply(self, state: CloudState) -> None:
        wanted: dict[Net, IPv4 | None] = {}
        for destination, hop in kernel_routes(state).items():
            wanted[destination] = hop if hop is not None and self.fabric.host_at(hop) is not None else None
        router = self.fabric.router
        for destination in sorted(set(self.routes) - set(wanted)):
            netns.ip("route", "del", str(destination), netns=router)
            self._changed(destination, None)
            del self.routes[destination]
        for destination, hop in sorted(wanted.items()):
            if destination in self.routes and self.routes[destination] == hop:
                continue
            if hop is None:
                netns.ip("route", "replace", "blackhole", str(destination), "proto", PROTO, netns=router)
            else:
                netns.ip("route", "replace", str(destination), "via", str(hop), "proto", PROTO, netns=router)
            self.routes[destination] = hop
            self._changed(destination, hop)
        blocked = not_forwarding(state)
        for host in self.fabric.hosts.values():
            self._guard(host, host.address.ip in blocked)

    def _changed(self, destination: Net, hop: IPv4 | None) -> None:
        self.changes.append((time.monotonic(), destination, hop))

    def _guard(self, host: Host, blocked: bool) -> None:
        """Drop what `host` sends with a source other than its own address, while it may not forward."""
        if blocked == (host.port in self._blocked):
            return
        own, drop = str(_RULE_PREF + 2 * host.index), str(_RULE_PREF + 2 * host.index + 1)
        router = self.fabric.router
        if blocked:
            netns.ip(
                "rule", "add", "pref", own, "iif", host.port, "from", str(host.address.ip), "lookup", "main",
                netns=router,
            )  # fmt: skip
            netns.ip("rule", "add", "pref", drop, "iif", host.port, "blackhole", netns=router)
            self._blocked.add(host.port)
        else:
            netns.ip("rule", "del", "pref", own, netns=router)
            netns.ip("rule", "del", "pref", drop, netns=router)
            self._blocked.discard(host.port)

    def routed_at(self, destination: Net, hop: IPv4) -> float | None:
        """When the router first routed `destination` to `hop` (monotonic), if it has."""
        return next((at for at, d, h in self.changes if d == destination and h == hop), None)
