"""schemathesis against ``/api`` with a token: whatever the generated request, never a 5xx.

The schema is the service's own ``/api`` (so every declared route and
parameter is exercised, the writes with an admin's token), the app is called
in-process over WSGI, and examples are bounded so the run stays short. Every
answer must be below 500, and an error must be ``application/problem+json``.
"""

from __future__ import annotations

import shutil

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from .access_county import make_people_county, serve_people

pytestmark = pytest.mark.slow


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory, store_target: str):  # type: ignore[no-untyped-def]
    """The people county served with its store on each backend (the writes land in SQLite or PostgreSQL)."""
    d = tmp_path_factory.mktemp("fuzz")
    county = make_people_county(d / "source.gpkg")
    served_county = d / "served.gpkg"
    shutil.copy(county, served_county)
    return serve_people(str(served_county) if not store_target.startswith("postgres") else store_target,
                        served_county)


def _operations(app):  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_wsgi("/api", app)
    return [r.ok() for r in schema.get_all_operations()]


def test_no_server_errors(served) -> None:  # type: ignore[no-untyped-def]
    """Every operation of /api, up to 30 generated requests each, signed in as an admin."""
    ops = _operations(served.client.application)
    assert len(ops) >= 15
    seen: list[str] = []
    for op in ops:
        @given(case=op.as_strategy())
        @settings(max_examples=30, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case) -> None:  # type: ignore[no-untyped-def]
            resp = case.call(headers=served.auth("admin"))
            assert resp.status_code < 500, f"{case.method} {case.formatted_path}: {resp.status_code} {resp.text[:500]}"
            if resp.status_code >= 400:
                ctype = {k.lower(): v for k, v in resp.headers.items()}["content-type"]
                ctype = ctype[0] if isinstance(ctype, list) else ctype
                assert ctype.startswith("application/problem+json"), resp.text[:200]

        run()
        seen.append(f"{op.method.upper()} {op.path}")
    assert "POST /visits" in seen and "GET /audit" in seen


def test_the_schema_declares_every_route(served) -> None:  # type: ignore[no-untyped-def]
    doc = served.client.get("/api").get_json(force=True)
    declared = set(doc["paths"])
    rules = {str(r.rule).replace("<", "{").replace(">", "}") for r in served.client.application.url_map.iter_rules()
             if r.endpoint != "static"}
    renamed = {"{name}": "{collectionId}", "{fid}": "{featureId}", "{grid_id}": "{gridId}", "{hid}": "{householdId}"}
    for a, b in renamed.items():
        rules = {r.replace(a, b) for r in rules}
    undeclared = sorted(r for r in rules - declared - {"/health", "/map"} if "static" not in r)
    assert not undeclared, undeclared
