"""Data in: reading, checking and repairing a county's files.

``io`` reads and writes every supported format (GeoJSON, GeoPackage, Shapefile, FlatGeobuf, OSM)
atomically; ``osm`` parses OSM XML/PBF into layers (``_osm_collect``: what the tags mean, the
rows of each layer); ``inputs`` (a package, one private module per stage: extract, townships,
street faces, villages, kinds) turns an OSM extract into a county's input layers; ``schema``
maps real columns onto each layer kind; ``crs`` chooses the metric CRS and converts
GCJ-02/BD-09; ``check`` finds and repairs boundary problems (its rules in ``_check_rules``);
``adjacency`` builds the neighbour graph. Out again: ``aliases`` holds the Chinese display names of the
columns gridgeo writes, ``gpkg_styles`` stores QGIS layer styles and field aliases in a written GeoPackage,
``tables`` reads CSV and XLSX tables (registers, rosters); ``quantities`` reads durations ("4h") and
clock windows ("18:00-21:00") as people write them; ``export`` writes a county file's layers to XLSX or CSV.
``live_index`` holds the spatial index of a layer that changes while it is served (rtree: inserts,
deletes, bbox queries and point lookups under a lock).

May import: :mod:`gridgeo.errors`, :mod:`gridgeo._geom`. Nothing here knows about partitions,
grids or patrols.
"""
