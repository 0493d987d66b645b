"""What every parser of a rules-file section shares: the file being read, [min, max] pairs, name lists.

Private to :mod:`gridgeo.county.rules` and its section parsers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridgeo.errors import UsageError


@dataclass(frozen=True)
class RulesFile:
    """The rules file being read: its path (for messages) and its folder (inputs are relative to it)."""

    path: Path

    @property
    def base(self) -> Path:
        return self.path.parent


def pair(v: object, what: str, p: Path) -> tuple[float, float]:
    if (not isinstance(v, list) or len(v) != 2 or any(isinstance(x, bool) or not isinstance(x, int | float)
                                                      for x in v)):
        raise UsageError(f"{p}: {what} must be [min, max] numbers, not {v!r}")
    lo, hi = float(v[0]), float(v[1])
    if lo < 0 or hi <= 0 or lo > hi:
        raise UsageError(f"{p}: {what} = [{lo:g}, {hi:g}] needs 0 <= min <= max and max > 0")
    return lo, hi


def names(body: dict[str, Any], key: str, message: str, f: RulesFile) -> tuple[str, ...]:
    """A list of names (classes, categories), refused unless every entry is a string."""
    if not all(isinstance(s, str) for s in body[key]):
        raise UsageError(f"{f.path}: {message}")
    return tuple(body[key])
