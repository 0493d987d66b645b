"""The partition engine: contiguous parts of units under hard and soft rules.

``Model(units, ...).solve(seed=...) -> Result`` is the whole interface: units with weights,
attributes and their adjacency graph in, contiguous parts out. ``rules`` holds the hard rules as
small callables gathered by a :class:`~gridgeo.partition.rules.Validator` that names every rule
that failed. Blocks, grids and grid points all use this one engine.

May import: :mod:`gridgeo.errors` only. No geometry, files or county policy in here.
"""

from gridgeo.partition.model import Model, Objective, Part, Result, Units

__all__ = ["Model", "Objective", "Part", "Result", "Units"]
