"""Tables counties keep in spreadsheets: CSV and XLSX read with their header checked, placed by coordinates.

Registers of households and rosters of people arrive as Excel workbooks or
CSV exports, not as GIS layers: one header row (often under a title row such
as ``某某村户籍登记表`` merged across the sheet), Chinese column names, text
in GBK when saved by Excel on Chinese Windows. :func:`read_table` reads
them into a DataFrame and refuses what cannot be read unambiguously (a
header with empty or merged cells over data, two columns of one name),
naming the file, the sheet, the cell and what to do; :func:`points_from_table`
makes points from coordinate columns when there are any.

Every row keeps its spreadsheet row number in :data:`ROW` (the header is
row 1 of a CSV; rows are numbered as Excel shows them), so that a row that
cannot be placed or used is reported by the number a user finds it under.
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from gridgeo.errors import CRSError, FileFormatError, LayerNotFoundError, SchemaError

log = logging.getLogger(__name__)

__all__ = ["CSV_SUFFIXES", "ROW", "TABLE_SUFFIXES", "XLSX_SUFFIXES", "coordinate_columns", "points_from_table",
           "read_table", "table_sheets"]

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
XLSX_SUFFIXES = (".xlsx", ".xlsm")
TABLE_SUFFIXES = CSV_SUFFIXES + XLSX_SUFFIXES

#: the column holding each row's number in the file as a user sees it (kept out of every output)
ROW = "_row"

#: coordinate column aliases: (x, y) pairs, lon/lat first; matched case-insensitively
_XY_ALIASES: tuple[tuple[str, str], ...] = (
    ("lon", "lat"), ("lng", "lat"), ("longitude", "latitude"), ("经度", "纬度"), ("x", "y"),
    ("x坐标", "y坐标"), ("东坐标", "北坐标"), ("point_x", "point_y"), ("coord_x", "coord_y"),
)


def table_sheets(path: str | Path) -> list[str]:
    """The sheets of a workbook (one unnamed layer for a CSV), for ``list_layers``."""
    p = Path(path)
    if p.suffix.lower() not in XLSX_SUFFIXES:
        return [p.stem]
    return list(_workbook(p).sheet_names)


def read_table(path: str | Path, *, sheet: str | None = None, encoding: str | None = None) -> pd.DataFrame:
    """Read a CSV or XLSX table: one header row of distinct names, data below (row numbers in :data:`ROW`).

    Parameters
    ----------
    path
        ``.csv``, ``.tsv``, ``.txt`` (comma, tab or semicolon separated) or ``.xlsx``/``.xlsm``.
    sheet
        The workbook's sheet (default: the first that holds data).
    encoding
        A CSV's text encoding. Without it UTF-8 (with or without BOM) is tried,
        then GB18030 (what Excel on Chinese Windows saves as "CSV"), warned.

    Raises
    ------
    FileFormatError
        Not readable as a table; no header; empty or merged header cells over
        data; two columns of one name.
    LayerNotFoundError
        No such sheet.
    """
    p = Path(path)
    if p.suffix.lower() in XLSX_SUFFIXES:
        rows, first, where = _xlsx_rows(p, sheet)
    else:
        rows, first, where = _csv_rows(p, encoding), 1, str(p)
    return _frame(rows, first, where)


# ------------------------------------------------------------------------------ CSV
def _csv_rows(p: Path, encoding: str | None) -> list[list[Any]]:
    raw = p.read_bytes()
    text = _decode(raw, p, encoding)
    try:
        dialect = csv.Sniffer().sniff(text[:20_000], delimiters=",\t;")
    except csv.Error:
        dialect = csv.excel_tab if p.suffix.lower() == ".tsv" else csv.excel
    try:  # pandas' C parser: 6 times the csv module's speed; it refuses ragged rows (a title row), csv does not
        cells = pd.read_csv(io.StringIO(text), header=None, dtype=str, keep_default_na=False, sep=dialect.delimiter,
                            quotechar=dialect.quotechar or '"', skip_blank_lines=False)
        return cells.to_numpy(dtype=object).tolist()  # type: ignore[no-any-return]
    except (pd.errors.ParserError, pd.errors.EmptyDataError):
        pass
    try:
        return [list(r) for r in csv.reader(io.StringIO(text), dialect)]
    except csv.Error as exc:
        raise FileFormatError(f"cannot read as CSV: {exc}", path=p) from exc


def _decode(raw: bytes, p: Path, encoding: str | None) -> str:
    if encoding is not None:
        try:
            return raw.decode(encoding)
        except (LookupError, UnicodeDecodeError) as exc:
            raise FileFormatError(f"cannot decode as {encoding}: {exc}", path=p) from exc
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        text = raw.decode("gb18030")
    except UnicodeDecodeError:
        raise FileFormatError("text is neither UTF-8 nor GBK/GB18030; give its encoding "
                              "([inputs] ... = {path = ..., encoding = \"...\"})", path=p) from None
    log.warning("%s: not UTF-8; read as GBK/GB18030 (Excel's CSV on Chinese Windows). Say encoding = ... in "
                "[inputs] to choose", p)
    return text


# ------------------------------------------------------------------------------ XLSX
def _workbook(p: Path) -> Any:
    """The workbook opened with calamine (Rust): 20 times openpyxl's speed on a register of 90,000 rows."""
    from python_calamine import CalamineWorkbook  # only for workbooks

    try:
        return CalamineWorkbook.from_path(str(p))
    except Exception as exc:  # calamine's own error for anything it cannot read: not a workbook we can read
        raise FileFormatError(f"cannot open as an Excel workbook (.xlsx): {' '.join(str(exc).split())}",
                              path=p) from exc


