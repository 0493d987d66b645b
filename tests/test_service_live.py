"""service on a live waitress server on 127.0.0.1, read by real clients: GDAL's OAPIF driver and owslib.

The clients are not ours, so these tests show that QGIS-like software reads
the service without any code of ours. A missing client skips the test on a
developer machine and FAILS under ``CI=true`` (a skipped test is not a pass).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pyogrio
import pytest

pytest.register_assert_rewrite("tests.service_county")
from tests.service_county import assert_rfc7946, start_live  # noqa: E402

pytest_plugins = ("tests.service_county",)

LEVELS = ["townships", "blocks", "villages", "grids", "points", "exclusive"]


def _missing(what: str) -> None:
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"{what} is missing (CI=true: install it; see the Makefile's APT_PACKAGES and the dev extra)")
    pytest.skip(f"{what} is missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(county_path: Path):
    """waitress serving the test county in a thread; yields the base URL."""
    from gridgeo.service import create_app

    url, srv = start_live(create_app({"COUNTY": str(county_path)}))
    yield url
    srv.close()  # type: ignore[attr-defined]


def _get(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """GET; the response headers with lower-case names."""
    req = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def test_live_every_geojson_response_is_rfc7946(server: str) -> None:
    for name in LEVELS:
        status, headers, body = _get(f"{server}/collections/{name}/items?limit=10000")
        assert status == 200 and headers["content-type"].startswith("application/geo+json")
        assert_rfc7946(json.loads(body))
    status, headers, body = _get(f"{server}/collections/grids/items?limit=5")
    etag = headers["etag"]
    assert _get(f"{server}/collections/grids/items?limit=5", **{"If-None-Match": etag})[0] == 304
    status, headers, body = _get(f"{server}/collections/nosuch/items")
    assert status == 404 and headers["content-type"].startswith("application/problem+json")
    assert headers["access-control-allow-origin"] == "*"


def _ogrinfo() -> str:
    exe = shutil.which("ogrinfo")
    if exe is None:
        _missing("ogrinfo (Debian gdal-bin)")
    out = subprocess.run([exe, "--formats"], capture_output=True, text=True, check=True).stdout
    if "OAPIF" not in out:
        _missing("GDAL's OAPIF driver")
    return str(exe)


def test_gdal_oapif_lists_and_pages_everything(server: str, county_path: Path) -> None:
    exe = _ogrinfo()
    env = dict(os.environ, GDAL_HTTP_TIMEOUT="20", CPL_DEBUG="OFF")
    listing = subprocess.run([exe, "-ro", "-so", f"OAPIF:{server}"], capture_output=True, text=True, env=env,
                             timeout=60)
    assert listing.returncode == 0, listing.stderr
    served = {n for n, g in pyogrio.list_layers(county_path) if g is not None}
    listed = set(re.findall(r"^\d+: (\S+)", listing.stdout, flags=re.MULTILINE))
    assert listed == served, listing.stdout
    for name in ("grids", "points", "households"):
        expected = pyogrio.read_info(county_path, layer=name)["features"]
        # a small page size forces GDAL to follow many next links (keyset cursors)
        res = subprocess.run([exe, "-ro", "-al", "-q", "-oo", "PAGE_SIZE=7", f"OAPIF:{server}", name],
                             capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 0, res.stderr
        fids = re.findall(r"^OGRFeature\(\S+\):(\d+)", res.stdout, flags=re.MULTILINE)
        assert len(fids) == expected, (name, len(fids), expected)
        # and every feature arrived once: count the ids (codes) GDAL read
        if name != "households":
            codes = re.findall(r"^\s+id \(String\) = (\S+)", res.stdout, flags=re.MULTILINE)
            assert len(codes) == len(set(codes)) == expected, name


def test_owslib_reads_collections_and_items(server: str, county_path: Path) -> None:
    try:
        from owslib.ogcapi.features import Features
    except ImportError:
        _missing("owslib (pip install owslib)")
    api = Features(server)
    assert api.conformance()["conformsTo"]
    ids = [c["id"] for c in api.collections()["collections"]]
    assert ids[:6] == LEVELS
    for name in LEVELS:
        assert api.collection(name)["id"] == name
        fc = api.collection_items(name, limit=10000)
        assert fc["numberMatched"] == fc["numberReturned"] == pyogrio.read_info(county_path, layer=name)["features"]
        assert_rfc7946(fc)
    fc = api.collection_items("grids", bbox=[117.165, 28.215, 117.175, 28.232], limit=3)
    assert 0 < fc["numberReturned"] <= 3 and fc["numberMatched"] >= fc["numberReturned"]
    one = api.collection_item("grids", fc["features"][0]["id"])
    assert one["id"] == fc["features"][0]["id"]
    assert api.api()["openapi"].startswith("3.0")


def test_gridgeo_serve_logs_url_and_serves(county_path: Path) -> None:
    """``gridgeo serve county.gpkg --host --port`` runs waitress and logs the URL once the data is loaded."""
    import sys

    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "gridgeo.cli", "serve", str(county_path), "--host", "127.0.0.1",
                             "--port", str(port)], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert f"http://127.0.0.1:{port}/" in line, line
        for _ in range(100):
            try:
                status, headers, body = _get(f"http://127.0.0.1:{port}/collections")
                break
            except OSError:
                time.sleep(0.05)
        assert status == 200 and headers["server"] == "gridgeo"
        assert [c["id"] for c in json.loads(body)["collections"]][:6] == LEVELS
    finally:
        proc.terminate()
        proc.wait(timeout=10)
