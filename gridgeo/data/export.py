"""County tables out: the layers of a county GeoPackage as Excel sheets or CSV files, without geometry.

Why: townships, villages and grid workers keep their rosters and registers in Excel; what a build made
(the units of every level, which point, grid, village and township each household belongs to, the people
responsible for each unit) has to reach them as tables, not as a GeoPackage they cannot open. Every layer is
exported by its columns, whatever they are, so an attribute table without geometry (the ``people`` roster,
issue 12) goes out like the levels. A layer with geometry gets a representative point (inside a polygon, on
a line, the point itself) as ``lon``/``lat`` in the layer's geographic CRS (EPSG:4490 for a CGCS2000 build),
computed in the metric CRS (:func:`gridgeo.data.crs.metric_crs`), so staff can find a unit on a web map.

Chinese headers (``chinese=True``) come from :data:`gridgeo.data.aliases.FIELD_ALIASES`, the table the
GeoPackage's field aliases come from. Every file is written to a temporary name and moved into place only
when all of them are written (:func:`gridgeo.data.io.atomic_path`).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from gridgeo.data import crs as _crs
from gridgeo.data.aliases import LAYER_TITLES, chinese_headers
from gridgeo.data.io import atomic_path, list_layers
from gridgeo.data.tables import column_letter
from gridgeo.errors import FileFormatError, LayerNotFoundError, OutputError, UsageError, raise_pending

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "SHEET_ROWS", "export_tables", "read_unit_table", "table_layers"]

FORMATS: tuple[str, ...] = ("xlsx", "csv")
#: rows an Excel sheet holds below its header (1,048,576 in all)
SHEET_ROWS = 1_048_575
_SQLITE_MAGIC = b"SQLite format 3\x00"
#: the SQLite header's application_id (bytes 68-71) of a GeoPackage: GPKG since 1.2, GP10 / GP11 before
_GPKG_IDS = (b"GPKG", b"GP11", b"GP10")
_DECIMALS = 7  # lon/lat to 1e-7 degree (about 1 cm), as the build rounds its output
_BAD_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")


def table_layers(path: str | Path, wanted: Sequence[str] | None = None) -> list[str]:
    """The layers of the GeoPackage ``path`` to export: all of them (file order), or ``wanted`` checked.

    Raises
    ------
    FileFormatError
        ``path`` is missing or not a GeoPackage.
    LayerNotFoundError
        A ``wanted`` layer is not in the file (the message lists those that are).
    """
    p = Path(path)
    if not p.is_file():
        raise FileFormatError("no such file" if not p.exists() else "is a directory, not a file", path=p)
    with p.open("rb") as fh:
        head = fh.read(100)  # the SQLite header
    if p.suffix.lower() != ".gpkg" or not head.startswith(_SQLITE_MAGIC) or head[68:72] not in _GPKG_IDS:
        raise FileFormatError("not a GeoPackage (export reads the .gpkg a build writes)", path=p)
    names = list_layers(p)
    if wanted is None:
        return names
    missing = [w for w in wanted if w not in names]
    if missing:
        raise LayerNotFoundError(f"no layer {', '.join(map(repr, missing))}; layers are {', '.join(names)}", path=p)
    return list(dict.fromkeys(wanted))


def read_unit_table(path: str | Path, layer: str) -> pd.DataFrame:
    """One layer as a table: its columns, plus ``lon``/``lat`` of a representative point when it has geometry."""
    p = Path(path)
    try:
        df = pyogrio.read_dataframe(p, layer=layer)
    except Exception as exc:  # pyogrio raises several unrelated types
        raise FileFormatError(f"layer {layer!r}: cannot read: {' '.join(str(exc).split())}", path=p) from exc
    raise_pending()
    if not isinstance(df, gpd.GeoDataFrame):
        return pd.DataFrame(df)
    return _with_lonlat(df, p, layer)


def _with_lonlat(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> pd.DataFrame:
    """``gdf`` without its geometry, with a representative point's lon/lat (empty for a missing geometry)."""
    geoms = gdf.geometry
    out = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
    if gdf.crs is None:
        log.warning("%s: layer %s has no CRS; exported without lon/lat", path, layer)
        return out
    lon_col, lat_col = _free("lon", out.columns), _free("lat", out.columns)
    lon = np.full(len(gdf), np.nan)
    lat = np.full(len(gdf), np.nan)
    ok = (~(geoms.isna() | geoms.is_empty)).to_numpy()
    if ok.any():
        geo_crs = gdf.crs if gdf.crs.is_geographic else gdf.crs.geodetic_crs
        present = geoms[ok]
        if (present.geom_type == "Point").all():
            pts = present.to_crs(geo_crs)
        else:  # a point inside the polygon, found where distances are metres
            pts = present.to_crs(_crs.metric_crs(present)).representative_point().to_crs(geo_crs)
        lon[ok] = np.round(pts.x.to_numpy(), _DECIMALS)
        lat[ok] = np.round(pts.y.to_numpy(), _DECIMALS)
    out[lon_col] = lon
    out[lat_col] = lat
    return out


def _free(name: str, columns: pd.Index) -> str:
    """``name``, or ``name_geom`` when the layer already has a column ``name`` (a register's own lon, say)."""
    return name if name not in columns else f"{name}_geom"


