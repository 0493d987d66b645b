"""The routing engine: orienteering and team orienteering on a distance matrix.

``orienteering(distance, prize, budget, *, start, end, routes, time_limit, seed)`` picks and
orders the stops worth most within a budget; stopping on iteration counts, a seed gives the same
routes. Patrol plans (:mod:`gridgeo.patrol`) are solved with it.

Modules:

``solver``
    The public :func:`orienteering` and :class:`OrienteeringResult`: checking the arguments,
    reducing the instance to the usable nodes, the result on the original nodes.
``_alns``
    The adaptive large neighbourhood search (destroy operators, acceptance, stopping).
``_moves``
    The reduced instance and the moves on its routes (insertion, 2-opt, or-opt, swap, ejection
    chain, local search).

May import: :mod:`gridgeo.errors` only: no geometry, no networks.
"""

from gridgeo.routing.solver import OrienteeringResult, orienteering

__all__ = ["OrienteeringResult", "orienteering"]
