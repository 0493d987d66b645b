"""Samples for :func:`gridgeo.patrol.walktime.fit_k`: random parts of real household places, their tours solved.

A sample mirrors what the estimate is used for. A **part** is every distinct household place inside a square
window (a side drawn log-uniformly in the range asked, so small and large parts weigh alike, centred on a place
drawn at random, so parts lie where people live); its area ``A`` is the convex hull of those places (what they
occupy; ``window``: the square itself). The day's **stops** are a random subset of the part's places, of a size
drawn uniformly in the range asked (capped at the part's places), as due visits are a random subset of a grid's
households. The tour through them starts and ends at the first stop, along the streets: the stops are snapped to
the network (as the planner snaps them), the street distances come from one multi-source Dijkstra, and the round
is solved by :func:`gridgeo.routing.orienteering` with a budget no tour reaches and a prize on every stop, so it
visits every one and shortens the round (cheapest insertion, 2-opt, or-opt: what the planner gets when a day's due
visits fit). The length is the street length only (the walks to the doors are the estimate's ``door_m``);
``line_m`` is the same round measured as straight lines, so ``length / line`` is the round's detour factor.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray

from gridgeo.patrol.network import Network
from gridgeo.routing import orienteering

FArray = NDArray[np.float64]


@dataclass(frozen=True)
class Sample:
    """One part: stops, areas, the solved tour (``inf``: the network does not join the stops), its straight form."""

    n: int
    hull_m2: float
    window_m2: float
    length_m: float
    line_m: float
    door_m: float


@dataclass(frozen=True)
class Windows:
    """How parts are drawn: stops per part and window sides, both ranges inclusive."""

    n_range: tuple[int, int]
    side_m: tuple[float, float]


@dataclass(frozen=True)
class Part:
    """A drawn part: its stops (the first is the start), the hull of all its places, the window's area."""

    stops: FArray
    hull_m2: float
    window_m2: float


def draw(xy: FArray, windows: Windows, rng: np.random.Generator, *, tries: int = 50) -> Part | None:
    """One random part, or None when ``tries`` windows held too few places."""
    lo_n, hi_n = windows.n_range
    lo_s, hi_s = windows.side_m
    for _ in range(tries):
        side = math.exp(rng.uniform(math.log(lo_s), math.log(hi_s))) if hi_s > lo_s else lo_s
        c = xy[int(rng.integers(len(xy)))]
        inside = np.flatnonzero((np.abs(xy[:, 0] - c[0]) <= side / 2) & (np.abs(xy[:, 1] - c[1]) <= side / 2))
        if len(inside) < lo_n:
            continue
        hull = float(shapely.area(shapely.convex_hull(shapely.multipoints(xy[inside]))))
        if hull <= 0:  # places on one line: no area to spread over
            continue
        n = int(rng.integers(lo_n, min(hi_n, len(inside)) + 1))
        return Part(xy[rng.choice(inside, size=n, replace=False)], hull, side * side)
    return None


def solve(network: Network, part: Part, *, seed: int) -> Sample:
    """The tour through the part's stops (the first is the start and end) on ``network``, by gridgeo's solver."""
    snap = network.snap(part.stops)
    d = network.stop_paths(snap).distance
    n = len(part.stops)
    door = float(snap.distance.mean())
    if not np.isfinite(d).all():
        return Sample(n, part.hull_m2, part.window_m2, math.inf, math.inf, door)
    budget = n * float(d.max()) + 1.0  # longer than any tour (n legs, none longer than the longest)
    res = orienteering(d, np.r_[0.0, np.ones(n - 1)], budget, start=0, end=0, seed=seed, time_limit=60.0)
    route = res.routes[0]
    if len(route) - 2 != n - 1:  # cannot happen with that budget; a tour that skips stops is not measured
        return Sample(n, part.hull_m2, part.window_m2, math.inf, math.inf, door)
    length = float(sum(d[a, b] for a, b in itertools.pairwise(route)))
    pts = snap.xy[route]
    line = float(np.hypot(*np.diff(pts, axis=0).T).sum())
    return Sample(n, part.hull_m2, part.window_m2, length, line, door)
