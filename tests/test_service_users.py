"""``/users``: admins add, list, revoke users and renew tokens over HTTP, within their scope, all audited."""

from __future__ import annotations

from pathlib import Path

import pytest

from .access_county import Served, make_people_county, serve_copy


@pytest.fixture(scope="module")
def people_county(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_people_county(tmp_path_factory.mktemp("users") / "county.gpkg")


@pytest.fixture
def served(people_county: Path, store_target: str, tmp_path: Path) -> Served:
    return serve_copy(people_county, store_target, tmp_path)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_admin_adds_a_worker_whose_token_works(served: Served) -> None:
    c, admin = served.client, served.auth("admin")
    resp = c.post("/users", json={"name": "张三", "role": "worker", "scope": served.grid_in}, headers=admin)
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert "no-store" in resp.headers["Cache-Control"]
    assert resp.headers["Location"].endswith("/users/%E5%BC%A0%E4%B8%89")
    doc = resp.get_json()
    assert (doc["name"], doc["role"], doc["scope"], doc["created_by"], doc["revoked"]) == (
        "张三", "worker", served.grid_in, "admin", None)
    token = doc["token"]
    assert token.startswith("gg_")
    assert c.get(f"/visits?unit={served.grid_in}", headers=_bearer(token)).status_code == 200
    assert c.get(f"/visits?unit={served.grid_out}", headers=_bearer(token)).status_code == 403
    listed = c.get("/users", headers=admin)
    assert listed.status_code == 200 and "token" not in listed.get_data(as_text=True)
    names = [u["name"] for u in listed.get_json()["users"]]
    assert names == ["admin", "gis", "worker", "worker_out", "secretary", "viewer", "张三"]
    assert c.get("/users/张三", headers=admin).get_json()["scope"] == served.grid_in
    rows = c.get("/audit?action=user.add", headers=admin).get_json()["audit"]
    assert rows[-1]["actor"] == "admin" and rows[-1]["after"]["name"] == "张三"
    assert "token" not in str(rows[-1]) and token not in str(rows)


def test_renewed_token_replaces_the_old_one(served: Served) -> None:
    c, admin = served.client, served.auth("admin")
    old = served.auth("worker")
    resp = c.post("/users/worker/token", headers=admin)
    assert resp.status_code == 200 and "no-store" in resp.headers["Cache-Control"]
    new = resp.get_json()["token"]
    assert new != served.tokens["worker"]
    assert c.get(f"/visits?unit={served.grid_in}", headers=old).status_code == 401
    assert c.get(f"/visits?unit={served.grid_in}", headers=_bearer(new)).status_code == 200
    rows = c.get("/audit?action=user.token", headers=admin).get_json()["audit"]
    assert [(r["actor"], r["target"]) for r in rows] == [("admin", "users/worker")]


def test_revoke_is_at_once_kept_and_not_of_oneself(served: Served) -> None:
    c, admin = served.client, served.auth("admin")
    resp = c.delete("/users/viewer", headers=admin)
    assert resp.status_code == 200 and resp.get_json()["revoked"]
    assert c.get("/collections/grids/items?limit=1", headers=served.auth("viewer")).status_code == 401
    again = c.delete("/users/viewer", headers=admin)
    assert again.status_code == 200 and again.get_json()["revoked"] == resp.get_json()["revoked"]
    assert c.post("/users/viewer/token", headers=admin).status_code == 409  # revoked: add a new user instead
    assert [u["name"] for u in c.get("/users?revoked=true", headers=admin).get_json()["users"]] == ["viewer"]
    assert "viewer" not in [u["name"] for u in c.get("/users?revoked=false", headers=admin).get_json()["users"]]
    mine = c.delete("/users/admin", headers=admin)
    assert mine.status_code == 409 and mine.mimetype == "application/problem+json"
    assert c.get("/users", headers=admin).status_code == 200
    rows = c.get("/audit?action=user.revoke", headers=admin).get_json()["audit"]
    assert [(r["actor"], r["target"]) for r in rows] == [("admin", "users/viewer")]


_BAD_USERS = [
    ({"name": "worker", "role": "worker"}, 409, "already exists"),
    ({"name": "李四", "role": "chief"}, 400, "role must be one of"),
    ({"name": "李四", "role": "worker", "scope": "999999999999999"}, 422, "not the code of any unit"),
    ({"name": "system", "role": "viewer"}, 400, "not allowed"),
    ({"name": "cli:root@host", "role": "viewer"}, 400, "not allowed"),
    ({"name": "a/b", "role": "viewer"}, 400, "not allowed"),
    ({"name": "x" * 65, "role": "viewer"}, 400, "at most 64"),
    ({"name": "  ", "role": "viewer"}, 400, "needs a name"),
    ({"name": "李四", "role": "viewer", "password": "x"}, 400, "unknown field"),
    ({"name": 5, "role": "viewer"}, 400, "name"),
    (["李四"], 400, "JSON object"),
]


def test_bad_new_users_are_named(served: Served) -> None:
    for body, status, words in _BAD_USERS:
        resp = served.client.post("/users", json=body, headers=served.auth("admin"))
        assert resp.status_code == status and resp.mimetype == "application/problem+json", (body, resp.status_code)
        assert words in resp.get_json()["detail"], body
    assert len(served.store.users()) == 6  # type: ignore[attr-defined]


def test_only_admins_manage_users(served: Served) -> None:
    c = served.client
    for who in (None, "gis", "worker", "secretary", "viewer"):
        h = served.auth(who)
        want = 401 if who is None else 403
        calls = [c.get("/users", headers=h), c.get("/users/worker", headers=h),
                 c.post("/users", json={"name": "李四", "role": "admin"}, headers=h),
                 c.delete("/users/worker", headers=h), c.post("/users/worker/token", headers=h)]
        assert [r.status_code for r in calls] == [want] * 5, who
        assert all(r.mimetype == "application/problem+json" for r in calls)
    assert len(served.store.users()) == 6 and all(u.revoked is None for u in served.store.users())  # type: ignore[attr-defined]


def test_a_scoped_admin_manages_only_inside_its_scope(served: Served) -> None:
    store = served.store
    served.tokens["village_admin"] = store.add_user("村管理员", role="admin", scope=served.village)[1]  # type: ignore[attr-defined]
    c, h = served.client, served.auth("village_admin")
    names = [u["name"] for u in c.get("/users", headers=h).get_json()["users"]]
    assert names == ["worker", "secretary", "村管理员"]  # not the county-wide ones, not another village's worker
    assert c.get("/users/worker_out", headers=h).status_code == 404
    assert c.delete("/users/worker_out", headers=h).status_code == 404
    assert c.post("/users/gis/token", headers=h).status_code == 404
    assert c.post("/users", json={"name": "李四", "role": "worker", "scope": served.grid_out},
                  headers=h).status_code == 403
    assert c.post("/users", json={"name": "李四", "role": "viewer"}, headers=h).status_code == 403
    resp = c.post("/users", json={"name": "李四", "role": "worker", "scope": served.grid_in}, headers=h)
    assert resp.status_code == 201 and resp.get_json()["created_by"] == "村管理员"
    assert c.delete("/users/worker", headers=h).status_code == 200


def test_cli_refuses_reserved_names(served: Served) -> None:
    from gridgeo.errors import UsageError

    with pytest.raises(UsageError, match="not allowed"):
        served.store.add_user("anonymous", role="viewer")  # type: ignore[attr-defined]
