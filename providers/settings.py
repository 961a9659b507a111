"""One declared setting: a flag, its environment variable, its YAML key, how to parse it, its default.

routectl's own settings and every provider spec's settings are declared with this one type, so a setting
an adapter declares is loaded, merged, checked and documented exactly like a built-in one
(docs/providers.md, "Settings"). Parsers raise ValueError with a message that reads after the setting's
name ("--route-priority: 70000 is not within 0-65535").
"""

from __future__ import annotations

import math
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_REGION = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
_RESOURCE_ID = re.compile(r"[a-z]+-[a-z0-9]+")
_HOST = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*")


@dataclass(frozen=True, slots=True)
class Setting:
    """Flag `--NAME`, env `ROUTECTL_NAME` (upper case, `-` → `_`), YAML key `NAME`.

    Invariant: the name is a lowercase flag name, so flag, env and YAML key never disagree."""

    name: str
    help: str
    parse: Callable[[str], Any] = str
    """From a string (flag, env, YAML scalar) to the value; ValueError names what is wrong."""
    default: Any = ""
    required: bool = False
    """Must be given (non-empty) whenever the setting applies; a required setting has no default."""
    many: bool = False
    """A list: flags repeat or take commas; YAML takes a list; env takes commas. Values are tuples."""
    field: str = ""
    """Attribute of the config object that receives the value; default: the name with `-` → `_`."""
    commands: tuple[str, ...] = ("run", "plan", "doctor")
    """The routectl commands that take it; provider settings apply to all three."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"setting {self.name!r}: a name is lowercase words joined by '-'")
        if self.required and not missing(self.default):
            raise ValueError(f"setting --{self.name}: a required setting has no default")
        if self.many and not isinstance(self.default, tuple):
            raise ValueError(f"setting --{self.name}: a list's default is a tuple")

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def attribute(self) -> str:
        return self.field or self.dest

    @property
    def env(self) -> str:
        return "ROUTECTL_" + self.dest.upper()


def missing(value: Any) -> bool:
    """Nothing given: None, an empty string or an empty list (zero and false are values)."""
    return value is None or value in ("", ())


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"{text!r} is not true or false")


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise ValueError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def int_within(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"{value} is not within {low}-{high}")
        return value

    return parse


def non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"{value} must not be negative")
    return value


def non_negative_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{text.strip()!r} is not a finite number of at least 0")
    return value


def region(text: str) -> str:
    """A cloud region name, as every cloud spells them: `us-east-1`, `cn-hangzhou`, `europe-west4`."""
    if len(text) > 64 or not _REGION.fullmatch(text):
        raise ValueError(f"{text!r} is not a region name (lowercase letters, digits and '-', like us-east-1)")
    return text


def resource_id(text: str) -> str:
    """A cloud resource id of the `prefix-suffix` kind: `vpc-0abc12`, `rtb-0123`, `vtb-bp1x…`."""
    if len(text) > 128 or not _RESOURCE_ID.fullmatch(text):
        raise ValueError(f"{text!r} is not a resource id (like vpc-0abc123 or rtb-0123abcd)")
    return text


def endpoint_url(text: str) -> str:
    """An API endpoint override: `http(s)://host[:port][/path]`; "" keeps the cloud's own endpoint."""
    if not text:
        return text
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port  # raises ValueError when the port is not a number within 0-65535
    except ValueError:
        parts, port = None, None
    host = parts.hostname if parts is not None else None
    fine = (
        parts is not None
        and parts.scheme in ("http", "https")
        and host is not None
        and (_HOST.fullmatch(host) is not None or ":" in host)  # a name, an IPv4 or a bracketed IPv6
        and not parts.query
        and not parts.fragment
        and not any(c.isspace() for c in text)
        and (port is None or port > 0)
    )
    if not fine:
        raise ValueError(f"{text!r} is not an endpoint URL like https://host[:port] or http://127.0.0.1:5000")
    return text
