"""OGC API – Features Part 1 (core, GeoJSON, HTML) and Part 2 (CRS) over the county's layers.

Views parse the request (:mod:`.ogc`), read the pre-serialised county
(:mod:`.store`) and shape the response. A page of CRS84 GeoJSON is the
stored feature bytes joined; any other CRS or a Chinese web-map datum
re-serialises just the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from flask import Blueprint, Response, current_app, request, url_for

from gridgeo.errors import UsageError
from gridgeo.store.chains import HOUSEHOLD_UNITS

from . import html, read_audit
from .auth import principal, sees_personal
from .ogc import (
    CONFORMANCE,
    CRS84,
    GEOJSON,
    HTML,
    JSON,
    OPENAPI,
    bbox_to_crs84,
    check_params,
    crs_list,
    geographic_required,
    int_arg,
    link,
    negotiate,
    parse_bbox,
    parse_coords,
    parse_crs_uri,
    storage_crs_uri,
    transform_geoms,
)
from .store import County, Served, dumps, geojson_bytes

bp = Blueprint("features", __name__)

ITEMS_PARAMS = ("f", "limit", "bbox", "bbox-crs", "crs", "coords", "datetime", "after", "before")
ITEM_PARAMS = ("f", "crs", "coords")
FORMATS = {"json": JSON, "html": HTML}
FEATURE_FORMATS = {"json": GEOJSON, "html": HTML}


def county() -> County:
    """The county loaded at start-up."""
    return current_app.extensions["county"]  # type: ignore[no-any-return]


def _root() -> str:
    return url_for("features.landing", _external=True)


def _self_links(endpoint: str, title: str, json_type: str = JSON, **values: Any) -> list[dict[str, Any]]:
    """``self`` for the format served and ``alternate`` for the other one."""
    fmt = negotiate(FORMATS)
    j = link(url_for(endpoint, _external=True, f="json", **values), "self" if fmt == "json" else "alternate",
             json_type, f"{title} as JSON")
    h = link(url_for(endpoint, _external=True, f="html", **values), "self" if fmt == "html" else "alternate",
             HTML, f"{title} as HTML")
    return [j, h]


def _json(doc: dict[str, Any], mimetype: str = JSON) -> Response:
    return Response(dumps(doc), mimetype=mimetype)


def _html(text: str) -> Response:
    return Response(text, mimetype=HTML)


@bp.get("/")
def landing() -> Response:
    """The landing page: what the service is and where everything is."""
    check_params(("f",))
    fmt = negotiate(FORMATS)
    links = [
        *_self_links("features.landing", "This document"),
        link(url_for("openapi.api", _external=True, f="json"), "service-desc", OPENAPI, "The API definition"),
        link(url_for("openapi.api", _external=True, f="html"), "service-doc", HTML, "The API documentation"),
        link(url_for("features.conformance", _external=True), "conformance", JSON, "Conformance classes"),
        link(url_for("features.conformance", _external=True),
             "http://www.opengis.net/def/rel/ogc/1.0/conformance", JSON, "Conformance classes"),
        link(url_for("features.collections", _external=True), "data", JSON, "The collections"),
        link(url_for("features.collections", _external=True),
             "http://www.opengis.net/def/rel/ogc/1.0/data", JSON, "The collections"),
        link(url_for("locate.locate_get", _external=True), "locate", GEOJSON,
             "Whose grid is this point in: GET ?lon=&lat=, POST many points"),
        link(url_for("health", _external=True), "service-status", JSON, "Health"),
        link(url_for("pages.map_page", _external=True), "alternate", HTML, "The map: every level, routes"),
    ]
    doc = {
        "title": current_app.config.get("TITLE", "gridgeo"),
        "description": "Grid governance levels (townships, blocks, villages, grids, grid points, exclusive "
                       "grids) as OGC API – Features, point-to-grid lookup and patrol routes.",
        "links": links,
    }
    if fmt == "html":
        return _html(html.page(doc["title"], _root(), description=doc["description"], links=links))
    return _json(doc)


@bp.get("/conformance")
def conformance() -> Response:
    """The conformance classes implemented."""
    check_params(("f",))
    doc = {"conformsTo": list(CONFORMANCE)}
    if negotiate(FORMATS) == "html":
        return _html(html.page("Conformance", _root(), tables=[
            {"caption": "Conformance classes", "header": ["class"], "rows": [[c] for c in CONFORMANCE]}]))
    return _json(doc)


def collection_doc(coll: Served) -> dict[str, Any]:
    """The description of one collection (Part 1 + Part 2 ``crs``/``storageCrs``)."""
    items = url_for("features.items", name=coll.id, _external=True)
    doc: dict[str, Any] = {
        "id": coll.id,
        "title": coll.title,
        "description": f"{coll.title}: {len(coll)} features ({coll.geometry_type}); ids are "
                       + ("row numbers" if coll.int_keys else "the hierarchical codes"),
        "itemType": "feature",
        **_extent(coll),
        "crs": crs_list(coll.storage_epsg),
        "storageCrs": storage_crs_uri(coll.storage_epsg),
        "itemCount": len(coll),
        "links": [
            link(url_for("features.collection", name=coll.id, _external=True, f="json"), "self", JSON, coll.title),
            link(url_for("features.collection", name=coll.id, _external=True, f="html"), "alternate", HTML,
                 coll.title),
            # no ?f=json: GDAL 3.8+ looks the page size up in /api under this URL's path, query and all
            link(items, "items", GEOJSON, f"{coll.title} as GeoJSON"),
            link(items + "?f=html", "items", HTML, f"{coll.title} as HTML"),
        ],
    }
    return doc


def _extent(coll: Served) -> dict[str, Any]:
    """``extent`` of a layer with a geometry somewhere; none for an empty one.

    Why not ``[0, 0, 0, 0]``: clients take the union of the collections' extents to frame the county,
    and a box at (0, 0) put every county's map at world scale (an OSM build's empty exclusive grids).
    """
    w, s, e, n = coll.bbox
    if len(coll) == 0 or (w, s, e, n) == (0.0, 0.0, 0.0, 0.0):
        return {}
    return {"extent": {"spatial": {"bbox": [[w, s, e, n]], "crs": CRS84}}}


@bp.get("/collections")
def collections() -> Response:
    """Every served layer, the six levels first."""
    check_params(("f",))
    colls = [collection_doc(c) for c in county().collections.values()]
    links = _self_links("features.collections", "Collections")
    if negotiate(FORMATS) == "html":
        rows = [[{"text": c["id"], "href": url_for("features.collection", name=c["id"], f="html")}, c["title"],
                 c["itemCount"], {"text": "items", "href": url_for("features.items", name=c["id"], f="html")}]
                for c in colls]
        return _html(html.page("Collections", _root(), links=links, tables=[
            {"caption": "Collections", "header": ["id", "title", "features", ""], "rows": rows}]))
    return _json({"links": links, "collections": colls, "crs": crs_list(None)})


@bp.get("/collections/<name>")
def collection(name: str) -> Response:
    """One collection's description."""
    check_params(("f",))
    coll = county().get(name)
    doc = collection_doc(coll)
    if negotiate(FORMATS) == "html":
        w, s, e, n = coll.bbox
        rows = [[k, v] for k, v in coll.properties.items()]
        return _html(html.page(coll.title, _root(), description=doc["description"], links=doc["links"], tables=[
            {"caption": "Properties", "header": ["name", "type"], "rows": rows},
            {"caption": "Extent (CRS84)", "header": ["west", "south", "east", "north"], "rows": [[w, s, e, n]]},
            {"caption": "CRS", "header": ["uri"], "rows": [[c] for c in doc["crs"]]}]))
    return _json(doc)


