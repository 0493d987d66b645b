"""The closing report of a county build: counts, bounds shares, households, tiling; and its terminal form.

:func:`summary` measures the built layers (the share of blocks, grids and
points inside their bounds, given versus estimated households, the tiling
check, exclusive grids by category); :func:`format_report` prints the report
as a few aligned lines (``gridgeo build``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from gridgeo.county.micro import sub_lines, sub_summary
from gridgeo.county.rules import CountyRules
from gridgeo.county.sources import Items
from gridgeo.county.village import VillageOut

__all__ = ["format_report", "summary"]


def _share(flags: pd.Series) -> float:
    """The share of true flags (1.0 for none)."""
    return round(float(flags.astype(bool).mean()), 4) if len(flags) else 1.0


def summary(layers: dict[str, gpd.GeoDataFrame], outs: list[VillageOut], *, items: Items,
            item_v: NDArray[np.int64], rules: CountyRules, block_report: dict[str, Any]) -> dict[str, Any]:
    """The report's measured sections (``item_v``: village index of each item, -1 outside every village)."""
    excl = layers["exclusive"]
    return {
        "counts": {k: len(v) for k, v in layers.items()},
        "bounds": {"blocks": block_report, "grids": _grid_bounds(layers["grids"], rules),
                   "points": _point_bounds(layers["points"], rules), **sub_summary(layers, outs)},
        "households": _households(items, item_v),
        "exclusive": {"n": len(excl), "by_category": dict(Counter(excl["category"])) if len(excl) else {},
                      "dropped": sorted({str(s) for o in outs for s in o.stats.get("sites_dropped", [])})},
        "units": {"faces": sum(o.stats.get("faces", 0) for o in outs),
                  "units": sum(o.stats.get("units", 0) for o in outs),
                  "split_faces": sum(o.stats.get("split_faces", 0) for o in outs)},
        "tiling": _tiling(outs, rules),
        "fallbacks": _fallbacks(outs),
        **({"groups": _groups(outs)} if rules.merge_groups else {}),
    }


def _groups(outs: list[VillageOut]) -> dict[str, Any]:
    """``[grids] groups = "merge"``: groups merged into grids of several, the groups cut (each alone above its
    village's maximum) and those left whole above it (a single street face: nothing to cut along)."""
    return {"merged": sum(o.stats.get("groups_merged", 0) for o in outs),
            "split": sorted(g for o in outs for g in o.stats.get("groups_split", [])),
            "over_max_uncut": sorted(g for o in outs for g in o.stats.get("groups_over_max", []))}


def _fallbacks(outs: list[VillageOut]) -> list[dict[str, Any]]:
    """The villages built by a fallback rung (:mod:`gridgeo.county.ladder`), in the villages' order.

    ``reason`` is why the pipeline failed (its stage and error); ``failed``
    has one such line per rung tried before the one taken.
    """
    out: list[dict[str, Any]] = []
    for o in outs:
        fb = o.stats.get("fallback")
        if fb:
            out.append({"code": o.code, "name": fb.get("name"), "rung": fb["rung"], "reason": fb["failed"][0],
                        "failed": list(fb["failed"])})
    return out


def _grid_bounds(grids: gpd.GeoDataFrame, rules: CountyRules) -> dict[str, Any]:
    made = grids[grids["source"] != "villager_group"] if len(grids) else grids
    from_groups = grids[grids["source"] == "villager_group"] if len(grids) else grids
    return {"n": len(grids), "within_bounds": _share(grids["within_bounds"]) if len(grids) else 1.0,
            "drawn": len(made), "drawn_within_bounds": _share(made["within_bounds"]) if len(made) else None,
            "from_villager_groups": len(from_groups),
            "bounds": {k: list(b.grid) for k, b in rules.bounds.items()}}


def _point_bounds(points: gpd.GeoDataFrame, rules: CountyRules) -> dict[str, Any]:
    base_pts = points[points["kind"] != "exclusive"] if len(points) else points
    return {"n": len(points), "within_bounds": _share(points["within_bounds"]) if len(points) else 1.0,
            "base_within_bounds": _share(base_pts["within_bounds"]) if len(base_pts) else 1.0,
            "outside_bounds_in_grid_below_min": int((~points["within_bounds"].astype(bool)
                                                     & points["grid_below_min"].astype(bool)).sum())
            if len(points) else 0,
            "within_bounds_where_possible": _share(points["within_bounds"][~points["grid_below_min"]
                                                                           .astype(bool)])
            if len(points) else 1.0,
            "bounds": {k: list(b.point) for k, b in rules.bounds.items()}}


def _households(items: Items, item_v: NDArray[np.int64]) -> dict[str, Any]:
    w = items.weights
    est = items.estimated
    return {
        "source": items.source, "items": len(w), "total": int(w.sum()) if len(w) else 0,
        "given": int(w[~est].sum()) if len(w) else 0, "estimated": int(w[est].sum()) if len(w) else 0,
        "estimated_items": int(est.sum()), "outside_villages": int(np.sum(item_v < 0)),
    }


def _tiling(outs: list[VillageOut], rules: CountyRules) -> dict[str, Any]:
    tiling = [o.stats.get("tiling", {}) for o in outs]
    return {
        "villages": len(outs), "tolerance_m2": rules.tolerance_m2,
        "worst_gap_m2": max((t.get("gap_m2", 0.0) for t in tiling), default=0.0),
        "worst_overlap_m2": max((t.get("overlap_m2", 0.0) for t in tiling), default=0.0),
        "worst_points_m2": max((t.get("points_worst_m2", 0.0) for t in tiling), default=0.0),
        "errors": 0,
        "items_checked": sum(o.stats.get("items", 0) for o in outs),
        "buildings_cut_by_point_edges": sum(o.stats.get("items_cut", 0) for o in outs),
    }


