"""Vocabularies, sizes and array types shared by every stage of the generator.

Why one module: the sizes (mean village area, parcel spacing, street spacing) tune stages that
live in different modules, and the vocabularies (layer names, township kinds, industries, POI
categories) are both part of the package's face and what the stages write into the columns.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

#: The layers :func:`synth_county` returns, in the order :func:`write_county` writes them.
LAYERS: tuple[str, ...] = ("townships", "villages", "villager_groups", "buildings", "roads", "water", "pois")

#: CGCS2000 geographic: the CRS every output layer is in (lon/lat as GDAL writes it).
GEOGRAPHIC_EPSG = 4490

#: Values of the ``kind`` column of townships, and of the ``industry`` column of villages.
TOWNSHIP_KINDS = ("subdistrict", "town", "township")  # 街道, 镇, 乡
INDUSTRIES = (
    "agriculture", "tea", "fruit", "fishery", "forestry",
    "mining", "manufacturing", "tourism", "commerce", "services",
)
POI_CATEGORIES = ("school", "kindergarten", "hospital", "clinic", "mine", "gated_compound")

# ---------------------------------------------------------------- sizes (metres)
RURAL_M2 = 11.0e6  # mean area of a rural village: 8-12 km2 per village on average overall
URBAN_M2 = 0.8e6  # mean area of an urban community
GROUP_M2 = 1.5e6  # mean area of a rural villager group
MARGIN = 200.0  # seeds keep this far inside the outline
GHOST_SPACING = 700.0  # spacing of the seeds that close the diagram off outside
ATOM_RURAL = 600.0  # parcel spacing in the countryside
ATOM_URBAN = 200.0  # parcel spacing in towns
EDGE_STEP = 120.0  # boundaries are densified to at most this spacing before the warp
STREET = 200.0  # urban street spacing
MAX_VILLAGES_PER_TOWNSHIP = 400  # average; keeps village codes within 3 digits
MAX_HOUSEHOLDS_PER_VILLAGE = 5000  # average; beyond this the county is not plausible

Array = NDArray[np.float64]
IArray = NDArray[np.int64]
BArray = NDArray[np.bool_]
GArray = NDArray[np.object_]

#: Attribute columns of a line or point layer, by column name.
Attrs = dict[str, NDArray[np.object_]]
