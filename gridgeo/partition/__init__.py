"""The partition engine: contiguous parts of units under hard and soft rules.

``Model(units, ...).solve(seed=...) -> Result`` is the whole interface: units with weights,
attributes and their adjacency graph in, contiguous parts out. Blocks, grids and grid points
all use this one engine.

Modules, one job each:

* :mod:`~gridgeo.partition.model` -- :class:`Model`: reads the inputs, solves group by group,
  assembles the result (the design notes of the search are in its docstring);
* :mod:`~gridgeo.partition.units` -- :class:`Units`, the units view the engine works on (ids,
  CSR adjacency with boundary lengths, attributes);
* :mod:`~gridgeo.partition.objective` -- :class:`Objective`, soft-objective weights and budgets;
* :mod:`~gridgeo.partition.result` -- :class:`Result` and :class:`Part`, what a solve returns;
* :mod:`~gridgeo.partition.rules` -- the hard rules as small callables gathered by a
  :class:`~gridgeo.partition.rules.Validator` that names every rule that failed;
* private: ``_inputs`` (the input normalisers of :class:`Model`), ``_comp`` (one connected
  component as arrays and lists), ``_tree`` (random spanning-tree bisection, the initial
  partition), ``_search`` (repair by ejection chains, shake, annealing), ``_draw`` (draw +
  repair with restarts), ``_count`` (sharing a count among components; the free-count search),
  ``_previous`` (re-drawing from a previous partition), ``_diagnose`` (infeasibility
  diagnoses and the causes attached to violations).

May import: :mod:`gridgeo.errors` only from gridgeo; from outside numpy, scipy, networkx (the
graph input) and tqdm (the progress bar). No geometry, files or county policy in here.
"""

from gridgeo.partition.model import Model
from gridgeo.partition.objective import Objective
from gridgeo.partition.result import Part, Result
from gridgeo.partition.units import Units

__all__ = ["Model", "Objective", "Part", "Result", "Units"]