def _xlsx_rows(p: Path, sheet: str | None) -> tuple[list[list[Any]], int, str]:
    """The sheet's rows as values (formulas as their cached values) from cell A1, so that row numbers and
    column letters are Excel's; the first row's number; where it is."""
    wb = _workbook(p)
    if sheet is not None and sheet not in wb.sheet_names:
        raise LayerNotFoundError(f"no sheet {sheet!r}; sheets are {', '.join(wb.sheet_names)}", path=p)
    names = [sheet] if sheet is not None else list(wb.sheet_names)
    for name in names:
        rows = [list(r) for r in wb.get_sheet_by_name(name).to_python(skip_empty_area=False)]
        if any(any(_filled(v) for v in r) for r in rows):
            return rows, 1, f"{p} (sheet {name})"
    return [], 1, f"{p} (sheet {names[0]})" if names else str(p)


# ------------------------------------------------------------------------------ header and data
def _filled(v: object) -> bool:
    return v is not None and not (isinstance(v, str) and not v.strip()) and not (isinstance(v, float) and np.isnan(v))


def column_letter(i: int) -> str:
    """Excel's letter of the 0-based column ``i`` (A, B, ..., AA)."""
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(i + 1))


def _header_row(rows: list[list[Any]], where: str) -> int:
    """Index of the header: the first filled row, or the one after a title row (one filled cell; warned)."""
    filled = [i for i, r in enumerate(rows) if any(_filled(v) for v in r)]
    if not filled:
        raise FileFormatError("the table is empty (no header row)", path=where)
    h = filled[0]
    if sum(_filled(v) for v in rows[h]) == 1 and len(filled) > 1 and sum(_filled(v) for v in rows[filled[1]]) > 1:
        log.warning("%s: row %d (%r) read as the table's title; the header is row %d", where, h + 1,
                    next(v for v in rows[h] if _filled(v)), filled[1] + 1)
        h = filled[1]
    return h


def _frame(rows: list[list[Any]], first: int, where: str) -> pd.DataFrame:
    h = _header_row(rows, where)
    width = max(len(r) for r in rows)
    header = list(rows[h]) + [None] * (width - len(rows[h]))
    cells = pd.DataFrame([r + [None] * (width - len(r)) for r in rows[h + 1:]], columns=range(width), dtype=object)
    blank = _blank(cells)  # vectorised per column: a register is a million cells
    used = [j for j in range(width) if _filled(header[j]) or not blank[j].all()]
    _check_header(header, used, h + first, where)
    df = cells[used].mask(blank[used])
    df.columns = [str(header[j]).strip() for j in used]
    df[ROW] = np.arange(h + first + 1, h + first + 1 + len(cells))
    keep = ~blank[used].all(axis=1).to_numpy(dtype=bool) if used else np.zeros(len(df), dtype=bool)
    return df[keep].reset_index(drop=True)


