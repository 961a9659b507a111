"""Network namespaces for the dataplane tier: name, create, enter, run in, and remove them.

Every namespace is named `rdp<pid>-…`, where <pid> is the test process that owns it, so a later run can
tell the leftovers of a killed run (owner gone) from the namespaces of a run still going (another
engineer's), and removes only the former. Links are created directly inside their namespaces (both ends
of a veth pair name their namespace), so nothing is ever created in the root namespace and removing a
namespace removes its links.
Invariant: a thread that enters a namespace (`entered`) is back in its own one when the block ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

PREFIX = "rdp"
NETNS_DIR = Path("/run/netns")
_OWNED = re.compile(rf"^{PREFIX}(\d+)-")
_CLONE_NEWNET = 0x40000000
_IP_TIMEOUT_S = 20.0
_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(Exception):
    """An `ip` command failed; the message carries the command and its stderr."""


def run_prefix(pid: int | None = None) -> str:
    """The prefix of every namespace and link the process `pid` (default: this one) creates."""
    return f"{PREFIX}{pid if pid is not None else os.getpid()}"


def ip(*args: str, netns: str = "") -> str:
    """`ip [-n NETNS] ARGS`; its stdout, or NetnsError."""
    argv = ["ip", *(("-n", netns) if netns else ()), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=_IP_TIMEOUT_S, check=False)
    if done.returncode != 0:
        raise NetnsError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def in_netns(netns: str, argv: Sequence[str]) -> list[str]:
    """`argv` prefixed to run inside `netns`."""
    return ["ip", "netns", "exec", netns, *argv]


def sysctl(netns: str, key: str, value: str) -> None:
    """Set a per-namespace sysctl (net.*) inside `netns`."""
    path = "/proc/sys/" + key.replace(".", "/")
    with entered(netns), open(path, "w") as knob:
        knob.write(value)


def create(name: str) -> None:
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", netns=name)


def delete(name: str) -> None:
    """Remove a namespace (and with it its links); a missing one is fine."""
    if (NETNS_DIR / name).exists():
        ip("netns", "delete", name)


def owned_by(pid: int) -> list[str]:
    """The namespaces the process `pid` created."""
    prefix = run_prefix(pid) + "-"
    return sorted(n for n in listed() if n.startswith(prefix))


def listed() -> list[str]:
    """Every named namespace on the machine (`ip netns list`)."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def clear_leftovers() -> list[str]:
    """Remove the namespaces (and root-namespace links) of dead owners; returns what was removed."""
    removed: list[str] = []
    for name in listed():
        owner = _OWNED.match(name)
        if owner is not None and not _alive(int(owner.group(1))):
            delete(name)
            removed.append(name)
    for link in links():
        owner = _OWNED.match(link)
        if owner is not None and not _alive(int(owner.group(1))):
            ip("link", "delete", link)
            removed.append(link)
    return removed


def links(netns: str = "") -> list[str]:
    """Names of the links in `netns` (default: the root namespace), without the `@peer` part."""
    listing = ip("-o", "link", "show", netns=netns)
    return [line.split(":")[1].strip().split("@")[0] for line in listing.splitlines()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@contextlib.contextmanager
def entered(netns: str) -> Iterator[None]:
    """The calling thread runs in `netns` inside the block.

    Sockets created inside stay in `netns` after the block; threads started inside inherit it. Python 3.11
    has no os.setns, so this calls libc's setns(2) through ctypes (it switches the calling thread only).
    """
    with open("/proc/thread-self/ns/net", "rb") as home, open(NETNS_DIR / netns, "rb") as target:
        _setns(target.fileno())
        try:
            yield
        finally:
            _setns(home.fileno())
