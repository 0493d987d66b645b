"""The county held in memory for serving: every layer loaded once, every feature pre-serialised.

Why pre-serialise: a page of 100 polygons is mostly coordinates; turning
geometries into JSON on every request is what makes generic servers slow.
Here each feature's GeoJSON (CRS84, coordinates rounded to 1e-7 degree, about
1 cm) is made once at start-up, and a page is those bytes joined. Only a
request for another CRS or a Chinese web-map datum re-serialises, and only
the features on its page.

Paging is keyset paging: features are sorted by their id (the ``code``), a
page starts after the last id of the previous one, found by binary search, so
the 500th page costs what the first does. A bbox query uses an STRtree built
on the features in that same order, so its hits are already positions in the
sort order.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from numpy.typing import NDArray

from gridgeo.data.io import feature_ids, list_layers, read_layer, rfc7946
from gridgeo.data.live_index import LiveIndex, ReadWriteLock
from gridgeo.errors import NotFoundError, UsageError
from gridgeo.patrol.county import AreaSource

if TYPE_CHECKING:
    from .lazy_base import LazyLayer

log = logging.getLogger(__name__)

#: the levels of a built county, served first and in this order
LEVELS: tuple[str, ...] = ("areas", "townships", "blocks", "villages", "grids", "points", "exclusive",
                           "micro_grids", "lanes")

TITLES: dict[str, str] = {
    "areas": "Areas 片区",
    "townships": "Townships 乡镇/街道",
    "blocks": "Blocks 块",
    "villages": "Villages and communities 村/社区",
    "grids": "Grids 网格",
    "points": "Grid points 网格点",
    "exclusive": "Exclusive grids 专属网格",
    "micro_grids": "Micro-grids 微网格",
    "lanes": "Lanes 巷",
    "households": "Households 户",
    "villager_groups": "Villager groups 村民小组",
    "buildings": "Buildings 建筑",
    "roads": "Roads 道路",
    "water": "Water 水系",
    "pois": "Points of interest 兴趣点",
}

#: the only columns everyone is served of a layer that can hold people's data; the others (a register's names,
#: phones, addresses, special-care categories, party membership) only to the users allowed them
#: (:mod:`gridgeo.store.access`), in their scope
PUBLIC_COLUMNS: dict[str, tuple[str, ...]] = {
    "households": ("source", "source_id", "households", "estimated", "point", "grid", "village", "township",
                   "micro_grid", "lane", "unit"),
}

#: layers whose features change while served (a household moved, added, removed): their bbox queries run on a
#: :class:`~gridgeo.data.live_index.LiveIndex`, which takes one change in microseconds where an STRtree is rebuilt
WRITABLE: frozenset[str] = frozenset({"households"})

#: a layer with more features than this is served from the GeoPackage page by page (:mod:`.lazy`), not held
#: in memory. Why: reading and pre-serialising costs 60-350 microseconds a feature at start-up (34,000
#: village polygons: 6 s), while a page of 100 read from the file costs about 1.5 ms the first time and
#: what memory costs after (its LRU). The built sample county (32,000 households) stays in memory whole.
LAZY_AT = 50_000
#: nor is a layer whose geometries take more than this in the file: 5,000 township polygons of a province
#: are 35 MB, and pre-serialised twice that in memory and 2 s of start-up
LAZY_BYTES = 8 * 2**20

#: attribute tables kept in memory (the roster, for the patrol planner's teams)
KEPT_TABLES = ("people",)
_DECIMALS = 7
_INT_KEY = re.compile(r"-?[0-9]+")
#: other CRSs / datums whose serialised geometries are kept per collection
MAX_VARIANTS = 4


def _jsonable(value: Any) -> Any:
    """A plain JSON value for one cell (NaN and NaT become null; numpy scalars plain numbers)."""
    if value is None:
        return None
    if isinstance(value, float | np.floating):
        f = float(value)
        return None if math.isnan(f) or math.isinf(f) else f
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if hasattr(value, "isoformat"):  # pandas Timestamp
        try:
            return value.isoformat()
        except ValueError:  # NaT
            return None
    if value is getattr(__import__("pandas"), "NA", object()):
        return None
    if isinstance(value, bytes):
        return value.hex()
    return value


#: the one encoder of :func:`dumps` (``json.dumps`` with options makes a new one per call: a tenth of the time
#: of serialising a page of properties read from PostGIS)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON (Chinese stays readable, not ``\\u`` escaped)."""
    return _ENCODER.encode(obj).encode("utf-8")


