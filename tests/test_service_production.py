"""service in production: reverse-proxy headers, gzip, the access log, the shared parameters of ``/api``,
error details without server paths, and ``gridgeo serve`` on a port that is taken.

Modules: :mod:`gridgeo.service.middleware`, :mod:`gridgeo.service.redact`,
:mod:`gridgeo.service.openapi` (``components/parameters``), :mod:`gridgeo.cli.serve`.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyogrio
import pytest
from gridgeo.service import create_app
from gridgeo.service.features import ITEMS_PARAMS
from gridgeo.service.middleware import access_line, proxy_counts
from gridgeo.service.redact import redact

from gridgeo.errors import FileFormatError, OutputError, UsageError

pytest_plugins = ("tests.service_county",)

FORWARDED = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https",
             "X-Forwarded-Host": "gis.county.example.cn", "X-Forwarded-Prefix": "/grid"}
PUBLIC = "https://gis.county.example.cn/grid/"
ALL_GRIDS = "/collections/grids/items?limit=10000"


class _Lines(logging.Handler):
    """The access lines written while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def access() -> Iterator[_Lines]:
    """``gridgeo.access`` on, into a list; its level, handlers and propagation restored after."""
    log = logging.getLogger("gridgeo.access")
    saved = (log.level, list(log.handlers), log.propagate)
    handler = _Lines()
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False
    yield handler
    log.setLevel(saved[0])
    log.handlers[:] = saved[1]
    log.propagate = saved[2]


@pytest.fixture(scope="module")
def proxied(county_path: Path):  # type: ignore[no-untyped-def]
    return create_app({"COUNTY": str(county_path), "TESTING": True, "PROXY": 1}).test_client()


# ------------------------------------------------------------------------------------------ reverse proxy
def _hrefs(doc: dict[str, Any]) -> list[str]:
    return [link["href"] for link in doc["links"]]


def test_proxy_headers_make_the_links_public(proxied) -> None:
    landing = proxied.get("/", headers=FORWARDED).get_json()
    assert _hrefs(landing) and all(h.startswith(PUBLIC) for h in _hrefs(landing)), _hrefs(landing)
    page = proxied.get("/collections/grids/items?limit=3", headers=FORWARDED).get_json()
    rels = {link["rel"]: link["href"] for link in page["links"]}
    assert rels["next"].startswith(PUBLIC + "collections/grids/items?") and "after=" in rels["next"]
    assert rels["self"].startswith(PUBLIC) and rels["collection"] == PUBLIC + "collections/grids"
    api = proxied.get("/api", headers=FORWARDED).get_json()
    assert api["servers"] == [{"url": PUBLIC.rstrip("/")}]
    html = proxied.get("/collections?f=html", headers=FORWARDED).get_data(as_text=True)
    assert f'href="{PUBLIC}collections?f=html"' in html and 'href="/grid/collections/grids?f=html"' in html
    assert '"root": "/grid"' in proxied.get("/map", headers=FORWARDED).get_data(as_text=True)


def test_proxy_headers_are_ignored_by_default(client) -> None:
    """Without PROXY nobody in front is trusted: a client cannot put its host into the links."""
    landing = client.get("/", headers=FORWARDED).get_json()
    assert all(h.startswith("http://localhost/") for h in _hrefs(landing)), _hrefs(landing)
    page = client.get("/collections/grids/items?limit=3", headers=FORWARDED).get_json()
    assert all(h.startswith("http://localhost/collections/") for h in _hrefs(page))


@pytest.mark.parametrize(("value", "expected"), [
    (None, {}), (0, {}), ("0", {}), ("", {}),
    (1, dict.fromkeys(("x_for", "x_proto", "x_host", "x_port", "x_prefix"), 1)),
    ("2", dict.fromkeys(("x_for", "x_proto", "x_host", "x_port", "x_prefix"), 2)),
    ("for=2,proto=1", {"x_for": 2, "x_proto": 1, "x_host": 0, "x_port": 0, "x_prefix": 0}),
    ({"x_host": 1, "prefix": 1}, {"x_for": 0, "x_proto": 0, "x_host": 1, "x_port": 0, "x_prefix": 1}),
])
def test_proxy_counts(value: Any, expected: dict[str, int]) -> None:
    assert proxy_counts(value) == expected


