"""Household-to-member distances of one scope, in metres: on foot along the streets, or in a straight line.

Walking distance (with a :class:`gridgeo.patrol.network.Network`): every household and member is
snapped once to the nearest street (:meth:`Network.snap`); per scope one
:func:`scipy.sparse.csgraph.dijkstra` runs from the two end nodes of each member's street
(:meth:`Network.node_distances`, all sources in one C call, bounded by ``limit``). A member standing at
offset ``a`` on a street of length ``L`` reaches node ``x`` in ``min(a + d(u, x), L - a + d(v, x))``; a
household at offset ``b`` on its street is reached through either end of that street, or directly when
both stand on the same street. The walks from the doors to the streets are added. This is the exact
shortest walk on the network with both ends split virtually, as :meth:`Network.stop_paths` does, but
needs only ``2 x members`` searches instead of one per stop. A household or member farther than
``max_snap`` from every street, or a walk longer than ``limit``, is unreachable (``inf``).

Straight-line distance (no network): Euclidean metres in the metric CRS chosen by
:func:`gridgeo.data.crs.metric_crs`, never degrees; longer than ``limit`` is unreachable too, so the two
modes mean the same by it.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gridgeo.patrol.network import Network

FArray = NDArray[np.float64]
IArray = NDArray[np.int64]


class StraightDistances:
    """Euclidean metres between metric points; beyond ``limit`` is ``inf``."""

    kind = "straight"

    def __init__(self, hh_xy: FArray, mem_xy: FArray, *, limit: float) -> None:
        self.hh_xy, self.mem_xy, self.limit = hh_xy, mem_xy, limit

    def __call__(self, hrows: IArray, mrows: IArray) -> FArray:
        """``(len(hrows), len(mrows))`` metres."""
        h, m = self.hh_xy[hrows], self.mem_xy[mrows]
        d = np.hypot(h[:, None, 0] - m[None, :, 0], h[:, None, 1] - m[None, :, 1])
        d[d > self.limit] = np.inf
        return d


class NetworkDistances:
    """Shortest walks on ``net`` between households and members (points in the network's CRS)."""

    kind = "network"

    def __init__(self, net: Network, hh_xy: FArray, mem_xy: FArray, *, limit: float, max_snap: float) -> None:
        self.net, self.limit = net, limit
        self.h = net.snap(hh_xy)
        # a member of a scope without households has no place: never reached
        placed = np.asarray(np.isfinite(mem_xy).all(axis=1), dtype=bool)
        self.m = net.snap(np.where(placed[:, None], mem_xy, hh_xy[:1] if len(hh_xy) else 0.0))
        self.h_far = self.h.distance > max_snap
        self.m_far = (self.m.distance > max_snap) | ~placed

    def __call__(self, hrows: IArray, mrows: IArray) -> FArray:
        """``(len(hrows), len(mrows))`` metres along the streets (``inf``: unreachable)."""
        net, h, m = self.net, self.h, self.m
        if len(hrows) == 0 or len(mrows) == 0:
            return np.full((len(hrows), len(mrows)), np.inf)
        me, he = m.edge[mrows], h.edge[hrows]
        mu, mv = net.edge_u[me], net.edge_v[me]
        src, inv = np.unique(np.r_[mu, mv], return_inverse=True)
        dist = net.node_distances(src, limit=self.limit)  # (sources, nodes)
        du, dv = dist[inv[: len(mrows)]], dist[inv[len(mrows):]]  # (members, nodes)
        a = m.offset[mrows][:, None]
        lm = net.edge_length[me][:, None]
        hu, hv = net.edge_u[he], net.edge_v[he]
        to_u = np.minimum(a + du[:, hu], lm - a + dv[:, hu])  # (members, households)
        to_v = np.minimum(a + du[:, hv], lm - a + dv[:, hv])
        b = h.offset[hrows][None, :]
        lh = net.edge_length[he][None, :]
        d = np.minimum(to_u + b, to_v + lh - b)
        same = me[:, None] == he[None, :]
        d = np.where(same, np.minimum(d, np.abs(a - b)), d)
        d = d + m.distance[mrows][:, None] + h.distance[hrows][None, :]
        d[self.m_far[mrows], :] = np.inf
        d[:, self.h_far[hrows]] = np.inf
        d[d > self.limit] = np.inf
        return np.ascontiguousarray(d.T)
