"""Checking and repairing boundary layers.

Real village boundaries have invalid rings, slivers, gaps and overlaps between
neighbours, multipart villages, enclaves, swapped axes and missing CRSs. The
check runs a list of small rules (GerryChain style: each rule is a callable
that looks at one aspect and returns the problems it found), gathers every
problem with the feature id, a location and a severity, and repairs what can be
repaired safely, never silently:

========= ==============================================================
severity  meaning
========= ==============================================================
error     the layer is not usable as is (exit 1)
warning   usable, but a person should look (gaps, sliver overlaps, ...)
repaired  fixed in the returned layer (invalid rings, swapped axes, ...)
info      worth knowing (multipart features, enclaves)
========= ==============================================================

Areas and widths are measured in the metric CRS chosen once for the layer
(:func:`gridgeo.data.crs.metric_crs`). This module holds the report and the
driver; the rules themselves (and :class:`Problem`, re-exported here) are in
:mod:`gridgeo.data._check_rules`.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from gridgeo.data._check_rules import (
    METRIC_RULES,
    RULES,
    Ctx,
    Problem,
    Rule,
    fix_slivers,
    prepare_metric,
    rule_axes,
    rule_crs,
    rule_empty,
    rule_enclaves,
    rule_gaps,
    rule_ids,
    rule_multipart,
    rule_overlaps,
    rule_sliver_parts,
    rule_types,
    rule_validity,
)
from gridgeo.errors import InputError, SchemaError

__all__ = [
    "METRIC_RULES",
    "POLYGONAL",
    "RULES",
    "SEVERITIES",
    "CheckReport",
    "CheckResult",
    "Problem",
    "Rule",
    "check_file",
    "check_layer",
    "fix_slivers",
    "rule_axes",
    "rule_crs",
    "rule_empty",
    "rule_enclaves",
    "rule_gaps",
    "rule_ids",
    "rule_multipart",
    "rule_overlaps",
    "rule_sliver_parts",
    "rule_types",
    "rule_validity",
]

log = logging.getLogger(__name__)

SEVERITIES = ("error", "warning", "repaired", "info")
POLYGONAL = ("Polygon", "MultiPolygon")


@dataclass
class CheckReport:
    """What :func:`check_layer` found; ``usable`` is False when any error remains."""

    path: str | None
    layer: str | None
    features: int
    crs: str | None
    metric_crs: str | None
    repaired: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)

    def by_kind(self) -> dict[str, int]:
        return dict(sorted(Counter(p.kind for p in self.problems).items()))

    def unusable_message(self, *, what: str = "feature", hint: bool = True) -> str | None:
        """One line naming the first error and how many more there are; None when usable.

        Every command that refuses an unusable layer says it the same way (the file is named by the
        error that carries this message).
        """
        errors = [p for p in self.problems if p.severity == "error"]
        if not errors:
            return None
        first = errors[0]
        more = f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else ""
        tail = "; run `gridgeo check` for the full report" if hint else ""
        return f"{what} {first.id}: {first.kind}: {first.message}{more}{tail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.path,
            "layer": self.layer,
            "features": self.features,
            "crs": self.crs,
            "metric_crs": self.metric_crs,
            "usable": self.usable,
            "repaired": list(self.repaired),
            "summary": self.by_kind(),
            "options": self.options,
            "problems": [p.to_dict() for p in self.problems],
        }

    def table(self, *, max_rows: int = 200) -> str:
        """A readable report for a terminal."""
        lines = [
            f"file       {self.path or '-'}" + (f"  (layer {self.layer})" if self.layer else ""),
            f"features   {self.features}",
            f"crs        {self.crs or 'none'}   measured in {self.metric_crs or '-'}",
            f"repaired   {len(self.repaired)}" + (f": {', '.join(self.repaired[:20])}" if self.repaired else "")
            + (" ..." if len(self.repaired) > 20 else ""),
        ]
        counts = Counter(p.severity for p in self.problems)
        lines.append("problems   " + (", ".join(f"{counts[s]} {s}" for s in SEVERITIES if counts[s]) or "none"))
        if self.problems:
            rows = sorted(self.problems, key=lambda p: (SEVERITIES.index(p.severity), p.kind, str(p.id)))
            shown = rows[:max_rows]
            w_kind = max(len(p.kind) for p in shown)
            w_id = min(24, max(len(str(p.id)) for p in shown))
            lines.append("")
            lines.append(f"{'severity':<9} {'kind':<{w_kind}} {'id':<{w_id}} {'lon,lat':<22} message")
            for p in shown:
                loc = f"{p.location[0]:.6f},{p.location[1]:.6f}" if p.location else "-"
                lines.append(f"{p.severity:<9} {p.kind:<{w_kind}} {p.id!s:<{w_id}} {loc:<22} {p.message}")
            if len(rows) > max_rows:
                lines.append(f"... {len(rows) - max_rows} more (use --json for all)")
        lines.append("")
        lines.append("usable" if self.usable else "NOT usable: fix the errors above")
        return "\n".join(lines)


@dataclass
class CheckResult:
    """The report and the repaired layer (in the input's CRS, or EPSG:4326 if it had none)."""

    report: CheckReport
    gdf: gpd.GeoDataFrame


def check_layer(
    gdf: gpd.GeoDataFrame,
    *,
    id_col: str | None = None,
    parent_col: str | None = None,
    area_tol: float = 1.0,
    snap: float = 2.0,
    path: str | None = None,
    layer: str | None = None,
    repair_slivers: bool = False,
    rules: Sequence[Rule] | None = None,
    metric_rules: Sequence[Rule] | None = None,
) -> CheckResult:
    """Check a boundary layer, repair what is safe, and report everything.

    Parameters
    ----------
    gdf
        The layer as read (any CRS, or none).
    id_col
        Column holding feature ids; without it the row number is the id.
    parent_col
        Column naming each feature's parent (e.g. the township), used to say
        whether a gap lies inside one parent or between parents.
    area_tol
        Overlaps, gaps and multipart slivers at or below this area (m²) are ignored.
    snap
        Width (m) under which a gap or overlap is a sliver: digitising noise that
        the adjacency graph bridges.
    path, layer
        Named in the report.
    repair_slivers
        Also resolve sliver overlaps and fill sliver gaps (:func:`fix_slivers`).
        Off by default because it moves boundaries shared by two features,
        which changes both; the adjacency graph bridges slivers without it.

    Returns
    -------
    CheckResult
        ``report`` (``report.usable`` is False when any error remains) and the
        repaired layer ``gdf``.
    """
    if area_tol < 0 or snap < 0:
        raise SchemaError("area tolerance and snap must be non-negative", path=path)
    if len(gdf) == 0:  # nothing to check, and every later step (metric CRS, partition) needs a feature
        raise InputError("the layer has no features", path=path)
    ctx = _context(gdf, id_col=id_col, parent_col=parent_col, area_tol=area_tol, snap=snap, path=path)
    problems: list[Problem] = []
    for rule in rules if rules is not None else RULES:
        problems.extend(rule(ctx))
    prepare_metric(ctx)
    for rule in metric_rules if metric_rules is not None else METRIC_RULES:
        problems.extend(rule(ctx))
    if repair_slivers:
        fix_slivers(ctx)
    if ctx.parents is not None:
        for i in np.flatnonzero([p is None for p in ctx.parents]):
            problems.append(Problem(ctx.ids[i], "no_parent", "warning", f"no value in {parent_col!r}"))
    report = CheckReport(
        path=path,
        layer=layer,
        features=len(gdf),
        crs=None if gdf.crs is None else _crs_name(gdf.crs),
        metric_crs=None if ctx.metric is None else _crs_name(ctx.metric),
        repaired=list(ctx.repaired),
        problems=problems,
        options={"id": id_col, "parent": parent_col, "area_tol_m2": area_tol, "snap_m": snap,
                 "repair_slivers": repair_slivers},
    )
    for p in problems:
        if p.severity in ("error", "repaired"):
            log.info("%s: %s %s: %s", path or "layer", p.kind, p.id, p.message)
    out = ctx.gdf.drop(columns="__id__")
    return CheckResult(report=report, gdf=out)


def _context(
    gdf: gpd.GeoDataFrame,
    *,
    id_col: str | None,
    parent_col: str | None,
    area_tol: float,
    snap: float,
    path: str | None,
) -> Ctx:
    """The working copy the rules share: ids (``__id__``), parents, tolerances."""
    work = gdf.copy()
    for col in (id_col, parent_col):
        if col is not None and col not in work.columns:
            cols = [c for c in work.columns if c != work.geometry.name]
            raise SchemaError(f"column {col!r} not found; columns are {cols}", path=path)
    if id_col is None:
        work["__id__"] = [str(i) for i in range(len(work))]
    else:
        # null, NaN and blank ids are all "no id" (rule_ids reports them); never a float among the strings
        work["__id__"] = pd.Series([_id_text(v) for v in work[id_col]], index=work.index, dtype=object)
    ids = np.array([v if v is not None else f"row {i}" for i, v in enumerate(work["__id__"])], dtype=object)
    parents = None
    if parent_col is not None:
        parents = np.array([None if pd.isna(v) else str(v) for v in work[parent_col]], dtype=object)
    return Ctx(gdf=work, ids=ids, parents=parents, crs=work.crs, area_tol=area_tol, snap=snap)


def _id_text(value: object) -> str | None:
    """An id as text, or None when it is missing (null, NaN) or blank."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    text = str(value).strip()
    return text or None


def _crs_name(crs: pyproj.CRS) -> str:
    auth = crs.to_authority()
    return f"{auth[0]}:{auth[1]}" if auth else crs.name


def check_file(
    path: str,
    *,
    layer: str | None = None,
    id_col: str | None = None,
    parent_col: str | None = None,
    crs: object | None = None,
    datum: str | None = None,
    area_tol: float = 1.0,
    snap: float = 2.0,
    repair_slivers: bool = False,
    encoding: str | None = None,
) -> CheckResult:
    """Read ``path`` (see :func:`gridgeo.data.io.read_layer`) and :func:`check_layer` it."""
    from gridgeo.data.io import read_layer

    gdf = read_layer(path, layer=layer, crs=crs, datum=datum, id_col=id_col, encoding=encoding)
    return check_layer(gdf, id_col=id_col, parent_col=parent_col, area_tol=area_tol, snap=snap,
                       repair_slivers=repair_slivers, path=str(path), layer=gdf.attrs.get("layer"))
