"""The dataplane tier's little VPC: a router namespace, and one namespace per node cabled to it.

```
 pod ns ─ eth0 ══ veth ══ <run>-br (node ns: the node's bridge, made by the CNI bridge plugin)
                               │ ip_forward=1
                          <run>-up  (the node's eth0: the instance's private IP, as the cloud reports it)
                               ║ veth
 router ns (the VPC router)  <run>-r<i>: the gateway address, a /32 route to the node; the pod routes
                                         are whatever the router sync mirrors from the cloud
```
Nothing connects these namespaces to the root namespace: a packet can only travel between them (the
router has no default route), and every address in them — VPC subnet, pod CIDRs — exists only there.
Invariant: every namespace made here is removed by `close()`, whatever state the topology is in.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from tests.dataplane import netns

IPv4 = ipaddress.IPv4Address


@dataclass(frozen=True, slots=True)
class Host:
    """One node's machine: its namespace, its uplink with the instance's address, its router port."""

    name: str
    netns: str
    address: ipaddress.IPv4Interface
    uplink: str
    port: str
    """The link in the router namespace that leads to this host."""
    index: int


class Fabric:
    """The router namespace and the hosts cabled to it; see the module docstring."""

    def __init__(self, run: str, tag: str, subnet: ipaddress.IPv4Network) -> None:
        self.run = run
        self.tag = tag
        self.subnet = subnet
        self.gateway = next(subnet.hosts())
        """The router's address on every port: the subnet's first host address (AWS's VPC router's too)."""
        self.router = f"{run}-{tag}-vr"
        self.hosts: dict[str, Host] = {}
        self._namespaces: list[str] = []
        self._ports = itertools.count(1)

    @property
    def uplink(self) -> str:
        """The name of every node's uplink (each lives in its own namespace)."""
        return f"{self.run}-up"

    @property
    def bridge(self) -> str:
        """The name of every node's pod bridge, for the CNI bridge plugin."""
        return f"{self.run}-br"

    def __enter__(self) -> Self:
        try:
            self.namespace("vr", expected=self.router)
            netns.sysctl(self.router, "net.ipv4.ip_forward", "1")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def namespace(self, suffix: str, expected: str = "") -> str:
        """Create `<run>-<tag>-<suffix>` and track it for removal."""
        name = f"{self.run}-{self.tag}-{suffix}"
        assert not expected or name == expected
        self._namespaces.append(name)
        netns.create(name)
        return name

    def add_host(self, name: str, address: IPv4) -> Host:
        """A node's namespace, cabled to the router, with `address` on its uplink and forwarding on."""
        if address not in self.subnet or address == self.gateway:
            raise ValueError(f"{address} is not a host address of {self.subnet} (gateway {self.gateway})")
        index = next(self._ports)
        host = Host(
            name=name,
            netns=self.namespace(name),
            address=ipaddress.IPv4Interface((address, self.subnet.prefixlen)),
            uplink=self.uplink,
            port=f"{self.run}-r{index}",
            index=index,
        )
        netns.ip(
            "link", "add", "name", host.uplink, "netns", host.netns,
            "type", "veth", "peer", "name", host.port, "netns", self.router,
        )  # fmt: skip
        netns.ip("addr", "add", str(host.address), "dev", host.uplink, netns=host.netns)
        netns.ip("link", "set", host.uplink, "up", netns=host.netns)
        netns.ip("route", "add", "default", "via", str(self.gateway), netns=host.netns)
        netns.sysctl(host.netns, "net.ipv4.ip_forward", "1")
        netns.ip("addr", "add", f"{self.gateway}/32", "dev", host.port, netns=self.router)
        netns.ip("link", "set", host.port, "up", netns=self.router)
        netns.ip("route", "add", f"{address}/32", "dev", host.port, netns=self.router)
        self.hosts[name] = host
        return host

    def host_at(self, address: IPv4) -> Host | None:
        return next((h for h in self.hosts.values() if h.address.ip == address), None)

    def close(self) -> None:
        """Remove every namespace made here (hosts, pods, the router); their links go with them."""
        errors: list[str] = []
        while self._namespaces:
            name = self._namespaces.pop()
            try:
                netns.delete(name)
            except netns.NetnsError as err:
                errors.append(str(err))
        self.hosts.clear()
        if errors:
            raise netns.NetnsError("; ".join(errors))
