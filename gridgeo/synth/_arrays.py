"""Array and geometry helpers every stage uses: fields, ranks, apportioning, point sampling.

Why vectorised helpers: a province-sized run has millions of parcels, slots and buildings, so
every stage works on whole arrays; these are the few operations they share (runs of equal keys,
largest-remainder rounding, Lloyd relaxation, rectangles and lines from ragged coordinates).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from gridgeo.synth._constants import Array, GArray, IArray


class Field:
    """A smooth random scalar field: a sum of plane waves.

    Why plane waves: they are cheap to evaluate on millions of points at once,
    deterministic, and their gradient is bounded analytically (sum of
    amplitude times wavenumber), which is what makes the boundary warp provably
    injective.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        n: int,
        wavelength: tuple[float, float],
        origin: tuple[float, float],
    ) -> None:
        angle = rng.uniform(0.0, 2.0 * math.pi, n)
        lam = np.exp(rng.uniform(math.log(wavelength[0]), math.log(wavelength[1]), n))
        k = 2.0 * math.pi / lam
        self.kx = k * np.cos(angle)
        self.ky = k * np.sin(angle)
        self.phase = rng.uniform(0.0, 2.0 * math.pi, n)
        amp = rng.uniform(0.5, 1.0, n)
        self.amp = amp / np.sqrt((amp**2).sum() / 2.0)  # unit standard deviation
        self.origin = origin

    @property
    def max_gradient(self) -> float:
        """An upper bound of the field's gradient norm (per metre)."""
        return float((np.abs(self.amp) * np.hypot(self.kx, self.ky)).sum())

    def __call__(self, x: Array, y: Array) -> Array:
        x = np.asarray(x, dtype=float) - self.origin[0]
        y = np.asarray(y, dtype=float) - self.origin[1]
        out = np.zeros(x.shape, dtype=float)
        for kx, ky, ph, a in zip(self.kx, self.ky, self.phase, self.amp, strict=True):
            out += a * np.sin(kx * x + ky * y + ph)
        return out


