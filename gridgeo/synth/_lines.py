"""Lines in the landscape: bent roads, meandering rivers and streams, and clipping to the county.

:func:`wiggly` bends a straight line sideways (roads still meet exactly at their ends),
:func:`meander` draws a sine-generated channel (Langbein & Leopold), :func:`draw_water` puts
rivers across the county and streams flowing towards them. Roads are in :mod:`gridgeo.synth._roads`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from gridgeo.synth._arrays import prepared, ragged_lines, sample_in
from gridgeo.synth._constants import Array, Attrs, GArray
from gridgeo.synth._names import Names


@dataclass
class Lines:
    """Lines with their attribute columns, in the metric CRS."""

    geometry: GArray
    attrs: dict[str, NDArray[np.object_]]


def wiggly(rng: np.random.Generator, a: Array, b: Array, spacing: float, amp: float) -> GArray:
    """Lines from ``a`` to ``b`` bent sideways by a few random half-sine modes.

    Why: straight roads look synthetic; the offset is zero at both ends so
    roads still meet exactly at seats and village centres.
    """
    n = len(a)
    if n == 0:
        return np.empty(0, dtype=object)
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    npts = np.maximum(2, np.ceil(length / spacing).astype(np.int64) + 1)
    off = np.r_[0, np.cumsum(npts)]
    edge = np.repeat(np.arange(n), npts)
    k = np.arange(off[-1]) - off[edge]
    t = k / (npts[edge] - 1)
    coef = rng.normal(0.0, 1.0, (n, 3)) / np.array([1.0, 2.0, 3.0])
    modes = np.sin(np.pi * t[:, None] * np.array([1.0, 2.0, 3.0])[None, :])
    shift = amp * length[edge] * (coef[edge] * modes).sum(axis=1)
    nx = -d[:, 1] / np.maximum(length, 1e-9)
    ny = d[:, 0] / np.maximum(length, 1e-9)
    px = a[edge, 0] + t * d[edge, 0] + shift * nx[edge]
    py = a[edge, 1] + t * d[edge, 1] + shift * ny[edge]
    last = off[1:] - 1
    px[last], py[last] = b[:, 0], b[:, 1]
    return ragged_lines(np.c_[px, py], off)


def meander(
    rng: np.random.Generator,
    start: Array,
    heading: Array,
    length: Array,
    *,
    step: float,
    wavelength: tuple[float, float],
    swing: float,
) -> GArray:
    """Sine-generated curves (Langbein & Leopold): the heading oscillates along the channel.

    Why: this is the classic model of a meandering river; the mean direction
    stays ``heading`` so a river still crosses the county.
    """
    n = len(start)
    if n == 0:
        return np.empty(0, dtype=object)
    npts = np.maximum(2, np.ceil(length / step).astype(np.int64) + 1)
    off = np.r_[0, np.cumsum(npts)]
    line = np.repeat(np.arange(n), npts)
    k = np.arange(off[-1]) - off[line]
    s = k * step
    lam1 = rng.uniform(*wavelength, n)
    lam2 = lam1 * rng.uniform(3.0, 6.0, n)
    ph1 = rng.uniform(0, 2 * np.pi, n)
    ph2 = rng.uniform(0, 2 * np.pi, n)
    theta = (
        heading[line]
        + swing * np.sin(2 * np.pi * s / lam1[line] + ph1[line])
        + 0.4 * swing * np.sin(2 * np.pi * s / lam2[line] + ph2[line])
    )
    dx = np.where(k > 0, step * np.cos(theta), 0.0)
    dy = np.where(k > 0, step * np.sin(theta), 0.0)
    cx = np.cumsum(dx)
    cy = np.cumsum(dy)
    base = off[:-1]
    x = start[line, 0] + cx - cx[base][line]
    y = start[line, 1] + cy - cy[base][line]
    return ragged_lines(np.c_[x, y], off)


def clip_lines(lines: GArray, attrs: Attrs, area: shapely.Geometry) -> tuple[GArray, Attrs]:
    """Clip lines to ``area`` (prepared); only lines that leave it are intersected.

    Why only those: intersecting every line with a county outline of tens of
    thousands of vertices would dominate the run time at province scale.
    """
    with prepared(np.array([area], dtype=object)):
        inside = shapely.contains(area, lines)
    out = lines.copy()
    if (~inside).any():
        out[~inside] = shapely.intersection(lines[~inside], area)
    parts, idx = shapely.get_parts(out, return_index=True)
    keep = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 1.0)
    parts, idx = parts[keep], idx[keep]
    return parts, {k: v[idx] for k, v in attrs.items()}


# ---------------------------------------------------------------- water


def draw_water(
    rng: np.random.Generator, county: shapely.Geometry, names: Names, *, radius: float, villages: int
) -> tuple[Lines, Array]:
    """Meandering rivers across the county and streams flowing towards them."""
    n_rivers = 2 + villages // 2000
    heading = rng.uniform(0, 2 * np.pi, n_rivers)
    core = shapely.buffer(county, -0.3 * radius, quad_segs=16)  # Geometry.buffer's default
    through = sample_in(rng, core if shapely.area(core) > 0.05 * shapely.area(county) else county, n_rivers)
    span = 2.6 * radius
    start = through - span / 2 * np.c_[np.cos(heading), np.sin(heading)]
    rivers = meander(
        rng, start, heading, np.full(n_rivers, span * 1.25), step=100.0, wavelength=(2500.0, 5000.0), swing=0.9
    )
    river_pts = shapely.get_coordinates(shapely.segmentize(rivers, 150.0))
    n_streams = max(2, villages // 8)
    src = sample_in(rng, county, n_streams)
    d, i = cKDTree(river_pts).query(src)
    target = river_pts[i]
    length = np.minimum(d, 9000.0) * 1.15
    head = np.arctan2(target[:, 1] - src[:, 1], target[:, 0] - src[:, 0])
    streams = meander(rng, src, head, length, step=50.0, wavelength=(600.0, 1500.0), swing=0.6)
    r_roots = names.take(n_rivers)
    s_roots = names.take(n_streams)
    r_suffix = np.array(["河", "江", "水"], dtype=object)[rng.integers(0, 3, n_rivers)]
    s_suffix = np.array(["溪", "水", "港"], dtype=object)[rng.integers(0, 3, n_streams)]
    geoms = np.r_[rivers, streams]
    attrs = {
        "waterway": np.array(["river"] * n_rivers + ["stream"] * n_streams, dtype=object),
        "name": np.r_[
            np.array([a + b for a, b in zip(r_roots, r_suffix, strict=True)], dtype=object),
            np.array([a + b for a, b in zip(s_roots, s_suffix, strict=True)], dtype=object),
        ],
    }
    geoms, attrs = clip_lines(geoms, attrs, county)
    keep = np.ones(len(geoms), bool)
    keep[attrs["waterway"] == "stream"] = shapely.length(geoms[attrs["waterway"] == "stream"]) > 300.0
    inside_pts = river_pts[shapely.contains_xy(county, river_pts[:, 0], river_pts[:, 1])]
    if len(inside_pts) == 0:
        inside_pts = river_pts
    return Lines(geoms[keep], {k: v[keep] for k, v in attrs.items()}), inside_pts
