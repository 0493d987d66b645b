"""Off-network legs (issue 13, item 1): the straight walks a route makes where no mapped street goes.

Two kinds: a ``link`` between two components of the network (:mod:`gridgeo.patrol.network` joins them
by a minimum spanning forest of straight links) and a ``door`` leg from the street to a stop far from
every street. A plan lists those longer than :data:`gridgeo.patrol.network.OFF_NETWORK_REPORT_M`.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyproj

from gridgeo.patrol.network import OFF_NETWORK_REPORT_M

if TYPE_CHECKING:
    from gridgeo.patrol.plan import PatrolProblem


@dataclass(frozen=True)
class OffNetworkLeg:
    """A straight walk the route makes off the street network, longer than :data:`OFF_NETWORK_REPORT_M`.

    ``kind`` is ``"link"`` (between two components of the network: see :mod:`gridgeo.patrol.network`)
    or ``"door"`` (from the street to a stop far from every street, walked there and back).
    ``start``/``end`` are in the network's CRS; ``stop`` is the visit it leads to.
    """

    kind: str
    length_m: float
    start: tuple[float, float]
    end: tuple[float, float]
    stop: str


def off_network(problem: PatrolProblem, route: list[int]) -> list[OffNetworkLeg]:
    """Every off-network leg of ``route`` longer than :data:`OFF_NETWORK_REPORT_M`, in walking order."""
    net = problem.network
    legs: list[OffNetworkLeg] = []
    n_stops = len(problem.grid.stops)
    for a, b in itertools.pairwise(route):
        is_stop = 0 < b <= n_stops  # node 0 is the start; a node after the stops is a separate end (item 4)
        to = problem.grid.stops[b - 1].id if is_stop else ("station" if b == 0 else "end")
        for e in problem.paths.off_network_edges(a, b):
            if net.edge_length[e] > OFF_NETWORK_REPORT_M:
                c = np.asarray(net.edge_geom[e].coords)
                legs.append(OffNetworkLeg("link", float(net.edge_length[e]), (float(c[0, 0]), float(c[0, 1])),
                                          (float(c[-1, 0]), float(c[-1, 1])), to))
        if is_stop and problem.snap_m[b] > OFF_NETWORK_REPORT_M:
            s = problem.grid.stops[b - 1]
            legs.append(OffNetworkLeg("door", float(problem.snap_m[b]),
                                      (float(problem.snap_xy[b, 0]), float(problem.snap_xy[b, 1])), (s.x, s.y), s.id))
    return legs


@functools.lru_cache(maxsize=8)
def _to_lonlat(wkt: str) -> pyproj.Transformer:
    """One transformer per CRS (making one costs far more than using it)."""
    return pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(wkt), "EPSG:4326", always_xy=True)


def off_network_json(legs: list[OffNetworkLeg], crs: pyproj.CRS) -> list[dict[str, Any]]:
    """The legs as JSON, ends as WGS84 lon/lat."""
    if not legs:
        return []
    tr = _to_lonlat(crs.to_wkt())
    out = []
    for leg in legs:
        ends = [[round(v, 6) for v in tr.transform(*p)] for p in (leg.start, leg.end)]
        out.append({"kind": leg.kind, "length_m": round(leg.length_m, 1), "from": ends[0], "to": ends[1],
                    "stop": leg.stop})
    return out