def _geometry_bytes(coll: Served, pos: np.ndarray, crs: str, coords: str | None) -> list[bytes] | None:
    """Re-serialised geometries of ``pos`` when the request needs other coordinates, else None."""
    if crs == CRS84 and coords is None:
        return None
    return coll.geometry_variant((crs, coords), pos, lambda g: geojson_bytes(transform_geoms(g, crs, coords)))


def _features(coll: Served, pos: np.ndarray, crs: str, coords: str | None) -> list[bytes]:
    """The features at ``pos`` as GeoJSON bytes, with the personal properties where the caller may read them
    (that read recorded first, :mod:`.read_audit`: unrecorded, the request fails instead)."""
    plist = pos.tolist()
    tails, personal = _tails(coll, plist)
    read_audit.record(coll.id, [coll.key_at(i) for i in personal])
    geo = _geometry_bytes(coll, pos, crs, coords)
    if geo is None and tails is None:
        return coll.public_features(plist)
    heads, crs84, public = coll.parts(plist)
    g = geo if geo is not None else crs84
    t = tails if tails is not None else public
    return [h + gi + ti for h, gi, ti in zip(heads, g, t, strict=True)]


def _tails(coll: Served, plist: list[int]) -> tuple[list[bytes] | None, list[int]]:
    """Each feature's properties with its personal columns where the caller's role and scope allow them
    (None: none anywhere), and the positions served with them."""
    if not coll.has_private or not principal().may("read.personal"):
        return None, []
    private = coll.private_tails(plist)
    if private is None:
        return None, []
    chains = current_app.extensions["chains"]
    cols = coll.units(plist, HOUSEHOLD_UNITS)
    _, _, public = coll.parts(plist)
    out, personal = [], []
    for j, i in enumerate(plist):
        if sees_personal(chains.household_chain({c: v[j] for c, v in cols.items()})):
            out.append(private[j])
            personal.append(i)
        else:
            out.append(public[j])
    return out, personal


