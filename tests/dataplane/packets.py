"""Packets, not route tables: ICMP echo between pods, and a capture on the router.

`Prober` sends echo requests from inside pod namespaces (one raw ICMP socket per pod, opened inside it)
and reports which targets answered. `RouterCapture` is a raw AF_PACKET socket in the router namespace
that sees every frame on every router port, in and out; it decodes the IPv4 header (and the UDP port)
of each, enough to show that pod-to-pod traffic crosses the router as plain IP between pod addresses,
with no VXLAN (UDP 8472) or other encapsulation.
Invariant: every socket opened here is closed by `close()`; no socket lives outside our namespaces.
"""

from __future__ import annotations

import contextlib
import ipaddress
import itertools
import select
import socket
import struct
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from tests.dataplane import netns
from tests.dataplane.flannel import Pod

IPv4 = ipaddress.IPv4Address
ECHO_REQUEST, ECHO_REPLY = 8, 0
ICMP, UDP = 1, 17
VXLAN_PORT = 8472
"""flannel's VXLAN port (the Linux default; IANA's is 4789)."""
ENCAPSULATIONS = {4: "IP-in-IP", 41: "IPv6-in-IPv4", 47: "GRE", 50: "ESP", 51: "AH"}
_ETH_P_ALL, _ETH_P_IP = 0x0003, 0x0800
_PACKET_OUTGOING = 4
_RESEND_S = 0.25
_ids = itertools.count(0x4000)
"""Echo identifiers, one per `reach` call."""


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


def _echo(ident: int, seq: int) -> bytes:
    payload = b"routectl-dataplane"
    header = struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq)
    return struct.pack("!BBHHH", ECHO_REQUEST, 0, _checksum(header + payload), ident, seq) + payload


class Prober:
    """Echo requests from pods; see the module docstring."""

    def __init__(self) -> None:
        self._sockets: dict[str, socket.socket] = {}

    def _socket(self, pod: Pod) -> socket.socket:
        if pod.netns not in self._sockets:
            with netns.entered(pod.netns):
                sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            sock.bind((str(pod.ip), 0))  # requests leave with the pod's own address as their source
            sock.setblocking(False)
            self._sockets[pod.netns] = sock
        return self._sockets[pod.netns]

    def forget(self, pod: Pod) -> None:
        sock = self._sockets.pop(pod.netns, None)
        if sock is not None:
            sock.close()

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def reach(
        self, pairs: Iterable[tuple[Pod, IPv4]], timeout_s: float = 1.0
    ) -> dict[tuple[str, IPv4], bool]:
        """(source pod label, target) → whether an echo reply came back within `timeout_s`.

        Requests go out together and are re-sent every 0.25 s until answered, so a first packet lost
        to address resolution does not count against a path.
        """
        ident = next(_ids) & 0xFFFF  # fresh per call: a late reply to an earlier call never counts
        pending: dict[tuple[socket.socket, int], tuple[str, IPv4]] = {}
        packets: dict[tuple[str, IPv4], tuple[socket.socket, bytes, IPv4]] = {}
        for seq, (pod, target) in enumerate(pairs):
            sock = self._socket(pod)
            pending[(sock, seq)] = (pod.label, target)
            packets[(pod.label, target)] = (sock, _echo(ident, seq), target)
        answered: set[tuple[str, IPv4]] = set()
        deadline = time.monotonic() + timeout_s
        resend_at = 0.0
        sockets = {sock for sock, _ in pending}
        while len(answered) < len(packets):
            now = time.monotonic()
            if now >= deadline:
                break
            if now >= resend_at:
                for key, (sock, data, target) in packets.items():
                    if key not in answered:
                        with contextlib.suppress(OSError):  # e.g. "network unreachable": no reply, no answer
                            sock.sendto(data, (str(target), 0))
                resend_at = now + _RESEND_S
            ready, _, _ = select.select(list(sockets), [], [], max(0.0, min(deadline, resend_at) - now))
            for sock in ready:
                while True:
                    try:
                        data, (source, _) = sock.recvfrom(2048)
                    except BlockingIOError:
                        break
                    header = (data[0] & 0x0F) * 4
                    kind, _, _, got, seq = struct.unpack("!BBHHH", data[header : header + 8])
                    sent = pending.get((sock, seq))
                    if kind == ECHO_REPLY and got == ident and sent is not None and sent[1] == IPv4(source):
                        answered.add(sent)
        return {key: key in answered for key in packets}


@dataclass(frozen=True, slots=True)
class Seen:
    """One IPv4 packet on a router port."""

    port: str
    outgoing: bool
    protocol: int
    source: IPv4
    destination: IPv4
    destination_port: int | None
    """For UDP."""


class RouterCapture:
    """Every IPv4 packet on the router's ports while open; see the module docstring."""

    def __init__(self, router_netns: str) -> None:
        with netns.entered(router_netns):
            self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(_ETH_P_ALL))
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self._sock.setblocking(False)
        self.seen: list[Seen] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def drain(self) -> list[Seen]:
        """Decode everything captured so far (and keep it in `seen`)."""
        while True:
            try:
                frame, address = self._sock.recvfrom(65535)
            except BlockingIOError:
                return self.seen
            port, ethertype, pkttype = address[0], address[1], address[2]
            if ethertype != _ETH_P_IP or len(frame) < 34:
                continue
            packet = frame[14:]
            header = (packet[0] & 0x0F) * 4
            protocol = packet[9]
            udp_port = struct.unpack("!H", packet[header + 2 : header + 4])[0] if protocol == UDP else None
            self.seen.append(
                Seen(
                    port=port,
                    outgoing=pkttype == _PACKET_OUTGOING,
                    protocol=protocol,
                    source=IPv4(packet[12:16]),
                    destination=IPv4(packet[16:20]),
                    destination_port=udp_port,
                )
            )

    def close(self) -> None:
        self._sock.close()


def echo_requests(seen: Sequence[Seen]) -> set[tuple[IPv4, IPv4]]:
    """(source, destination) of the ICMP packets seen (requests and replies alike are plain ICMP)."""
    return {(s.source, s.destination) for s in seen if s.protocol == ICMP}


def encapsulated(seen: Sequence[Seen]) -> list[Seen]:
    """Packets that carry other packets: any UDP (VXLAN's 8472 among it) or an IP tunnel protocol."""
    return [s for s in seen if s.protocol == UDP or s.protocol in ENCAPSULATIONS]


def matrix(pods: Sequence[Pod], reached: Mapping[tuple[str, IPv4], bool]) -> list[list[bool | None]]:
    """Rows = sources, columns = targets, in `pods` order; None on the diagonal (a pod and itself)."""
    return [[None if a is b else reached[(a.label, b.ip)] for b in pods] for a in pods]
