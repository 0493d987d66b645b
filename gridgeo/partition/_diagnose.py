"""Infeasibility explained: the diagnoses made before the search, and the causes given after it.

Before a group is searched, :func:`diagnose` names what no partition can avoid: a unit alone
above the maximum, a component (island) below the minimum, a group too small or too large for
its count, a free count for which no whole number of parts fits the bounds, more components
than parts. After the search the :class:`~gridgeo.partition.rules.Validator` judges the
result; :func:`explain` attaches to each of its violations the diagnosis that causes it (or
``search``: the search found no better arrangement) and adds the group-level diagnoses that
are not already a part's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from gridgeo.partition._comp import EPS, FArray, IArray
from gridgeo.partition.rules import Validation, Violation

_GROUP_LEVEL = ("group_too_small", "group_too_large", "too_many_components", "no_count_fits")


@dataclass(frozen=True)
class GroupFacts:
    """What the diagnoses read about one group: its free units, their components, its bounds."""

    name: str
    ids: tuple[Hashable, ...]  # every unit's id (global indices)
    w: FArray  # every unit's size
    size_name: str
    free: IArray  # the group's units not locked (global indices)
    comps: list[IArray]  # connected components of the free units (indices into ``free``)
    wc: list[float]  # the size of every component
    lo: float
    hi: float
    n_locked: int  # locked parts in the group


def short(ids: Sequence[Hashable], limit: int = 6) -> str:
    """The first few ids, and how many more."""
    s = ", ".join(str(i) for i in ids[:limit])
    return s + (f" (+{len(ids) - limit})" if len(ids) > limit else "")


def diagnose(facts: GroupFacts, k_group: int | None, in_group: NDArray[np.bool_]) -> list[Violation]:
    """The violations one group cannot avoid, whatever the search does (``in_group``: its units)."""
    notes = _heavy_units(facts) + _islands(facts)
    if k_group is None:
        if facts.lo > 0 and math.isfinite(facts.hi):
            notes += _no_count_fits(facts)
    else:
        notes += _count_infeasible(facts, k_group, in_group)
    return notes


def _heavy_units(f: GroupFacts) -> list[Violation]:
    """Units that alone exceed the maximum."""
    g, hi, ids = f.name, f.hi, f.ids
    return [Violation("max_size", f"unit {ids[i]} alone has {f.size_name} {f.w[i]:,.6g} "
                      f"> maximum {hi:,.6g}; its part cannot meet the maximum", group=g,
                      units=(ids[i],), cause="unit_above_max")
            for i in f.free[f.w[f.free] > hi].tolist()]


def _islands(f: GroupFacts) -> list[Violation]:
    """Components below the minimum: islands of a group, or the whole group when it is one piece."""
    g, lo = f.name, f.lo
    notes: list[Violation] = []
    for c, W in zip(f.comps, f.wc, strict=True):
        if lo - W > EPS:
            us = tuple(f.ids[i] for i in f.free[c].tolist())
            if len(f.comps) > 1:
                notes.append(Violation(
                    "min_size", f"{len(us)} unit(s) {short(us)} of group {g} are cut off from the rest "
                    f"(an island) and total {f.size_name} {W:,.6g} < minimum {lo:,.6g}",
                    group=g, units=us, cause="island_below_min"))
            elif f.n_locked == 0:
                notes.append(Violation(
                    "min_size", f"group {g} totals {f.size_name} {W:,.6g} < minimum {lo:,.6g}: even one "
                    "part cannot reach it", group=g, units=us, cause="group_too_small"))
    return notes


def _no_count_fits(f: GroupFacts) -> list[Violation]:
    """Free count: components whose size no whole number of parts within the bounds can make up."""
    g, lo, hi = f.name, f.lo, f.hi
    notes: list[Violation] = []
    for c, wt in zip(f.comps, f.wc, strict=True):
        if wt >= lo and math.floor(wt / lo + EPS) < math.ceil(wt / hi - EPS):
            W = wt
            k1 = math.floor(W / lo + EPS)
            us = tuple(f.ids[i] for i in f.free[c].tolist())
            where = f"group {g}" if len(f.comps) == 1 else f"a piece of group {g} ({short(us)})"
            notes.append(Violation(
                "count", f"{where} totals {f.size_name} {W:,.6g}: no whole number of parts fits "
                f"[{lo:,.6g}, {hi:,.6g}] ({k1} part(s) average {W / k1:,.6g}, {k1 + 1} average "
                f"{W / (k1 + 1):,.6g})", group=g, units=us, cause="no_count_fits"))
    return notes


def _count_infeasible(f: GroupFacts, k_group: int, in_group: NDArray[np.bool_]) -> list[Violation]:
    """Fixed count: a group too small or too large for it, or in more pieces than parts."""
    g, lo, hi, ids, n_locked = f.name, f.lo, f.hi, f.ids, f.n_locked
    notes: list[Violation] = []
    Wg = float(f.w[in_group].sum())
    gunits = tuple(ids[i] for i in np.flatnonzero(in_group).tolist())
    if Wg < k_group * lo - EPS:
        notes.append(Violation(
            "min_size", f"group {g} totals {f.size_name} {Wg:,.6g}: {k_group} parts cannot each reach "
            f"the minimum {lo:,.6g} ({k_group} x {lo:,.6g} = {k_group * lo:,.6g})", group=g,
            units=gunits, cause="group_too_small"))
    if Wg > k_group * hi + EPS:
        notes.append(Violation(
            "max_size", f"group {g} totals {f.size_name} {Wg:,.6g}: {k_group} parts cannot all stay "
            f"under the maximum {hi:,.6g} ({k_group} x {hi:,.6g} = {k_group * hi:,.6g})", group=g,
            units=gunits, cause="group_too_large"))
    if len(f.comps) + n_locked > k_group:
        notes.append(Violation(
            "count", f"group {g} falls into {len(f.comps)} separate pieces"
            + (f" besides {n_locked} locked part(s)" if n_locked else "")
            + f" but {k_group} part(s) were asked for; each piece needs a part of its own",
            group=g, units=tuple(ids[f.free[c[0]]] for c in f.comps), cause="too_many_components"))
    return notes


# --------------------------------------------------------------------------------------
# After the search
# --------------------------------------------------------------------------------------
@dataclass
class _Known:
    """The diagnoses, indexed by what the explanations look up; ``counted``: count notes already used."""

    notes: list[Violation]
    group_causes: set[tuple[str | None, str]]
    no_fit: set[str | None]
    islands: list[Violation]
    heavy: set[Hashable]
    counted: set[int] = field(default_factory=set)

    @classmethod
    def of(cls, notes: list[Violation]) -> _Known:
        return cls(notes=notes,
                   group_causes={(v.group, v.rule) for v in notes if v.cause in ("group_too_small", "group_too_large")},
                   no_fit={v.group for v in notes if v.cause == "no_count_fits"},
                   islands=[v for v in notes if v.cause == "island_below_min"],
                   heavy={v.units[0] for v in notes if v.cause == "unit_above_max"})


#: What an explanation gives a violation: its cause, its units and the words added to its message.
_Explained = tuple[str | None, tuple[Hashable, ...], str]
_NO_FIT = "; no whole number of parts fits the bounds"


def explain(validation: Validation, locked: list[bool], notes: list[Violation]) -> list[Violation]:
    """Attach a cause to each part violation from the diagnoses; add the group-level ones."""
    known = _Known.of(notes)
    out = [_explain_one(v, locked, known) for v in validation.violations]
    # group-level explanations that are not already a part's own
    out += [note for note in notes if note.cause in _GROUP_LEVEL and id(note) not in known.counted]
    return out


def _explain_one(v: Violation, locked: list[bool], known: _Known) -> Violation:
    """The violation with the diagnosis that causes it: its cause, its units, words added to its message."""
    cause: str | None
    if v.part is not None and locked[v.part]:
        cause, units, extra = "locked", v.units, "; the part is locked"
    else:
        cause, units, extra = _BY_RULE.get(v.rule, _as_found)(v, known)
    if cause == "search":
        extra = "; no arrangement meeting the rule was found (a different seed or more restarts may help)"
    return Violation(v.rule, v.message + extra, part=v.part, group=v.group, units=units, cause=cause)


def _max_size(v: Violation, known: _Known) -> _Explained:
    big = [x for x in v.units if x in known.heavy]
    if big:
        return "unit_above_max", tuple(big), f"; unit {short(big)} alone exceeds the maximum"
    if (v.group, "max_size") in known.group_causes:
        return "group_too_large", v.units, "; the group is too large for its count"
    if v.group in known.no_fit:
        return "no_count_fits", v.units, _NO_FIT
    return "search", v.units, ""


def _min_size(v: Violation, known: _Known) -> _Explained:
    if any(set(note.units) == set(v.units) for note in known.islands):
        return "island_below_min", v.units, "; it is an island of the group below the minimum"
    if (v.group, "min_size") in known.group_causes:
        return "group_too_small", v.units, "; the group is too small for its count"
    if v.group in known.no_fit:
        return "no_count_fits", v.units, _NO_FIT
    return "search", v.units, ""


def _count(v: Violation, known: _Known) -> _Explained:
    note = next((n for n in known.notes if n.rule == "count" and n.group == v.group), None)
    if note is None:
        return "search", v.units, ""
    known.counted.add(id(note))
    return note.cause, note.units, f": {note.message}"


def _contiguity(v: Violation, known: _Known) -> _Explained:
    return v.cause or "search", v.units, ""


def _as_found(v: Violation, known: _Known) -> _Explained:
    return v.cause, v.units, ""


_BY_RULE: dict[str, Callable[[Violation, _Known], _Explained]] = {
    "max_size": _max_size, "min_size": _min_size, "count": _count, "contiguity": _contiguity,
}