#: shapely type ids of polygons and multipolygons: what rounding can make invalid
_POLYGONAL = (3, 6)


def round_coords(geoms: NDArray[np.object_], decimals: int = _DECIMALS) -> NDArray[np.object_]:
    """Geometries with coordinates rounded, so the GeoJSON carries no false precision.

    A polygon valid as stored can self-intersect once rounded (two edges closer than the rounding: a
    grid redrawn from grid points whose union has a narrow neck); that one is snapped to the same grid
    by GEOS instead (``set_precision``, which keeps it valid), so what is served is valid as RFC 7946
    asks. Checked for polygons only, and only those valid before rounding.
    """
    out = np.asarray(shapely.transform(geoms, lambda c: np.round(c, decimals)))
    poly = np.isin(shapely.get_type_id(geoms), _POLYGONAL)
    if poly.any():
        idx = np.flatnonzero(poly)
        bad = idx[~shapely.is_valid(out[idx]) & shapely.is_valid(geoms[idx])]
        if len(bad):
            out[bad] = shapely.set_precision(geoms[bad], 10.0 ** -decimals)
    return out


def geojson_bytes(geoms: NDArray[np.object_]) -> list[bytes]:
    """Each geometry's GeoJSON as bytes (``null`` for a missing one), written by GEOS."""
    out = shapely.to_geojson(geoms)
    return [b"null" if s is None else s.encode("ascii") for s in out]


