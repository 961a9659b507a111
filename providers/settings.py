"""One declared setting: a flag, its environment variable, its YAML key, how to parse it, its default.

routectl's own settings and every provider spec's settings are declared with this one type, so a setting
an adapter declares is loaded, merged, checked and documented exactly like a built-in one
(docs/providers.md, "Settings"). Parsers raise ValueError with a message that reads after the setting's
name ("--route-priority: 70000 is not within 0-65535").
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_NAME = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")


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
    commands: tuple[str, ...] = ("run", "plan")
    """The routectl commands that take it; provider settings apply to both."""

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
    if value < 0:
        raise ValueError(f"{value} must not be negative")
    return value