# --------------------------------------------------------------------------------------
def format_report(report: Mapping[str, Any]) -> str:
    """The closing report as a few aligned lines for a terminal."""
    c = report["counts"]
    b = report["bounds"]
    h = report["households"]
    t = report["tiling"]
    s = report["seconds"]
    lines = [
        "level       count   inside bounds",
        f"townships {c['townships']:>7}",
        f"blocks    {c['blocks']:>7}   {_pct(b['blocks'].get('within_bounds'))}",
        f"villages  {c['villages']:>7}",
        f"grids     {c['grids']:>7}   {_pct(b['grids']['within_bounds'])}"
        f"  ({b['grids']['from_villager_groups']} from villager groups, {b['grids']['drawn']} drawn"
        + (f", {_pct(b['grids']['drawn_within_bounds'])} of those inside" if b['grids']['drawn'] else "") + ")",
        f"points    {c['points']:>7}   {_pct(b['points']['within_bounds'])}"
        f"  ({_pct(b['points']['within_bounds_where_possible'])} of those whose grid holds at least a point's "
        f"minimum; {b['points']['outside_bounds_in_grid_below_min']} sit in a grid smaller than that)",
        f"exclusive {c['exclusive']:>7}   {report['exclusive']['by_category']}",
        *sub_lines(b, c),
        f"households: {h['total']:,} on {h['items']:,} {h['source'] or 'item'}s ({h['given']:,} given, "
        f"{h['estimated']:,} estimated; {h['outside_villages']} outside every village)",
        f"tiling: {t['villages']} villages, worst gap {t['worst_gap_m2']:.4f} m², worst overlap "
        f"{t['worst_overlap_m2']:.4f} m², points vs grid {t['worst_points_m2']:.4f} m² (tolerance "
        f"{t['tolerance_m2']:g} m²); {t['items_checked']:,} items each in one point; "
        f"{t['buildings_cut_by_point_edges']} buildings crossed by a point edge",
        "seconds: " + ", ".join(f"{k} {v:g}" for k, v in s.items()),
        *_fallback_lines(report.get("fallbacks") or []),
        *_register_lines(report.get("register")),
        *_people_lines(report.get("people")),
        *_walk_lines(report.get("walk_check")),
        *[f"warning: {w}" for w in report.get("estimates") or []],
    ]
    return "\n".join(lines)


def _people_lines(people: Mapping[str, Any] | None) -> list[str]:
    """The roster's line: people per level, rows skipped, people carried to the unit that replaced theirs."""
    if not people:
        return []
    levels = ", ".join(f"{n} {lvl}" for lvl, n in people["by_level"].items())
    return [f"people: {people['people']:,} on {people['assignments']:,} units ({levels or 'none'}) from "
            f"{people['source']}; {len(people['moved'])} carried to the unit that replaced theirs, "
            f"{len(people['skipped'])} row(s) skipped" + (" (the report's 'people' lists them)"
                                                          if people["skipped"] or people["moved"] else "")]


def _walk_lines(walk: Mapping[str, Any] | None) -> list[str]:
    """The walk check's line (issue 14 item 5): grids whose due visits of the day fit the budget, why the others not."""
    if not walk:
        return []
    why = ", ".join(f"{n} {r}" for r, n in walk["by_reason"].items())
    return [f"walk check {walk['date']}: {walk['fit']}/{walk['grids']} grids' due visits fit "
            f"{walk['budget_min']:g} min ({100 * walk['fit_share']:.1f} %)"
            + (f"; not fitting: {why} (the walk_check table)" if why else "")]


def _register_lines(reg: Mapping[str, Any] | None) -> list[str]:
    """The register's line: households read (from how many persons), columns carried, rows left out."""
    if not reg:
        return []
    persons = f" (from {reg['persons']:,} person rows)" if reg.get("persons") else ""
    left = reg.get("unplaced") or []
    return [f"register: {reg['households']:,} households{persons} from {reg['source']}; carried "
            f"{', '.join(reg['carried']) or 'no columns'}; {len(left)} row(s) unplaced"
            + (" (each row and why: the output's register_unplaced table and the report's register.unplaced)"
               if left else "")]


#: villages listed by name in the closing summary; the rest are counted (the JSON report has them all)
FALLBACKS_LISTED = 10


def _fallback_lines(fallbacks: list[Mapping[str, Any]]) -> list[str]:
    """One line per village a fallback rung built (the first :data:`FALLBACKS_LISTED`), nothing when none did."""
    if not fallbacks:
        return []
    rungs = Counter(str(f["rung"]) for f in fallbacks)
    lines = [f"fallbacks: {len(fallbacks)} village(s) built by a fallback rung ("
             + ", ".join(f"{n} {r}" for r, n in rungs.items()) + "); why the pipeline failed:"]
    lines += [f"  {f['code']} {f.get('name') or ''}: {f['rung']} <- {f['reason']}"
              for f in fallbacks[:FALLBACKS_LISTED]]
    if len(fallbacks) > FALLBACKS_LISTED:
        lines.append(f"  ... and {len(fallbacks) - FALLBACKS_LISTED} more (the report's 'fallbacks' lists them all)")
    return lines


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:5.1f} %"