@dataclass
class Collection:
    """One layer, sorted by feature id, with its pre-serialised features.

    Attributes
    ----------
    keys
        Feature ids in ascending order (``code`` strings, or row numbers for
        layers without a unique ``code``): the keyset cursor runs on them.
    geoms
        Geometries in CRS84 (lon/lat, counter-clockwise exteriors), same order.
    head, tail
        The bytes before and after the geometry of each feature, so another
        geometry (other CRS, GCJ-02) is spliced in without touching properties.
    full
        ``head + geometry + tail``: the ready CRS84 feature.
    """

    id: str
    title: str
    geometry_type: str
    keys: NDArray[Any]
    geoms: NDArray[np.object_]
    head: list[bytes]
    tail: list[bytes]
    full: list[bytes]
    properties: dict[str, str]
    frame: gpd.GeoDataFrame
    storage_epsg: int | None
    bbox: tuple[float, float, float, float]
    tree: shapely.STRtree | None
    int_keys: bool
    position: dict[Any, int] = field(default_factory=dict)
    #: the layer's live index (layers in :data:`WRITABLE`), keyed by feature id; None: ``tree`` answers bboxes
    live: LiveIndex | None = None
    #: views read under it, :meth:`replace` and :meth:`delete` write under it
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)
    #: the properties with the personal columns, for the users allowed them (None: the layer has none)
    private_tail: list[bytes] | None = None
    private_frame: Any = None
    variants: OrderedDict[tuple[str, str | None], list[bytes | None]] = field(default_factory=OrderedDict)

    def geometry_variant(self, key: tuple[str, str | None], pos: NDArray[np.int64],
                         make: Callable[[NDArray[np.object_]], list[bytes]]) -> list[bytes]:
        """Geometry bytes of ``pos`` in another CRS/datum ``key``, made by ``make`` once per feature.

        Why: a client that asks for EPSG:4549 or GCJ-02 once keeps asking for
        it (a map, a QGIS layer); after the first pass its pages cost what
        CRS84 pages do. At most :data:`MAX_VARIANTS` variants are kept (LRU);
        list slots are filled under the GIL, so threads at worst redo a feature.
        """
        cache = self.variants.get(key)
        if cache is None:
            cache = [None] * len(self.keys)
            self.variants[key] = cache
            while len(self.variants) > MAX_VARIANTS:
                self.variants.popitem(last=False)
        else:
            with contextlib.suppress(KeyError):  # evicted by another thread meanwhile
                self.variants.move_to_end(key)
        plist = pos.tolist()
        missing = [i for i in plist if cache[i] is None]
        if missing:
            for i, g in zip(missing, make(self.geoms[np.asarray(missing, dtype=np.int64)]), strict=True):
                cache[i] = g
        return [cache[i] for i in plist]  # type: ignore[misc]

    def __len__(self) -> int:
        return len(self.keys)

    # ---------------------------------------------------------------- what the views read (as LazyCollection)
    @property
    def column_names(self) -> list[str]:
        """The public (non-geometry) columns, in file order."""
        return [c for c in self.frame.columns if c != self.frame.geometry.name]

    def columns(self, names: list[str]) -> dict[str, NDArray[Any]]:
        """Whole public columns, in id order (for the locator's summaries and the chains of units)."""
        return {c: self.frame[c].to_numpy() for c in names if c in self.frame.columns}

    def geometries(self) -> NDArray[np.object_]:
        """Every geometry in CRS84, in id order."""
        return self.geoms

    def table(self, names: list[str]) -> pd.DataFrame:
        """The columns ``names`` it has, as a table in id order (what :class:`~gridgeo.store.chains.Chains` reads)."""
        return pd.DataFrame(self.columns(names))

    def key_at(self, pos: int) -> Any:
        """The id of the feature at ``pos``."""
        return self.keys[pos]

    def public_features(self, plist: list[int]) -> list[bytes]:
        """The ready CRS84 features at ``plist`` (public properties)."""
        return [self.full[i] for i in plist]

    def parts(self, plist: list[int]) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """Head, CRS84 geometry and public tail of each feature at ``plist``, to splice another in."""
        heads = [self.head[i] for i in plist]
        tails = [self.tail[i] for i in plist]
        geos = [self.full[i][len(h):len(self.full[i]) - len(t)] for i, h, t in zip(plist, heads, tails, strict=True)]
        return heads, geos, tails

    @property
    def has_private(self) -> bool:
        """Whether the layer has columns only some users may read."""
        return self.private_tail is not None

    def private_tails(self, plist: list[int]) -> list[bytes] | None:
        """The tails with every column (personal ones, statuses), None when the layer has nothing personal."""
        private = self.private_tail
        return None if private is None else [private[i] for i in plist]

    def units(self, plist: list[int], names: tuple[str, ...]) -> dict[str, list[Any]]:
        """The columns ``names`` (a household's units) of the features at ``plist``."""
        return {c: self.frame[c].to_numpy()[plist].tolist() for c in names if c in self.frame.columns}

    def records(self, plist: list[int]) -> list[dict[str, Any]]:
        """The public properties of the features at ``plist`` (an HTML table)."""
        return [self.frame.iloc[i][list(self.properties)].to_dict() for i in plist]

    # ---------------------------------------------------------------- changes
    def replace(self, key: Any, geom: Any) -> bool:
        """Give feature ``key`` the CRS84 geometry ``geom``; True when its bbox index took it.

        Its served bytes change at once; its bbox index is updated in place (a live layer) or rebuilt
        (the others, whose features are not expected to change: O(n)). A geometry the index refuses
        (empty, invalid) is still served but found by no bbox (logged by the index).

        Raises
        ------
        NotFoundError
            When the collection has no such feature.
        """
        g = shapely.orient_polygons(geom, exterior_cw=False) if geom is not None else None
        with self.lock.writing():
            pos = self.locate_key(str(key))
            self.geoms[pos] = g
            geo = geojson_bytes(round_coords(np.array([g], dtype=object)))[0]
            self.full[pos] = self.head[pos] + geo + self.tail[pos]
            for cache in self.variants.values():
                cache[pos] = None
            self.frame.loc[pos, self.frame.geometry.name] = g
            ok = self._reindex_one(self.keys[pos], g)
            if g is not None and not shapely.is_empty(g):
                x0, y0, x1, y1 = shapely.bounds(g).tolist()
                w, s, e, n = self.bbox
                self.bbox = (min(w, x0), min(s, y0), max(e, x1), max(n, y1))
        return ok

    def set_properties(self, key: Any, values: Mapping[str, Any]) -> None:
        """Give feature ``key`` new values of public columns (an edit of its name or responsible person);
        its served bytes change at once, as :func:`build_collection` makes them."""
        with self.lock.writing():
            pos = self.locate_key(str(key))
            geo = self.parts([pos])[1][0]  # before the tail changes: the geometry is what lies between
            for frame in (self.frame, self.private_frame):
                for k, v in values.items():
                    if frame is not None and k in frame.columns:
                        frame.iat[pos, frame.columns.get_loc(k)] = v
            self.tail[pos] = properties_bytes(self.frame.iloc[[pos]][list(self.properties)].to_dict("records")[0])
            self.full[pos] = self.head[pos] + geo + self.tail[pos]
            if self.private_tail is not None and self.private_frame is not None:
                self.private_tail[pos] = properties_bytes(self.private_frame.iloc[[pos]].to_dict("records")[0])

    def set_properties_many(self, values: Mapping[Any, Mapping[str, Any]]) -> None:
        """:meth:`set_properties` of many features at once (feature id -> its new values), their tails made
        in one pass: a grid point moved takes its dozens of households along, and one by one each paid for
        a frame lookup (9 ms a household on the sample county; 200 ms an accepted redraw)."""
        if not values:
            return
        with self.lock.writing():
            plist = [self.locate_key(str(k)) for k in values]
            geos = self.parts(plist)[1]
            for frame in (self.frame, self.private_frame):
                if frame is None:
                    continue
                for pos, vals in zip(plist, values.values(), strict=True):
                    for k, v in vals.items():
                        if k in frame.columns:
                            frame.iat[pos, frame.columns.get_loc(k)] = v
            recs = self.frame.iloc[plist][list(self.properties)].to_dict("records")
            for pos, rec, geo in zip(plist, recs, geos, strict=True):
                self.tail[pos] = properties_bytes(rec)
                self.full[pos] = self.head[pos] + geo + self.tail[pos]
            if self.private_tail is not None and self.private_frame is not None:
                for pos, rec in zip(plist, self.private_frame.iloc[plist].to_dict("records"), strict=True):
                    self.private_tail[pos] = properties_bytes(rec)

    def delete(self, key: Any) -> None:
        """Stop serving feature ``key``: gone from pages, bbox answers and its item URL (O(n) in memory).

        Raises
        ------
        NotFoundError
            When the collection has no such feature.
        """
        with self.lock.writing():
            pos = self.locate_key(str(key))
            fid = self.keys[pos]
            self.keys = np.delete(self.keys, pos)
            self.geoms = np.delete(self.geoms, pos)
            for lst in (self.head, self.tail, self.full, self.private_tail, *self.variants.values()):
                if lst is not None:
                    del lst[pos]
            self.frame = self.frame.drop(index=pos).reset_index(drop=True)
            if self.private_frame is not None:
                self.private_frame = self.private_frame.drop(index=pos).reset_index(drop=True)
            self.position = {k: i for i, k in enumerate(self.keys.tolist())}
            if self.live is not None:
                self.live.delete(fid)
            else:
                self.tree = shapely.STRtree(self.geoms)

    def _reindex_one(self, fid: Any, geom: Any) -> bool:
        if self.live is None:
            self.tree = shapely.STRtree(self.geoms)
            return True
        return self.live.replace(fid, geom)

    def full_frame(self, rows: NDArray[np.int64] | None = None) -> gpd.GeoDataFrame:
        """The layer with every column (the personal ones too), CRS84, in id order: for patrol planning.

        ``rows``: only the features at these positions (a township's, :meth:`County.region`), renumbered
        from 0, so a part costs what the part holds, not a copy of the whole layer first.
        """
        frame = self.frame if rows is None else self.frame.iloc[rows].reset_index(drop=True)
        out = frame.copy() if rows is None else frame
        if self.private_frame is None:
            return out
        private = self.private_frame if rows is None else self.private_frame.iloc[rows]
        for c in [c for c in private.columns if c not in frame.columns]:
            out[c] = private[c].to_numpy()
        return out

    def set_status(self, key: Any, status: dict[str, Any]) -> None:
        """Show a household's current status (priority, special-care categories) in its personal properties.

        Why only there: a status is personal (a red mark, 低保户), so the public properties never carry it.
        One feature is re-serialised; the list slot is swapped whole, so readers see the old or the new bytes.
        """
        pos = self.locate_key(str(key))
        if self.private_tail is None or self.private_frame is None:
            self.private_frame = self.frame.drop(columns=[self.frame.geometry.name])
            self.private_tail = list(self.tail)
        rec = self.private_frame.iloc[pos].to_dict()
        for k, v in status.items():
            rec[k] = "、".join(v) if isinstance(v, list) else v
        self.private_tail[pos] = properties_bytes(rec)

    def parse_key(self, text: str) -> Any:
        """A feature id from the URL: an int for row-numbered layers, else the code string."""
        return parse_key(text, int_keys=self.int_keys)

    def locate_key(self, fid: str) -> int:
        """Position of feature ``fid``.

        Raises
        ------
        NotFoundError
            When the collection has no such feature.
        """
        pos = self.position.get(self.parse_key(fid))
        if pos is None:
            raise NotFoundError(f"no feature {fid!r} in collection {self.id!r}")
        return pos

    def cursor(self, text: str) -> int:
        """Position of the first feature whose id sorts after ``text`` (for ``after``) — any string works."""
        key = self.parse_key(text)
        if key is None:
            raise UsageError(f"cursor {text!r} is not a feature id of {self.id!r} (an integer)")
        return int(np.searchsorted(self.keys, key, side="right"))

    def cursor_before(self, text: str) -> int:
        """Position of the first feature whose id is not below ``text`` (for ``before``)."""
        key = self.parse_key(text)
        if key is None:
            raise UsageError(f"cursor {text!r} is not a feature id of {self.id!r} (an integer)")
        return int(np.searchsorted(self.keys, key, side="left"))

    def bbox_positions(self, boxes: list[tuple[float, float, float, float]]) -> NDArray[np.int64]:
        """Sorted positions of the features whose geometry intersects any of ``boxes`` (CRS84)."""
        if self.live is not None:
            live = self.live
            found = [np.fromiter((self.position[k] for k in live.query_bbox(b)), dtype=np.int64) for b in boxes]
            idx = np.concatenate(found) if found else np.empty(0, dtype=np.int64)
            return np.unique(idx).astype(np.int64)
        assert self.tree is not None
        hits = [self.tree.query(shapely.box(*b), predicate="intersects") for b in boxes]
        idx = np.concatenate(hits) if hits else np.empty(0, dtype=np.int64)
        return np.unique(idx).astype(np.int64)


