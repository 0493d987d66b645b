"""The routing engine: orienteering and team orienteering on a distance matrix.

``orienteering(distance, prize, budget, *, start, end, routes, time_limit, seed)`` picks and
orders the stops worth most within a budget; stopping on iteration counts, a seed gives the same
routes. Patrol plans (:mod:`gridgeo.patrol`) are solved with it.

May import: :mod:`gridgeo.errors` only: no geometry, no networks.
"""

from gridgeo.routing.solver import OrienteeringResult, orienteering

__all__ = ["OrienteeringResult", "orienteering"]
