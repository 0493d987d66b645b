"""QGIS layer styles and Chinese field aliases stored in a GeoPackage, so each level opens styled and labelled.

Why in the file: a county's GIS staff open the built GeoPackage in QGIS (3.22 on Debian 12 / Ubuntu LTS);
without styles every level is drawn in a random solid colour, the levels hide one another and nothing is
labelled. QGIS loads the default style of a layer from the ``layer_styles`` table of its GeoPackage when
it opens the layer; the table is written here as QGIS itself creates it (through GDAL, with ``id`` as the
FID column), one default QML style per level (:data:`LEVEL_STYLES`): no fill, an outline colour and width
per level (coarse levels dark and wide, fine ones light and thin), labels by name or code from a scale at
which they stop colliding. Each row also holds an SLD of the same outline and label, for tools that read
SLD (GeoServer).

Field aliases (:data:`gridgeo.data.aliases.FIELD_ALIASES`, the table the Excel export's Chinese headers use)
go twice: into the QML ``<aliases>`` (what QGIS 3.22 reads) and into ``gpkg_data_columns`` (``name`` and
``title``), the GeoPackage schema extension, registered in ``gpkg_extensions`` as ``gpkg_schema`` (what GDAL
3.7+ reads as the fields' alternative names, and newer QGIS through it).

Written with :mod:`sqlite3` after GDAL has closed the file, inside the writer's temporary file
(:func:`gridgeo.data.io.write_layers`), so a failure here leaves no output. Not checked here: how QGIS renders
it (no QGIS in the test environment); ``tests/test_gpkg_styles.py`` checks the structure and that GDAL
opens the file without a warning.
"""

from __future__ import annotations

import logging
import sqlite3
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from gridgeo.data.aliases import FIELD_ALIASES, LAYER_TITLES

log = logging.getLogger(__name__)

__all__ = ["LEVEL_STYLES", "STYLES_TABLE", "LevelStyle", "add_styles", "label_field"]

#: the table QGIS keeps layer styles in (``QgsOgrProviderUtils::saveStyle``)
STYLES_TABLE = "layer_styles"


@dataclass(frozen=True)
class LevelStyle:
    """How one level is drawn and labelled.

    Attributes
    ----------
    colour
        Outline (marker for points) colour as ``"r,g,b"``.
    width_mm
        Outline width (marker size for points) in millimetres on the map.
    labels
        Label fields by preference; the first the layer has is used.
    label_scale
        Labels show at 1:``label_scale`` and closer (the denominator QGIS calls "minimum scale").
    font_pt
        Label size in points.
    visible_scale
        The layer shows at 1:``visible_scale`` and closer; 0 = at every scale.
    fill_alpha
        Fill opacity 0-255 in the outline colour (0 = no fill, so the levels overlay).
    """

    colour: str
    width_mm: float
    labels: tuple[str, ...]
    label_scale: int
    font_pt: float
    visible_scale: int = 0
    fill_alpha: int = 0


#: one style per level a build writes (:data:`gridgeo.county.build.LEVELS`). Households are labelled by their
#: source id, never by a name: registers carry people's names, which a map should not show at every zoom.
LEVEL_STYLES: dict[str, LevelStyle] = {
    "townships": LevelStyle("178,24,43", 1.2, ("name", "code"), 500_000, 12),
    "blocks": LevelStyle("118,42,131", 0.9, ("name", "code"), 200_000, 11),
    "villages": LevelStyle("33,102,172", 0.6, ("name", "code"), 100_000, 10),
    "grids": LevelStyle("26,152,80", 0.4, ("name", "code"), 25_000, 9),
    "points": LevelStyle("244,109,67", 0.25, ("code",), 5_000, 8, visible_scale=50_000),
    "exclusive": LevelStyle("197,27,125", 0.5, ("name", "code"), 10_000, 9, fill_alpha=40),
    "households": LevelStyle("84,84,84", 1.6, ("source_id", "code"), 2_000, 7, visible_scale=25_000),
    # the optional levels below the grids (gridgeo.county.micro), where a build draws them
    "micro_grids": LevelStyle("249,168,37", 0.2, ("code",), 4_000, 7, visible_scale=25_000),
    "lanes": LevelStyle("0,151,167", 0.2, ("name", "code"), 4_000, 7, visible_scale=25_000),
}