def parse_key(text: str, *, int_keys: bool) -> Any:
    """A feature id from the URL: an int for row-numbered layers (None when ``text`` is not one), else ``text``.

    Plain ASCII digits only: ``int()`` would also take " 1", "1_0" and "١", so one feature got many URLs.
    """
    if not int_keys:
        return text
    if not _INT_KEY.fullmatch(text):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than int() converts
        return None


def _epsg_of(gdf_crs: Any) -> int | None:
    if gdf_crs is None:
        return None
    try:
        code = gdf_crs.to_epsg()
    except Exception:  # pyproj raises CRSError for odd definitions
        return None
    return int(code) if code else None


def _property_type(dtype: Any) -> str:
    kind = getattr(dtype, "kind", "O")
    return {"i": "integer", "u": "integer", "f": "number", "b": "boolean", "M": "string"}.get(kind, "string")


def build_collection(name: str, gdf: gpd.GeoDataFrame, storage_epsg: int | None = None, *,
                     public: tuple[str, ...] | None = None) -> Collection:
    """Sort one layer (already CRS84, CCW) by its id and pre-serialise every feature.

    ``public``: the only columns everyone gets; the features are then serialised twice, the second
    time with every column, for the users allowed personal fields.

    The ids are :func:`gridgeo.data.io.feature_ids`: the ``code``, else ``id``, else the row number.
    """
    geom_col = gdf.geometry.name
    every = [c for c in gdf.columns if c != geom_col]
    props = every if public is None else [c for c in every if c in public]
    if public is not None and len(props) == len(every):
        public = None  # nothing personal in this file: one serialisation
    keys, int_keys = feature_ids(gdf)
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    if not int_keys:
        keys = np.array([str(k) for k in keys], dtype=object)
    frame = gdf.iloc[order].reset_index(drop=True)
    geoms = np.asarray(frame.geometry.values, dtype=object)
    records = frame[props].to_dict("records") if props else [{} for _ in range(len(frame))]
    geo = geojson_bytes(round_coords(geoms))
    head: list[bytes] = []
    tail: list[bytes] = []
    full: list[bytes] = []
    for key, rec, g in zip(keys, records, geo, strict=True):
        fid = int(key) if int_keys else str(key)
        h = b'{"type":"Feature","id":' + dumps(fid) + b',"geometry":'
        t = properties_bytes(rec)
        head.append(h)
        tail.append(t)
        full.append(h + g + t)
    private_tail = private_frame = None
    if public is not None:
        private_frame = frame[every].reset_index(drop=True)
        private_tail = [properties_bytes(r) for r in private_frame.to_dict("records")]
        frame = frame[[*props, geom_col]]  # what every view reads holds nothing personal
    valid = geoms[~shapely.is_missing(geoms)]
    bounds = tuple(float(v) for v in shapely.total_bounds(valid)) if len(valid) else (0.0, 0.0, 0.0, 0.0)
    types = sorted({t for t in shapely.get_type_id(valid).tolist()})
    gtype = {0: "point", 1: "linestring", 3: "polygon", 4: "multipoint", 5: "multilinestring",
             6: "multipolygon"}.get(types[0], "geometry") if len(types) == 1 else "geometry"
    if set(types) <= {3, 6} and types:
        gtype = "polygon" if types == [3] else "multipolygon"
    return Collection(
        id=name,
        title=TITLES.get(name, name),
        geometry_type=gtype,
        keys=keys,
        geoms=geoms,
        head=head,
        tail=tail,
        full=full,
        properties={c: _property_type(frame[c].dtype) for c in props},
        frame=frame,
        storage_epsg=storage_epsg,
        bbox=bounds,  # type: ignore[arg-type]
        tree=None if name in WRITABLE else shapely.STRtree(geoms),
        int_keys=int_keys,
        position={(int(k) if int_keys else str(k)): i for i, k in enumerate(keys)},
        private_tail=private_tail,
        private_frame=private_frame,
        live=LiveIndex(keys.tolist(), geoms, name=name) if name in WRITABLE else None,
    )