def _output_crs(coll: Served) -> tuple[str, str | None]:
    allowed = crs_list(coll.storage_epsg)
    crs = parse_crs_uri(request.args["crs"], allowed) if "crs" in request.args else CRS84
    coords = parse_coords()
    if coords is not None:
        geographic_required(crs)
    return crs, coords


def _geo_response(body: bytes, crs: str, coords: str | None) -> Response:
    resp = Response(body, mimetype=GEOJSON)
    if coords is None:
        resp.headers["Content-Crs"] = f"<{crs}>"
    return resp


def _check_datetime(raw: str | None) -> None:
    """Validate ``datetime`` loosely; no layer has a time, so every feature matches any interval."""
    if raw is None:
        return
    from datetime import datetime

    for part in raw.split("/"):
        if part in ("", ".."):
            continue
        try:
            datetime.fromisoformat(part.replace("Z", "+00:00"))
        except ValueError as exc:
            raise UsageError(f"datetime {raw!r}: expected an RFC 3339 instant or interval") from exc


@dataclass(frozen=True)
class _ItemsQuery:
    """What a request for a page of items asks: format, size, output CRS, cursor, bbox matches."""

    fmt: str
    limit: int
    crs: str
    coords: str | None
    after: str | None
    before: str | None
    #: positions of the features intersecting ``bbox`` (ascending); None without a bbox
    matched: np.ndarray | None


@dataclass(frozen=True)
class _Page:
    """The page served: positions ``lo:hi`` of the matches, ``pos`` their feature positions."""

    lo: int
    hi: int
    pos: np.ndarray
    n_matched: int


@bp.get("/collections/<name>/items")
def items(name: str) -> Response:
    """A page of features: bbox filter, keyset paging (``after``/``before`` a feature id), CRS, datum."""
    check_params(ITEMS_PARAMS)
    coll = county().get(name)
    with coll.lock.reading():  # a feature replaced or deleted meanwhile: this page sees before or after
        q = _items_query(coll)
        page = _page(coll, q)
        links = _items_links(name, coll, q, page)
        if q.fmt == "html":
            return _items_html(coll, page.pos, links, page.n_matched)
        feats = _features(coll, page.pos, q.crs, q.coords)
    extra = b',"coords":' + dumps(q.coords) if q.coords else b""
    body = b"".join([
        b'{"type":"FeatureCollection","features":[', b",".join(feats),
        b'],"numberMatched":', str(page.n_matched).encode(), b',"numberReturned":', str(len(feats)).encode(),
        b',"timeStamp":"', county().modified.encode(), b'"', extra, b',"links":', dumps(links), b"}",
    ])
    return _geo_response(body, q.crs, q.coords)


def _items_query(coll: Served) -> _ItemsQuery:
    """Parse the items request, in the order its errors are reported."""
    fmt = negotiate(FEATURE_FORMATS)
    cfg = current_app.config
    limit = int_arg("limit", cfg["DEFAULT_LIMIT"], 1, cfg["MAX_LIMIT"])
    crs, coords = _output_crs(coll)
    _check_datetime(request.args.get("datetime"))
    bbox_crs = CRS84
    if "bbox-crs" in request.args:
        bbox_crs = parse_crs_uri(request.args["bbox-crs"], crs_list(coll.storage_epsg), "bbox-crs")
    after, before = request.args.get("after"), request.args.get("before")
    if after is not None and before is not None:
        raise UsageError("give either after or before, not both")
    return _ItemsQuery(fmt=fmt, limit=limit, crs=crs, coords=coords, after=after, before=before,
                       matched=_bbox_matches(coll, bbox_crs))


def _bbox_matches(coll: Served, bbox_crs: str) -> np.ndarray | None:
    """Positions of the features intersecting ``bbox`` (split at the antimeridian); None without one."""
    if "bbox" not in request.args:
        return None
    b = bbox_to_crs84(parse_bbox(request.args["bbox"]), bbox_crs)
    if b[1] > b[3]:
        raise UsageError("bbox: the lower corner's latitude is above the upper corner's")
    boxes = [b] if b[0] <= b[2] else [(b[0], b[1], 180.0, b[3]), (-180.0, b[1], b[2], b[3])]
    return coll.bbox_positions(boxes)


