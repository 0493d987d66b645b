"""The gridgeo HTTP service: ``create_app(config)`` builds the Flask app.

This first version serves the layers of a county GeoPackage as RFC 7946
GeoJSON. Views only parse the request, call :mod:`gridgeo`, and shape the
response; errors use the one table in :mod:`gridgeo._errors`.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify

from gridgeo._errors import GridgeoError, http_status


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the app. ``config["COUNTY"]`` is the GeoPackage to serve."""
    app = Flask(__name__)
    app.config.update(JSON_AS_ASCII=False, MAX_LIMIT=1000, DEFAULT_LIMIT=100)
    app.config.update(config or {})
    app.json.ensure_ascii = False  # type: ignore[attr-defined]

    from service.features import bp as features_bp
    from service.features import load_county

    app.extensions["county"] = load_county(app.config["COUNTY"]) if app.config.get("COUNTY") else {}
    app.register_blueprint(features_bp)

    @app.errorhandler(GridgeoError)
    def _gridgeo_error(err: GridgeoError) -> Any:
        status = http_status(err)
        body = {"type": "about:blank", "title": type(err).__name__, "status": status, "detail": str(err)}
        resp = jsonify(body)
        resp.status_code = status
        resp.mimetype = "application/problem+json"
        return resp

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok", "layers": sorted(app.extensions["county"])}

    return app