def properties_bytes(rec: dict[str, Any]) -> bytes:
    """A feature's tail: its properties and the closing brace."""
    return b',"properties":' + dumps({k: _jsonable(v) for k, v in rec.items()}) + b"}"


#: a served layer: held in memory, or read per page from the GeoPackage (:mod:`.lazy`) or PostGIS
#: (:mod:`.lazy_pg`); the views read them alike
Served: TypeAlias = "Collection | LazyLayer"


@dataclass
class County:
    """All served collections, the six levels first, plus when the file was last changed.

    ``tables``: its attribute tables (the build's ``people``), read at start-up with the layers.
    """

    path: str
    collections: dict[str, Served]
    modified: str
    tables: dict[str, Any] = field(default_factory=dict)

    def frames(self) -> Mapping[str, Any]:
        """Every layer and table as the patrol planner reads them: each made when first asked for.

        Why not from the file with GDAL: the store writes the same GeoPackage through Python's SQLite,
        and GDAL carries its own; a GDAL open and close of a WAL database in the same process deletes
        the WAL under the store's connections. So after start-up the service never opens the file with
        GDAL: a layer held in memory is copied, one served from the file is read through sqlite3.
        """
        return _Frames(self)

    def region(self, bounds: tuple[float, float, float, float]) -> Mapping[str, Any]:
        """:meth:`frames` cut to the CRS84 ``bounds``: every feature whose box meets them.

        Why: the patrol planner of a county served from the file (a province) plans one township at a
        time; its street network and stops are read for that township's box, never for the whole county.
        """
        return _Frames(self, bounds)

    def is_lazy(self, name: str) -> bool:
        """Whether layer ``name`` is served from the file (too big to hold), not from memory."""
        coll = self.collections.get(name)
        return coll is not None and not isinstance(coll, Collection)

    def get(self, name: str) -> Served:
        """The collection ``name``.

        Raises
        ------
        NotFoundError
            Listing the collections there are.
        """
        coll = self.collections.get(name)
        if coll is None:
            raise NotFoundError(f"no collection {name!r}; collections are {', '.join(self.collections)}")
        return coll


