"""The input normalisers of :class:`~gridgeo.partition.Model`: one per kind of input.

Each turns what a caller may pass (a column name, an array, a number, a mapping per group,
nothing) into the one form the engine reads, and raises :class:`~gridgeo.errors.UsageError`
naming the input and, where there is one, the unit or group at fault. They run in the order
:class:`~gridgeo.partition.Model` calls them, so the first bad input is the one reported.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import networkx as nx
import numpy as np
from numpy.typing import ArrayLike, NDArray

from gridgeo.errors import UsageError
from gridgeo.partition._comp import FArray, IArray
from gridgeo.partition.units import Units

log = logging.getLogger(__name__)

SizeSpec = str | ArrayLike | None
BoundSpec = float | Mapping[Any, float] | None
CountSpec = int | Mapping[Any, int] | str | None


def read_units(units: nx.Graph | Units) -> Units:
    """The units view of a graph (or the view itself); there must be at least one unit."""
    u = units if isinstance(units, Units) else Units.from_networkx(units)
    if u.n == 0:
        raise UsageError("nothing to partition: no units")
    return u


def read_sizes(u: Units, size: SizeSpec) -> tuple[str, FArray]:
    """The name of the size column and every unit's size (a number >= 0); ``None`` counts units."""
    n = u.n
    if size is None:
        return "units", np.ones(n)
    name = size if isinstance(size, str) else "size"
    raw = u.column(size) if isinstance(size, str) else np.asarray(size, dtype=object)
    if len(raw) != n:
        raise UsageError(f"size has {len(raw)} values for {n} units")
    w = np.empty(n)
    for i, v in enumerate(raw):
        try:
            w[i] = float(v)
        except (TypeError, ValueError):
            w[i] = np.nan
        if not (math.isfinite(w[i]) and w[i] >= 0):
            raise UsageError(f"unit {u.ids[i]}: {name} must be a number >= 0, not {v!r}")
    return name, w


def read_groups(u: Units, group: SizeSpec) -> tuple[list[str], IArray]:
    """The sorted group names and every unit's group index; ``None`` puts all units in group ``""``."""
    n = u.n
    if group is None:
        gl = np.array([""] * n, dtype=object)
    else:
        gl = u.column(group) if isinstance(group, str) else np.asarray(group, dtype=object)
        if len(gl) != n:
            raise UsageError(f"group has {len(gl)} values for {n} units")
        missing = [u.ids[i] for i, v in enumerate(gl) if v is None or (isinstance(v, float) and math.isnan(v))]
        if missing:
            raise UsageError(f"{len(missing)} unit(s) have no group, e.g. {missing[0]}")
    names = [str(v) for v in gl]
    groups = sorted(set(names))
    gindex = {g: i for i, g in enumerate(groups)}
    return groups, np.array([gindex[g] for g in names], dtype=np.int64)


def read_bounds(min_size: BoundSpec, max_size: BoundSpec, groups: list[str]) -> tuple[list[float], list[float]]:
    """The minimum and maximum of every group (0 and infinity where not given); ``max > 0``, ``min <= max``."""
    lo_g = _bounds(min_size, "min_size", groups, 0.0)
    hi_g = _bounds(max_size, "max_size", groups, math.inf)
    for g, lo, hi in zip(groups, lo_g, hi_g, strict=True):
        if hi <= 0:
            raise UsageError(f"max_size must be > 0 (group {g!r})" if g else "max_size must be > 0")
        if lo > hi:
            raise UsageError(f"min_size {lo:g} is above max_size {hi:g}" + (f" in group {g!r}" if g else ""))
    return lo_g, hi_g


def _bounds(spec: BoundSpec, name: str, groups: list[str], default: float) -> list[float]:
    """A bound per group from a number, a mapping group -> number, or nothing."""
    if spec is None:
        return [default] * len(groups)
    if isinstance(spec, Mapping):
        given = {str(k): v for k, v in spec.items()}
        unknown = sorted(set(given) - set(groups))
        if unknown:
            raise UsageError(f"{name} names unknown group(s) {', '.join(unknown[:5])}")
        return [_bound(given[g], name) if g in given else default for g in groups]
    return [_bound(spec, name)] * len(groups)