def _page(coll: Served, q: _ItemsQuery) -> _Page:
    """The keyset page: ``limit`` matches after ``after``, before ``before``, or from the start."""
    matched = q.matched
    n_matched = len(coll) if matched is None else len(matched)

    def index_of(position: int) -> int:
        return position if matched is None else int(np.searchsorted(matched, position, side="left"))

    if q.after is not None:
        lo = index_of(coll.cursor(q.after))
        hi = min(n_matched, lo + q.limit)
    elif q.before is not None:
        hi = index_of(coll.cursor_before(q.before))
        lo = max(0, hi - q.limit)
    else:
        lo, hi = 0, min(n_matched, q.limit)
    pos = np.arange(lo, hi) if matched is None else matched[lo:hi]
    return _Page(lo=lo, hi=hi, pos=pos, n_matched=n_matched)


def _items_links(name: str, coll: Served, q: _ItemsQuery, page: _Page) -> list[dict[str, Any]]:
    """``self``/``alternate`` for this page, ``next``/``prev`` keyset links, ``collection``."""
    keep = {k: v for k, v in request.args.items() if k not in ("after", "before", "f")}
    links = []
    for f, mtype in (("json", GEOJSON), ("html", HTML)):
        args = dict(keep, f=f)
        if q.after is not None:
            args["after"] = q.after
        if q.before is not None:
            args["before"] = q.before
        links.append(link(url_for("features.items", name=name, _external=True, **args),
                          "self" if f == q.fmt else "alternate", mtype, f"this page as {f.upper()}"))
    lo, hi, pos, fmt = page.lo, page.hi, page.pos, q.fmt
    if hi < page.n_matched and hi > lo:
        links.append(link(url_for("features.items", name=name, _external=True, **keep, f=fmt,
                                  after=str(coll.key_at(int(pos[-1])))), "next", FEATURE_FORMATS[fmt], "next page"))
    if lo > 0 and hi > lo:
        links.append(link(url_for("features.items", name=name, _external=True, **keep, f=fmt,
                                  before=str(coll.key_at(int(pos[0])))), "prev", FEATURE_FORMATS[fmt], "previous page"))
    links.append(link(url_for("features.collection", name=name, _external=True), "collection", JSON, coll.title))
    return links


def _items_html(coll: Served, pos: np.ndarray, links: list[dict[str, Any]], n_matched: int) -> Response:
    props = list(coll.properties)
    rows = []
    plist = pos.tolist()
    for i, rec in zip(plist, coll.records(plist), strict=True):
        key = str(coll.key_at(i))
        rows.append([{"text": key, "href": url_for("features.item", name=coll.id, fid=key, f="html")}]
                    + [rec[p] for p in props])
    title = f"{coll.title}: features {len(pos)} of {n_matched}"
    return _html(html.page(title, _root(), links=links, tables=[
        {"caption": "Features", "header": ["id", *props], "rows": rows}]))


@bp.route("/collections/<name>/items/<fid>", methods=["GET"], provide_automatic_options=False)  # OPTIONS: .edits
def item(name: str, fid: str) -> Response:
    """One feature by its id (the ``code``), in any offered CRS or datum."""
    check_params(ITEM_PARAMS)
    coll = county().get(name)
    fmt = negotiate(FEATURE_FORMATS)
    with coll.lock.reading():
        return _item(coll, name, fid, fmt)


def _item(coll: Served, name: str, fid: str, fmt: str) -> Response:
    """One feature's response (read lock held)."""
    i = coll.locate_key(fid)
    crs, coords = _output_crs(coll)
    links = [
        link(url_for("features.item", name=name, fid=fid, _external=True, f="json"),
             "self" if fmt == "json" else "alternate", GEOJSON, "this feature as GeoJSON"),
        link(url_for("features.item", name=name, fid=fid, _external=True, f="html"),
             "self" if fmt == "html" else "alternate", HTML, "this feature as HTML"),
        link(url_for("features.collection", name=name, _external=True), "collection", JSON, coll.title),
    ]
    if fmt == "html":
        rec = coll.records([i])[0]
        rows = [[p, rec[p]] for p in coll.properties]
        return _html(html.page(f"{coll.title} {fid}", _root(), links=links, tables=[
            {"caption": "Properties", "header": ["name", "value"], "rows": rows}]))
    feat = _features(coll, np.array([i]), crs, coords)[0]
    extra = b',"coords":' + dumps(coords) if coords else b""
    body = feat[:-1] + extra + b',"links":' + dumps(links) + b"}"
    return _geo_response(body, crs, coords)