_FONT = "Microsoft YaHei"  # 微软雅黑, on every Chinese Windows; QGIS substitutes a CJK font elsewhere
_QML_HEAD = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
_QGIS_VERSION = "3.22.16-Białowieża"

# the DDL QGIS's saveStyle produces through GDAL's GPKG driver (FID=id, the widths it sets)
_CREATE_STYLES = f"""CREATE TABLE IF NOT EXISTS "{STYLES_TABLE}" (
 "id" INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "f_table_catalog" TEXT(256), "f_table_schema" TEXT(256),
 "f_table_name" TEXT(256), "f_geometry_column" TEXT(256), "styleName" TEXT(30), "styleQML" TEXT,
 "styleSLD" TEXT, "useAsDefault" BOOLEAN, "description" TEXT, "owner" TEXT(30), "ui" TEXT(30),
 "update_time" DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"""
# GeoPackage 1.3, annex F.9 (schema extension)
_CREATE_DATA_COLUMNS = """CREATE TABLE IF NOT EXISTS gpkg_data_columns (
 table_name TEXT NOT NULL, column_name TEXT NOT NULL, name TEXT, title TEXT, description TEXT,
 mime_type TEXT, constraint_name TEXT,
 CONSTRAINT pk_gdc PRIMARY KEY (table_name, column_name), CONSTRAINT gdc_tn UNIQUE (table_name, name))"""
_CREATE_CONSTRAINTS = """CREATE TABLE IF NOT EXISTS gpkg_data_column_constraints (
 constraint_name TEXT NOT NULL, constraint_type TEXT NOT NULL, value TEXT, min NUMERIC,
 min_is_inclusive BOOLEAN, max NUMERIC, max_is_inclusive BOOLEAN, description TEXT,
 CONSTRAINT gdcc_ntv UNIQUE (constraint_name, constraint_type, value))"""
_SCHEMA_EXTENSION = "http://www.geopackage.org/spec/#extension_schema"


@dataclass(frozen=True)
class _Table:
    """One table of the GeoPackage as its metadata describes it."""

    name: str
    columns: tuple[str, ...]
    geometry: str | None = None  # geometry column
    geometry_type: str | None = None  # GEOMETRY, POINT, MULTIPOLYGON ...

    @property
    def fields(self) -> tuple[str, ...]:
        """The columns QGIS shows as fields (the FID column too, the geometry column not)."""
        return tuple(c for c in self.columns if c != self.geometry)


def add_styles(path: str | Path) -> list[str]:
    """Store a default QGIS style for each level in ``path`` and Chinese aliases for every known column.

    Parameters
    ----------
    path
        A GeoPackage GDAL has written and closed (the writer's temporary file).

    Returns
    -------
    list of str
        The layers styled (those named like a level in :data:`LEVEL_STYLES`), in file order.
    """
    con = sqlite3.connect(str(path))
    try:
        with con:  # one transaction: all of it or none
            tables = _tables(con)
            styled = [t for t in tables if t.name in LEVEL_STYLES and t.geometry is not None]
            if styled:
                _write_styles(con, styled)
            _write_aliases(con, [t for t in tables if t.name != STYLES_TABLE])
    finally:
        con.close()
    log.debug("%s: styles for %s", path, ", ".join(t.name for t in styled) or "no level")
    return [t.name for t in styled]


def label_field(table_columns: tuple[str, ...] | list[str], level: str) -> str | None:
    """The column ``level``'s labels show: the first of its preferred fields the layer has (None: no label)."""
    return next((c for c in LEVEL_STYLES[level].labels if c in table_columns), None)


