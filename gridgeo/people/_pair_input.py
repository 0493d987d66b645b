"""The inputs of a pairing checked once: households, the member roster, existing pairs.

Every problem is one error naming the file (the frame's ``attrs["source"]``) and the row. Rows are
counted as a spreadsheet shows them: the header is row 1, the first record row 2, so a clerk finds the
row in Excel or a text editor at once. Codes and ids are compared as text (``"130102001001"`` and
``130102001001`` are the same grid; a code read as a number loses no digits because tables are read as
text, see :func:`read_table`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from numpy.typing import NDArray

from gridgeo.data.crs import WGS84, metric_crs
from gridgeo.data.tables import ROW
from gridgeo.errors import CRSError, InputError, SchemaError

log = logging.getLogger(__name__)

FArray = NDArray[np.float64]
IArray = NDArray[np.int64]
OArray = NDArray[np.object_]

#: columns a roster may name the member's home with (the ``source_id`` of the household they live in)
HOME_COLUMNS = ("home", "home_source_id")
#: coordinate columns of a plain table (WGS84 lon/lat), checked in this order
LONLAT_COLUMNS = (("lon", "lat"), ("longitude", "latitude"), ("经度", "纬度"))
#: how a member's place was found, for the load table
LOCATED = ("point", "home", "scope_centre")


def read_table(path: str | Path, *, layer: str | None = None) -> pd.DataFrame:
    """Read a roster or pairs table: CSV or XLSX through :func:`gridgeo.data.tables.read_table`, a built
    county's ``people`` table (its pairing members), else any layer :func:`gridgeo.data.io.read_layer` reads.

    A table keeps its cells as text (codes keep their leading digits), its rows' numbers as a spreadsheet
    shows them (:data:`gridgeo.data.tables.ROW`: errors name them), and finds its columns under their
    Chinese names too (:data:`ROSTER_ALIASES`); ``lon``/``lat`` (or ``经度``/``纬度``) become WGS84 points.

    Raises
    ------
    FileFormatError
        Missing or unreadable file, naming it (and a merged or empty header cell, naming it).
    InputError
        A ``people`` table without members (no role naming 党员 or 代表 on a grid or village).
    """
    from gridgeo.data import io
    from gridgeo.data.tables import TABLE_SUFFIXES
    from gridgeo.data.tables import read_table as read_cells

    p = Path(path)
    if p.suffix.lower() in TABLE_SUFFIXES:
        frame = _canonical(read_cells(p, sheet=layer))
        frame = frame.astype({c: object for c in frame.columns if c != ROW})
        out = _with_lonlat(frame, p)
    elif layer in (None, "people") and p.suffix.lower() == ".gpkg" and "people" in io.list_layers(p):
        out = _people_members(p)
    else:
        out = io.read_layer(p, layer=layer)
    out.attrs["source"] = str(p)
    return out


#: a roster's columns under the names counties give them (first found wins; an exact name always does)
ROSTER_ALIASES: dict[str, tuple[str, ...]] = {
    "person_id": ("人员编号", "编号", "工号", "id"),
    "name": ("姓名",),
    "role": ("职务", "角色", "身份", "类别"),
    "phone": ("联系电话", "电话", "手机"),
    "grid": ("网格编码", "所在网格编码", "网格"),
    "village": ("村编码", "所属村编码", "村(社区)编码"),
    "unit": ("单位编码", "负责单元编码"),
    "capacity": ("联户数", "联系户数", "结对户数", "容量"),
    "home": ("住户户号", "家庭户号"),
    "source_id": ("户号", "住户编号"),
}
#: the roles of a built county's people that pair with households (党员联户, 村民代表联户)
MEMBER_ROLES = ("党员", "代表")


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each roster column renamed to its canonical name where only an alias is present."""
    rename: dict[str, str] = {}
    for canon, aliases in ROSTER_ALIASES.items():
        if canon in frame.columns:
            continue
        hit = next((a for a in aliases if a in frame.columns and a not in rename), None)
        if hit is not None:
            rename[hit] = canon
    return frame.rename(columns=rename)


