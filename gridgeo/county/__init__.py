"""The county pipeline: townships → blocks → villages → grids, grid points and exclusive grids.

Modules, by job:

* ``build`` -- the whole county (``gridgeo build``) in named stages: read,
  blocks, village tasks and villages (in parallel, or taken unchanged from a
  previous build), assemble the layers;
* ``sources`` -- what a build reads: input layers, checked villages and
  townships, weighted items (buildings or household points), barriers, sites;
* ``report`` -- the closing report (``summary``) and its terminal form;
* ``rules`` -- the county rules file (TOML, one parser per section), the
  blocks rules file, and ``within_bounds``, the one bounds test;
* ``blocks`` -- villages grouped into blocks (``gridgeo blocks``);
* ``village`` -- one village's grids and points in stages, units labelled by
  a typed ``Label``; ``ladder`` -- the fallback rungs a village that cannot
  be tiled is rebuilt with (snapped, coarse, Voronoi cells of buildings,
  whole); ``sites`` -- exclusive-site footprints; ``micro`` -- the optional
  levels below the grids, micro-grids (微网格) and lanes (巷);
  ``fingerprint`` -- the village's input digest (``build_hash``) that decides
  what ``--previous`` reuses; ``_parts`` -- handing units to the engine;
* ``units`` -- household estimates and street blocks; ``assign`` -- items to
  units and unit adjacency; ``split`` -- heavy units split between buildings;
  ``_faces`` -- the noding helpers they share;
* ``merge`` -- one network from many (多网合一, ``gridgeo merge``): departmental
  grid layers reconciled into one grid layer within the rules and a
  crosswalk; ``_merge_inputs`` -- reading and repairing the departmental
  layers; ``_merge_village`` -- one village's common refinement of them,
  partitioned by the engine;
* ``codes`` -- numbering parts in reading order and keeping codes across
  rebuilds;
* ``coverage`` -- every level one clean coverage, valid as written: the
  finest pieces cleaned together and rounded, coarser levels their unions,
  verified before writing;
* ``_job`` -- what a worker does for one village: the ladder, then its rows
  in the output CRS with their metric areas; ``_wire`` -- tasks and results
  sent as one WKB array per geometry array;
* ``_pool`` -- the villages in local worker processes (results in order,
  the first failure stops the rest, no worker outlives the build, a lazy
  queue of tasks taken as the workers get through it);
  ``_dask`` -- the same on a Dask cluster (``--scheduler``; ``distributed``
  is imported only there, an optional extra).
* ``walk_check`` -- the build's last, optional stage (``[grids] walk_check``): every grid's day planned on
  the built county's streets against the ``[patrol]`` budget (:mod:`gridgeo.patrol.walkcheck`).

May import: :mod:`gridgeo.data`, :mod:`gridgeo.partition` (its public names only),
:mod:`gridgeo.people` (the roster resolved on the built units), :mod:`gridgeo.patrol` (the walk-time estimate
and the route check of the walk-time bound), :mod:`gridgeo.errors`, :mod:`gridgeo._geom`.
"""
