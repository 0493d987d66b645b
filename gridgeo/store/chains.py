"""Each unit's chain of parents (point → grid → village → block → township → area), from the layers.

Why: a scope is one code and a record sits in one unit; whether the record
is inside the scope is whether the scope is on the unit's chain. The chains
come from the layers' own ``parent`` columns (and a village's ``block``, a
township's ``area``), never from the shape of the codes, so a county with
codes of its own works the same.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

#: level layer -> the columns that name its parents (a grid point's parent is a grid or an exclusive grid)
PARENT_COLUMNS: dict[str, tuple[str, ...]] = {
    "points": ("parent",), "micro_grids": ("parent",), "lanes": ("parent",), "exclusive": ("parent",),
    "grids": ("parent",), "villages": ("parent", "block"), "blocks": ("parent",), "townships": ("area",),
    "areas": (),
}
#: a household's own columns that name its units, finest first
HOUSEHOLD_UNITS: tuple[str, ...] = ("lane", "micro_grid", "point", "grid", "village", "township")


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NA:
        return None
    s = str(value).strip()
    return s or None


def _texts(col: pd.Series) -> list[str | None]:
    """:func:`_text` of every cell of a column (a str cell, the common case, without the calls)."""
    return [(v.strip() or None) if type(v) is str else _text(v) for v in col.tolist()]


class Chains:
    """The parents of every unit code of the county's levels, and the level each code is in.

    Parameters
    ----------
    frames
        Layer name -> its table (at least ``code`` and the :data:`PARENT_COLUMNS` it has).
    """

    def __init__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        self.parents: dict[str, tuple[str, ...]] = {}
        self.level: dict[str, str] = {}
        for layer, cols in PARENT_COLUMNS.items():
            df = frames.get(layer)
            if df is None or "code" not in df.columns:
                continue
            have = [c for c in cols if c in df.columns]
            # whole columns as text first (a county of 600,000 units: a second, not six, in a per-cell loop)
            texts = [_texts(df[c]) for c in ("code", *have)]
            for code, *parents in zip(*texts, strict=True):
                if code is None:
                    continue
                self.level.setdefault(code, layer)
                self.parents[code] = tuple(p for p in parents if p is not None)

    def chain(self, code: str | None) -> tuple[str, ...]:
        """``code`` and every unit above it, nearest first (each once; a cycle in bad data stops)."""
        out: list[str] = []
        todo = [code] if code else []
        while todo:
            c = todo.pop(0)
            if c in out:
                continue
            out.append(c)
            todo.extend(self.parents.get(c, ()))
        return tuple(out)

    def household_chain(self, units: Mapping[str, Any]) -> tuple[str, ...]:
        """The chain of a household from its unit columns (:data:`HOUSEHOLD_UNITS`), finest first."""
        out: list[str] = []
        for col in HOUSEHOLD_UNITS:
            for c in self.chain(_text(units.get(col))):
                if c not in out:
                    out.append(c)
        return tuple(out)

    def __contains__(self, code: object) -> bool:
        return code in self.level