def _people_members(p: Path) -> pd.DataFrame:
    """The pairing members of a built county's ``people`` table: rows on a grid or village whose role names
    a party member or a villagers' representative; their ``roster_row`` is the row errors name."""
    import pyogrio

    t = pyogrio.read_dataframe(p, layer="people", read_geometry=False)
    role = t["role"].astype(str) if "role" in t.columns else pd.Series("", index=t.index)
    keep = t["level"].isin(("grids", "villages")).to_numpy() & role.str.contains("|".join(MEMBER_ROLES)).to_numpy() \
        if "level" in t.columns else np.zeros(len(t), dtype=bool)
    if not keep.any():
        raise InputError(f"the people table has no pairing members (a role with {' or '.join(MEMBER_ROLES)} on a "
                         "grid or village); give --members a roster", path=p)
    out = t[keep].reset_index(drop=True)
    if "roster_row" in out.columns:
        out[ROW] = out["roster_row"]
    return out


def row_of(frame: pd.DataFrame, i: int) -> int:
    """The row number a user finds record ``i`` under: the table's own (:data:`ROW`), else header row 1."""
    return int(frame[ROW].iloc[i]) if ROW in frame.columns else i + 2


def county_grids(county: str | Path) -> dict[str, str] | None:
    """Grid code -> village code from a built county's ``grids`` and ``exclusive`` layers (a household of an
    exclusive grid carries that grid's code), so that members of grids without households are known too;
    None when the county has neither layer."""
    from gridgeo.data import io

    out: dict[str, str] = {}
    names = io.list_layers(county)
    for layer in ("grids", "exclusive"):
        if layer not in names:
            continue
        g = io.read_layer(county, layer=layer)
        if "code" in g.columns and "parent" in g.columns:
            out.update({str(c): str(v) for c, v in zip(g["code"], g["parent"], strict=True)})
    return out or None