@pytest.mark.parametrize("value", ["bogus=1", "for=-1", "for=x", "for", "1.5", True, -1, 2.0, {"x_for": "1"}])
def test_proxy_counts_refuses(value: Any) -> None:
    with pytest.raises(UsageError, match="proxy|PROXY"):
        proxy_counts(value)


def test_proxy_for_only_trusts_nothing_else(county_path: Path) -> None:
    """``for=1`` alone: ProxyFix's own default (proto=1) must not creep in."""
    client = create_app({"COUNTY": str(county_path), "TESTING": True, "PROXY": "for=1"}).test_client()
    assert all(h.startswith("http://localhost/") for h in _hrefs(client.get("/", headers=FORWARDED).get_json()))


# ------------------------------------------------------------------------------------------------- gzip
def test_gzip_page_decompresses_to_the_identity_bytes(client) -> None:
    plain = client.get(ALL_GRIDS)
    packed = client.get(ALL_GRIDS, headers={"Accept-Encoding": "gzip, deflate"})
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain.headers and packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data
    assert int(packed.headers["Content-Length"]) == len(packed.data) < len(plain.data) / 2
    assert int(plain.headers["Content-Length"]) == len(plain.data)
    for resp in (plain, packed):
        assert {"Accept", "Accept-Encoding"} <= {v.strip() for v in resp.headers["Vary"].split(",")}
    # another representation, another strong tag
    assert packed.headers["ETag"] == plain.headers["ETag"][:-1] + '-gzip"'
    assert not packed.headers["ETag"].startswith("W/")


def test_gzip_etags_give_304(client) -> None:
    plain = client.get(ALL_GRIDS).headers["ETag"]
    packed = client.get(ALL_GRIDS, headers={"Accept-Encoding": "gzip"}).headers["ETag"]
    again = client.get(ALL_GRIDS, headers={"Accept-Encoding": "gzip", "If-None-Match": packed})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == packed
    assert "Accept-Encoding" in again.headers["Vary"]
    # a cache holding the identity variant may revalidate it while accepting gzip
    assert client.get(ALL_GRIDS, headers={"Accept-Encoding": "gzip", "If-None-Match": plain}).status_code == 304
    # the gzip tag does not match the identity variant
    resp = client.get(ALL_GRIDS, headers={"If-None-Match": packed})
    assert resp.status_code == 200 and "Content-Encoding" not in resp.headers
    other = client.get(ALL_GRIDS, headers={"Accept-Encoding": "gzip", "If-None-Match": '"other-gzip"'})
    assert other.status_code == 200


@pytest.mark.parametrize(("accept", "gzipped"), [("gzip;q=0", False), ("br", False), ("identity", False),
                                                 ("*", True), ("br;q=1, gzip;q=0.5", True), ("GZIP", True)])
def test_gzip_follows_accept_encoding(client, accept: str, gzipped: bool) -> None:
    resp = client.get(ALL_GRIDS, headers={"Accept-Encoding": accept})
    assert (resp.headers.get("Content-Encoding") == "gzip") is gzipped


def test_gzip_head_matches_get(client) -> None:
    got = client.get(ALL_GRIDS, headers={"Accept-Encoding": "gzip"})
    head = client.head(ALL_GRIDS, headers={"Accept-Encoding": "gzip"})
    assert head.data == b"" and head.headers["Content-Encoding"] == "gzip"
    assert head.headers["Content-Length"] == got.headers["Content-Length"]
    assert head.headers["ETag"] == got.headers["ETag"]


def test_gzip_leaves_small_and_file_responses(client) -> None:
    health = client.get("/health", headers={"Accept-Encoding": "gzip"})
    assert len(health.data) < 1024 and "Content-Encoding" not in health.headers
    assert "Accept-Encoding" in health.headers["Vary"]
    script = client.get("/map/static/map.js", headers={"Accept-Encoding": "gzip"})  # send_file: Range, own ETag
    assert script.status_code == 200 and "Content-Encoding" not in script.headers and b"function" in script.data


