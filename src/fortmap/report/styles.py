"""How each findings layer looks: in the HTML map, in the figures and in QGIS (``layer_styles``).

A new kind of finding needs only an entry in :data:`STYLES`; a layer without one still shows,
with a colour picked from :data:`_FALLBACK_COLOURS` and its name as label.
"""

from __future__ import annotations

import sqlite3
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from fortmap.errors import InputError


@dataclass(frozen=True)
class LayerStyle:
    """Drawing style of one findings layer.

    Attributes:
        label: human name of the layer (plural), e.g. "Razed buildings".
        colour: outline / line colour, ``#rrggbb``.
        fill_opacity: polygon fill opacity 0..1 (the fill uses ``colour``).
        width_px: line width in screen pixels.
        order: drawing order; low first (polygons under lines under points).
        context: True for layers that frame the findings (footprints, road network) rather than
            report a change; they are drawn on the map but drive no figure.
        visible: shown when the report opens.
        category_field: attribute whose values pick ``categories`` colours (optional).
        categories: value -> colour, for ``category_field``.
    """

    label: str
    colour: str
    fill_opacity: float = 0.35
    width_px: float = 2.0
    order: int = 50
    context: bool = False
    visible: bool = True
    category_field: str | None = None
    categories: dict[str, str] = field(default_factory=dict)


#: Layer name -> style. Add an entry here when a new kind of finding is introduced.
STYLES: dict[str, LayerStyle] = {
    "buildings": LayerStyle(
        "Building footprints",
        "#9aa5b1",
        fill_opacity=0.08,
        width_px=0.8,
        order=10,
        context=True,
        visible=False,
        category_field="damage",
        categories={"intact": "#9aa5b1", "damaged": "#f2a93b", "destroyed": "#d7263d"},
    ),
    "cleared_areas": LayerStyle("Cleared areas", "#f6c744", fill_opacity=0.25, order=20),
    # ground seen from the edge frames the findings; it is not something seen in the images
    "visibility": LayerStyle(
        "Visibility",
        "#7cc6fe",
        fill_opacity=0.2,
        width_px=0.5,
        order=15,
        visible=False,
        context=True,
        category_field="state",
        categories={
            "seen_before": "#9ecae1",
            "seen_after": "#7cc6fe",
            "newly_seen": "#2ca25f",
            "no_longer_seen": "#de2d26",
        },
    ),
    "rubble": LayerStyle("Rubble", "#b5651d", fill_opacity=0.5, order=30),
    "razed_buildings": LayerStyle("Razed buildings", "#e4002b", fill_opacity=0.45, order=40),
    "routes": LayerStyle(
        "Road network",
        "#6c7a89",
        width_px=1.2,
        order=60,
        context=True,
        category_field="status",
        categories={"open": "#8fb3cf", "cut": "#ff4fa3"},
    ),
    "berms": LayerStyle("Berms", "#8e44ad", width_px=3.5, order=70),
    "barricades": LayerStyle("Barricades", "#ff7f0e", width_px=4.0, order=80),
    "entry_points": LayerStyle(
        "Entry points into the core",
        "#ffffff",
        order=90,
        context=True,
        category_field="status",
        categories={"open": "#2ecc71", "cut": "#ff4fa3"},
    ),
}

_FALLBACK_COLOURS = ("#17becf", "#bcbd22", "#e377c2", "#7f7f7f", "#2ca02c", "#1f77b4")


def style_for(layer: str) -> LayerStyle:
    """The style of ``layer``; unknown layers get a stable colour and their name as label."""
    if layer in STYLES:
        return STYLES[layer]
    colour = _FALLBACK_COLOURS[zlib.crc32(layer.encode()) % len(_FALLBACK_COLOURS)]
    return LayerStyle(layer.replace("_", " ").capitalize(), colour)


