"""The map page (``/map``): the levels with toggles, feature properties on click, a route overlay.

Everything the page loads is served from this package: Leaflet's built files are committed under
``service/static/vendor/leaflet/`` (``package.json`` at the repo root pins the version and
``npm ci && npm run vendor`` refreshes them), so the page needs no CDN and no internet at run time.

The page reads ``/collections`` and the items of each collection (following ``next`` links), draws
each level in its own style on a plain background, and fetches ``/patrol/{grid}?date=`` for the route
overlay. Configuration (all optional):

``MAP_TILE_URL``
    a tile URL template (``{z}/{x}/{y}``) for a basemap; default none (no basemap).
``MAP_TILE_ATTRIBUTION``
    the attribution shown with those tiles.
``MAP_COORDS``
    ``gcj02`` or ``bd09`` when the tiles are drawn in those systems (Amap, Tencent, Baidu); the page
    then asks every GeoJSON endpoint for ``coords=…`` so the layers line up with the tiles.
``MAP_PAGE_LIMIT``
    features per request while loading a layer (default 1000, capped by ``MAX_LIMIT``).
``MAP_EAGER_MAX``
    a layer with more features than this (default 20,000; ``points`` and ``buildings`` always) loads
    by view through ``bbox``…
``MAP_VIEW_MAX``
    …and only while the view holds at most this many features (default 5,000); else it asks to zoom in.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, render_template, request

bp = Blueprint(
    "pages",
    __name__,
    static_folder="static",
    static_url_path="/map/static",
    template_folder="templates",
)

#: Draw order (bottom to top) and style of each level; the grid stroke colour is unique on the page
#: (the headless-browser test counts its pixels). Layers not listed get the ``other`` style.
LEVELS: dict[str, dict[str, Any]] = {
    "areas": {"label": "片区 areas", "color": "#37474f", "weight": 5, "fillOpacity": 0.02},
    "townships": {"label": "乡镇 townships", "color": "#1f3a93", "weight": 4, "fillOpacity": 0.04},
    "blocks": {"label": "块 blocks", "color": "#00897b", "weight": 3.5, "fillOpacity": 0.04, "dashArray": "8 4"},
    "villages": {"label": "村/社区 villages", "color": "#ef6c00", "weight": 2.5, "fillOpacity": 0.05},
    "grids": {"label": "网格 grids", "color": "#e6007e", "weight": 1.5, "fillOpacity": 0.06},
    "exclusive": {"label": "专属网格 exclusive", "color": "#6a1b9a", "weight": 2.5, "fillOpacity": 0.25},
    "points": {"label": "网格点 points", "color": "#2e7d32", "weight": 1, "fillOpacity": 0.15, "lazy": True},
    # below the grids beside the points (drawn where the rules ask for them): off until switched on
    "micro_grids": {"label": "微网格 micro-grids", "color": "#f9a825", "weight": 1, "fillOpacity": 0.1, "lazy": True,
                    "off": True},
    "lanes": {"label": "巷 lanes", "color": "#0097a7", "weight": 1, "fillOpacity": 0.1, "lazy": True, "off": True},
}
OTHER_STYLE: dict[str, Any] = {"color": "#607d8b", "weight": 1, "fillOpacity": 0.1}
#: Input layers of an unbuilt county (``boundaries/sample_county.gpkg``): villager groups stand in
#: for grids when the county has no ``grids`` layer; the rest are off by default (buildings load by view).
INPUT_LAYERS: dict[str, dict[str, Any]] = {
    "villager_groups": {"label": "村民小组 villager groups", "standIn": "grids"},
    "buildings": {"label": "建筑 buildings", "lazy": True, "off": True, "color": "#8d6e63", "weight": 0.5},
    "roads": {"label": "道路 roads", "off": True, "color": "#9e9e9e", "weight": 1.5, "fillOpacity": 0},
    "water": {"label": "水系 water", "off": True, "color": "#0288d1", "weight": 1.5, "fillOpacity": 0},
    "pois": {"label": "兴趣点 POIs", "off": True, "color": "#c62828", "weight": 1},
}
#: Route overlay style.
ROUTE_STYLE: dict[str, Any] = {"color": "#0050ff", "weight": 4, "stopColor": "#ffab00"}


def map_config() -> dict[str, Any]:
    """What the page script needs, rendered into the page as JSON."""
    cfg = current_app.config
    limit = int(cfg.get("MAP_PAGE_LIMIT", 1000))
    max_limit = cfg.get("MAX_LIMIT")
    if max_limit:
        limit = min(limit, int(max_limit))
    return {
        "root": request.script_root,
        "levels": LEVELS,
        "inputLayers": INPUT_LAYERS,
        "otherStyle": OTHER_STYLE,
        "route": ROUTE_STYLE,
        "tileUrl": cfg.get("MAP_TILE_URL") or None,
        "tileAttribution": cfg.get("MAP_TILE_ATTRIBUTION") or "",
        "coords": cfg.get("MAP_COORDS") or None,
        "pageLimit": limit,
        # a layer with more features than this loads by view (bbox) instead of all at once
        "eagerMax": int(cfg.get("MAP_EAGER_MAX", 20000)),
        # a layer loading by view draws nothing but asks to zoom in while the view holds more than this
        "viewMax": int(cfg.get("MAP_VIEW_MAX", 5000)),
    }


@bp.after_request
def _buffer_static(resp: Response) -> Response:
    """Let app-wide hooks read the body of a static file (the ETag hook hashes ``get_data()``).

    ``send_file`` answers in direct-passthrough mode, whose body a WSGI server (not the test client)
    refuses to buffer; the assets are small (Leaflet ~150 kB), so buffer them here.
    """
    if resp.direct_passthrough:
        resp.direct_passthrough = False
    return resp


@bp.get("/map")
def map_page() -> str:
    """The map page (HTML)."""
    return render_template("map.html", config=map_config())