def test_gzip_html_problem_and_post(client) -> None:
    for url in ("/collections/grids/items?f=html&limit=100", "/api", "/api?f=html"):
        resp = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert resp.headers["Content-Encoding"] == "gzip", url
        assert gzip.decompress(resp.data) == client.get(url).data, url
    points = [[117.17 + i * 1e-5, 28.22] for i in range(200)]
    posted = client.post("/locate", json={"points": points}, headers={"Accept-Encoding": "gzip"})
    assert posted.headers["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(posted.data)) == client.post("/locate", json={"points": points}).get_json()


def test_gzip_body_kept_for_repeats(client, app) -> None:
    cache = app.extensions["gzip_cache"]
    url = "/collections/points/items?limit=10000"
    first = client.get(url, headers={"Accept-Encoding": "gzip"})
    etag = client.get(url).headers["ETag"].strip('"')
    assert cache.get((etag, app.config["GZIP_LEVEL"])) == first.data
    again = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert again.data == first.data and again.headers["ETag"] == first.headers["ETag"]


def test_gzip_cache_bounded() -> None:
    from gridgeo.service.middleware import GzipCache

    cache = GzipCache(10)
    cache.put(("a", 4), b"123456")
    cache.put(("b", 4), b"1234")
    assert cache.get(("a", 4)) == b"123456" and cache.size == 10  # a is now the most recently used
    cache.put(("c", 4), b"12")
    assert cache.get(("b", 4)) is None and cache.get(("a", 4)) == b"123456" and cache.size == 8
    cache.put(("d", 4), b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get(("d", 4)) is None and len(cache) == 2
    off = GzipCache(0)
    off.put(("a", 4), b"1")
    assert len(off) == 0


def test_gzip_level_0_is_off(county_path: Path) -> None:
    client = create_app({"COUNTY": str(county_path), "TESTING": True, "GZIP_LEVEL": 0}).test_client()
    assert "Content-Encoding" not in client.get(ALL_GRIDS, headers={"Accept-Encoding": "gzip"}).headers


# ------------------------------------------------------------------------------------------- access log
_LINE = re.compile(r'^(?P<addr>\S+) - (?P<user>\S+) \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
                   r'"(?P<request>[^"]*)" (?P<status>\d{3}) (?P<bytes>\d+|-) "(?P<referer>[^"]*)" '
                   r'"(?P<agent>(?:[^"\\]|\\.)*)" (?P<ms>\d+\.\d)ms$')


def _one(access: _Lines) -> re.Match[str]:
    assert len(access.lines) == 1, access.lines
    match = _LINE.match(access.lines[0])
    assert match, access.lines[0]
    return match


def test_access_log_line(client, access: _Lines) -> None:
    resp = client.get("/collections/grids/items?limit=3&bbox=117,28,118,29", buffered=True,
                      headers={"User-Agent": "QGIS/33400/Linux", "Referer": "http://intranet/map"})
    m = _one(access)
    assert m["addr"] == "127.0.0.1" and m["user"] == "-"
    assert m["request"] == "GET /collections/grids/items?limit=3&bbox=117,28,118,29 HTTP/1.1"
    assert m["status"] == "200" and int(m["bytes"]) == len(resp.data)
    assert m["referer"] == "http://intranet/map" and m["agent"] == "QGIS/33400/Linux"


def test_access_log_counts_the_bytes_sent(client, access: _Lines) -> None:
    packed = client.get(ALL_GRIDS, headers={"Accept-Encoding": "gzip"}, buffered=True)
    assert int(_one(access)["bytes"]) == len(packed.data)
    access.lines.clear()
    client.head(ALL_GRIDS, buffered=True)
    assert _one(access)["bytes"] == "-"
    access.lines.clear()
    client.get("/collections/nosuch/items", buffered=True)
    assert _one(access)["status"] == "404"


def test_access_log_escapes_what_the_client_sent(client, access: _Lines) -> None:
    # as a raw header could arrive (the test client refuses a newline in a header, a socket does not)
    client.get("/collections/%22x%22%0A/items", buffered=True,
               environ_overrides={"HTTP_USER_AGENT": 'evil"\n127.0.0.1 - - [forged] "GET /'})
    m = _one(access)
    assert "\n" not in access.lines[0] and m["status"] == "404"
    assert m["agent"] == 'evil\\"\\x0a127.0.0.1 - - [forged] \\"GET /'
    assert m["request"] == "GET /collections/%22x%22%0A/items HTTP/1.1"


def test_access_log_behind_a_proxy(proxied, access: _Lines) -> None:
    """The client's address and the path it asked for (the proxy's prefix included)."""
    proxied.get("/collections", headers=FORWARDED, buffered=True)
    m = _one(access)
    assert m["addr"] == "203.0.113.7" and m["request"] == "GET /grid/collections HTTP/1.1"


def test_access_log_off_writes_nothing(client) -> None:
    log = logging.getLogger("gridgeo.access")
    saved = log.level
    handler = _Lines()
    log.addHandler(handler)
    log.setLevel(logging.WARNING)  # as gridgeo serve without --access-log
    try:
        client.get("/health", buffered=True)
    finally:
        log.removeHandler(handler)
        log.setLevel(saved)
    assert handler.lines == []


def test_access_line_of_a_bare_environ() -> None:
    """Missing keys are ``-``; a path is logged percent-encoded as it came on the wire (WSGI hands it over as
    latin-1 of its UTF-8 bytes)."""
    wire = "/collections/网格/items".encode().decode("latin-1")
    line = access_line({"REQUEST_METHOD": "GET", "PATH_INFO": wire, "SERVER_PROTOCOL": "HTTP/1.0"}, "404", 0, 1.25)
    m = _LINE.match(line)
    assert m and m["addr"] == "-" and m["bytes"] == "-" and m["agent"] == "-" and m["ms"] == "1.2"
    assert m["request"] == "GET /collections/%E7%BD%91%E6%A0%BC/items HTTP/1.0"


def test_cli_access_log_targets(tmp_path: Path) -> None:
    from gridgeo.cli.serve import access_log

    log = logging.getLogger("gridgeo.access")
    saved = (log.level, list(log.handlers), log.propagate)
    try:
        access_log(str(tmp_path / "access.log"))
        assert not log.propagate and log.isEnabledFor(logging.INFO)
        log.info("one line")
        for h in log.handlers:
            h.flush()
        assert (tmp_path / "access.log").read_text(encoding="utf-8") == "one line\n"
        access_log("-")
        assert [type(h).__name__ for h in log.handlers] == ["StreamHandler"] and log.handlers[0].stream is sys.stdout
        access_log(None)
        assert not log.handlers and not log.isEnabledFor(logging.INFO)
        with pytest.raises(OutputError, match="cannot open the access log"):
            access_log(str(tmp_path / "no" / "such" / "dir" / "access.log"))
    finally:
        for h in log.handlers:
            h.close()
        log.setLevel(saved[0])
        log.handlers[:] = saved[1]
        log.propagate = saved[2]


# ------------------------------------------------------------------------------------- /api parameters
def test_api_declares_the_shared_parameters(app, client) -> None:
    doc = client.get("/api").get_json()
    shared = doc["components"]["parameters"]
    assert {"limit", "bbox", "bbox-crs", "crs", "coords", "datetime", "after", "before"} <= set(shared)
    limit = shared["limit"]
    assert (limit["name"], limit["in"]) == ("limit", "query")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": app.config["MAX_LIMIT"],
                               "default": app.config["DEFAULT_LIMIT"]}
    items_paths = [p for p in doc["paths"] if re.fullmatch(r"/collections/[^/]+/items", p)]
    ids = [c["id"] for c in client.get("/collections").get_json()["collections"]]
    assert sorted(items_paths) == sorted(["/collections/{collectionId}/items",
                                          *(f"/collections/{i}/items" for i in ids)])
    for path in items_paths:
        params = doc["paths"][path]["get"]["parameters"]
        assert all(set(p) == {"$ref"} for p in params), path
        names = {shared[p["$ref"].removeprefix("#/components/parameters/")]["name"] for p in params}
        assert names == set(ITEMS_PARAMS) | ({"collectionId"} if "{" in path else set()), path


def test_api_refs_all_resolve(client) -> None:
    doc = client.get("/api").get_json()

    def refs(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            if "$ref" in node:
                yield node["$ref"]
            for v in node.values():
                yield from refs(v)
        elif isinstance(node, list):
            for v in node:
                yield from refs(v)

    found = list(refs(doc))
    assert any(r.startswith("#/components/parameters/") for r in found)
    for ref in found:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict), ref


def test_api_gives_qgis_no_false_queryables(client) -> None:
    """QGIS takes an items query parameter with ``style: form, explode: false`` for an attribute filter, except
    crs, bbox, bbox-crs, datetime, limit and the filter ones (qgsoapifapirequest.cpp): the cursors are not."""
    shared = client.get("/api").get_json()["components"]["parameters"]
    formed = {p["name"] for p in shared.values() if p["in"] == "query" and p.get("style") == "form"
              and p.get("explode") is False}
    assert formed <= {"crs", "bbox", "bbox-crs", "datetime", "limit"}, formed


def test_collection_items_link_is_an_api_path(client) -> None:
    """GDAL 3.8+ looks up the path of the collection's GeoJSON items link in ``/api`` for the page size."""
    doc = client.get("/api").get_json()
    for coll in client.get("/collections").get_json()["collections"]:
        href = next(link["href"] for link in coll["links"]
                    if link["rel"] == "items" and link["type"] == "application/geo+json")
        parts = urlsplit(href)
        assert parts.query == "" and parts.path in doc["paths"], href


# ----------------------------------------------------------------------------------- errors hide paths
@pytest.fixture(scope="module")
def failing(county_path: Path):  # type: ignore[no-untyped-def]
    """An app with two routes that fail as the server's files can: an InputError naming the county, an OSError."""
    app = create_app({"COUNTY": str(county_path), "TESTING": True})

    def input_error() -> Any:
        raise FileFormatError("truncated GeoPackage (page 7 of 9)", path=str(county_path), feature=3)

    def os_error() -> Any:
        raise OSError(2, "No such file or directory", "/srv/gridgeo/private/县/network.osm.pbf")

    app.add_url_rule("/test/input-error", "input_error", input_error)
    app.add_url_rule("/test/os-error", "os_error", os_error)
    return app.test_client()


def test_input_error_detail_names_the_file_not_its_path(failing, county_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="gridgeo.service"):
        resp = failing.get("/test/input-error")
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    detail = resp.get_json()["detail"]
    assert detail == "county.gpkg: feature 3: truncated GeoPackage (page 7 of 9)"
    assert str(county_path.parent) not in resp.get_data(as_text=True)
    assert str(county_path) in caplog.text  # the operator's log has it all


def test_internal_error_detail_has_no_path(failing, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="gridgeo.service"):
        resp = failing.get("/test/os-error")
    assert resp.status_code == 500
    assert resp.get_json()["detail"] == "FileNotFoundError: [Errno 2] No such file or directory: 'network.osm.pbf'"
    assert "/srv/" not in resp.get_data(as_text=True) and "/srv/gridgeo/private" in caplog.text


def test_forced_500_in_a_real_view(client, monkeypatch, county_path: Path) -> None:
    from gridgeo.service import features

    def broken() -> Any:
        raise RuntimeError(f"sqlite3.DatabaseError on {county_path}: database disk image is malformed")

    monkeypatch.setattr(features, "county", broken)
    resp = client.get("/collections/grids/items")
    assert resp.status_code == 500 and resp.mimetype == "application/problem+json"
    body = resp.get_data(as_text=True)
    assert "county.gpkg" in body and str(county_path.parent) not in body and "malformed" in body


@pytest.mark.parametrize(("text", "public"), [
    ("crs http://www.opengis.net/def/crs/EPSG/0/4490 is fine", "crs http://www.opengis.net/def/crs/EPSG/0/4490 is "
                                                                "fine"),
    ("POST /locate needs a JSON body", "POST /locate needs a JSON body"),
    ("date must be YYYY-MM-DD, got '2025/01/01'", "date must be YYYY-MM-DD, got '2025/01/01'"),
    ("speed 4.5 km/h", "speed 4.5 km/h"),
    ("cannot open /home/ops/counties/西湖区.gpkg: locked", "cannot open 西湖区.gpkg: locked"),
    ("read 'C:\\gis\\county.gpkg' failed", "read 'county.gpkg' failed"),
    ("see out/county.gpkg", "see county.gpkg"),
])
def test_redact(text: str, public: str) -> None:
    assert redact(text, ["out/county.gpkg"]) == public


# ------------------------------------------------------------------------------------------ gridgeo serve
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gridgeo.cli", "serve", *args], capture_output=True, text=True,
                          timeout=120)


