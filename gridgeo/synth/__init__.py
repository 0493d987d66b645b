"""The generated county: a plausible, deterministic county for tests, benchmarks and the sample.

``synth_county(seed=..., ...)`` draws townships, villages and villager groups that tile exactly,
buildings with households, roads, water and POIs; ``write_county`` writes them as a GeoPackage.

Modules, in the order the driver runs their stages (the order of the random draws):

- :mod:`~gridgeo.synth.county` -- the public face: :func:`synth_county` (arguments, the driver
  over named stages, layer metadata) and :func:`write_county` (atomic GeoPackage writer).
- ``_constants`` -- layer names, township kinds, industries, POI categories, sizes, array types.
- ``_arrays`` -- vectorised helpers every stage shares (smooth fields, ranks, apportioning,
  Lloyd relaxation, rectangles and lines from ragged coordinates).
- ``_seeds`` -- outline, township seats, village seeds and their townships, villager-group seeds.
- ``_tiling`` -- parcels, one Voronoi diagram, contiguous labels; group polygons, then the unions
  into villages, townships and the county (the :class:`~gridgeo.synth._tiling.Tiling` record).
- ``_warp`` -- smoothing, canonical densifying and the injective warp of the boundaries.
- ``_names`` -- division codes in reading order, unique place names and every name vocabulary.
- ``_lines`` -- bent lines, meanders, clipping; rivers and streams.
- ``_buildings`` -- households per village, rural hamlets, urban blocks on street grids.
- ``_roads`` -- the road classes, from seat-to-seat roads to town street grids.
- ``_pois`` -- village industries and points of interest (the future exclusive grids).
- ``_frames`` -- the records as GeoDataFrames in EPSG:4490, rows in code order.

May import: :mod:`gridgeo.data` (the Gauss-Krüger zone in :mod:`gridgeo.data.crs`, the atomic
write in :mod:`gridgeo.data.io`), :mod:`gridgeo.errors`, :mod:`gridgeo._geom`.
"""

from gridgeo.synth.county import INDUSTRIES, LAYERS, POI_CATEGORIES, synth_county, write_county

__all__ = ["INDUSTRIES", "LAYERS", "POI_CATEGORIES", "synth_county", "write_county"]
