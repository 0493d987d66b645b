"""Edits of a unit's attributes in the county's own layer tables, in the store's transaction.

Why here: when the store and the layers are one database (the county GeoPackage's
embedded store, or a county loaded into PostGIS), an edit, its audit row and its
version are one transaction: a unit never has a name no version records, nor a
version whose change did not happen. The build's columns (codes, parents,
counts, rule marks) are not editable: an edit may set a unit's name, kind and the
people answering for it (``leader*`` columns), as ``gridgeo build`` writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gridgeo.errors import InputError

from .base import Store

#: the level layers whose units GIS staff edit
EDITABLE_LAYERS = ("blocks", "grids", "points", "exclusive")
#: the longest text an edited attribute takes
MAX_VALUE = 200


def editable(column: str) -> bool:
    """Whether an edit may set ``column``: a name, a kind, a responsible person (never a code or a count)."""
    return column in ("name", "kind") or column.startswith("leader")


def check_values(layer: str, columns: list[str], values: Mapping[str, Any]) -> dict[str, str | None]:
    """``values`` (property -> text or null) if an edit of ``layer`` may set them all; else an
    :class:`InputError` naming every property that may not be set and why."""
    problems = []
    out: dict[str, str | None] = {}
    for k, v in values.items():
        if k not in columns:
            problems.append(f"{k}: {layer} has no such property")
        elif not editable(k):
            problems.append(f"{k}: set by the build (codes, parents, counts, rule marks), not editable")
        elif isinstance(v, bool) or (v is not None and not isinstance(v, str | int | float)):
            problems.append(f"{k}: a text or null, got {type(v).__name__}")
        elif v is not None and len(str(v)) > MAX_VALUE:
            problems.append(f"{k}: at most {MAX_VALUE} characters, got {len(str(v))}")
        else:
            out[k] = None if v is None else str(v)
    if problems:
        raise InputError(f"{layer}: " + "; ".join(problems))
    return out


def code_index(store: Store, cur: Any, layer: str, column: str = "code") -> None:
    """Index ``layer.column`` the first time an edit looks rows up by it (a build writes no such index:
    without it each edit of a province's grids or points scanned the table, 0.12-0.18 s a statement). Not
    named ``gg_``: a rebuild carries the store's ``gg_`` objects into a file whose layers may differ."""
    store.execute(cur, f'CREATE INDEX IF NOT EXISTS "gridgeo_{layer}_{column}" ON "{layer}" ("{column}")')


def update_unit(store: Store, cur: Any, layer: str, code: str, values: Mapping[str, str | None]) -> None:
    """Set ``values`` on the unit ``code`` of ``layer`` (identifiers checked by the caller against the layer's
    columns), in the caller's transaction."""
    if layer not in EDITABLE_LAYERS or not values or not all(editable(k) for k in values):
        raise InputError(f"{layer}: not an edit of a unit's attributes ({', '.join(values)})")
    sets = ", ".join(f'"{k}" = ?' for k in values)
    code_index(store, cur, layer)
    store.execute(cur, f'UPDATE "{layer}" SET {sets} WHERE code = ?', [*values.values(), code])
    if cur.rowcount != 1:
        raise InputError(f"{layer}: no unit {code!r} in the store's copy of the layer ({cur.rowcount} rows)")


def gpkg_blob(wkb: bytes, srs_id: int, bounds: tuple[float, float, float, float]) -> bytes:
    """A GeoPackage geometry blob: header (little-endian, with the xy envelope) and the ISO WKB."""
    import struct

    minx, miny, maxx, maxy = bounds
    return b"GP\x00\x03" + struct.pack("<i4d", srs_id, minx, maxx, miny, maxy) + wkb


def update_geometry(store: Store, cur: Any, layer: str, code: str, geom: Any, *, srid: int,
                    column: str = "geom") -> None:
    """Set the stored geometry of unit ``code`` of ``layer`` (``geom`` in the layer's own CRS, ``srid``),
    in the caller's transaction: a GeoPackage blob in the file (its R*tree follows by its triggers), WKB
    with its SRID in PostGIS."""
    import shapely

    wkb = shapely.to_wkb(geom, byte_order=1, flavor="iso")
    code_index(store, cur, layer)
    if store.dialect == "postgresql":
        store.execute(cur, f'UPDATE "{layer}" SET "{column}" = ST_SetSRID(ST_GeomFromWKB(?), ?) WHERE code = ?',
                      [wkb, srid, code])
    else:
        store.execute(cur, f'UPDATE "{layer}" SET "{column}" = ? WHERE code = ?',
                      [gpkg_blob(wkb, srid, tuple(shapely.bounds(geom).tolist())), code])
    if cur.rowcount != 1:
        raise InputError(f"{layer}: no unit {code!r} in the store's copy of the layer ({cur.rowcount} rows)")


def move_units(store: Store, cur: Any, layer: str, column: str, moves: Mapping[str, tuple[str, str]], *,
               households: str | None = None, by: str = "point") -> None:
    """Give each moved unit of ``layer`` its new parent (``column``: a grid point's ``parent``, a village's
    ``block``) and, when ``households`` names one of their columns, its households theirs (found by their
    ``by`` column).

    The codes are indexed the first time (:func:`code_index`: without it each moved point scanned the 5M
    households of a province, 1.4 s an edit)."""
    if not moves:
        return
    code_index(store, cur, layer)
    if households:
        code_index(store, cur, "households", by)
    for unit, (_, to) in moves.items():
        store.execute(cur, f'UPDATE "{layer}" SET "{column}" = ? WHERE code = ?', [to, unit])
        if households:
            store.execute(cur, f'UPDATE "households" SET "{households}" = ? WHERE "{by}" = ?', [to, unit])


def move_points(store: Store, cur: Any, moves: Mapping[str, tuple[str, str]], *, households: bool) -> None:
    """Give each moved grid point its new grid (``points.parent``) and its households theirs (``grid``)."""
    move_units(store, cur, "points", "parent", moves, households="grid" if households else None)