#: layers served from the file that the patrol planner reads grid by grid (not whole): the households
BY_AREA = frozenset({"households"})


class _ByArea(AreaSource):
    """A layer served from the file, as the patrol planner reads it: by area (:class:`gridgeo.patrol.county.ByGrid`)."""

    def __init__(self, coll: LazyLayer) -> None:
        self.coll = coll
        self.columns = [c for c, _ in coll.t.columns]
        self.crs = "EPSG:4326"

    def within(self, bounds: tuple[float, float, float, float]) -> gpd.GeoDataFrame:
        return self.coll.within(bounds)


class _Frames(Mapping[str, Any]):
    """:meth:`County.frames`: the layers by name, each made on ``[]`` (the planner asks for a few).

    ``bounds`` (CRS84): only the features whose box meets them (:meth:`County.region`).
    """

    def __init__(self, county: County, bounds: tuple[float, float, float, float] | None = None) -> None:
        self.county = county
        self.bounds = bounds

    def __getitem__(self, name: str) -> Any:
        if name in self.county.tables:
            return self.county.tables[name]
        coll = self.county.collections[name]
        if isinstance(coll, Collection):
            return coll.full_frame(None if self.bounds is None else coll.bbox_positions([self.bounds]))
        if name in BY_AREA:
            return _ByArea(coll)
        if self.bounds is None:
            return coll.frame()
        return coll.within(self.bounds).drop(columns="_item").reset_index(drop=True)

    def __iter__(self) -> Iterator[str]:
        return iter([*self.county.collections, *self.county.tables])

    def __len__(self) -> int:
        return len(self.county.collections) + len(self.county.tables)


