"""The county pipeline: townships → blocks → villages → grids, grid points and exclusive grids.

``build`` runs the whole county (``gridgeo build``) from a ``rules`` file (the county's policy,
TOML); ``blocks`` groups villages into blocks; ``village`` draws one village's levels in stages;
``units`` cuts a village into street-block units; ``codes`` numbers parts in reading order and
keeps codes stable across rebuilds.

May import: :mod:`gridgeo.data`, :mod:`gridgeo.partition`, :mod:`gridgeo.errors`,
:mod:`gridgeo._geom`.
"""
