"""The pairing's tables made from the scopes' results, and written atomically (GeoPackage or CSV).

Both writers go through :func:`gridgeo.data.io.atomic_path`: a failed or interrupted write leaves no
half-written file and an existing output untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyogrio

from gridgeo.data.io import atomic_path
from gridgeo.errors import raise_pending
from gridgeo.people._pair_input import Existing, Households, Members

if TYPE_CHECKING:
    from gridgeo.people.pairing import _Collect


def _cat(parts: Sequence[tuple[np.ndarray, ...]], width: int) -> list[np.ndarray]:
    if not parts:
        return [np.zeros(0, dtype=np.int64) for _ in range(width)]
    return [np.concatenate([p[k] for p in parts]) for k in range(width)]


def tables(acc: _Collect, hh: Households, mem: Members, existing: Existing, *, scope: str
           ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``pairs``, ``loads``, ``unpaired`` and ``dropped`` (see :class:`gridgeo.people.PairingResult`)."""
    h, m, n, d, k = _cat(acc.pair, 5)
    order = np.lexsort((m, h))
    h, m, n, d, k = h[order], m[order], n[order], d[order].astype(float), k[order].astype(bool)
    pairs = pd.DataFrame({"source_id": hh.ids[h].astype(str), "person_id": mem.ids[m].astype(str),
                          "households": n.astype(np.int64), "distance_m": np.round(d, 1), "kept": k})
    loads = _loads(m, n, d, k, mem=mem, acc=acc)
    lh, ln, lr = _cat(acc.left_rows, 3)
    order = np.argsort(lh, kind="stable")
    lh, ln, lr = lh[order].astype(np.int64), ln[order], lr[order]
    unpaired = pd.DataFrame({"source_id": hh.ids[lh].astype(str), "households": ln.astype(np.int64),
                             "grid": hh.grid[lh], "village": hh.village[lh], "reason": lr.astype(str)})
    oh, om, _on = _cat(acc.over, 3)
    over = pd.DataFrame({"source_id": hh.ids[oh.astype(np.int64)].astype(str),
                         "person_id": mem.ids[om.astype(np.int64)].astype(str),
                         "reason": "member full (own capacity)"})
    dropped = pd.concat([existing.dropped.astype({"source_id": str, "person_id": str}), over], ignore_index=True)
    return pairs, loads, unpaired, dropped


def _loads(m: np.ndarray, n: np.ndarray, d: np.ndarray, k: np.ndarray, *, mem: Members, acc: _Collect
           ) -> pd.DataFrame:
    """One row per member, in roster order."""
    nm = len(mem.ids)
    count = np.bincount(m, weights=n, minlength=nm).astype(np.int64)
    kept = np.bincount(m[k], weights=n[k], minlength=nm).astype(np.int64)
    dd = np.where(np.isnan(d), 0.0, d)
    total = np.bincount(m, weights=dd * n, minlength=nm)
    far = np.zeros(nm)
    np.maximum.at(far, m, dd)
    cap = pd.array([None if c < 0 else int(c) for c in mem.capacity], dtype="Int64")
    return pd.DataFrame({
        "person_id": mem.ids.astype(str), "role": mem.role, "scope": mem.scope, "households": count,
        "kept": kept, "capacity": cap, "effective_capacity": acc.effective,
        "total_distance_m": np.round(total, 1), "max_distance_m": np.round(far, 1), "located": mem.located,
    })


def write_gpkg(layers: dict[str, pd.DataFrame], path: Path) -> None:
    """Every layer into one GeoPackage (a table without geometry as an attribute table), atomically."""
    with atomic_path(path) as tmp:
        for name, frame in layers.items():
            pyogrio.write_dataframe(frame, tmp, layer=name, driver="GPKG", append=tmp.exists())
            raise_pending()


def write_csvs(tables_: dict[str, pd.DataFrame], directory: Path) -> list[Path]:
    """One UTF-8 CSV (with a BOM, for Excel) per table in ``directory``, each atomically."""
    if directory.exists() and not directory.is_dir():
        from gridgeo.errors import UsageError

        raise UsageError(f"{directory}: CSV output goes to a directory (or give a .gpkg)")
    out = []
    for name, frame in tables_.items():
        target = directory / f"{name}.csv"
        with atomic_path(target) as tmp:
            frame.to_csv(tmp, index=False, encoding="utf-8-sig")
        out.append(target)
    return out