def _tables(con: sqlite3.Connection) -> list[_Table]:
    geoms = {str(t): (str(c), str(g).upper()) for t, c, g in con.execute(
        "SELECT table_name, column_name, geometry_type_name FROM gpkg_geometry_columns")}
    out: list[_Table] = []
    for (name,) in con.execute("SELECT table_name FROM gpkg_contents WHERE data_type IN ('features', 'attributes') "
                               "ORDER BY rowid"):
        cols = tuple(str(r[1]) for r in con.execute(f'PRAGMA table_info("{_ident(name)}")'))
        geom, gtype = geoms.get(str(name), (None, None))
        out.append(_Table(str(name), cols, geom, gtype))
    return out


def _ident(name: str) -> str:
    return name.replace('"', '""')


def _write_styles(con: sqlite3.Connection, tables: list[_Table]) -> None:
    con.execute(_CREATE_STYLES)
    con.execute("INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, description, last_change, "
                "srs_id) VALUES (?, 'attributes', ?, '', strftime('%Y-%m-%dT%H:%M:%fZ','now'), 0)",
                (STYLES_TABLE, STYLES_TABLE))
    for t in tables:
        title = LAYER_TITLES.get(t.name, t.name)
        label = label_field(t.columns, t.name)
        con.execute(f'UPDATE "{STYLES_TABLE}" SET useAsDefault = 0 WHERE f_table_name = ?', (t.name,))
        con.execute(f'DELETE FROM "{STYLES_TABLE}" WHERE f_table_name = ? AND styleName = ?', (t.name, t.name))
        con.execute(
            f'INSERT INTO "{STYLES_TABLE}" (f_table_catalog, f_table_schema, f_table_name, f_geometry_column, '
            "styleName, styleQML, styleSLD, useAsDefault, description, owner, ui) "
            "VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, '', NULL)",
            (t.name, t.geometry, t.name, qml(t.name, t.fields, t.geometry_type or "GEOMETRY"),
             sld(t.name, label, t.geometry_type or "GEOMETRY"),
             f"gridgeo: {title} ({t.name}), outlined and labelled by {label or 'nothing'}"),
        )


def _write_aliases(con: sqlite3.Connection, tables: list[_Table]) -> None:
    rows = [(t.name, c, FIELD_ALIASES[c], FIELD_ALIASES[c]) for t in tables for c in t.columns if c in FIELD_ALIASES]
    if not rows:
        return
    con.execute(_CREATE_DATA_COLUMNS)
    con.execute(_CREATE_CONSTRAINTS)
    for table in ("gpkg_data_columns", "gpkg_data_column_constraints"):
        con.execute("DELETE FROM gpkg_extensions WHERE table_name = ? AND extension_name = 'gpkg_schema'", (table,))
        con.execute("INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope) "
                    "VALUES (?, NULL, 'gpkg_schema', ?, 'read-write')", (table, _SCHEMA_EXTENSION))
    con.executemany("INSERT OR REPLACE INTO gpkg_data_columns (table_name, column_name, name, title) "
                    "VALUES (?, ?, ?, ?)", rows)


# --------------------------------------------------------------------------------------
# QML (QGIS 3.22's layer style format) and SLD
# --------------------------------------------------------------------------------------
def _kind(geometry_type: str) -> str:
    """``marker``, ``line`` or ``fill``: QGIS's symbol type for a GeoPackage geometry type name."""
    g = geometry_type.upper()
    if "POINT" in g:
        return "marker"
    if "LINE" in g or g in ("CURVE", "MULTICURVE", "COMPOUNDCURVE", "CIRCULARSTRING"):
        return "line"
    return "fill"


def _props(parent: ET.Element, props: dict[str, str]) -> None:
    """A symbol layer's properties, both ways QGIS 3.22 writes them (``<Option>`` map and legacy ``<prop>``)."""
    opt = ET.SubElement(parent, "Option", type="Map")
    for k, v in props.items():
        ET.SubElement(opt, "Option", type="QString", name=k, value=v)
    for k, v in props.items():
        ET.SubElement(parent, "prop", k=k, v=v)


