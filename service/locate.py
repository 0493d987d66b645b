"""``/locate``: whose township, block, village, grid, grid point and exclusive grid a place is in.

The first question when a resident reports something from a phone. The
index is built once at start-up: per level, the polygons cut into small
pieces, plus, for every feature, the row of its parent. A level can change
while it is served (a grid redrawn): :meth:`Locator.replace` and
:meth:`Locator.delete` mask the feature's start-up pieces and put its new
ones in a :class:`~gridgeo.data.live_index.LiveIndex` (rtree), which takes
inserts and deletes; the start-up pieces stay in an STRtree, whose vectorised
queries a live rtree answers at a quarter of the rate (``bench/bench_index.py``).
A batch is answered on the finest level (grid points) first; the coarser
levels follow by code lookups, and a level is queried spatially only for the
few places the finer ones left open (an exclusive grid, which base grids
carve out; a gap in coverage). So a level a finer one leads to, when served
from the store, holds only its boxes and reads the polygons a place falls in
(:mod:`.locate_pieces`): on the tiled 5M-household county that halves the
index's memory.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import shapely
from flask import Blueprint, Response, current_app, request
from numpy.typing import NDArray

from gridgeo.data.cell_index import CellIndex
from gridgeo.data.crs import bd09_to_wgs84, gcj02_to_wgs84
from gridgeo.data.live_index import LiveIndex, ReadWriteLock
from gridgeo.errors import NotFoundError, ServiceUnavailableError, UsageError

from .lazy_base import LazyLayer
from .locate_pieces import CUT_AT, StoredPieces, held_pieces, repaired, stored_pieces, subdivide
from .ogc import CRS84, GEOJSON, check_params, crs_list, is_geographic, parse_coords, parse_crs_uri, point_to_crs84
from .positions import Positions, check_degrees, out_of_range, parse_positions, read_json
from .store import County, dumps

log = logging.getLogger(__name__)

bp = Blueprint("locate", __name__)

#: the answer's members, in order; the spatial queries run finest first (see ``_QUERY_ORDER``)
LEVEL_KEYS: dict[str, str] = {
    "area": "areas", "township": "townships", "block": "blocks", "village": "villages",
    "grid": "grids", "point": "points", "exclusive": "exclusive", "micro_grid": "micro_grids", "lane": "lanes",
}
#: levels in the answer only when the county has them (an area is not a level every county draws)
OPTIONAL_LEVELS = frozenset({"area", "micro_grid", "lane"})
_QUERY_ORDER = ("point", "micro_grid", "lane", "exclusive", "grid", "village", "block", "township", "area")
#: child level -> [(column, parent level)] followed upwards by code
_PARENTS: dict[str, list[tuple[str, str]]] = {
    "point": [("parent", "grid"), ("parent", "exclusive")],
    "micro_grid": [("parent", "grid"), ("parent", "exclusive")],
    "lane": [("parent", "grid"), ("parent", "exclusive")],
    "exclusive": [("parent", "village")],
    "grid": [("parent", "village")],
    "village": [("parent", "township"), ("block", "block")],
    "block": [("parent", "township")],
    "township": [("area", "area")],
}
#: besides code, name and every ``leader*`` column: whoever else answers for the place, where the data says
_SUMMARY_EXTRA = ("worker", "worker_phone", "phone", "contact")


#: what /locate says of each responsible person (the people table's other columns stay in the file)
_PERSON_KEYS = ("name", "role", "phone")


def _people(path: str, tables: Mapping[str, pd.DataFrame] | None = None) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The built county's ``people`` table by (level, unit code): name, role and phone of each person.

    Why these are served: responsible people are posted on every grid's notice board (网格公示牌) with
    their phone, so residents can call them; nothing else of the roster is. ``tables``: the county's
    attribute tables already read (a county served from PostGIS), else the GeoPackage ``path`` is read.
    """
    import pyogrio

    from gridgeo.store import is_url

    if tables and "people" in tables:
        t = tables["people"]
    elif is_url(path) or tables is not None:  # the county's tables were read: it has no people table
        return {}
    else:
        try:
            if "people" not in {str(n) for n, _ in pyogrio.list_layers(path)}:
                return {}
            t = pyogrio.read_dataframe(path, layer="people", read_geometry=False)
        except Exception:  # a county file without a readable people table: no people to say
            log.warning("%s: people table not readable; /locate answers without people", path, exc_info=True)
            return {}
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    if not {"level", "unit"} <= set(t.columns):
        return out
    for r in t.to_dict("records"):
        person = {k: (None if r.get(k) is None or str(r.get(k)) in ("nan", "None") else str(r[k]))
                  for k in _PERSON_KEYS}
        out.setdefault((str(r["level"]), str(r["unit"])), []).append(person)
    return out


