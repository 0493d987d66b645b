"""The generated county: a plausible, deterministic county for tests, benchmarks and the sample.

``synth_county(seed=..., ...)`` draws townships, villages and villager groups that tile exactly,
buildings with households, roads, water and POIs; ``write_county`` writes them as a GeoPackage.

May import: :mod:`gridgeo.data` (CRS, writing), :mod:`gridgeo.errors`.
"""

from gridgeo.synth.county import INDUSTRIES, LAYERS, POI_CATEGORIES, gk_epsg, synth_county, write_county

__all__ = ["INDUSTRIES", "LAYERS", "POI_CATEGORIES", "gk_epsg", "synth_county", "write_county"]
