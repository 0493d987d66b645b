"""service: OGC API – Features Part 1 (core, GeoJSON, HTML, OpenAPI 3.0), errors, ETag, CORS, keyset paging."""

from __future__ import annotations

from pathlib import Path

import pyogrio
import pytest
import shapely
from gridgeo.service import create_app
from shapely.geometry import Polygon

from tests.catalogue import clean

pytest.register_assert_rewrite("tests.service_county")
from tests.service_county import assert_rfc7946  # noqa: E402

pytest_plugins = ("tests.service_county",)

LEVELS = ["townships", "blocks", "villages", "grids", "points", "exclusive"]


@pytest.fixture
def legacy_client(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "county.gpkg"
    gdf = clean().gdf.to_crs("EPSG:4548")
    # store clockwise exteriors in a projected CRS: the service must turn them around
    gdf.geometry = [Polygon(list(g.exterior.coords)[::-1]) for g in gdf.geometry]
    pyogrio.write_dataframe(gdf, path, layer="villages")
    return create_app({"COUNTY": str(path), "TESTING": True}).test_client()


def test_projected_clockwise_layer_served_as_rfc7946(legacy_client) -> None:
    doc = legacy_client.get("/collections").get_json()
    assert [c["id"] for c in doc["collections"]] == ["villages"]
    assert doc["collections"][0]["itemCount"] == 5
    assert doc["collections"][0]["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4548"
    resp = legacy_client.get("/collections/villages/items?limit=3")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    fc = resp.get_json()
    assert_rfc7946(fc)
    assert fc["numberMatched"] == 5 and fc["numberReturned"] == 3
    for f in fc["features"]:
        ring = f["geometry"]["coordinates"][0]
        assert shapely.LinearRing(ring).is_ccw
        assert all(117 < x < 118 and 28 < y < 29 for x, y in ring)


def test_landing_links(client) -> None:
    resp = client.get("/")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    rels = {link["rel"] for link in resp.get_json()["links"]}
    assert {"self", "alternate", "service-desc", "service-doc", "conformance", "data"} <= rels
    for link in resp.get_json()["links"]:
        path = link["href"].replace("http://localhost", "")
        assert client.get(path).status_code == (400 if link["rel"] == "locate" else 200), path


def test_conformance(client) -> None:
    classes = client.get("/conformance").get_json()["conformsTo"]
    for c in ("ogcapi-features-1/1.0/conf/core", "ogcapi-features-1/1.0/conf/oas30",
              "ogcapi-features-1/1.0/conf/geojson", "ogcapi-features-1/1.0/conf/html",
              "ogcapi-features-2/1.0/conf/crs"):
        assert f"http://www.opengis.net/spec/{c}" in classes


def test_openapi(client) -> None:
    resp = client.get("/api")
    assert resp.status_code == 200 and resp.mimetype == "application/vnd.oai.openapi+json"
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.0")
    shared = doc["components"]["parameters"]

    def params(path: str) -> list[dict]:  # the parameters of a GET, each $ref resolved
        return [shared[p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p
                for p in doc["paths"][path]["get"]["parameters"]]

    items = params("/collections/{collectionId}/items")
    names = {p["name"] for p in items}
    assert {"limit", "bbox", "bbox-crs", "crs", "coords", "after", "datetime"} <= names
    coll = next(p for p in items if p["name"] == "collectionId")
    assert coll["schema"]["enum"][:6] == LEVELS
    # coords is declared on every GeoJSON operation
    for path in ("/collections/{collectionId}/items", "/collections/{collectionId}/items/{featureId}",
                 "/patrol/{gridId}"):
        assert "coords" in {p["name"] for p in params(path)}, path
    assert "coords" in {p["name"] for p in doc["paths"]["/locate"]["get"]["parameters"]}
    assert client.get("/api?f=html").mimetype == "text/html"


def test_collections_levels_first_and_all_layers(client, county_path) -> None:
    doc = client.get("/collections").get_json()
    ids = [c["id"] for c in doc["collections"]]
    assert ids[:6] == LEVELS
    assert set(ids) == {n for n, g in pyogrio.list_layers(county_path) if g is not None}  # not the store's tables
    for c in doc["collections"]:
        assert c["itemCount"] == pyogrio.read_info(county_path, layer=c["id"])["features"]
        assert c["crs"][0] == "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
        assert c["storageCrs"] == "http://www.opengis.net/def/crs/EPSG/0/4490"
        assert {"items"} <= {link["rel"] for link in c["links"]}
    one = client.get("/collections/grids").get_json()
    assert one["id"] == "grids" and one["itemType"] == "feature"


@pytest.mark.parametrize("name", [*LEVELS, "households"])
def test_items_rfc7946_every_level(client, name: str) -> None:
    resp = client.get(f"/collections/{name}/items?limit=10000")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    assert resp.headers["Content-Crs"] == "<http://www.opengis.net/def/crs/OGC/1.3/CRS84>"
    fc = resp.get_json()
    assert_rfc7946(fc)
    assert fc["numberReturned"] == fc["numberMatched"] == len(fc["features"])
    assert fc["timeStamp"].endswith("Z")
    if name != "households":
        assert all(isinstance(f["id"], str) and f["id"] == f["properties"]["code"] for f in fc["features"])


def test_item_by_code(client) -> None:
    fc = client.get("/collections/points/items?limit=3").get_json()
    fid = fc["features"][1]["id"]
    resp = client.get(f"/collections/points/items/{fid}")
    assert resp.status_code == 200 and resp.mimetype == "application/geo+json"
    feat = resp.get_json()
    assert_rfc7946(feat)
    assert feat["id"] == fid and feat["properties"]["parent"]
    assert {"self", "alternate", "collection"} <= {link["rel"] for link in feat["links"]}
    assert client.get(f"/collections/points/items/{fid}?f=html").mimetype == "text/html"


def _walk(client, url: str) -> tuple[list[str], int]:
    seen: list[str] = []
    pages = 0
    while url:
        fc = client.get(url).get_json()
        pages += 1
        seen += [f["id"] for f in fc["features"]]
        nxt = [link["href"] for link in fc["links"] if link["rel"] == "next"]
        url = nxt[0].replace("http://localhost", "") if nxt else ""
    return seen, pages


@pytest.mark.parametrize("limit", [1, 3, 7, 41, 100])
def test_keyset_paging_every_feature_once(client, limit: int) -> None:
    total = client.get("/collections/points/items?limit=1").get_json()["numberMatched"]
    seen, pages = _walk(client, f"/collections/points/items?limit={limit}")
    assert len(seen) == len(set(seen)) == total
    assert seen == sorted(seen)
    assert pages == max(1, -(-total // limit))


def test_keyset_paging_with_bbox_and_prev(client) -> None:
    allf = client.get("/collections/points/items?limit=10000").get_json()["features"]
    box = (117.165, 28.215, 117.175, 28.232)
    expect = sorted(f["id"] for f in allf if shapely.geometry.shape(f["geometry"]).intersects(shapely.box(*box)))
    assert 0 < len(expect) < len(allf)
    bbox = ",".join(map(str, box))
    first = client.get(f"/collections/points/items?bbox={bbox}&limit=4").get_json()
    assert first["numberMatched"] == len(expect)
    seen, _ = _walk(client, f"/collections/points/items?bbox={bbox}&limit=4")
    assert seen == expect
    # next then prev comes back to the first page
    nxt = next(link["href"] for link in first["links"] if link["rel"] == "next")
    second = client.get(nxt.replace("http://localhost", "")).get_json()
    assert "bbox=" in nxt and second["numberMatched"] == len(expect)
    prev = next(link["href"] for link in second["links"] if link["rel"] == "prev")
    back = client.get(prev.replace("http://localhost", "")).get_json()
    assert [f["id"] for f in back["features"]] == [f["id"] for f in first["features"]]
    assert not [link for link in first["links"] if link["rel"] == "prev"]


def test_limit_default_and_clamped(client) -> None:
    assert client.get("/collections/points/items").get_json()["numberReturned"] == 10
    resp = client.get("/collections/points/items?limit=999999999")  # above the maximum: clamped, not an error
    assert resp.status_code == 200 and resp.get_json()["numberReturned"] == 41


@pytest.mark.parametrize(
    ("url", "status"),
    [("/collections/nosuch/items", 404), ("/collections/nosuch", 404), ("/collections/grids/items/nosuch", 404),
     ("/nosuch", 404), ("/collections/grids/items?limit=abc", 400), ("/collections/grids/items?limit=0", 400),
     ("/collections/grids/items?bbox=1,2", 400), ("/collections/grids/items?bbox=a,b,c,d", 400),
     ("/collections/grids/items?bbbox=1,2,3,4", 400), ("/collections/grids/items?f=xml", 400),
     ("/collections?foo=1", 400), ("/?x=1", 400), ("/collections/grids/items?crs=EPSG:3857", 400),
     ("/collections/grids/items?after=1&before=2", 400), ("/collections/grids/items?datetime=yesterday", 400),
     ("/collections/grids/items?coords=mars", 400), ("/collections/grids/items?limit=1&limit=2", 400)],
)
def test_errors_are_problem_json(client, url: str, status: int) -> None:
    resp = client.get(url)
    assert resp.status_code == status
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["status"] == status and body["detail"] and body["title"]
    assert resp.headers["Access-Control-Allow-Origin"] == "*"


def test_method_not_allowed_is_problem_json(client) -> None:
    resp = client.delete("/collections")
    assert resp.status_code == 405 and resp.mimetype == "application/problem+json"


def test_datetime_accepted(client) -> None:
    resp = client.get("/collections/grids/items?datetime=2024-01-01T00:00:00Z/..")
    assert resp.status_code == 200 and resp.get_json()["numberMatched"] == 10


@pytest.mark.parametrize("url", ["/", "/collections", "/collections/grids", "/collections/grids/items?limit=3",
                                 "/api", "/conformance"])
def test_etag_304(client, url: str) -> None:
    resp = client.get(url)
    etag = resp.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert client.get(url, headers={"If-None-Match": '"other"'}).status_code == 200
    # a different representation has a different tag
    assert client.get(url, headers={"Accept": "text/html"}).headers["ETag"] != etag or url == "/api"


def test_cors(client) -> None:
    resp = client.get("/collections/grids/items")
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert "ETag" in resp.headers["Access-Control-Expose-Headers"]
    pre = client.options("/locate", headers={"Origin": "http://example.org", "Access-Control-Request-Method": "POST",
                                             "Access-Control-Request-Headers": "content-type"})
    assert pre.status_code == 200
    assert pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert pre.headers["Access-Control-Allow-Headers"] == "content-type"


@pytest.mark.parametrize("url", ["/", "/collections", "/collections/grids", "/collections/grids/items",
                                 "/conformance"])
def test_html_by_f_and_accept(client, url: str) -> None:
    sep = "&" if "?" in url else "?"
    assert client.get(f"{url}{sep}f=html").mimetype == "text/html"
    resp = client.get(url, headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert resp.mimetype == "text/html" and b"<html" in resp.data
    assert client.get(url, headers={"Accept": "*/*"}).mimetype in ("application/json", "application/geo+json")
    assert client.get(f"{url}{sep}f=json").mimetype in ("application/json", "application/geo+json")


def test_html_escapes_names(client) -> None:
    page = client.get("/collections/villages/items?f=html").data.decode()
    assert "东门" in page or "社区" in page or "村" in page
    assert "<script" not in page


def test_head(client) -> None:
    resp = client.head("/collections/grids/items")
    assert resp.status_code == 200 and resp.headers["ETag"]


@pytest.mark.parametrize("lazy_at", [None, 0])
def test_an_empty_layer_has_no_extent(tmp_path: Path, lazy_at: int | None) -> None:
    """An empty layer (an OSM build's exclusive grids) says no extent, rather than a box at (0, 0) that
    framed every map at world scale; the others keep theirs. Held in memory or read from the file alike."""
    from tests.service_county import make_county

    path = make_county(tmp_path / "county.gpkg")
    excl = pyogrio.read_dataframe(path, layer="exclusive")
    pyogrio.write_dataframe(excl.iloc[0:0], path, layer="exclusive", promote_to_multi=True)
    c = create_app({"COUNTY": str(path), "TESTING": True, "LAZY_AT": lazy_at}).test_client()
    colls = {d["id"]: d for d in c.get("/collections").get_json()["collections"]}
    assert colls["exclusive"]["itemCount"] == 0 and "extent" not in colls["exclusive"]
    assert "extent" not in c.get("/collections/exclusive").get_json()
    w, s, e, n = colls["villages"]["extent"]["spatial"]["bbox"][0]
    assert 100 < w < e < 130 and 20 < s < n < 40


def test_landing_page_for_people(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/?f=html").get_data(as_text=True)
    assert "<title>gridgeo</title>" in page
    assert page.count('href="http://localhost/conformance"') == 1  # one line, both relations named
    assert "conformance, http://www.opengis.net/def/rel/ogc/1.0/conformance" in page
    doc = client.get("/").get_json()  # JSON clients still get both relations
    assert {"conformance", "http://www.opengis.net/def/rel/ogc/1.0/conformance"} <= {lk["rel"] for lk in doc["links"]}