def _with_lonlat(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``frame`` with WGS84 points made of its lon/lat columns, when it has a pair of them."""
    for lon, lat in LONLAT_COLUMNS:
        if lon in frame.columns and lat in frame.columns:
            x = pd.to_numeric(frame[lon], errors="coerce")
            y = pd.to_numeric(frame[lat], errors="coerce")
            bad = (x.isna() & frame[lon].notna()) | (y.isna() & frame[lat].notna()) | (x.abs() > 180) | (y.abs() > 90)
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise InputError(f"row {row_of(frame, i)}: {lon}/{lat} {frame[lon].iloc[i]!r}, "
                                 f"{frame[lat].iloc[i]!r} is not a WGS84 longitude/latitude", path=path)
            geom = [None if pd.isna(a) or pd.isna(b) else shapely.Point(a, b) for a, b in zip(x, y, strict=True)]
            return gpd.GeoDataFrame(frame, geometry=geom, crs=WGS84)
    return frame


def _source(frame: pd.DataFrame, default: str) -> str:
    return str(frame.attrs.get("source") or default)


def _text(values: pd.Series) -> OArray:
    """Text of each value (``None`` for missing; ``12.0`` read from a number column becomes ``12``)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values.tolist()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            out[i] = None
        elif isinstance(v, float) and v.is_integer():
            out[i] = str(int(v))
        else:
            s = str(v).strip()
            out[i] = s or None
    return out


def _need(frame: pd.DataFrame, cols: tuple[str, ...], src: str, what: str) -> None:
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        have = [str(c) for c in frame.columns if c != getattr(frame, "_geometry_column_name", None)]
        raise SchemaError(f"{what} lacks column{'s' if len(missing) > 1 else ''} {', '.join(map(repr, missing))}; "
                          f"columns are {have}", path=src)


def _unique_ids(ids: OArray, src: str, col: str, frame: pd.DataFrame | None = None) -> None:
    """Every id present and unique, else an error naming the rows (``frame``'s own numbers, when given)."""
    def row(i: int) -> int:
        return row_of(frame, i) if frame is not None else i + 2

    for i, v in enumerate(ids):
        if v is None:
            raise InputError(f"row {row(i)}: no {col}", path=src)
    seen: dict[object, int] = {}
    for i, v in enumerate(ids):
        if v in seen:
            raise InputError(f"row {row(i)}: duplicate {col} {v!r} (also row {row(seen[v])})", path=src)
        seen[v] = i


# --------------------------------------------------------------------------------------------- households
@dataclass
class Households:
    """The households layer as arrays, rows in input order.

    ``count`` is the number of households of each row (a building row carries several); ``xy`` their
    points in the metric CRS ``crs``; ``grid`` and ``village`` the codes the build gave them.
    """

    ids: OArray
    count: IArray
    grid: OArray
    village: OArray
    xy: FArray
    geometry: gpd.GeoSeries
    crs: pyproj.CRS
    source: str

    def index(self) -> dict[str, int]:
        """Row of each ``source_id``."""
        return {str(v): i for i, v in enumerate(self.ids)}


def check_households(households: gpd.GeoDataFrame, *, scope_col: str, crs: pyproj.CRS | None = None) -> Households:
    """Households as arrays in the metric CRS ``crs`` (default :func:`gridgeo.data.crs.metric_crs`; never degrees).

    Raises
    ------
    SchemaError
        No ``source_id`` or no ``scope_col`` column; a household count that is not a whole number >= 0.
    InputError
        A missing or duplicate ``source_id``, a household without a point, naming the row.
    CRSError
        No CRS.
    """
    src = _source(households, "households")
    if not isinstance(households, gpd.GeoDataFrame) or households.geometry is None:
        raise SchemaError("households must be a point layer (a GeoDataFrame)", path=src)
    _need(households, ("source_id", scope_col), src, "households layer")
    if households.crs is None:
        raise CRSError("households layer has no CRS", path=src)
    ids = _text(households["source_id"])
    _unique_ids(ids, src, "source_id")
    count = _counts(households, src)
    geom = households.geometry
    empty = np.flatnonzero((geom.isna() | geom.is_empty).to_numpy())
    if len(empty):
        raise InputError(f"row {int(empty[0]) + 2} (source_id {ids[empty[0]]}): household without a point", path=src)
    metric = crs if crs is not None else metric_crs(households)
    xy = shapely.get_coordinates(shapely.point_on_surface(geom.to_crs(metric).values)).reshape(-1, 2)
    blank = np.full(len(households), None, dtype=object)
    return Households(
        ids=ids, count=count,
        grid=_text(households["grid"]) if "grid" in households.columns else blank,
        village=_text(households["village"]) if "village" in households.columns else blank.copy(),
        xy=np.asarray(xy, dtype=float), geometry=geom, crs=metric, source=src,
    )


def _counts(frame: pd.DataFrame, src: str, *, least: int = 0) -> IArray:
    """Households of each row: the ``households`` column (missing or blank: 1), whole numbers >= ``least``
    (0 for a households layer's rows, 1 for a pair)."""
    if "households" not in frame.columns:
        return np.ones(len(frame), dtype=np.int64)
    given = np.array([v is not None for v in _text(frame["households"])], dtype=bool)
    raw = pd.to_numeric(frame["households"].where(given), errors="coerce").to_numpy(dtype=float)
    vals = np.where(given, raw, 1.0)
    bad = np.flatnonzero(np.isnan(vals) | (vals < least) | (vals != np.floor(vals)))
    if len(bad):
        i = int(bad[0])
        raise SchemaError(f"row {row_of(frame, i)}: households {frame['households'].iloc[i]!r} is not a whole "
                          f"number >= {least}", path=src)
    return vals.astype(np.int64)


# --------------------------------------------------------------------------------------------- members
@dataclass
class Members:
    """The roster as arrays, rows in input order.

    ``scope`` is the code of the grid (or village) each member pairs in; ``capacity`` households per
    member (``-1``: no limit of their own); ``xy`` metric points (NaN where the roster gives no place:
    the scope's centre is used, ``located`` says which).
    """

    ids: OArray
    role: OArray
    unit: OArray
    scope: OArray
    capacity: IArray
    xy: FArray
    located: OArray
    source: str


def check_members(members: pd.DataFrame, hh: Households, *, scope: str, grids: Mapping[str, str],
                  villages: set[str], default_capacity: int | None) -> Members:
    """The roster checked against the county: ids unique, units known, capacities whole, homes found.

    Parameters
    ----------
    grids
        Grid code -> village code of every grid of the county (a member may serve a grid with no
        household yet).
    villages
        Every village code of the county.

    Raises
    ------
    SchemaError, InputError
        Naming the file and the row: no ``person_id`` column or no unit column (``grid``, ``village`` or
        ``unit``), a missing or duplicate ``person_id``, a unit that is not a grid (village) of the county,
        a capacity that is not a whole number >= 0, a home household that does not exist.
    """
    src = _source(members, "members")
    _need(members, ("person_id",), src, "member roster")
    if not any(c in members.columns for c in ("grid", "village", "unit")):
        raise SchemaError(f"member roster names no unit: give a 'grid', 'village' or 'unit' column; columns are "
                          f"{[str(c) for c in members.columns]}", path=src)
    ids = _text(members["person_id"])
    _unique_ids(ids, src, "person_id", members)
    unit = _member_units(members, ids, src, scope=scope, grids=grids, villages=villages)
    cap = _capacities(members, src, default_capacity)
    xy, located = _member_places(members, ids, hh, src)
    role = _text(members["role"]) if "role" in members.columns else np.full(len(ids), None, dtype=object)
    return Members(ids=ids, role=role, unit=unit, scope=unit.copy(), capacity=cap, xy=xy, located=located,
                   source=src)


def _column(frame: pd.DataFrame, col: str) -> OArray:
    return _text(frame[col]) if col in frame.columns else np.full(len(frame), None, dtype=object)


def _member_units(members: pd.DataFrame, ids: OArray, src: str, *, scope: str, grids: Mapping[str, str],
                  villages: set[str]) -> OArray:
    """The grid (scope ``grid``) or village (scope ``village``) each member pairs in.

    ``grid`` and ``village`` columns are taken as they say; a ``unit`` column may hold either (a grid
    code is looked up first). Under scope ``village`` a member who serves a grid pairs in its village.
    """
    g, v, u = _column(members, "grid"), _column(members, "village"), _column(members, "unit")
    out = np.empty(len(ids), dtype=object)
    for i in range(len(ids)):
        grid = g[i] if g[i] is not None else (u[i] if u[i] in grids else None)
        village = v[i] if v[i] is not None else (u[i] if u[i] in villages else None)
        given = g[i] or v[i] or u[i]
        who = f"row {row_of(members, i)} (person_id {ids[i]})"
        if given is None:
            raise InputError(f"{who}: no unit (grid, village or unit is empty)", path=src)
        if grid is not None and grid not in grids:
            raise InputError(f"{who}: grid {grid!r} is not a grid of the county", path=src)
        if village is not None and village not in villages:
            raise InputError(f"{who}: village {village!r} is not a village of the county", path=src)
        if grid is None and village is None:
            raise InputError(f"{who}: unit {given!r} is neither a grid nor a village of the county", path=src)
        if scope == "grid" and grid is None:
            raise InputError(f"{who}: serves village {village!r}, not a grid; pair by village "
                             "(scope 'village') or give the member's grid", path=src)
        out[i] = grid if scope == "grid" else village if village is not None else grids[str(grid)]
    return out


def _capacities(members: pd.DataFrame, src: str, default: int | None) -> IArray:
    """Households each member may take: the ``capacity`` column, blank: ``default`` (None: -1, no limit)."""
    fill = -1 if default is None else int(default)
    if "capacity" not in members.columns:
        return np.full(len(members), fill, dtype=np.int64)
    given = np.array([v is not None for v in _text(members["capacity"])], dtype=bool)  # blank: not given
    vals = pd.to_numeric(members["capacity"].where(given), errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(given & (np.isnan(vals) | (vals < 0) | (vals != np.floor(vals))))
    if len(bad):
        i = int(bad[0])
        raise SchemaError(f"row {row_of(members, i)} (person_id {_text(members['person_id'])[i]}): capacity "
                          f"{members['capacity'].iloc[i]!r} is not a whole number >= 0", path=src)
    return np.where(np.isnan(vals), fill, vals).astype(np.int64)


def _member_places(members: pd.DataFrame, ids: OArray, hh: Households, src: str) -> tuple[FArray, OArray]:
    """Metric points of the members: their own point, else their home household's, else NaN (scope centre)."""
    xy = np.full((len(ids), 2), np.nan)
    located = np.full(len(ids), "scope_centre", dtype=object)
    if isinstance(members, gpd.GeoDataFrame) and members.geometry is not None and len(members):
        geom = members.geometry
        has = ~(geom.isna() | geom.is_empty).to_numpy()
        if has.any():
            if members.crs is None:
                raise CRSError("member roster has points but no CRS", path=src)
            pts = shapely.point_on_surface(geom[has].to_crs(hh.crs).values)
            xy[has] = shapely.get_coordinates(pts).reshape(-1, 2)
            located[has] = "point"
    home = next((c for c in HOME_COLUMNS if c in members.columns), None)
    if home is not None:
        rows = hh.index()
        for i, h in enumerate(_text(members[home])):
            if h is None or located[i] == "point":
                continue
            if h not in rows:
                raise InputError(f"row {row_of(members, i)} (person_id {ids[i]}): home household {h!r} is not "
                                 "in the households layer", path=src)
            xy[i] = hh.xy[rows[h]]
            located[i] = "home"
    return xy, located


# --------------------------------------------------------------------------------------------- pairs
@dataclass
class Existing:
    """Existing pairs that name a known household and member: household row, member row, households."""

    household: IArray
    member: IArray
    count: IArray
    dropped: pd.DataFrame  # source_id, person_id, reason: the pairs not carried over


def check_pairs(pairs: pd.DataFrame | None, hh: Households, mem: Members, *, scope: str) -> Existing:
    """Existing pairs sorted out: those that can be kept, and those dropped with their reason.

    A pair is dropped (reported, never silently) when its household or member is gone, or the member no
    longer pairs in the household's grid (village). Capacity is checked when pairing (it may keep fewer).

    Raises
    ------
    SchemaError
        No ``source_id`` or ``person_id`` column; a ``households`` value that is not a whole number >= 1.
    """
    if pairs is None or len(pairs) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Existing(empty, empty, empty, pd.DataFrame({"source_id": [], "person_id": [], "reason": []}))
    src = _source(pairs, "pairs")
    _need(pairs, ("source_id", "person_id"), src, "pairs table")
    h_ids, p_ids = _text(pairs["source_id"]), _text(pairs["person_id"])
    count = _counts(pairs, src, least=1)
    hrow, mrow = hh.index(), {str(v): i for i, v in enumerate(mem.ids)}
    hh_scope = hh.grid if scope == "grid" else hh.village
    keep: dict[tuple[int, int], int] = {}
    dropped: list[tuple[object, object, str]] = []
    for h, p, n in zip(h_ids, p_ids, count.tolist(), strict=True):
        reason = ("household gone" if h not in hrow else "member gone" if p not in mrow
                  else f"member no longer pairs in the household's {scope}"
                  if mem.scope[mrow[p]] != hh_scope[hrow[h]] else None)
        if reason is not None:
            dropped.append((h, p, reason))
            continue
        key = (hrow[h], mrow[p])
        keep[key] = keep.get(key, 0) + n
    if dropped:
        log.warning("%s: %d existing pairs dropped (household or member gone, or scope changed)", src, len(dropped))
    keys = sorted(keep)
    return Existing(
        household=np.array([k[0] for k in keys], dtype=np.int64),
        member=np.array([k[1] for k in keys], dtype=np.int64),
        count=np.array([keep[k] for k in keys], dtype=np.int64),
        dropped=pd.DataFrame(dropped, columns=["source_id", "person_id", "reason"]),
    )

