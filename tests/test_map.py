"""The /map page: local assets only (no CDN), and headless Chromium draws the grids.

The live tests start the app under waitress on a free 127.0.0.1 port, take a screenshot with Debian's
headless Chromium and count the pixels of the grid stroke colour (unique on the page). Without
Chromium they skip on a developer machine and FAIL under ``CI=true``.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pyogrio
import pytest
from gridgeo.service import create_app
from gridgeo.service.pages import LEVELS, ROUTE_STYLE
from shapely.geometry import Point, box

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "boundaries" / "sample_county.gpkg"
SAMPLE_GRID = "36990000100101"  # the Makefile's GRID: a villager group of the sample county
CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1200,900", "--virtual-time-budget=8000",
]
PANEL_WIDTH = 290  # the side panel (map.css); pixels right of the map are not counted


def _app(county: Path, **config: object):
    app = create_app({"COUNTY": str(county), "TESTING": True, **config})
    assert "pages" in app.blueprints, "create_app must register service.pages.bp"
    return app


# ------------------------------------------------------------------ a small built county
@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A county shaped like `gridgeo build` output: townships, villages, grids (with leaders), points."""
    path = tmp_path_factory.mktemp("built") / "county.gpkg"
    x0, y0, step = 117.0, 28.0, 0.01
    import geopandas as gpd

    grids = gpd.GeoDataFrame(
        {
            "code": [f"3699000010010{i:02d}" for i in range(16)],
            "name": [f"第{i + 1}网格" for i in range(16)],
            "parent": ["369900001001"] * 16,
            "households": [120 + i for i in range(16)],
            "kind": ["rural"] * 16,
            "leader": [f"格长{i}" for i in range(16)],
            "leader_phone": [f"1390000{i:04d}" for i in range(16)],
        },
        geometry=[box(x0 + (i % 4) * step, y0 + (i // 4) * step, x0 + (i % 4 + 1) * step, y0 + (i // 4 + 1) * step)
                  for i in range(16)],
        crs="EPSG:4326",
    )
    villages = gpd.GeoDataFrame(
        {"code": ["369900001001"], "name": ["样村"], "parent": ["369900001"], "households": [2000],
         "kind": ["rural"], "leader": ["村书记"], "leader_phone": ["13800000000"]},
        geometry=[box(x0, y0, x0 + 4 * step, y0 + 4 * step)], crs="EPSG:4326",
    )
    townships = villages.assign(code=["369900001"], name=["样镇"], parent=["3699"])
    points = gpd.GeoDataFrame(
        {"code": [f"{c}001" for c in grids["code"]], "name": ["点"] * 16, "parent": list(grids["code"]),
         "households": [40] * 16, "kind": ["rural"] * 16},
        geometry=[Point(g.centroid.x, g.centroid.y) for g in grids.geometry], crs="EPSG:4326",
    )
    for name, gdf in [("townships", townships), ("villages", villages), ("grids", grids), ("points", points)]:
        pyogrio.write_dataframe(gdf, path, layer=name)
    return path


# ------------------------------------------------------------------ page and assets
_ASSET = re.compile(r"""<(?:script|link|img)\b[^>]*?\b(?:src|href)\s*=\s*["']([^"']+)["']""", re.I)


def _local(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme == "data" or (not parsed.scheme and not parsed.netloc):
        return True
    return parsed.scheme in {"http", "https"} and parsed.hostname in {"127.0.0.1", "localhost"}


@pytest.mark.parametrize("county", ["sample", "built"])
def test_map_page_uses_only_local_assets(county: str, built: Path) -> None:
    client = _app(SAMPLE if county == "sample" else built).test_client()
    resp = client.get("/map")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assets = _ASSET.findall(html)
    scripts = [a for a in assets if a.endswith(".js")]
    styles = [a for a in assets if a.endswith(".css")]
    assert any("leaflet" in s for s in scripts) and any("leaflet" in s for s in styles)
    assert not [a for a in assets if not _local(a)], f"non-local assets: {assets}"
    for asset in assets:
        if not asset.startswith("data:"):
            got = client.get(asset)
            assert got.status_code == 200 and got.data, asset
    # images the Leaflet stylesheet refers to are served too
    for css in styles:
        text = client.get(css).get_data(as_text=True)
        for ref in re.findall(r"url\(([^)]+)\)", text):
            ref = ref.strip("'\"")
            if ref.startswith(("data:", "#")):
                continue
            assert _local(ref), ref
            target = css.rsplit("/", 1)[0] + "/" + ref
            assert client.get(target).status_code == 200, target


def test_page_scripts_fetch_nothing_remote() -> None:
    static = ROOT / "service" / "static"
    for f in [static / "map.js", static / "map.css", ROOT / "service" / "templates" / "map.html"]:
        assert not re.search(r"https?://", f.read_text(encoding="utf-8")), f
    assert (static / "vendor" / "leaflet" / "VERSION").read_text().strip() == _pinned_leaflet()


def _pinned_leaflet() -> str:
    import json

    return str(json.loads((ROOT / "package.json").read_text())["devDependencies"]["leaflet"])


def test_map_config(built: Path) -> None:
    html = _app(built).test_client().get("/map").get_data(as_text=True)
    assert '"tileUrl": null' in html and '"coords": null' in html
    app = _app(built, MAP_TILE_URL="http://127.0.0.1:9/{z}/{x}/{y}.png", MAP_COORDS="gcj02", MAX_LIMIT=500)
    html = app.test_client().get("/map").get_data(as_text=True)
    assert '"tileUrl": "http://127.0.0.1:9/{z}/{x}/{y}.png"' in html and '"coords": "gcj02"' in html
    assert '"pageLimit": 500' in html


# ------------------------------------------------------------------ live: headless Chromium
def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
        if found:
            return found
    msg = "headless Chromium missing (Debian package `chromium`)"
    if CI:
        pytest.fail(msg)
    pytest.skip(msg)


@pytest.fixture
def serve() -> Iterator:
    """``serve(app)`` → base URL of the app under waitress on a free 127.0.0.1 port."""
    from waitress.server import create_server

    servers = []

    def start(app) -> str:
        server = create_server(app, host="127.0.0.1", port=0, threads=4)
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.effective_port}"

    yield start
    for server in servers:
        server.close()


def _screenshot(url: str, tmp_path: Path) -> np.ndarray:
    out = tmp_path / "shot.png"
    cmd = [_chromium(), *CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={out}", url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.exists(), f"no screenshot: rc={proc.returncode} {proc.stderr[-2000:]}"
    return read_png(out)


def _count(img: np.ndarray, hex_colour: str, tol: int = 24) -> int:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)])
    area = img[:, : img.shape[1] - PANEL_WIDTH, :3].astype(int)
    return int((np.abs(area - rgb).max(axis=2) <= tol).sum())


