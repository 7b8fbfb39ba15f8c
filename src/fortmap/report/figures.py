"""Images for the report: downsampled overviews and annotated before/after crops.

All bounds here are (left, bottom, right, top) in metres in the run's CRS (the before image's
grid); crops and overviews are read through a warped VRT onto that grid, with the after image
moved by the run's co-registration so that both dates line up as the detectors saw them.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import rasterio  # noqa: E402
import shapely  # noqa: E402
from affine import Affine  # noqa: E402
from matplotlib.patches import Polygon as MplPolygon  # noqa: E402
from PIL import Image  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.vrt import WarpedVRT  # noqa: E402

from fortmap.report.styles import style_for  # noqa: E402
from fortmap.types import Grid  # noqa: E402


@dataclass
class Stretch:
    """Per-band linear stretch to 0..255: ``(value - lo) / (hi - lo)``."""

    lo: np.ndarray
    hi: np.ndarray


def read_on_grid(
    path: Path,
    grid: Grid,
    bounds: tuple[float, float, float, float],
    shape: tuple[int, int],
    warp: Affine | None = None,
    native: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Read an image resampled onto ``grid``'s CRS over ``bounds`` at ``shape`` (rows, cols).

    Args:
        path: raster file (any CRS).
        grid: the run grid; its CRS is the output CRS.
        bounds: (left, bottom, right, top) in metres in ``grid.crs``.
        shape: output (rows, cols) in pixels.
        warp: co-registration, before-grid pixel -> after-image pixel on the grid (or None).
        native: keep the image's own pixel type (a quarter of float32's memory for 8-bit
            images; :func:`to_rgb` gives the same bytes from either).

    Returns:
        (bands x rows x cols array of the first three bands, float32 unless ``native``,
        rows x cols valid mask).
    """
    left, bottom, right, top = bounds
    rows, cols = shape
    dst = Affine((right - left) / cols, 0, left, 0, -(top - bottom) / rows, top)
    if warp is not None and warp != Affine.identity():
        # A display pixel q shows the after image at CRS point T * warp * T^-1 * dst * q.
        t = grid.transform
        dst = t @ warp @ ~t @ dst
    with rasterio.open(path) as src:
        with WarpedVRT(
            src,
            crs=grid.crs,
            transform=dst,
            width=cols,
            height=rows,
            resampling=Resampling.bilinear,
        ) as vrt:
            idx = [1, 2, 3] if vrt.count >= 3 else [1, 1, 1]
            data = vrt.read(idx, masked=False)
            if not native:
                data = data.astype(np.float32)
            valid = vrt.read_masks(1) > 0
    return data, valid


def fit_stretch(data: np.ndarray, valid: np.ndarray) -> Stretch:
    """2-98 % percentile stretch per band over the valid pixels (an in-scene statistic)."""
    lo, hi = [], []
    for b in data:
        v = b[valid] if valid.any() else b.ravel()
        p2, p98 = np.percentile(v, (2, 98)) if v.size else (0.0, 255.0)
        lo.append(p2)
        hi.append(max(p98, p2 + 1e-6))
    return Stretch(np.asarray(lo, np.float32), np.asarray(hi, np.float32))


def to_rgb(data: np.ndarray, valid: np.ndarray, st: Stretch) -> np.ndarray:
    """rows x cols x 4 uint8 RGBA; invalid (nodata) pixels transparent."""
    # band by band into the output: the whole-array temporaries of a 2800 px overview were
    # four times its float32 size (the same arithmetic, so the same bytes)
    out = np.empty((*data.shape[1:], 4), np.uint8)
    for b in range(3):
        # a band of any pixel type less a float32 is float32: the arithmetic of float32 data
        t = (data[b].astype(np.float32) - st.lo[b]) / (st.hi[b] - st.lo[b])
        t *= 255.0
        np.clip(t, 0, 255, out=t)
        out[..., b] = t
    out[..., 3] = np.where(valid, 255, 0)
    return out