#: a changed feature's piece key in a level's :class:`LiveIndex` is ``row << PIECE_BITS | n``: the smallest
#: key over a place is then the smallest row, the feature first in id order (what a shared boundary answers)
PIECE_BITS = 20
#: from this many places on, a batch builds its own tree of places (see :meth:`Locator.locate`)
_REVERSE_AT = 2048
#: ... and when the level has at most this many pieces per place (see :meth:`Locator._hits`)
_REVERSE_RATIO = 1
#: the fixed parts of a /locate feature (see :meth:`Locator._parts`)
_FEATURE_HEAD = b'{"type":"Feature","geometry":{"type":"Point","coordinates":['
_FEATURE_ID = b'{"type":"Feature","id":'
_ID_TAIL = b',"geometry":{"type":"Point","coordinates":['
_PROPS_HEAD = b']},"properties":{'


class Summaries:
    """The JSON of each feature's summary (code, name, leaders, people), made when first asked for.

    Why lazy: a county of hundreds of thousands of grid points would make them all at start-up, and a
    /locate answer needs one per distinct feature it names. A layer served from the file reads the
    rows a batch names in one query, so nothing per feature is held until asked for. What was made is
    kept in an array by row, already led by the answer's member name (``"grid":``), so a batch of
    100,000 places takes its column by one numpy take (was a Python lookup per distinct row: 0.3 s of
    a 1.6 s batch over a province); up to :data:`_SUMMARIES_KEPT` rows, then made afresh.
    """

    def __init__(self, layer: str, coll: Any, cols: list[str], people: dict[tuple[str, str], list[dict[str, Any]]],
                 columns: dict[str, NDArray[Any]] | None = None) -> None:
        self.layer, self.coll, self.cols, self.people = layer, coll, cols, people
        self.n = len(coll)
        self.columns = columns
        #: lead -> (text per row, row ``n`` the lead + ``null``; made per row)
        self._texts: dict[bytes, tuple[NDArray[np.object_], NDArray[np.bool_]]] = {}
        self._count = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self.n + 1

    def _make(self, rec: dict[str, Any]) -> bytes:
        from .store import _jsonable

        rec = {k: _jsonable(v) for k, v in rec.items()}
        who = self.people.get((self.layer, str(rec.get("code"))))
        if who:
            rec["people"] = who
        return dumps(rec)

    def _made(self, rows: list[int]) -> list[bytes]:
        """The summaries of ``rows`` (all in ``0 .. n-1``): one read of the file for all of them."""
        if self.columns is not None:
            return [self._make({k: v[r] for k, v in self.columns.items()}) for r in rows]
        return [self._make(rec) for rec in self.coll.rows_at(rows, self.cols)]

    def _table(self, lead: bytes) -> tuple[NDArray[np.object_], NDArray[np.bool_]]:
        with self._lock:
            got = self._texts.get(lead)
            if got is None or self._count > _SUMMARIES_KEPT:
                if got is not None:  # too many kept: start afresh (for every lead)
                    self._texts, self._count = {}, 0
                texts = np.empty(self.n + 1, dtype=object)
                texts[self.n] = lead + b"null"
                made = np.zeros(self.n + 1, dtype=bool)
                made[self.n] = True
                got = self._texts[lead] = (texts, made)
            return got

    def forget(self, row: int, values: Mapping[str, Any]) -> None:
        """Row ``row`` was edited (``values``, its new public values): its summary is made again when asked."""
        with self._lock:
            if self.columns is not None:
                for k, v in values.items():
                    if k in self.columns:
                        self.columns[k] = self.columns[k].copy()  # never the served frame's own array
                        self.columns[k][row] = v
            for _texts, made in self._texts.values():
                made[row] = False

    def column(self, rows: NDArray[np.int64], lead: bytes) -> NDArray[np.object_]:
        """``lead`` + the summary of each of ``rows`` (``null`` where -1), one shared byte string per row."""
        texts, made = self._table(lead)
        idx = np.where(rows < 0, self.n, rows)
        todo = np.unique(idx[~made[idx]])
        if len(todo):
            texts[todo] = [lead + t for t in self._made(todo.tolist())]
            made[todo] = True
            with self._lock:
                self._count += len(todo)
        return texts[idx]  # type: ignore[no-any-return]