def _attribute_tables(path: Path) -> set[str]:
    """The layers of a GeoPackage that have no geometry (a build's ``people``): not features."""
    import pyogrio

    try:
        return {str(n) for n, g in pyogrio.list_layers(path) if g is None}
    except Exception:  # not a GeoPackage pyogrio lists: read_layer says why, with the file's name
        return set()


def _big_layers(path: Path, names: list[str], lazy_at: int | None, lazy_bytes: int = LAZY_BYTES
                ) -> dict[str, int]:
    """The feature tables of a GeoPackage with more than ``lazy_at`` features or ``lazy_bytes`` of
    geometry, and their feature counts.

    Read with Python's sqlite3 through a connection closed before GDAL opens the file (see
    :meth:`County.frames`); a file that is not a GeoPackage has none.
    """
    import sqlite3

    if lazy_at is None or path.suffix.lower() != ".gpkg":
        return {}
    from .lazy import feature_count

    out: dict[str, int] = {}
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            geom_col = {str(r[0]): str(r[1]) for r in conn.execute(
                "SELECT table_name, column_name FROM gpkg_geometry_columns")}
            for n in names:
                if n not in geom_col:
                    continue
                count = feature_count(conn, n)
                if count > lazy_at or int(conn.execute(  # a small table: summing its blobs is quick
                        f'SELECT coalesce(sum(length("{geom_col[n]}")), 0) FROM "{n}"').fetchone()[0]) > lazy_bytes:
                    out[n] = count
        finally:
            conn.close()
    except sqlite3.Error as exc:  # not a GeoPackage sqlite3 reads: every layer in memory, read by GDAL
        log.info("%s: not read through sqlite3 (%s); every layer held in memory", path, exc)
        return {}
    return out