def export_tables(
    path: str | Path,
    out_dir: str | Path,
    *,
    fmt: str = "xlsx",
    chinese: bool = False,
    layers: Sequence[str] | None = None,
) -> list[Path]:
    """Export the layers of the county GeoPackage ``path`` into ``out_dir``.

    Parameters
    ----------
    fmt
        ``xlsx``: one workbook ``STEM.xlsx``, one sheet per layer; ``csv``: one ``STEM_LAYER.csv`` per layer,
        UTF-8 with a byte-order mark.
    chinese
        Chinese headers (and sheet names) from the one alias table, instead of the column names.
    layers
        The layers to export (default: every layer, in file order).

    Returns
    -------
    list of Path
        The files written.
    """
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    src = Path(path)
    names = table_layers(src, layers)
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise OutputError(f"cannot write into {out}: not a directory")
    tables = {name: read_unit_table(src, name) for name in names}
    if fmt == "xlsx":
        target = out / f"{src.stem}.xlsx"
        _check_sheet_rows(tables, src)
        with atomic_path(target) as tmp:
            _write_xlsx(tables, tmp, chinese=chinese)
        return [target]
    targets = [out / f"{src.stem}_{name}.csv" for name in names]
    with contextlib.ExitStack() as stack:  # every CSV moved into place only when all are written
        for target, (name, df) in zip(targets, tables.items(), strict=True):
            tmp = stack.enter_context(atomic_path(target))
            _write_csv(df, tmp, chinese=chinese)
            log.info("%s: %s, %d rows", target, name, len(df))
    return targets


def _check_sheet_rows(tables: dict[str, pd.DataFrame], src: Path) -> None:
    big = {n: len(df) for n, df in tables.items() if len(df) > SHEET_ROWS}
    if big:
        raise UsageError(f"{src}: layer {', '.join(f'{n} ({k:,} rows)' for n, k in big.items())} exceeds an Excel "
                         f"sheet's {SHEET_ROWS:,} rows; export it with --format csv")


def _write_csv(df: pd.DataFrame, path: Path, *, chinese: bool) -> None:
    # UTF-8 with a BOM ("utf-8-sig"): Excel on a Chinese Windows opens a CSV without a BOM in the system code
    # page (GBK), which turns every Chinese name and header into mojibake; with the BOM it reads UTF-8.
    # Codes stay text in the file; Excel still shows 12+ digit codes as numbers when it opens a CSV directly
    # (the XLSX keeps them text), which the README says.
    out = df.copy()
    if chinese:
        out.columns = chinese_headers(out.columns)
    out.to_csv(path, index=False, encoding="utf-8-sig")


def _write_xlsx(tables: dict[str, pd.DataFrame], path: Path, *, chinese: bool) -> None:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    used: set[str] = set()
    for name, df in tables.items():
        ws = wb.create_sheet(_sheet_name(LAYER_TITLES.get(name, name) if chinese else name, used))
        headers = chinese_headers(df.columns) if chinese else [str(c) for c in df.columns]
        for i, h in enumerate(headers):
            ws.column_dimensions[column_letter(i)].width = min(40, max(8, 2 * len(h) + 2))
        ws.freeze_panes = "A2"
        ws.append([_bold(ws, h) for h in headers])
        for row in _rows(df, name):
            ws.append([_text_cell(ws, v) if isinstance(v, str) and v.startswith("=") else v for v in row])
        raise_pending()
    wb.save(path)


def _sheet_name(title: str, used: set[str]) -> str:
    """An Excel sheet name for ``title``: at most 31 characters, none of ``[]:*?/\\``, unique in the workbook."""
    base = _BAD_SHEET_CHARS.sub("_", title)[:31] or "layer"
    name, i = base, 2
    while name.lower() in used:
        suffix = f"_{i}"
        name, i = base[: 31 - len(suffix)] + suffix, i + 1
    used.add(name.lower())
    return name




def _bold(ws: Any, value: str) -> Any:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    cell = WriteOnlyCell(ws, value=value)
    cell.font = Font(bold=True)
    return cell


def _text_cell(ws: Any, value: str) -> Any:
    """A cell that holds ``value`` as text: openpyxl would store a string starting with ``=`` as a formula."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"
    return cell


def _rows(df: pd.DataFrame, layer: str) -> Iterator[tuple[Any, ...]]:
    """The rows of ``df`` as Python values openpyxl stores (None for missing, text for dates with a zone)."""
    columns = [_cells(df[c], layer, str(c)) for c in df.columns]
    yield from zip(*columns, strict=True)


def _cells(col: pd.Series, layer: str, name: str) -> list[Any]:
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    if isinstance(col.dtype, pd.DatetimeTZDtype):  # Excel has no time zones: ISO 8601 text keeps the offset
        return [None if pd.isna(v) else v.isoformat() for v in col]
    values = [None if _missing(v) else v for v in col.tolist()]
    if col.dtype == object or pd.api.types.is_string_dtype(col.dtype):
        bad = sum(1 for v in values if isinstance(v, str) and ILLEGAL_CHARACTERS_RE.search(v))
        if bad:  # control characters Excel cannot store: removed, and said
            log.warning("layer %s, column %s: control characters removed from %d values (Excel cannot store them)",
                        layer, name, bad)
            values = [ILLEGAL_CHARACTERS_RE.sub("", v) if isinstance(v, str) else v for v in values]
    return values


def _missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and np.isnan(value)