def _symbol_props(style: LevelStyle, kind: str) -> tuple[str, dict[str, str]]:
    width = f"{style.width_mm:g}"
    if kind == "marker":
        return "SimpleMarker", {"name": "circle", "color": f"{style.colour},255", "outline_color": "255,255,255,255",
                                "outline_style": "solid", "outline_width": "0.2", "outline_width_unit": "MM",
                                "size": width, "size_unit": "MM"}
    if kind == "line":
        return "SimpleLine", {"line_color": f"{style.colour},255", "line_style": "solid", "line_width": width,
                              "line_width_unit": "MM", "capstyle": "round", "joinstyle": "round"}
    return "SimpleFill", {"color": f"{style.colour},{style.fill_alpha}", "style": "solid" if style.fill_alpha else "no",
                          "outline_color": f"{style.colour},255", "outline_style": "solid",
                          "outline_width": width, "outline_width_unit": "MM", "joinstyle": "round"}


def _renderer(root: ET.Element, style: LevelStyle, kind: str) -> None:
    rend = ET.SubElement(root, "renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0",
                         forceraster="0", referencescale="-1")
    symbols = ET.SubElement(rend, "symbols")
    sym = ET.SubElement(symbols, "symbol", type=kind, name="0", alpha="1", clip_to_extent="1", force_rhr="0")
    cls, props = _symbol_props(style, kind)
    _props(ET.SubElement(sym, "layer", {"class": cls, "enabled": "1", "locked": "0", "pass": "0"}), props)
    ET.SubElement(rend, "rotation")
    ET.SubElement(rend, "sizescale")


def _labeling(root: ET.Element, style: LevelStyle, field: str, kind: str) -> None:
    settings = ET.SubElement(ET.SubElement(root, "labeling", type="simple"), "settings", calloutType="simple")
    text = ET.SubElement(settings, "text-style", {
        "fieldName": field, "isExpression": "0", "fontFamily": _FONT, "namedStyle": "Regular",
        "fontSize": f"{style.font_pt:g}", "fontSizeUnit": "Point", "fontWeight": "50", "fontItalic": "0",
        "textColor": f"{style.colour},255", "textOpacity": "1", "multilineHeight": "1", "allowHtml": "0"})
    ET.SubElement(text, "text-buffer", {
        "bufferDraw": "1", "bufferSize": "0.8", "bufferSizeUnits": "MM", "bufferColor": "255,255,255,255",
        "bufferOpacity": "1", "bufferNoFill": "1", "bufferJoinStyle": "128"})
    ET.SubElement(settings, "text-format", wrapChar="", autoWrapLength="0", multilineAlign="3", plussign="0")
    # points: ordered positions around the point (6); polygons: over the centroid, kept inside (1)
    ET.SubElement(settings, "placement", {
        "placement": "6" if kind == "marker" else "1", "centroidInside": "1", "centroidWhole": "0",
        "dist": "1" if kind == "marker" else "0", "distUnits": "MM", "priority": "5", "fitInPolygonOnly": "0"})
    # scaleMin/scaleMax hold the most zoomed-in / most zoomed-out scale denominators (QGIS 3 keeps the old names)
    ET.SubElement(settings, "rendering", {
        "scaleVisibility": "1", "scaleMin": "0", "scaleMax": str(style.label_scale), "drawLabels": "1",
        "obstacle": "1", "displayAll": "0", "labelPerPart": "0", "mergeLines": "0", "upsidedownLabels": "0",
        "limitNumLabels": "0", "fontLimitPixelSize": "0", "obstacleType": "1", "zIndex": "0"})