def test_serve_on_a_port_in_use_is_one_line(county_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        res = _serve(str(county_path), "--host", "127.0.0.1", "--port", str(port))
    assert res.returncode == 2, res.stderr
    assert res.stderr.splitlines() == [f"gridgeo: error: cannot listen on 127.0.0.1:{port}: the port is already in "
                                       "use (another gridgeo serve, or another server); stop it or choose another "
                                       "--port"], res.stderr
    assert "serving" not in res.stderr + res.stdout


@pytest.mark.parametrize(("args", "says"), [
    (["--host", "192.0.2.1"], "cannot listen on 192.0.2.1:{port}: the address is not one of this machine's"),
    (["--host", "no-such-host.invalid"], "cannot listen on no-such-host.invalid:{port}: 'no-such-host.invalid' is "
                                         "not an address"),
    (["--proxy", "bogus=1"], "proxy: unknown header bogus"),
])
def test_serve_bad_address_or_option_is_one_line(county_path: Path, args: list[str], says: str) -> None:
    port = _free_port()
    res = _serve(str(county_path), "--port", str(port), *args)
    assert res.returncode == 2 and len(res.stderr.splitlines()) == 1, res.stderr
    assert res.stderr.startswith("gridgeo: error: " + says.format(port=port)), res.stderr


def test_serve_port_out_of_range(county_path: Path) -> None:
    res = _serve(str(county_path), "--port", "70000")
    assert res.returncode == 2 and "--port must be from 1 to 65535" in res.stderr


def _wait(url: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def test_serve_access_log_and_gzip_live(county_path: Path, tmp_path: Path) -> None:
    """``gridgeo serve --access-log FILE --proxy 1`` on waitress: a gzip page arrives whole, the log has its line."""
    port = _free_port()
    log_file = tmp_path / "access.log"
    proc = subprocess.Popen([sys.executable, "-m", "gridgeo.cli", "serve", str(county_path), "--port", str(port),
                             "--access-log", str(log_file), "--proxy", "1"], stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(base + "/health")
        req = urllib.request.Request(base + ALL_GRIDS, headers={"Accept-Encoding": "gzip", **FORWARDED})
        with urllib.request.urlopen(req, timeout=30) as r:
            raw, headers = r.read(), r.headers
        assert headers["Content-Encoding"] == "gzip" and int(headers["Content-Length"]) == len(raw)
        doc = json.loads(gzip.decompress(raw))
        assert doc["numberReturned"] == 10 and all(link["href"].startswith(PUBLIC) for link in doc["links"])
        for _ in range(100):  # the line is written once waitress has closed the response
            lines = log_file.read_text(encoding="utf-8").splitlines() if log_file.exists() else []
            if any("/grid/collections/grids/items" in line for line in lines):
                break
            time.sleep(0.05)
        line = next(line for line in lines if "/grid/collections/grids/items" in line)
        m = _LINE.match(line)
        assert m and m["addr"] == "203.0.113.7" and int(m["bytes"]) == len(raw), line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        assert proc.stderr is not None
        proc.stderr.close()


# ------------------------------------------------------------------------------------- GDAL reads /api
@pytest.fixture
def small_pages(county_path: Path, access: _Lines) -> Iterator[str]:
    """waitress serving the test county with MAX_LIMIT=50, its access log in ``access``; the base URL."""
    from waitress.server import create_server

    port = _free_port()
    app = create_app({"COUNTY": str(county_path), "MAX_LIMIT": 50})
    srv = create_server(app, host="127.0.0.1", port=port, threads=4)
    threading.Thread(target=srv.run, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    _wait(url + "/health")
    yield url
    srv.close()


def test_gdal_takes_the_page_size_from_api(small_pages: str, access: _Lines, county_path: Path) -> None:
    """GDAL 3.8+ (pyogrio's) pages by min(max(1000, default), maximum) of ``limit`` in ``/api``: 50 here; without
    ``components/parameters`` (and the items path) it asked for 1000 a page."""
    if pyogrio.__gdal_version__ < (3, 8, 0):
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"pyogrio's GDAL {pyogrio.__gdal_version_string__} predates 3.8")
        pytest.skip(f"pyogrio's GDAL {pyogrio.__gdal_version_string__} predates 3.8")
    code = ("import pyogrio, sys; print(len(pyogrio.read_dataframe('OAPIF:' + sys.argv[1], layer='households')))")
    res = subprocess.run([sys.executable, "-c", code, small_pages], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, GDAL_HTTP_TIMEOUT="20"))
    expected = pyogrio.read_info(county_path, layer="households")["features"]
    assert res.returncode == 0 and int(res.stdout.split()[-1]) == expected, res.stderr
    asked = [parse_qs(urlsplit(m["request"].split()[1]).query) for m in map(_LINE.match, access.lines)
             if m and "/collections/households/items" in m["request"]]
    limits = [int(q["limit"][0]) for q in asked]
    assert limits[0] <= 50 and set(limits[1:]) == {50}, limits  # the first is GDAL's small probe
    assert len(limits) == 1 + -(-expected // 50), limits