def _rgba(colour: str, alpha: float) -> str:
    c = colour.lstrip("#")
    r, g, b = (int(c[i : i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{round(alpha * 255)}"


def _symbol(geom: str, colour: str, st: LayerStyle, name: str) -> str:
    # QML widths are in millimetres: ~0.26 mm per screen pixel at 96 dpi.
    w = round(st.width_px * 0.26, 2)
    if "Point" in geom:
        layer = (
            '<layer class="SimpleMarker"><Option type="Map">'
            f'<Option name="color" type="QString" value="{_rgba(colour, 1)}"/>'
            '<Option name="name" type="QString" value="circle"/>'
            '<Option name="size" type="QString" value="3"/>'
            '<Option name="outline_color" type="QString" value="35,35,35,255"/>'
            "</Option></layer>"
        )
        kind = "marker"
    elif "Line" in geom:
        layer = (
            '<layer class="SimpleLine"><Option type="Map">'
            f'<Option name="line_color" type="QString" value="{_rgba(colour, 1)}"/>'
            f'<Option name="line_width" type="QString" value="{w}"/>'
            '<Option name="capstyle" type="QString" value="round"/>'
            "</Option></layer>"
        )
        kind = "line"
    else:
        layer = (
            '<layer class="SimpleFill"><Option type="Map">'
            f'<Option name="color" type="QString" value="{_rgba(colour, st.fill_opacity)}"/>'
            f'<Option name="outline_color" type="QString" value="{_rgba(colour, 1)}"/>'
            f'<Option name="outline_width" type="QString" value="{w}"/>'
            "</Option></layer>"
        )
        kind = "fill"
    return f'<symbol name="{name}" type="{kind}" alpha="1">{layer}</symbol>'


def qml(layer: str, geom_type: str) -> str:
    """A QGIS QML style for ``layer`` with geometry type ``geom_type`` (e.g. ``"Polygon"``)."""
    st = style_for(layer)
    if st.category_field and st.categories:
        cats = "".join(
            f"<category symbol={quoteattr(str(i))} value={quoteattr(v)} "
            f'label={quoteattr(v)} render="true"/>'
            for i, v in enumerate(st.categories)
        )
        syms = "".join(
            _symbol(geom_type, c, st, str(i)) for i, c in enumerate(st.categories.values())
        )
        renderer = (
            f'<renderer-v2 type="categorizedSymbol" attr={quoteattr(st.category_field)}>'
            f"<categories>{cats}</categories><symbols>{syms}</symbols></renderer-v2>"
        )
    else:
        renderer = (
            '<renderer-v2 type="singleSymbol"><symbols>'
            f"{_symbol(geom_type, st.colour, st, '0')}</symbols></renderer-v2>"
        )
    return (
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>"
        f'<qgis version="3.28" styleCategories="Symbology|Labeling">{renderer}'
        "<blendMode>0</blendMode><layerOpacity>1</layerOpacity></qgis>"
    )


def sld(layer: str, geom_type: str) -> str:
    """A minimal OGC SLD 1.1 style for ``layer`` (single symbol in the layer's main colour)."""
    st = style_for(layer)
    c = st.colour
    if "Point" in geom_type:
        sym = (
            "<se:PointSymbolizer><se:Graphic><se:Mark><se:WellKnownName>circle</se:WellKnownName>"
            f'<se:Fill><se:SvgParameter name="fill">{c}</se:SvgParameter></se:Fill></se:Mark>'
            "<se:Size>8</se:Size></se:Graphic></se:PointSymbolizer>"
        )
    elif "Line" in geom_type:
        sym = (
            f'<se:LineSymbolizer><se:Stroke><se:SvgParameter name="stroke">{c}</se:SvgParameter>'
            f'<se:SvgParameter name="stroke-width">{st.width_px}</se:SvgParameter>'
            "</se:Stroke></se:LineSymbolizer>"
        )
    else:
        sym = (
            f'<se:PolygonSymbolizer><se:Fill><se:SvgParameter name="fill">{c}</se:SvgParameter>'
            f'<se:SvgParameter name="fill-opacity">{st.fill_opacity}</se:SvgParameter></se:Fill>'
            f'<se:Stroke><se:SvgParameter name="stroke">{c}</se:SvgParameter></se:Stroke>'
            "</se:PolygonSymbolizer>"
        )
    name = escape(layer)
    return (
        '<StyledLayerDescriptor version="1.1.0" xmlns="http://www.opengis.net/sld" '
        'xmlns:se="http://www.opengis.net/se"><NamedLayer>'
        f"<se:Name>{name}</se:Name><UserStyle><se:Name>{name}</se:Name><se:FeatureTypeStyle>"
        f"<se:Rule><se:Name>{escape(st.label)}</se:Name>{sym}</se:Rule>"
        "</se:FeatureTypeStyle></UserStyle></NamedLayer></StyledLayerDescriptor>"
    )


_CREATE = """CREATE TABLE IF NOT EXISTS layer_styles (
  id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
  f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256),
  f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT,
  useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30),
  update_time DATETIME DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')))"""


def write_layer_styles(gpkg: str | Path) -> list[str]:
    """Write a default QGIS style for every spatial layer of ``gpkg`` into its ``layer_styles``.

    Follows the convention QGIS uses when it saves a style into a GeoPackage, so QGIS applies
    these styles when the layers are opened. Earlier fortmap styles are replaced.

    Returns:
        The names of the layers styled.

    Raises:
        InputError: ``gpkg`` is missing or not a GeoPackage.
    """
    path = Path(gpkg)
    if not path.is_file():
        raise InputError(f"{path}: not found; cannot write layer styles")
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    try:
        con = sqlite3.connect(path)
        try:
            geo = con.execute(
                "SELECT table_name, column_name, geometry_type_name FROM gpkg_geometry_columns"
            ).fetchall()
            con.execute(_CREATE)
            # QGIS (through GDAL) registers the table as a non-spatial 'attributes' layer.
            con.execute(
                "INSERT OR IGNORE INTO gpkg_contents (table_name, data_type, identifier, "
                "description, last_change) VALUES ('layer_styles', 'attributes', "
                "'layer_styles', '', ?)",
                (now,),
            )
            con.execute("DELETE FROM layer_styles WHERE owner = 'fortmap'")
            for table, column, gtype in geo:
                st = style_for(table)
                con.execute(
                    "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                    "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, "
                    "description, owner, ui, update_time) "
                    "VALUES ('', '', ?, ?, ?, ?, ?, 1, ?, 'fortmap', NULL, ?)",
                    (
                        table,
                        column,
                        table,
                        qml(table, gtype),
                        sld(table, gtype),
                        f"fortmap default style: {st.label}",
                        now,
                    ),
                )
            con.commit()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise InputError(f"{path}: not a GeoPackage ({exc}); cannot write layer styles") from None
    return [t for t, _, _ in geo]
