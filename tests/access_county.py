"""A served county with people's data and accounts, for the access, visits and reliability tests.

The small test county of :mod:`tests.service_county`, its households given a
register's personal columns (name, phone, ID number, special-care categories,
party membership, priority) and the unit columns a build writes (point, grid,
village, township), served from a store of each backend with one user per
role: an admin, a GIS engineer, two grid workers (one scoped to grid ``G1``,
one to grid ``G2``), a village secretary (worker scoped to ``G1``'s village)
and a viewer.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

from .service_county import make_county

#: the columns no anonymous client, GIS engineer or viewer may ever see
PERSONAL = ("name", "phone", "id_number", "special", "party_member", "priority")


def make_people_county(path: Path) -> Path:
    """:func:`make_county` with households placed in points and grids and carrying personal columns."""
    make_county(path)
    hh = pyogrio.read_dataframe(path, layer="households")
    pts = pyogrio.read_dataframe(path, layer="points")
    grids = pyogrio.read_dataframe(path, layer="grids")
    vil = pyogrio.read_dataframe(path, layer="villages")
    geoms = hh.geometry.values
    hh["point"] = _owner(geoms, pts)
    hh["grid"] = _owner(geoms, grids)
    hh = hh[hh["grid"].notna()].reset_index(drop=True)
    hh["village"] = [g[:12] if g else None for g in hh["grid"]]
    hh.loc[~hh["village"].isin(vil["code"]), "village"] = None
    hh["township"] = "369900001"
    n = len(hh)
    hh["name"] = [f"户主{i:04d}" for i in range(n)]
    hh["phone"] = [f"1391234{i:04d}" for i in range(n)]
    hh["id_number"] = [f"3699001980010{i:05d}" for i in range(n)]
    hh["special"] = ["低保户" if i % 5 == 0 else None for i in range(n)]
    hh["party_member"] = ["是" if i % 7 == 0 else "否" for i in range(n)]
    hh["priority"] = [("red", "orange", "yellow")[i % 3] for i in range(n)]
    hh = gpd.GeoDataFrame(hh, geometry="geometry", crs=pyogrio.read_info(path, layer="households")["crs"])
    pyogrio.write_dataframe(hh, path, layer="households", driver="GPKG")
    return path


def make_register_county(path: Path) -> Path:
    """:func:`make_people_county` whose households carry a register's key (``source``, ``source_id``), as a
    build from registers writes them: what a rebuild matches households by."""
    make_people_county(path)
    hh = pyogrio.read_dataframe(path, layer="households")
    hh["source"] = "register"
    hh["source_id"] = [f"R{i:05d}" for i in range(len(hh))]
    pyogrio.write_dataframe(hh, path, layer="households", driver="GPKG")
    return path


def _owner(geoms: object, units: gpd.GeoDataFrame) -> list[str | None]:
    tree = shapely.STRtree(units.geometry.values)
    pi, ui = tree.query(geoms, predicate="intersects")
    out: list[str | None] = [None] * len(geoms)  # type: ignore[arg-type]
    for p, u in zip(pi.tolist(), ui.tolist(), strict=True):
        if out[p] is None:
            out[p] = str(units["code"].iloc[u])
    return out


@dataclass
class Served:
    """A served county with its users' tokens and the households the tests act on."""

    client: object
    store: object
    tokens: dict[str, str]
    grid_in: str
    grid_out: str
    village: str
    hh_in: str
    hh_out: str
    #: a WGS84 lon/lat inside ``grid_in`` and one inside ``grid_out`` (where reports are filed)
    pt_in: tuple[float, float] = (0.0, 0.0)
    pt_out: tuple[float, float] = (0.0, 0.0)
    #: the layers served from a file while the store is a database: they cannot be edited with a trail
    layers_read_only: bool = False

    def auth(self, who: str | None) -> dict[str, str]:
        """The headers of a request by ``who`` (a key of :attr:`tokens`; None: anonymous)."""
        return {} if who is None else {"Authorization": f"Bearer {self.tokens[who]}"}


def serve_people(target: str, county: Path, *, serve: str | None = None, **config: object) -> Served:
    """Serve ``county`` with its store at ``target``, after adding one user per role (see the module).

    ``serve``: what is served, if not the file (the ``postgresql://`` URL it was loaded into); ``config``
    the app's other keys (``LAZY_AT`` ...).
    """
    from gridgeo.service import create_app

    from gridgeo.store import open_store

    hh = pyogrio.read_dataframe(county, layer="households", read_geometry=False)
    counts = hh["grid"].value_counts()
    g_in = str(counts.index[0])
    village = str(hh.loc[hh["grid"] == g_in, "village"].iloc[0])
    g_out = next(str(g) for g in counts.index if not str(g).startswith(village))  # a grid of another village
    # the item ids are row numbers from 1 (the layer has no code or id column)
    hh_in = str(int(hh.index[hh["grid"] == g_in][0]) + 1)
    hh_out = str(int(hh.index[hh["grid"] == g_out][0]) + 1)
    pt_in, pt_out = inside(county, g_in), inside(county, g_out)  # read before the store opens (see below)
    store = open_store(target)
    tokens = {}
    for name, role, scope in (("admin", "admin", None), ("gis", "gis", None), ("worker", "worker", g_in),
                              ("worker_out", "worker", g_out), ("secretary", "worker", village),
                              ("viewer", "viewer", None)):
        tokens[name] = store.add_user(name, role=role, scope=scope)[1]
    # closed while the app reads the file with GDAL: GDAL's own SQLite deletes the WAL under open connections
    store.close()
    app = create_app({"COUNTY": serve or str(county), "STORE": target, "TESTING": True, **config})
    return Served(app.test_client(), open_store(target), tokens, g_in, g_out, village, hh_in, hh_out, pt_in, pt_out,
                  layers_read_only=target.startswith("postgres") and serve is None)


def serve_editable(source: Path, store_target: str, tmp_path: Path, **config: object) -> Served:
    """:func:`serve_people` on a copy of ``source`` whose layers can be edited with a trail: the store the
    copy itself (SQLite), or the copy loaded into the ``store_target`` database and served from there."""
    from gridgeo.store.postgis import load_geopackage

    county = tmp_path / "served.gpkg"
    shutil.copy(source, county)
    if store_target.startswith("postgres"):  # the layers and the store in one database
        load_geopackage(county, store_target)
        return serve_people(store_target, county, serve=store_target, **config)
    return serve_people(str(county), county, **config)


def serve_copy(people_county: Path, store_target: str, tmp_path: Path, **config: object) -> Served:
    """:func:`serve_people` on a copy of ``people_county`` in ``tmp_path``, its store the copy itself (SQLite)
    or ``store_target`` (PostgreSQL): each test writes to a county of its own."""
    county = tmp_path / "served.gpkg"
    shutil.copy(people_county, county)
    target = str(county) if not store_target.startswith("postgres") else store_target
    return serve_people(target, county, **config)


def inside(county: Path, code: str, layer: str = "grids") -> tuple[float, float]:
    """A WGS84 lon/lat inside unit ``code`` of ``layer`` (a report's place in the tests)."""
    units = pyogrio.read_dataframe(county, layer=layer)
    unit = units[units["code"] == code].to_crs("EPSG:4326")
    pt = shapely.point_on_surface(unit.geometry.iloc[0])
    return float(pt.x), float(pt.y)