def load_county(source: str | Path, *, lazy_at: int | None = LAZY_AT) -> County:
    """Read the county's layers once, in CRS84 with CCW exteriors: small ones pre-serialised in memory,
    big ones (more than ``lazy_at`` features or :data:`LAZY_BYTES` of geometry) served from the file page
    by page (:mod:`.lazy`).

    ``source``: a county GeoPackage, or a ``postgresql://`` URL a county was loaded into (``gridgeo load``).
    Layers without geometry (attribute tables) are skipped: OGC API – Features
    serves features. The levels come first, the other layers in file (load) order. ``lazy_at=None``:
    every layer in memory.
    """
    from gridgeo.store import is_url

    if is_url(source):
        return _load_postgis(str(source), lazy_at)
    p = Path(source)
    names = list_layers(p)
    ordered = [n for n in LEVELS if n in names] + [n for n in names if n not in LEVELS]
    big = _big_layers(p, ordered, lazy_at)
    out: dict[str, Served | None] = {}
    tables = _attribute_tables(p)
    kept: dict[str, Any] = {}
    for name in ordered:
        if name in big:
            out[name] = None  # its place in the order; opened below, once GDAL is done with the file
            continue
        if name in tables:
            log.info("%s: layer %s is a table without geometry; not served as features", p, name)
            if name in KEPT_TABLES:
                import pyogrio

                kept[name] = pyogrio.read_dataframe(p, layer=name, read_geometry=False)
            continue
        raw = read_layer(p, layer=name)
        if not isinstance(raw, gpd.GeoDataFrame) or raw.geometry is None or raw.crs is None:
            log.warning("%s: layer %s has no geometry or no CRS; not served", p, name)
            continue
        coll = out[name] = build_collection(name, rfc7946(raw), _epsg_of(raw.crs), public=PUBLIC_COLUMNS.get(name))
        if coll.private_tail is not None:
            hidden = [c for c in coll.private_frame.columns if c not in coll.properties]
            log.info("%s: layer %s: %d personal column(s) served only to users allowed them (%s)", p, name,
                     len(hidden), ", ".join(hidden))
        log.info("loaded %s: %d features", name, len(coll))
    from .lazy import LazyCollection

    for name, count in big.items():
        lazy = out[name] = LazyCollection(p, name, count, public=PUBLIC_COLUMNS.get(name))
        log.info("serving %s from the file: %d features", name, len(lazy))
    mtime = dt.datetime.fromtimestamp(os.path.getmtime(p), tz=dt.timezone.utc)
    served = {k: v for k, v in out.items() if v is not None}
    return County(str(p), served, mtime.replace(microsecond=0).isoformat().replace("+00:00", "Z"), kept)


def _load_postgis(url: str, lazy_at: int | None) -> County:
    """:func:`load_county` from PostGIS: the layers as the GeoPackage gave them, so the same features are served;
    a big table (more than ``lazy_at`` rows or :data:`LAZY_BYTES` of geometry) read page by page
    (:mod:`.lazy_pg`), the others whole.

    ``tables`` keeps the attribute tables (the ``people`` /locate names); ``path`` is the URL without its
    password, since it appears in messages.
    """
    from gridgeo.store.postgis import catalogue, loaded_at, read_layers
    from gridgeo.store.postgres import redact

    from .lazy_pg import PgLazyCollection, Reader, big_tables

    name = redact(url)
    entries = {e.name: e for e in catalogue(url)}
    reader = Reader(url)
    big = big_tables(reader, list(entries.values()), lazy_at, LAZY_BYTES)
    frames = read_layers(url, names=[n for n in entries if n not in big])
    ordered = [n for n in LEVELS if n in entries] + [n for n in entries if n not in LEVELS]
    out: dict[str, Served] = {}
    tables: dict[str, pd.DataFrame] = {}
    for n in ordered:
        if n in big:
            out[n] = PgLazyCollection(reader, entries[n], big[n], public=PUBLIC_COLUMNS.get(n))
            log.info("serving %s from the database: %d features", n, len(out[n]))
            continue
        raw = frames[n]
        if not isinstance(raw, gpd.GeoDataFrame):
            log.info("%s: %s is a table without geometry; not served as features", name, n)
            tables[n] = raw
            continue
        out[n] = build_collection(n, rfc7946(raw), _epsg_of(raw.crs), public=PUBLIC_COLUMNS.get(n))
        log.info("loaded %s: %d features", n, len(out[n]))
    if not big:
        reader.close()
    return County(name, out, loaded_at(url), tables)
