"""Quantities as people write them in rules files, registers and requests: durations, clock windows, places.

Why here: the county rules file (``[patrol] budget = "4h"``), a register's
``visit_window`` column ("18:00-21:00") and a request's ``budget=3h30m`` are
all read with the same two parsers, so that one spelling means one thing
everywhere.
"""

from __future__ import annotations

import math
import re
from typing import Any

from gridgeo.errors import UsageError

__all__ = ["PLACES", "format_window", "parse_duration", "parse_place", "parse_window"]

#: The named places a round may start or end at: the grid's station, the worker's home.
PLACES = ("station", "home")

_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*(?:m|min))?\s*$", re.IGNORECASE)
_CLOCK = re.compile(r"^\s*(\d{1,2})[:：](\d{2})\s*$")
_DASH = re.compile(r"\s*(?:-|–|—|~|～|至|到)\s*")


def parse_duration(text: str | float, what: str = "budget") -> float:
    """Minutes from ``"4h"``, ``"90min"``, ``"3h30m"``, ``"1.5h"`` or a bare number of minutes (``"240"``).

    Raises
    ------
    UsageError
        For anything else, or a duration that is not positive (``what`` names it in the message).
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        minutes = float(text)
    else:
        s = str(text).strip()
        try:
            minutes = float(s)
        except ValueError:
            m = _DURATION.match(s)
            if not m or not (m.group(1) or m.group(2)):
                raise UsageError(f"{what} {text!r}: expected e.g. 4h, 90min, 3h30m or 240 (minutes)") from None
            minutes = float(m.group(1) or 0) * 60.0 + float(m.group(2) or 0)
    if not (math.isfinite(minutes) and minutes > 0):
        raise UsageError(f"{what} must be positive, got {text!r}")
    return minutes


def _clock(text: str, whole: str) -> int:
    m = _CLOCK.match(text)
    if not m or int(m.group(1)) > 24 or int(m.group(2)) > 59 or (int(m.group(1)) == 24 and int(m.group(2))):
        raise UsageError(f"visit window {whole!r}: expected HH:MM-HH:MM, e.g. 18:00-21:00")
    return int(m.group(1)) * 60 + int(m.group(2))


def parse_window(text: str) -> tuple[int, int]:
    """A clock window ``"18:00-21:00"`` (also ``18:00~21:00``, ``18：00至21：00``) as minutes after midnight.

    A window that closes before it opens (``"22:00-02:00"``) is refused: a
    round is planned within one day.

    Raises
    ------
    UsageError
        For anything else, naming the text.
    """
    parts = _DASH.split(str(text).strip())
    if len(parts) != 2:
        raise UsageError(f"visit window {text!r}: expected HH:MM-HH:MM, e.g. 18:00-21:00")
    lo, hi = _clock(parts[0], text), _clock(parts[1], text)
    if hi <= lo:
        raise UsageError(f"visit window {text!r} closes before it opens (a round is planned within one day)")
    return lo, hi


def format_window(window: tuple[int, int]) -> str:
    """``(1080, 1260)`` as ``"18:00-21:00"``."""
    return "-".join(f"{m // 60:02d}:{m % 60:02d}" for m in window)


def parse_place(value: object, what: str = "start") -> str | tuple[float, float]:
    """``station``, ``home``, ``"LON,LAT"`` or ``[lon, lat]``: where a patrol round starts or ends.

    Raises
    ------
    UsageError
        For anything else, or a lon/lat outside the globe.
    """
    if isinstance(value, str) and value.strip().lower() in PLACES:
        return value.strip().lower()
    parts: Any = value.split(",") if isinstance(value, str) else value if isinstance(value, list | tuple) else []
    if len(parts) != 2 or any(isinstance(v, bool) for v in parts):
        raise UsageError(f"{what} {value!r}: expected station, home or LON,LAT")
    try:
        lon, lat = float(parts[0]), float(parts[1])
    except (TypeError, ValueError):
        raise UsageError(f"{what} {value!r}: expected station, home or LON,LAT") from None
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise UsageError(f"{what} {value!r}: LON,LAT outside -180..180, -90..90")
    return (lon, lat)