def png_data_uri(rgba: np.ndarray, colours: int | None = None) -> str:
    """A PNG ``data:`` URI of an RGBA array; ``colours`` quantises to a palette (smaller)."""
    img = Image.fromarray(rgba, "RGBA")
    if colours:
        img = img.quantize(colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class Site:
    """A place worth a figure: its crop bounds (metres) and the findings inside, by layer."""

    bounds: tuple[float, float, float, float]
    groups: dict[str, gpd.GeoDataFrame] = field(default_factory=dict)
    weight: float = 0.0

    @property
    def centre(self) -> tuple[float, float]:
        """Crop centre (x, y) in metres."""
        return ((self.bounds[0] + self.bounds[2]) / 2, (self.bounds[1] + self.bounds[3]) / 2)


def _weight(gdf: gpd.GeoDataFrame) -> np.ndarray:
    # Larger and surer findings first: score times a slowly growing function of size.
    area = np.nan_to_num(gdf.get("area_m2", np.nan).to_numpy(float)) / 10.0
    length = np.nan_to_num(gdf.get("length_m", np.nan).to_numpy(float))
    return gdf["score"].to_numpy(float) * (1.0 + np.log1p(area + length))


def select_sites(
    layers: dict[str, gpd.GeoDataFrame],
    scene: tuple[float, float, float, float],
    *,
    max_sites: int = 6,
    min_score: float = 0.5,
    min_side_m: float = 80.0,
    max_side_m: float = 300.0,
) -> list[Site]:
    """Greedy choice of crop windows around the most significant findings.

    Seeds are findings of non-context layers with ``score >= min_score`` (0.5: the detectors'
    own even-odds point), heaviest first; each window gathers every finding it touches and the
    findings whose centroid it covers cannot seed another window.

    Args:
        layers: layer name -> findings in the run CRS (metres).
        scene: scene bounds (left, bottom, right, top), metres; windows are kept inside.
        max_sites: at most this many windows.
        min_score: seeds need at least this score.
        min_side_m, max_side_m: window side limits, metres.
    """
    rows = []
    for name, gdf in layers.items():
        if style_for(name).context or gdf.empty or "score" not in gdf:
            continue
        w = _weight(gdf)
        for i in np.flatnonzero(gdf["score"].to_numpy(float) >= min_score):
            rows.append((w[i], name, i))
    rows.sort(key=lambda r: -r[0])
    covered: set[tuple[str, int]] = set()
    sites: list[Site] = []
    for _w, name, i in rows:
        if len(sites) >= max_sites:
            break
        if (name, i) in covered:
            continue
        geom = layers[name].geometry.iloc[i]
        x0, y0, x1, y1 = geom.bounds
        side = float(np.clip(2.5 * max(x1 - x0, y1 - y0), min_side_m, max_side_m))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        side = min(side, scene[2] - scene[0], scene[3] - scene[1])
        cx = float(np.clip(cx, scene[0] + side / 2, scene[2] - side / 2))
        cy = float(np.clip(cy, scene[1] + side / 2, scene[3] - side / 2))
        b = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        box = shapely.box(*b)
        site = Site(b)
        for lname, gdf in layers.items():
            if style_for(lname).context or gdf.empty:
                continue
            hit = gdf.geometry.intersects(box).to_numpy()
            if hit.any():
                site.groups[lname] = gdf[hit]
                site.weight += float(_weight(gdf[hit]).sum())
                inside = gdf.geometry.centroid.within(box).to_numpy()
                covered.update((lname, int(j)) for j in np.flatnonzero(inside))
        covered.add((name, i))
        sites.append(site)
    sites.sort(key=lambda s: -s.weight)
    return sites


def _draw_geoms(ax, gdf: gpd.GeoDataFrame, layer: str, *, faint: bool) -> None:
    st = style_for(layer)
    lw = st.width_px * (0.6 if faint else 0.8)
    ls = (0, (3, 2)) if faint else "solid"
    for geom in gdf.geometry:
        for part in getattr(geom, "geoms", [geom]):
            if part.geom_type == "Polygon":
                xy = np.asarray(part.exterior.coords)
                face = "none" if faint else (*matplotlib.colors.to_rgb(st.colour), st.fill_opacity)
                ax.add_patch(MplPolygon(xy, closed=True, fc=face, ec=st.colour, lw=lw, ls=ls))
            elif part.geom_type == "LineString":
                xy = np.asarray(part.coords)
                ax.plot(
                    xy[:, 0],
                    xy[:, 1],
                    color=st.colour,
                    lw=lw,
                    ls=ls,
                    alpha=0.85,
                    solid_capstyle="round",
                )
            elif part.geom_type == "Point":
                ax.plot(part.x, part.y, "o", ms=6, mfc=st.colour, mec="black")


def _nice_length(max_m: float) -> float:
    exp = 10 ** math.floor(math.log10(max_m))
    for m in (5, 2, 1):
        if m * exp <= max_m:
            return m * exp
    return exp


def _scale_and_north(ax, b: tuple[float, float, float, float], north_deg: float) -> None:
    w = b[2] - b[0]
    h = b[3] - b[1]
    L = _nice_length(w * 0.3)
    x0, y0 = b[0] + 0.05 * w, b[1] + 0.06 * h
    ax.plot([x0, x0 + L], [y0, y0], color="white", lw=5, solid_capstyle="butt")
    ax.plot([x0, x0 + L], [y0, y0], color="black", lw=3, solid_capstyle="butt")
    ax.text(
        x0 + L / 2,
        y0 + 0.025 * h,
        f"{L:g} m",
        ha="center",
        va="bottom",
        fontsize=7,
        color="white",
        fontweight="bold",
        path_effects=[matplotlib.patheffects.withStroke(linewidth=2, foreground="black")],
    )
    # Arrow towards true north, which differs from grid up by the grid convergence angle.
    ax_x, ax_y = b[2] - 0.08 * w, b[3] - 0.17 * h
    dx = 0.08 * h * math.sin(math.radians(north_deg))
    dy = 0.08 * h * math.cos(math.radians(north_deg))
    ax.annotate(
        "N",
        xy=(ax_x + dx, ax_y + dy),
        xytext=(ax_x, ax_y),
        ha="center",
        va="top",
        fontsize=8,
        color="white",
        fontweight="bold",
        path_effects=[matplotlib.patheffects.withStroke(linewidth=2, foreground="black")],
        arrowprops={"arrowstyle": "-|>", "color": "white", "lw": 1.5, "ec": "black"},
    )


def draw_figure(
    site: Site,
    before: np.ndarray,
    after: np.ndarray,
    *,
    title: str,
    labels: tuple[str, str],
    caption: str | None,
    credit: str,
    north_deg: float = 0.0,
) -> plt.Figure:
    """A two-panel before/after figure of ``site`` with its findings outlined.

    Args:
        site: crop bounds (metres) and findings.
        before, after: RGBA crops over ``site.bounds``.
        title: figure title.
        labels: panel titles (before, after), e.g. dates.
        caption: caption printed under the panels (with the credit); None prints neither.
        credit: imagery credit line printed under the caption.
        north_deg: true north's angle clockwise from grid up, degrees.
    """
    import matplotlib.patheffects  # noqa: F401  (registers path effects used in labels)

    text = "\n".join(textwrap.wrap(caption, 118)) if caption else ""
    n_lines = text.count("\n") + 2 if caption else -0.3
    fig_h = 3.75 + 0.14 * n_lines
    fig, axes = plt.subplots(1, 2, figsize=(7.2, fig_h))
    b = site.bounds
    ext = (b[0], b[2], b[1], b[3])
    for ax, img, lab, faint in (
        (axes[0], before, labels[0], True),
        (axes[1], after, labels[1], False),
    ):
        ax.imshow(img, extent=ext, interpolation="lanczos")
        for layer, gdf in site.groups.items():
            _draw_geoms(ax, gdf, layer, faint=faint)
        ax.set_xlim(b[0], b[2])
        ax.set_ylim(b[1], b[3])
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(lab, fontsize=9, loc="left")
        _scale_and_north(ax, b, north_deg)
    fig.suptitle(title, fontsize=10.5, fontweight="bold", x=0.02, y=0.985, ha="left", va="top")
    bottom_in = 0.14 * n_lines + 0.12
    if caption:
        fig.text(0.02, (0.06 + 0.14) / fig_h, text, fontsize=7.5, va="bottom", ha="left")
        fig.text(
            0.02,
            0.06 / fig_h,
            credit,
            fontsize=6.5,
            va="bottom",
            ha="left",
            color="#555",
            style="italic",
        )
    fig.subplots_adjust(
        left=0.02, right=0.98, top=1 - 0.52 / fig_h, bottom=bottom_in / fig_h, wspace=0.03
    )
    return fig


def fig_bytes(fig: plt.Figure, dpi: int) -> bytes:
    """PNG bytes of ``fig`` at ``dpi``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def fig_data_uri(fig: plt.Figure, dpi: int) -> str:
    """A palette PNG ``data:`` URI of ``fig`` at ``dpi`` (small enough to inline in HTML)."""
    rgba = np.asarray(Image.open(io.BytesIO(fig_bytes(fig, dpi))).convert("RGBA"))
    return png_data_uri(rgba, 256)