@pytest.mark.slow
def test_chromium_draws_sample_county(serve, tmp_path: Path) -> None:
    """The bundled sample county: villager groups stand in for grids when `grids` is absent."""
    app = _app(SAMPLE)
    ids = [c["id"] for c in app.test_client().get("/collections").get_json()["collections"]]
    if "grids" not in ids and "villager_groups" not in ids:
        pytest.skip(f"the sample county has neither grids nor villager groups: {ids}")
    img = _screenshot(serve(app) + "/map", tmp_path)
    assert _count(img, LEVELS["grids"]["color"]) > 5000


@pytest.mark.slow
def test_chromium_draws_built_grids(serve, tmp_path: Path, built: Path) -> None:
    """A county as `gridgeo build` writes it: the grids layer itself."""
    img = _screenshot(serve(_app(built)) + "/map", tmp_path)
    assert _count(img, LEVELS["grids"]["color"]) > 3000


@pytest.mark.slow
def test_chromium_popup_shows_responsible_person(serve, tmp_path: Path, built: Path) -> None:
    """``/map?select=CODE`` fires the feature's click: the popup has its properties and its leader.

    Pages of 5 features make the page follow ``next`` links (and load the points by view) to the end.
    """
    url = serve(_app(built, MAP_PAGE_LIMIT=5)) + "/map?select=369900001001005"
    cmd = [_chromium(), *CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert 'data-loaded="34"' in dom  # 1 township + 1 village + 16 grids + 16 points
    popup = dom[dom.index("leaflet-popup-content") :]
    assert "负责人 responsible person" in popup
    assert "格长5" in popup and "13900000005" in popup and "第6网格" in popup


@pytest.mark.slow
def test_chromium_draws_patrol_route(serve, tmp_path: Path) -> None:
    """``/map?grid=&date=`` draws that day's route from ``/patrol/{grid}`` over the layers."""
    app = _app(SAMPLE)
    resp = app.test_client().get(f"/patrol/{SAMPLE_GRID}?date=2024-06-03")
    assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
    img = _screenshot(serve(app) + f"/map?grid={SAMPLE_GRID}&date=2024-06-03", tmp_path)
    assert _count(img, ROUTE_STYLE["color"]) > 300
    # the summary in words a patrol supervisor reads, not the plan's keys
    cmd = [_chromium(), *CHROMIUM_ARGS, f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom",
           serve(app) + f"/map?grid={SAMPLE_GRID}&date=2024-06-03"]
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    status = dom[dom.index('id="route-status"'):][:400]
    assert " stops; " in status and "due visits" in status and ("km" in status or " m," in status), status
    assert "distance_m" not in status and "duration_min" not in status, status


# ------------------------------------------------------------------ a small PNG reader (no Pillow)
def read_png(path: Path) -> np.ndarray:
    """Decode an 8-bit, non-interlaced RGB/RGBA PNG (what Chromium writes) into an (h, w, c) array."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, []
    width = height = channels = 0
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and colour in (2, 6), (depth, colour, interlace)
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8)
    stride = width * channels
    rows = raw.reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        f, line = rows[y, 0], rows[y, 1:]
        if f == 0:
            cur = line.copy()
        elif f == 1:  # Sub: running sum per channel
            cur = (np.cumsum(line.reshape(width, channels).astype(np.int64), axis=0) % 256).astype(np.uint8).ravel()
        elif f == 2:  # Up
            cur = line + prev
        else:  # Average / Paeth: sequential along the row
            cur_l = bytearray(stride)
            ln, pv = line.tolist(), prev.tolist()
            for i in range(stride):
                a = cur_l[i - channels] if i >= channels else 0
                b = pv[i]
                if f == 3:
                    cur_l[i] = (ln[i] + ((a + b) >> 1)) & 0xFF
                else:
                    c = pv[i - channels] if i >= channels else 0
                    p = a + b - c
                    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                    cur_l[i] = (ln[i] + pred) & 0xFF
            cur = np.frombuffer(bytes(cur_l), dtype=np.uint8)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, channels)