def _bound(v: object, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not math.isfinite(float(v)) or v < 0:
        raise UsageError(f"{name} must be a finite number >= 0, not {v!r}")
    return float(v)


def read_counts(count: CountSpec, u: Units, groups: list[str], gidx: IArray) -> dict[str, int] | None:
    """Parts per group from an int, a mapping group -> int or a count column; ``None`` (free) stays ``None``."""
    if count is None:
        return None
    if isinstance(count, bool):
        raise UsageError("count must be an integer >= 1")
    if isinstance(count, int | np.integer):
        k = _as_count(count, "count")
        return {g: k for g in groups}
    if isinstance(count, str):
        return _counts_from_column(u.column(count), count, groups, gidx)
    if isinstance(count, Mapping):
        given = {str(k): v for k, v in count.items()}
        lack = [g for g in groups if g not in given]
        if lack:
            raise UsageError(f"no count for group(s) {', '.join(lack[:5])}")
        return {g: _as_count(given[g], f"count of group {g}") for g in groups}
    raise UsageError(f"count must be an int, a mapping or a column name, not {count!r}")


def _counts_from_column(kcol: NDArray[Any], name: str, groups: list[str], gidx: IArray) -> dict[str, int]:
    """Each group's count from a column that must hold one value on all the group's units."""
    counts: dict[str, int] = {}
    for gi, g in enumerate(groups):
        kvals = set(kcol[gidx == gi].tolist())
        if len(kvals) != 1:
            raise UsageError(f"count column {name!r} varies within group {g}: {sorted(map(str, kvals))}")
        counts[g] = _as_count(kvals.pop(), f"count of group {g}")
    return counts


def check_free_count(groups: list[str], lo_g: list[float], hi_g: list[float]) -> None:
    """A free count needs a bound in every group: with neither, "as many parts as allowed" means nothing."""
    lacking = [g for g, lo, hi in zip(groups, lo_g, hi_g, strict=True) if lo <= 0 and not math.isfinite(hi)]
    if lacking:
        raise UsageError("a free count needs a min_size or a max_size (or give a count)"
                         + (f"; none for group {lacking[0]!r}" if lacking[0] else ""))


def _as_count(v: object, what: str) -> int:
    try:
        k = int(v)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{what} must be an integer >= 1, not {v!r}") from exc
    if k < 1 or (isinstance(v, float) and not v.is_integer()):
        raise UsageError(f"{what} must be an integer >= 1, not {v!r}")
    return k


def read_similar(u: Units, similar: Sequence[str]) -> tuple[list[IArray], list[FArray]]:
    """Similarity columns: text ones as category codes, numeric ones standardised (mean 0, sd 1)."""
    cat_codes: list[IArray] = []
    num_vals: list[FArray] = []
    for col in similar:
        vals = u.column(col)
        if all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in vals):
            x = np.asarray(vals, dtype=float)
            if not np.all(np.isfinite(x)):
                raise UsageError(f"similarity column {col!r} has missing values")
            sd = float(x.std())
            num_vals.append((x - x.mean()) / sd if sd > 0 else np.zeros(u.n))
        else:
            keys = ["" if v is None else str(v) for v in vals]
            uniq = {k: i for i, k in enumerate(sorted(set(keys)))}
            cat_codes.append(np.array([uniq[k] for k in keys], dtype=np.int64))
    return cat_codes, num_vals


def read_unit_mapping(m: Mapping[Any, Any] | None, index: dict[Hashable, int], what: str,
                      *, unknown_ok: bool = False) -> dict[int, Hashable]:
    """Unit id -> label as unit position -> label (ids also matched as strings); ``None`` labels dropped.

    Unknown ids are an error for locks; for a previous partition (``unknown_ok``) they are
    units that no longer exist, which is logged.
    """
    if not m:
        return {}
    out: dict[int, Hashable] = {}
    unknown = []
    for k, v in m.items():
        i = index.get(k)
        if i is None:
            i = index.get(str(k)) if not isinstance(k, str) else None
        if i is None:
            unknown.append(k)
            continue
        if v is not None:
            out[i] = v
    if unknown and not unknown_ok:
        raise UsageError(f"{len(unknown)} {what} unit(s) not among the units, e.g. {unknown[0]!r}")
    if unknown:
        log.info("%d %s unit(s) no longer exist", len(unknown), what)
    return out