def _blank(cells: pd.DataFrame) -> pd.DataFrame:
    """True where a cell is empty: missing, NaN, or text of only spaces (judged once per distinct value)."""
    codes, uniques = pd.factorize(cells.to_numpy(dtype=object).ravel(), use_na_sentinel=True)
    empty = np.asarray([isinstance(u, str) and not u.strip() for u in uniques] + [True], dtype=bool)
    return pd.DataFrame(empty[codes].reshape(cells.shape), index=cells.index, columns=cells.columns)


def _check_header(header: list[Any], used: list[int], row: int, where: str) -> None:
    """Every column with data has a name, and no two the same: else the user must fix the header."""
    blank = [j for j in used if not _filled(header[j])]
    if blank:
        cells = ", ".join(f"{column_letter(j)}{row}" for j in blank[:8])
        raise FileFormatError(f"header row {row} has no name over column(s) with data at {cells}: a merged or "
                              "multi-row header? Give the table one header row with a name in every column",
                              path=where)
    names = [str(header[j]).strip() for j in used]
    seen: dict[str, int] = {}
    for j, n in zip(used, names, strict=True):
        if n in seen:
            raise FileFormatError(f"header row {row}: columns {column_letter(seen[n])} and {column_letter(j)} "
                                  f"are both named {n!r}; rename one", path=where)
        seen[n] = j


# ------------------------------------------------------------------------------ coordinates
def coordinate_columns(columns: list[str], mapping: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """The (x, y) columns: mapped as ``x``/``y`` (or ``lon``/``lat``), else found under their aliases."""
    mapping = dict(mapping or {})
    for xk, yk in (("x", "y"), ("lon", "lat")):
        if xk in mapping and yk in mapping:
            return mapping[xk], mapping[yk]
    lower = {str(c).strip().lower(): c for c in columns}
    for xa, ya in _XY_ALIASES:
        if xa in lower and ya in lower:
            return lower[xa], lower[ya]
    return None


def points_from_table(df: pd.DataFrame, *, where: str, crs: object | None = None,
                      mapping: Mapping[str, str] | None = None) -> gpd.GeoDataFrame:
    """The table with point geometries from its coordinate columns; rows without coordinates get none.

    Lon/lat without a declared CRS are taken as WGS84 (EPSG:4326; CGCS2000
    differs by centimetres). Projected coordinates (beyond ±180/±90) need
    their CRS declared: guessing a Gauss-Krüger zone would misplace every
    household by hundreds of kilometres.

    Raises
    ------
    SchemaError
        A coordinate cell that is not a number (row and column named).
    CRSError
        Projected coordinates with no CRS declared.
    """
    from gridgeo.data.crs import parse_crs

    cols = coordinate_columns(list(df.columns), mapping)
    if cols is None:
        return gpd.GeoDataFrame(df, geometry=[None] * len(df), crs=parse_crs(crs) if crs is not None else None)
    x, y = (_numbers(df, c, where) for c in cols)
    ok = ~(np.isnan(x) | np.isnan(y))
    if crs is None:
        if ok.any() and (np.abs(x[ok]).max() > 180 or np.abs(y[ok]).max() > 90):
            raise CRSError(f"columns {cols[0]!r}/{cols[1]!r} hold projected coordinates (up to "
                           f"{np.abs(x[ok]).max():.0f}, {np.abs(y[ok]).max():.0f}) and no CRS is declared; "
                           "declare it ([inputs] ... = {path = ..., crs = \"EPSG:4527\"})", path=where)
        crs = "EPSG:4326"
        log.info("%s: coordinates in %s/%s taken as WGS84 lon/lat (EPSG:4326)", where, *cols)
    geoms = np.full(len(df), None, dtype=object)
    geoms[ok] = shapely.points(x[ok], y[ok])
    return gpd.GeoDataFrame(df, geometry=list(geoms), crs=parse_crs(crs))


def _numbers(df: pd.DataFrame, col: str, where: str) -> np.ndarray:
    """A coordinate column as floats (blank cells NaN); a cell that is text but not a number is an error."""
    values = df[col]
    out = pd.to_numeric(values.map(lambda v: v.strip() if isinstance(v, str) else v), errors="coerce")
    bad = np.flatnonzero((out.isna() & values.notna()).to_numpy())
    if len(bad):
        i = int(bad[0])
        row = df[ROW].iloc[i] if ROW in df.columns else i
        raise SchemaError(f"row {row}: column {col!r} is {values.iloc[i]!r}, not a number", path=where)
    return out.to_numpy(dtype=float)