def qml(level: str, columns: tuple[str, ...] | list[str], geometry_type: str) -> str:
    """The QML of ``level``'s default style for a table with ``columns`` and ``geometry_type``."""
    style = LEVEL_STYLES[level]
    kind = _kind(geometry_type)
    label = label_field(columns, level)
    root = ET.Element("qgis", {
        "version": _QGIS_VERSION, "styleCategories": "Symbology|Labeling|Fields|Rendering",
        "hasScaleBasedVisibilityFlag": "1" if style.visible_scale else "0",
        "minScale": str(style.visible_scale or 100_000_000), "maxScale": "0",
        "labelsEnabled": "1" if label else "0"})
    _renderer(root, style, kind)
    if label:
        _labeling(root, style, label, kind)
    aliases = ET.SubElement(root, "aliases")
    for i, col in enumerate(columns):
        ET.SubElement(aliases, "alias", field=col, index=str(i), name=FIELD_ALIASES.get(col, ""))
    ET.SubElement(root, "layerGeometryType").text = {"marker": "0", "line": "1", "fill": "2"}[kind]
    return _QML_HEAD + ET.tostring(root, encoding="unicode")


_SE = "http://www.opengis.net/se"
_OGC = "http://www.opengis.net/ogc"


def _se(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, f"{{{_SE}}}{tag}", attrs)
    if text is not None:
        el.text = text
    return el


def _hex(colour: str) -> str:
    return "#" + "".join(f"{int(c):02x}" for c in colour.split(","))


def _sld_symbolizer(rule: ET.Element, style: LevelStyle, kind: str) -> None:
    px = f"{style.width_mm * 96 / 25.4:.1f}"  # SLD sizes are in pixels (0.28 mm); QML's in mm
    if kind == "marker":
        graphic = _se(_se(rule, "PointSymbolizer"), "Graphic")
        mark = _se(graphic, "Mark")
        _se(mark, "WellKnownName", "circle")
        _se(_se(mark, "Fill"), "SvgParameter", _hex(style.colour), name="fill")
        _se(graphic, "Size", px)
        return
    sym = _se(rule, "LineSymbolizer" if kind == "line" else "PolygonSymbolizer")
    if kind == "fill" and style.fill_alpha:
        fill = _se(sym, "Fill")
        _se(fill, "SvgParameter", _hex(style.colour), name="fill")
        _se(fill, "SvgParameter", f"{style.fill_alpha / 255:.2f}", name="fill-opacity")
    stroke = _se(sym, "Stroke")
    _se(stroke, "SvgParameter", _hex(style.colour), name="stroke")
    _se(stroke, "SvgParameter", px, name="stroke-width")


def sld(level: str, label: str | None, geometry_type: str) -> str:
    """The same outline and label as :func:`qml`, as an SLD 1.1 document (what QGIS stores in ``styleSLD``)."""
    style = LEVEL_STYLES[level]
    kind = _kind(geometry_type)
    ET.register_namespace("se", _SE)
    ET.register_namespace("ogc", _OGC)
    root = ET.Element("StyledLayerDescriptor", {"xmlns": "http://www.opengis.net/sld", "version": "1.1.0"})
    named = ET.SubElement(root, "NamedLayer")
    _se(named, "Name", level)
    user = ET.SubElement(named, "UserStyle")
    _se(user, "Name", level)
    fts = _se(user, "FeatureTypeStyle")
    rule = _se(fts, "Rule")
    _se(rule, "Name", LAYER_TITLES.get(level, level))
    if style.visible_scale:
        _se(rule, "MaxScaleDenominator", str(style.visible_scale))
    _sld_symbolizer(rule, style, kind)
    if label:
        lrule = _se(fts, "Rule")
        _se(lrule, "MaxScaleDenominator", str(style.label_scale))
        text = _se(lrule, "TextSymbolizer")
        prop = ET.SubElement(_se(text, "Label"), f"{{{_OGC}}}PropertyName")
        prop.text = label
        font = _se(text, "Font")
        _se(font, "SvgParameter", _FONT, name="font-family")
        _se(font, "SvgParameter", f"{style.font_pt * 96 / 72:.0f}", name="font-size")
        _se(_se(text, "Fill"), "SvgParameter", _hex(style.colour), name="fill")
    return ET.tostring(root, encoding="unicode", xml_declaration=False)
