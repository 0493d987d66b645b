"""The village fingerprint: a digest of everything one village's build depends on.

``gridgeo build --previous`` takes a village's grids and points from the old
build when its fingerprint (stored as ``build_hash`` on the villages layer)
is unchanged. So the fingerprint must cover every input: it is derived from
:class:`~gridgeo.county.village.VillageTask`'s fields *by construction*
(:func:`dataclasses.fields`), so a field added to the task is hashed without
anyone remembering to list it. Only the fields in :data:`EXCLUDED` are left
out, each for a stated reason.

Each value is hashed by its type, with a type tag and a length so that no two
different values give the same byte stream: geometries as WKB, numpy arrays
as dtype, shape and bytes (object arrays element by element), mappings by
sorted key, sequences in order, scalars by ``repr``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import shapely

from gridgeo._geom import is_geometry_array

if TYPE_CHECKING:
    from gridgeo.county.village import VillageTask

__all__ = ["EXCLUDED", "FINGERPRINT_VERSION", "LATER", "fingerprint", "hashed_fields"]

#: Bump when the algorithm (or the hashing) changes, so an old build's villages are not taken as current.
FINGERPRINT_VERSION = 2

#: Task fields that are not inputs of the village's result, with the reason.
EXCLUDED: dict[str, str] = {
    "previous": "the earlier build's grids and points (--previous) steer a re-drawn village towards its old "
                "parts, but a village is only taken from that build when its inputs are unchanged: hashing "
                "the old parts would make every village look changed once it was rebuilt",
}


#: Task fields added after :data:`FINGERPRINT_VERSION` 2 (the county policy: merged groups, limits, targets;
#: micro-grids and lanes).
#: Each is hashed only when it differs from its default, so a village built before they existed, whose
#: rules do not use them, keeps its fingerprint and ``--previous`` still takes it from the old build.
LATER: tuple[str, ...] = ("merge_groups", "grid_limits", "point_limits", "persons_per_household",
                          "engine_grid_bounds", "engine_point_bounds", "grid_count", "point_count", "sub")


def hashed_fields() -> tuple[str, ...]:
    """The names of the task fields the fingerprint covers, in declaration order."""
    from gridgeo.county.village import VillageTask

    return tuple(f.name for f in dataclasses.fields(VillageTask) if f.name not in EXCLUDED)


def fingerprint(t: VillageTask) -> str:
    """A digest of everything a village's build depends on (every field but :data:`EXCLUDED`).

    Equal digests mean the build would come out the same, so a rebuild with
    ``--previous`` can take the village's grids and points from the old file.
    """
    h = hashlib.blake2b(digest_size=16)
    _put(h, FINGERPRINT_VERSION)
    defaults = _defaults()
    for name in hashed_fields():
        value = getattr(t, name)
        if name in LATER and value == defaults[name]:
            continue
        _put(h, name)
        _put(h, value)
    return h.hexdigest()


def _defaults() -> dict[str, Any]:
    """The default of each :data:`LATER` field of the task."""
    from gridgeo.county.village import VillageTask

    out: dict[str, Any] = {}
    for f in dataclasses.fields(VillageTask):
        if f.name in LATER:
            out[f.name] = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return out


def _tag(h: Any, tag: bytes, n: int) -> None:
    h.update(_tagged(tag, n))


def _tagged(tag: bytes, n: int) -> bytes:
    return tag + n.to_bytes(8, "little")


def _put(h: Any, x: object) -> None:
    """Feed ``x`` to ``h`` by its type (see the module notes)."""
    if x is None:
        _tag(h, b"N", 0)
    elif isinstance(x, shapely.Geometry):
        wkb = shapely.to_wkb(x)
        _tag(h, b"W", len(wkb))
        h.update(wkb)
    elif isinstance(x, np.ndarray):
        _put_array(h, x)
    elif isinstance(x, Mapping):
        _tag(h, b"M", len(x))
        for k in sorted(x, key=repr):
            _put(h, k)
            _put(h, x[k])
    elif isinstance(x, list | tuple):
        _tag(h, b"L", len(x))
        for v in x:
            _put(h, v)
    elif dataclasses.is_dataclass(x) and not isinstance(x, type):
        _tag(h, b"D", len(dataclasses.fields(x)))
        _put(h, type(x).__qualname__)
        for f in dataclasses.fields(x):
            _put(h, f.name)
            _put(h, getattr(x, f.name))
    else:
        r = repr(x).encode()
        _tag(h, b"S", len(r))
        h.update(r)


def _put_array(h: Any, a: np.ndarray) -> None:
    if a.dtype == object:
        _tag(h, b"O", a.size)
        flat = a.reshape(-1)
        if is_geometry_array(flat):
            _put_geometries(h, flat)
            return
        for v in flat:
            _put(h, v)
        return
    c = np.ascontiguousarray(a)
    _put(h, (c.dtype.str, c.shape))
    data = c.tobytes()
    _tag(h, b"A", len(data))
    h.update(data)


def _put_geometries(h: Any, geoms: np.ndarray) -> None:
    """Feed geometries (or None) to ``h`` exactly as :func:`_put` would one by one.

    Why: a province's villages hold 3M buildings; one vectorised WKB call and
    one update per village, instead of a call and two updates per building,
    take the fingerprints from a minute to seconds, with the same digests.
    """
    h.update(b"".join(_tagged(b"N", 0) if w is None else _tagged(b"W", len(w)) + w
                      for w in shapely.to_wkb(geoms).tolist()))