#: summaries kept made per level (a batch over a whole province names ~100,000 grid points)
_SUMMARIES_KEPT = 200_000


@dataclass
class Level:
    """One level's index: the start-up pieces in an STRtree, the changed features' pieces in a LiveIndex.

    ``changed[row]``: the row's start-up pieces no longer count (it was replaced or deleted); its
    current pieces, if any, are in ``live`` under keys ``row << PIECE_BITS | n`` (``counts[row]`` of them).
    """

    name: str
    layer: str
    cells: CellIndex
    pieces: NDArray[np.object_] | StoredPieces
    owner: NDArray[np.int64]
    live: LiveIndex
    changed: NDArray[np.bool_]
    counts: dict[int, int]
    summary: Summaries
    parent_rows: dict[str, NDArray[np.int64]]
    #: the level's collection: its feature ids to rows (rows are its positions)
    coll: Any
    #: the changed features' pieces and their rows, for a big batch's tree of places (None: remake)
    changed_pieces: tuple[NDArray[np.object_], NDArray[np.int64]] | None = None
    by_row: dict[int, list[Any]] = field(default_factory=dict)


class Locator:
    """Point-in-level lookups over a county, each level taking a changed feature while it is read.

    Why two indexes per level: rtree (libspatialindex) answers one place in about 6 microseconds, too
    slow for batches of 100,000 (bench/bench_index.py: a quarter of the STRtree's rate), while an
    STRtree cannot change. So the polygons read at start-up stay in an STRtree, vectorised as before,
    and a feature replaced or deleted since is masked out of it; its new pieces go to a
    :class:`LiveIndex` (rtree), which takes inserts and deletes in microseconds and holds only what
    changed. Reads run in parallel; :meth:`replace` and :meth:`delete` wait for the reads under way and
    hold new ones back, so no answer sees a feature half replaced.
    """

    def __init__(self, county: County, *, people: dict[tuple[str, str], list[dict[str, Any]]] | None = None) -> None:
        self.levels: dict[str, Level] = {}
        self._lock = ReadWriteLock()
        frames = {}
        people = _people(county.path, county.tables) if people is None else people
        for key, layer in LEVEL_KEYS.items():
            coll = county.collections.get(layer)
            if coll is None or coll.int_keys:
                continue
            frames[key] = coll
        led = _led_to(frames)
        for key, coll in frames.items():  # one at a time: two at once ran no faster and held both in memory
            self.levels[key] = self._build(key, coll, people, stored=key in led and isinstance(coll, LazyLayer))
        for key, coll in frames.items():
            for col, parent in _PARENTS.get(key, []):
                if parent not in frames or col not in coll.column_names:
                    continue
                index = pd.Index(frames[parent].keys)
                codes = pd.Series(coll.columns([col])[col]).astype("string").fillna("").to_numpy(dtype=object)
                self.levels[key].parent_rows[parent] = index.get_indexer(codes).astype(np.int64)
        #: said of a valid place no feature of any level contains, so an all-null answer is not a riddle
        self.outside_note = _outside_note(self.levels)
        log.info("locate index over %s", ", ".join(self.levels) or "no levels")

    @staticmethod
    def _build(key: str, coll: Any, people: dict[tuple[str, str], list[dict[str, Any]]], *, stored: bool) -> Level:
        """One level's index from its collection: its polygons held, or left in the store (``stored``: a
        level a finer one leads to, served from the store; see :mod:`.locate_pieces`)."""
        if stored:
            kept, owner = stored_pieces(coll)
            pieces: NDArray[np.object_] | StoredPieces = kept
            bounds = kept.bounds
        else:
            pieces, owner = held_pieces(coll)
            bounds = shapely.bounds(pieces)
        summary = _summaries(coll, people)
        return Level(key, coll.id, CellIndex(bounds), pieces, owner, LiveIndex(name=coll.id),
                     np.zeros(len(coll), dtype=bool), {}, summary, {}, coll)

    def edited(self, layer: str, key: Any, values: Mapping[str, Any]) -> None:
        """Feature ``key`` of ``layer`` got new public ``values`` (a name, a leader): its summary follows."""
        level = next((lv for lv in self.levels.values() if lv.layer == layer), None)
        if level is not None:
            level.summary.forget(level.coll.locate_key(str(key)), values)

    def moved(self, key: str, code: str, parent_key: str, parent_code: str) -> None:
        """Feature ``code`` of level ``key`` (a grid point) now has parent ``parent_code`` of ``parent_key``."""
        level, parent = self.levels.get(key), self.levels.get(parent_key)
        if level is None or parent is None or parent_key not in level.parent_rows:
            return
        with self._lock.writing():
            level.parent_rows[parent_key][level.coll.locate_key(code)] = parent.coll.locate_key(parent_code)

    def _level(self, layer: str) -> Level:
        for level in self.levels.values():
            if level.layer == layer:
                return level
        have = ", ".join(v.layer for v in self.levels.values())
        raise NotFoundError(f"/locate has no level {layer!r}; it has {have}")

    def replace(self, layer: str, key: Any, geom: Any) -> bool:
        """Give feature ``key`` of level ``layer`` the CRS84 polygon ``geom`` (a redrawn grid); True when indexed.

        An invalid polygon is repaired (named in the log); one that cannot be, or an empty one, leaves the
        feature in no place (False). Only the index changes: the feature keeps its row, summary and parents.

        Raises
        ------
        NotFoundError
            No such level, or no such feature in it.
        """
        level = self._level(layer)
        row = self._row(level, key)
        arr = np.empty(1, dtype=object)
        arr[0] = geom
        fixed = repaired(layer, arr, np.array([key], dtype=object))
        pieces, _ = subdivide(fixed, CUT_AT) if fixed[0] is not None else (np.empty(0, dtype=object), None)
        with self._lock.writing():
            self._drop_pieces(level, row)
            ok = 0
            for n, piece in enumerate(pieces.tolist()):
                ok += level.live.insert((row << PIECE_BITS) | n, piece)
            level.counts[row] = len(pieces)
            level.by_row[row] = [p for n, p in enumerate(pieces.tolist())
                                 if level.live.is_indexed((row << PIECE_BITS) | n)]
        return bool(len(pieces)) and ok == len(pieces)

    def delete(self, layer: str, key: Any) -> None:
        """Take feature ``key`` of level ``layer`` out of the index: no place is found in it any more.

        Raises
        ------
        NotFoundError
            No such level, or no such feature in it.
        """
        level = self._level(layer)
        row = self._row(level, key)
        with self._lock.writing():
            self._drop_pieces(level, row)

    @staticmethod
    def _row(level: Level, key: Any) -> int:
        try:
            return int(level.coll.locate_key(str(key)))
        except NotFoundError:
            raise NotFoundError(f"/locate: no feature {key!r} in level {level.layer!r}") from None

    @staticmethod
    def _drop_pieces(level: Level, row: int) -> None:
        """Mask the row's start-up pieces and forget its changed ones (write lock held)."""
        level.changed[row] = True
        for n in range(level.counts.pop(row, 0)):
            level.live.delete((row << PIECE_BITS) | n)
        level.by_row.pop(row, None)
        level.changed_pieces = None

    def locate(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> dict[str, NDArray[np.int64]]:
        """Row per level for each WGS84 point (-1 where outside every feature of that level).

        On a shared boundary the feature first in id order wins, so the answer is deterministic.
        """
        n = len(lon)
        lon, lat = np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)
        rows = {key: np.full(n, -1, dtype=np.int64) for key in self.levels}
        with self._lock.reading():
            for key in _QUERY_ORDER:
                level = self.levels.get(key)
                if level is None:
                    continue
                need = np.flatnonzero(rows[key] < 0)
                if len(need) == 0:
                    continue
                pi, gi = self._hits(level, lon, lat, need)
                if len(pi):
                    best = np.full(len(need), np.iinfo(np.int64).max, dtype=np.int64)
                    np.minimum.at(best, pi, gi)
                    hit = best != np.iinfo(np.int64).max
                    rows[key][need[hit]] = best[hit]
                    self._propagate(key, need[hit], rows)
        return rows

    @staticmethod
    def _hits(level: Level, lon: NDArray[np.float64], lat: NDArray[np.float64], need: NDArray[np.int64]
              ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """(place among ``need``, feature row) for every piece covering a place: start-up and changed pieces."""
        # a big batch against a level of no more pieces than places (the coarse levels): index the places,
        # and let each prepared piece find its places; else the pieces' cells give each place the boxes it
        # falls in (no GEOS point, no tree walk: gridgeo.data.cell_index), and the prepared pieces test
        # their places in one vectorised pass. Tiled 5M county, 100,000 places: grid points (350,220 pieces)
        # through an STRtree of pieces 0.32 s against 0.42 s reversed; townships (3,588) 0.14 s against 0.29 s
        # (a level left in the store is always asked through its cells: only its candidates are read)
        held = level.pieces if isinstance(level.pieces, np.ndarray) else None
        big = held is not None and len(need) >= _REVERSE_AT and len(need) * _REVERSE_RATIO >= len(held)
        if big:
            places = shapely.STRtree(np.asarray(shapely.points(lon[need], lat[need]), dtype=object).reshape(-1))
            gi, pi = places.query(held, predicate="intersects")
        else:
            pi, gi = level.cells.query_xy(lon[need], lat[need])
            inside = shapely.intersects_xy(level.pieces[gi], lon[need][pi], lat[need][pi])
            pi, gi = pi[inside], gi[inside]
        gi = level.owner[gi]
        if not level.by_row and not level.changed.any():
            return pi, gi
        keep = ~level.changed[gi]
        pi, gi = pi[keep], gi[keep]
        if big:  # the changed pieces look their places up in the same tree of places
            geoms, owner = Locator._changed(level)
            ci, cp = places.query(geoms, predicate="intersects")
            return np.r_[pi, cp], np.r_[gi, owner[ci]]
        lp, lk = level.live.hits_xy(lon[need], lat[need])  # a few places: the rtree answers them
        return np.r_[pi, lp], np.r_[gi, np.asarray(lk, dtype=np.int64) >> PIECE_BITS]

    @staticmethod
    def _changed(level: Level) -> tuple[NDArray[np.object_], NDArray[np.int64]]:
        """The changed features' indexed pieces (prepared by the rtree) and their rows, made once per change."""
        got = level.changed_pieces
        if got is None:
            rows = [r for r, ps in level.by_row.items() for _ in ps]
            geoms = np.empty(len(rows), dtype=object)
            geoms[:] = [p for ps in level.by_row.values() for p in ps]
            got = level.changed_pieces = (geoms, np.asarray(rows, dtype=np.int64))
        return got

    def _propagate(self, key: str, idx: NDArray[np.int64], rows: dict[str, NDArray[np.int64]]) -> None:
        """Fill the parents of newly found rows of level ``key`` (and theirs) where still open."""
        for parent, prow in self.levels[key].parent_rows.items():
            child = rows[key][idx]
            found = prow[child]
            ok = (found >= 0) & (rows[parent][idx] < 0)
            if ok.any():
                rows[parent][idx[ok]] = found[ok]
                self._propagate(parent, idx[ok], rows)

    def features(self, rows: dict[str, NDArray[np.int64]], coords: list[bytes], ids: list[bytes] | None
                 ) -> list[bytes]:
        """One GeoJSON Point feature per place, its properties the summaries of every level.

        ``coords``: each place's ``x,y`` as JSON numbers, without brackets (see :func:`_coordinates`).
        A place in no feature of any level gets a ``note`` saying it is outside the county.
        """
        return [b"".join(p) for p in self._parts(rows, coords, ids).tolist()]

    def collection(self, rows: dict[str, NDArray[np.int64]], coords: list[bytes], ids: list[bytes] | None
                   ) -> bytes:
        """The features of :meth:`features`, comma-separated in one byte string (one join for the batch)."""
        parts = self._parts(rows, coords, ids, sep=b",")
        if len(parts):
            parts[-1, -1] = parts[-1, -1][:-1]  # no comma after the last feature
        return b"".join(parts.ravel().tolist())

    def _parts(self, rows: dict[str, NDArray[np.int64]], coords: list[bytes], ids: list[bytes] | None, *,
               sep: bytes = b"") -> NDArray[np.object_]:
        """The features' byte pieces, one row per place, each feature's last piece ending in ``sep``.

        Why by columns: a batch over a province names ~70,000 distinct grid points, and joining the
        properties of each distinct combination of rows in Python cost a second per 100,000 places. Each
        level's text (``"grid":{...}``) is made once per distinct row of that level; the places' features
        are then columns of shared byte strings, laid side by side by numpy.
        """
        n = len(coords)
        cols: list[Any] = [_FEATURE_HEAD if ids is None else _FEATURE_ID, *([] if ids is None else [ids, _ID_TAIL]),
                           coords, _PROPS_HEAD]
        inside = np.zeros(n, dtype=bool)
        first = True
        for k in LEVEL_KEYS:
            if k in OPTIONAL_LEVELS and k not in self.levels:
                continue
            lead = (b'"' if first else b',"') + k.encode() + b'":'
            first = False
            if k not in self.levels:
                cols.append(lead + b"null")
                continue
            cols.append(self.levels[k].summary.column(rows[k], lead))
            inside |= rows[k] >= 0
        outside = b',"note":' + dumps(self.outside_note) + b"}}" + sep
        cols.append(np.where(inside, np.array([b"}}" + sep], dtype=object), np.array([outside], dtype=object)))
        parts = np.empty((n, len(cols)), dtype=object)
        for j, col in enumerate(cols):
            parts[:, j] = col
        return parts

    @staticmethod
    def error_feature(message: str, fid: bytes | None) -> bytes:
        """The answer for a place that could not be read: no geometry, every level null, its ``error``."""
        levels = b",".join(b'"%b":null' % k.encode() for k in LEVEL_KEYS if k not in OPTIONAL_LEVELS)
        ident = b"" if fid is None else b'"id":%b,' % fid
        return b'{"type":"Feature",%b"geometry":null,"properties":{%b,"error":%b}}' % (ident, levels, dumps(message))


def _led_to(frames: Mapping[str, Any]) -> set[str]:
    """The levels some level asked before them leads to by code (``_PARENTS``), so that a batch asks them
    only of the places the finer levels left open."""
    led: set[str] = set()
    for key in _QUERY_ORDER:
        if key in frames:
            led |= {parent for col, parent in _PARENTS.get(key, []) if col in frames[key].column_names}
    return led


def _summaries(coll: Any, people: dict[tuple[str, str], list[dict[str, Any]]]) -> Summaries:
    """A level's :class:`Summaries`: code, name, every ``leader*`` column and whoever else answers for it;
    the columns held when the level is in memory, read per batch when it is served from the file."""
    cols = [c for c in coll.column_names if c in ("code", "name") or c.startswith("leader") or c in _SUMMARY_EXTRA]
    return Summaries(coll.id, coll, cols, people, None if hasattr(coll, "rows_at") else coll.columns(cols))


def _outside_note(levels: Mapping[str, Any]) -> str:
    """What a place no feature of any level contains is told, naming the coarsest level there is."""
    coarsest = next((k for k in LEVEL_KEYS if k in levels), "township")
    return f"outside the county (no {coarsest} contains it)"


def _coordinates(xs: list[float], ys: list[float]) -> list[bytes]:
    """Each place's ``x,y`` as JSON numbers (shortest round-trip digits, as ``repr``), bracketless: the
    brackets are in the feature's fixed parts. (One ``json.dumps`` of all pairs, cut apart, ran no faster:
    the float's repr is the cost either way.)"""
    return [b"%r,%r" % p for p in zip(xs, ys, strict=True)]


class EarlyLocator(Locator):
    """/locate for a few places while the index is still being built: each level asked of its own spatial
    index (the GeoPackage's R*tree for a level served from the file, the STRtree of one in memory).

    Why: a resident's phone asks one place, and on a province the index takes 15-30 s to build after
    start-up; asked of the file, one place costs a few milliseconds a level. Each level is found on its
    own (no parent followed by code), which answers as the index does wherever the levels tile their
    parents; only batches up to :data:`EARLY_MAX` places are taken, a bigger one is 503 until the index
    is ready.
    """

    def __init__(self, county: County, *, people: dict[tuple[str, str], list[dict[str, Any]]] | None = None) -> None:
        self.levels = {}
        self._lock = ReadWriteLock()
        people = _people(county.path, county.tables) if people is None else people
        for key, layer in LEVEL_KEYS.items():
            coll = county.collections.get(layer)
            if coll is None or coll.int_keys:
                continue
            none = np.empty(0, dtype=object)
            self.levels[key] = Level(key, layer, CellIndex(np.empty((0, 4))), none, np.empty(0, dtype=np.int64),
                                     LiveIndex(name=layer), np.zeros(len(coll), dtype=bool), {},
                                     _summaries(coll, people), {}, coll)
        self.outside_note = _outside_note(self.levels)

    def locate(self, lon: NDArray[np.float64], lat: NDArray[np.float64]) -> dict[str, NDArray[np.int64]]:
        """Row per level for each place: the first feature in id order whose geometry meets it, else -1."""
        rows = {key: np.full(len(lon), -1, dtype=np.int64) for key in self.levels}
        for key, level in self.levels.items():
            for i, (x, y) in enumerate(zip(np.asarray(lon).tolist(), np.asarray(lat).tolist(), strict=True)):
                hit = level.coll.bbox_positions([(x, y, x, y)])
                rows[key][i] = int(hit[0]) if len(hit) else -1
        return rows


#: the most places /locate answers from the file while its index is being built (see :class:`EarlyLocator`)
EARLY_MAX = 64
_EARLY_LOCK = threading.Lock()


def _early() -> EarlyLocator:
    """The app's :class:`EarlyLocator`, made when first asked for."""
    with _EARLY_LOCK:
        got = current_app.extensions.get("locator_early")
        if got is None:
            got = current_app.extensions["locator_early"] = EarlyLocator(
                current_app.extensions["county"], people=current_app.extensions.get("people"))
        return got  # type: ignore[no-any-return]


class WhenReady:
    """The /locate index for code that holds it from start-up (the report assigner) while a thread builds it:
    each use waits for it as a request to /locate does (then 503), so it is only used inside a request."""

    def __getattr__(self, name: str) -> Any:
        return getattr(_locator(), name)


def locator_for(app: Any) -> Locator | WhenReady:
    """The index if built, else a :class:`WhenReady` (see ``service._start_locator``)."""
    loc = app.extensions.get("locator")
    return loc if isinstance(loc, Locator) else WhenReady()


#: seconds a /locate request waits for an index still being built before it answers 503
LOCATE_WAIT = 2.0


def _locator(places: int = 0) -> Locator:
    """The index, once built (see ``service._start_locator``); before that, for a request of at most
    :data:`EARLY_MAX` ``places``, the :class:`EarlyLocator`.

    Raises
    ------
    ServiceUnavailableError
        While it is still being built after :data:`LOCATE_WAIT` seconds (and the request has more places
        than the early answer takes), or when building it failed.
    """
    ready = current_app.extensions.get("locator_ready")
    early = 0 < places <= EARLY_MAX
    if ready is not None and not ready.wait(0 if early else LOCATE_WAIT):
        if early:
            return _early()
        raise ServiceUnavailableError(f"the /locate index is still being built; retry in a few seconds (until "
                                      f"then at most {EARLY_MAX} places per request are answered)", retry_after=5)
    loc = current_app.extensions.get("locator")
    if loc is None:
        raise ServiceUnavailableError("the /locate index could not be built (see the service's log)", retry_after=60)
    return loc  # type: ignore[no-any-return]


def _input_crs() -> str:
    if "crs" not in request.args:
        return CRS84
    return parse_crs_uri(request.args["crs"], crs_list(None))


def _to_wgs84(x: NDArray[np.float64], y: NDArray[np.float64], crs: str, coords: str | None
              ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Input positions (in ``crs`` axis order, or a web-map datum) as WGS84 lon/lat."""
    if coords is not None:
        if crs != CRS84:
            raise UsageError("coords (GCJ-02/BD-09 input) takes lon/lat: leave crs out")
        conv = gcj02_to_wgs84 if coords == "gcj02" else bd09_to_wgs84
        lon, lat = conv(x, y)
        return np.asarray(lon, dtype=float), np.asarray(lat, dtype=float)
    return point_to_crs84(x, y, crs)


def _response(body: bytes, crs: str, coords: str | None) -> Response:
    resp = Response(body, mimetype=GEOJSON)
    if coords is None:
        resp.headers["Content-Crs"] = f"<{crs}>"
    return resp


def _lat_first(crs: str) -> bool:
    """True when ``crs`` orders its axes latitude (northing) first, as EPSG:4490 and EPSG:4326 do."""
    from .ogc import _transformer

    if crs == CRS84:
        return False
    tr = _transformer(CRS84, crs)
    first = tr.target_crs.axis_info[0].direction if tr.target_crs is not None else "east"
    return first in ("north", "south")


def _unplaceable(crs: str) -> str:
    return f"has no lon/lat (outside the area of {crs})"


@bp.get("/locate")
def locate_get() -> Response:
    """One place: ``lon``/``lat`` (x/east and y/north in ``crs``; in ``coords`` datum if given)."""
    check_params(("lon", "lat", "crs", "coords"))
    try:
        x, y = float(request.args["lon"]), float(request.args["lat"])
    except KeyError as exc:
        raise UsageError("locate needs lon and lat") from exc
    except ValueError as exc:
        raise UsageError("lon and lat must be numbers") from exc
    if not (np.isfinite(x) and np.isfinite(y)):
        raise UsageError("lon and lat must be finite numbers")
    crs, coords = _input_crs(), parse_coords()
    if is_geographic(crs):
        if not abs(y) <= 90.0:
            raise UsageError(f"lat={y!r} is outside [-90, 90]")
        if not abs(x) <= 180.0:
            raise UsageError(f"lon={x!r} is outside [-180, 180]")
    # lon/lat are named, not ordered: turn them into the CRS's own axis order first
    a, b = (y, x) if _lat_first(crs) else (x, y)
    lon, lat = _to_wgs84(np.array([a]), np.array([b]), crs, coords)
    if out_of_range(lon, lat)[0]:
        raise UsageError(f"locate: lon={x!r}, lat={y!r} {_unplaceable(crs)}")
    loc = _locator(1)
    feat = loc.features(loc.locate(lon, lat), _coordinates([a], [b]), None)[0]
    return _response(feat, crs, coords)


def _batch_wgs84(pos: Positions, crs: str, coords: str | None) -> tuple[NDArray[np.int64], NDArray[np.float64],
                                                                           NDArray[np.float64]]:
    """The good places of the batch as WGS84 lon/lat, after marking those off the globe or the CRS's area."""
    if is_geographic(crs):
        check_degrees(pos, pos.good(), lat_first=_lat_first(crs))
    good = pos.good()
    lon, lat = _to_wgs84(pos.xy[good, 0], pos.xy[good, 1], crs, coords)
    off = out_of_range(lon, lat)
    if off.any():
        kind = "point" if pos.ids is None else "feature"
        bad = good[off]
        pos.fail(bad, [f"{kind} {i}: {_unplaceable(crs)}" for i in bad.tolist()])
        good, lon, lat = good[~off], lon[~off], lat[~off]
    return good, lon, lat


@bp.post("/locate")
def locate_post() -> Response:
    """Many places at once: a FeatureCollection back, one Point feature per place, in input order.

    A place that cannot be read answers with ``geometry: null``, every level
    null and an ``error``; the others are located all the same. ``summary``
    counts the places inside, outside and in error. Only a batch in which no
    place at all can be read is a 400 (naming the first error).
    """
    check_params(("crs", "coords"))
    pos = parse_positions(*read_json())
    crs, coords = _input_crs(), parse_coords()
    good, lon, lat = _batch_wgs84(pos, crs, coords)
    n = len(pos.errors)
    if n and not len(good):
        first = next(e for e in pos.errors if e is not None)
        raise UsageError(f"no place of the {n} can be located; {first}" if n > 1 else first)
    loc = _locator(len(lon))
    rows = loc.locate(lon, lat)
    xs, ys = pos.xy[good, 0].tolist(), pos.xy[good, 1].tolist()
    ids = None if pos.ids is None else [pos.ids[i] for i in good.tolist()]
    places = _coordinates(xs, ys) if pos.texts is None else [pos.texts[i] for i in good.tolist()]
    inside = int(np.any(np.column_stack([r >= 0 for r in rows.values()]), axis=1).sum()) if rows else 0
    if len(good) < n:
        out: list[bytes] = [b""] * n
        for i, f in zip(good.tolist(), loc.features(rows, places, ids), strict=True):
            out[i] = f
        for i, err in enumerate(pos.errors):
            if err is not None:
                out[i] = loc.error_feature(err, None if pos.ids is None else pos.ids[i])
        feats = b",".join(out)
    else:
        feats = loc.collection(rows, places, ids)
    summary = dumps({"inside": inside, "outside": len(good) - inside, "errors": n - len(good)})
    extra = b',"coords":"%b"' % coords.encode() if coords else b""
    body = b'{"type":"FeatureCollection","numberReturned":%d,"summary":%b%b,"features":[%b]}' % (
        n, summary, extra, feats)
    return _response(body, crs, coords)