def group_starts(sorted_keys: NDArray[np.int64]) -> IArray:
    """Start index of every run of equal keys in an already sorted key array."""
    if len(sorted_keys) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def rank_within(sorted_keys: NDArray[np.int64]) -> IArray:
    """Position of every element within its run of equal keys (keys already sorted)."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = group_starts(sorted_keys)
    lengths = np.diff(np.r_[starts, n])
    return np.arange(n) - np.repeat(starts, lengths)


def apportion(totals: IArray, weights: Array, labels: IArray) -> IArray:
    """Split each ``totals[label]`` over the items of that label in proportion to ``weights``.

    Largest-remainder rounding, so every label's parts sum *exactly* to its
    total -- household counts must add up to the requested county total.
    Items of a label whose weights are all zero share equally.
    """
    n_labels = len(totals)
    weights = np.asarray(weights, dtype=float)
    wsum = np.bincount(labels, weights, minlength=n_labels)
    zero = wsum[labels] <= 0
    w = np.where(zero, 1.0, weights)
    wsum = np.bincount(labels, w, minlength=n_labels)
    exact = totals[labels] * (w / wsum[labels])
    base = np.floor(exact).astype(np.int64)
    rest = totals - np.bincount(labels, base, minlength=n_labels).astype(np.int64)
    frac = exact - base
    order = np.lexsort((np.arange(len(labels)), -frac, labels))
    rank = rank_within(labels[order])
    bump = np.zeros(len(labels), dtype=np.int64)
    bump[order] = (rank < rest[labels[order]]).astype(np.int64)
    return base + bump


def reading_rank(group: IArray, x: Array, y: Array, band: Array) -> IArray:
    """Rank of each item within its group in reading order: north to south, west to east.

    Why bands: codes numbered "west to east, north to south" (DESIGN.md) must
    not flip between rows because of a few metres of northing, so items are
    read in horizontal bands about one item high.
    """
    row = np.floor(-np.asarray(y) / np.maximum(band, 1.0)).astype(np.int64)
    order = np.lexsort((np.asarray(x), row, group))
    rank = np.empty(len(group), dtype=np.int64)
    rank[order] = rank_within(np.asarray(group)[order])
    return rank


def sample_in(
    rng: np.random.Generator,
    poly: shapely.Geometry,
    n: int,
    density: Callable[[Array, Array], Array] | None = None,
) -> Array:
    """``n`` random points inside ``poly`` (uniform, or with probability ∝ ``density`` ≤ 1)."""
    shapely.prepare(poly)
    x0, y0, x1, y1 = shapely.bounds(poly).tolist()
    out: list[Array] = []
    have = 0
    while have < n:
        m = max(1024, int(1.6 * (n - have) * (x1 - x0) * (y1 - y0) / max(float(shapely.area(poly)), 1.0)))
        x = rng.uniform(x0, x1, m)
        y = rng.uniform(y0, y1, m)
        keep = shapely.contains_xy(poly, x, y)
        if density is not None:
            keep &= rng.uniform(0.0, 1.0, m) < density(x, y)
        pts = np.c_[x[keep], y[keep]]
        out.append(pts)
        have += len(pts)
    return np.concatenate(out)[:n]


def lloyd(seeds: Array, cloud: Array, rounds: int, n_fixed: int = 0) -> Array:
    """Move seeds to the centroids of their cloud points, ``rounds`` times.

    Why: Lloyd relaxation turns clumpy random seeds into evenly spread ones (a
    centroidal Voronoi tessellation) -- township seats and village centres in
    the real world are spread like that.  The first ``n_fixed`` seeds stay put
    (seats and urban communities) but still claim their share of the cloud.
    """
    seeds = seeds.copy()
    n = len(seeds)
    for _ in range(rounds):
        _, lab = cKDTree(seeds).query(cloud, workers=-1)
        cnt = np.bincount(lab, minlength=n)
        sx = np.bincount(lab, cloud[:, 0], minlength=n)
        sy = np.bincount(lab, cloud[:, 1], minlength=n)
        move = cnt > 0
        move[:n_fixed] = False
        seeds[move, 0] = sx[move] / cnt[move]
        seeds[move, 1] = sy[move] / cnt[move]
    return seeds


def snap_inside(seeds: Array, region: shapely.Geometry, cloud: Array) -> Array:
    """Replace seeds that left a non-convex ``region`` by their nearest cloud point."""
    out = seeds.copy()
    bad = ~shapely.contains_xy(region, out[:, 0], out[:, 1])
    if bad.any():
        _, i = cKDTree(cloud).query(out[bad])
        out[bad] = cloud[i]
    return out


def rects(cx: Array, cy: Array, length: Array, depth: Array, angle: Array) -> Array:
    """Corner coordinates (n, 5, 2) of rotated rectangles, closed."""
    c, s = np.cos(angle), np.sin(angle)
    hl, hd = length / 2.0, depth / 2.0
    u = np.array([-1.0, 1.0, 1.0, -1.0, -1.0])
    v = np.array([-1.0, -1.0, 1.0, 1.0, -1.0])
    du = hl[:, None] * u[None, :]
    dv = hd[:, None] * v[None, :]
    out = np.empty((len(cx), 5, 2))
    out[:, :, 0] = cx[:, None] + du * c[:, None] - dv * s[:, None]
    out[:, :, 1] = cy[:, None] + du * s[:, None] + dv * c[:, None]
    return out


def polygons_from_rects(coords: Array) -> GArray:
    """Polygons from (n, 5, 2) ring coordinates; from_ragged_array is ~4x faster than polygons()."""
    n = len(coords)
    if n == 0:
        return np.empty(0, dtype=object)
    ring_off = np.arange(0, 5 * n + 1, 5)
    poly_off = np.arange(n + 1)
    return shapely.from_ragged_array(shapely.GeometryType.POLYGON, coords.reshape(-1, 2), (ring_off, poly_off))


def ragged_lines(points: Array, offsets: IArray) -> GArray:
    """LineStrings from concatenated ``points`` split at ``offsets`` (len = n_lines + 1)."""
    if len(offsets) <= 1:
        return np.empty(0, dtype=object)
    return shapely.from_ragged_array(shapely.GeometryType.LINESTRING, points, (offsets,))


def map_unique(coords: Array, fn: Callable[[Array], Array]) -> Array:
    """Apply ``fn`` to the distinct coordinates only, then scatter back.

    Why: vectorised maths (SIMD sin, chunked loops) may round the same input
    differently at different array positions; mapping each distinct vertex
    once guarantees that a vertex shared by two polygons stays shared.
    """
    c = np.ascontiguousarray(coords, dtype=float).view(np.complex128).ravel()
    uniq, inv = np.unique(c, return_inverse=True)
    out = fn(np.c_[uniq.real, uniq.imag])
    return out[inv.ravel()]


@contextmanager
def prepared(geoms: GArray) -> Iterator[GArray]:
    """Prepare geometries for fast predicates, and release the index afterwards.

    Why release: a prepared polygon keeps a segment index alive as long as the
    polygon lives; for 100k+ villager groups that is gigabytes.
    """
    shapely.prepare(geoms)
    try:
        yield geoms
    finally:
        shapely.destroy_prepared(geoms)
