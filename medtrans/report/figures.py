"""The report's figures, each returned as PNG bytes.

Figures are drawn on standalone `matplotlib.figure.Figure` objects with the Agg renderer (no
pyplot, no global backend switch, no window) under a fixed style, and saved without the
'Software' metadata, so the same inputs give the same bytes.
"""

from __future__ import annotations

import functools
import io
import math
from typing import Any, Callable

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy.signal import lfilter

from medtrans.report.collect import MetricsTable, Series
from medtrans.report.montage import EDGE_LETTERS, PLANES, Montage

DPI = 100
STYLE = {
    "font.size": 9, "axes.titlesize": 9, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3,
    "figure.facecolor": "white", "savefig.facecolor": "white", "image.interpolation": "antialiased",
}
LINE_COLOUR = "#1f5fa8"
FLAGGED_COLOUR = "#c0392b"
PANEL_INCHES = 2.6
# The smoothed curve averages over about 1/SMOOTHING_FRACTION of the logged points.
SMOOTHING_FRACTION = 25


def styled(draw: Callable[..., bytes]) -> Callable[..., bytes]:
    """Run a figure function under the report's fixed matplotlib style (not the user's rc file)."""

    @functools.wraps(draw)
    def wrapper(*args: Any, **kwargs: Any) -> bytes:
        with matplotlib.rc_context(STYLE):
            return draw(*args, **kwargs)

    return wrapper


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, without the 'Software' metadata (bytes depend on the content only)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def panel_grid(n_panels: int, height: float = 2.2) -> tuple[Figure, list[Axes]]:
    """A figure with ``n_panels`` axes in rows of 3 or 4 (whichever leaves fewer empty); unused axes hidden."""
    columns = min(n_panels, min((3, 4), key=lambda c: (-n_panels % c, c)))
    rows = math.ceil(n_panels / columns)
    fig = Figure(figsize=(PANEL_INCHES * 1.25 * columns, height * rows), layout="constrained")
    axes = list(fig.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, axes[:n_panels]


def smoothed(values: np.ndarray) -> np.ndarray:
    """Bias-corrected exponential moving average (TensorBoard's smoothing) over ~1/25 of the curve."""
    span = values.size // SMOOTHING_FRACTION
    if span <= 1:
        return values
    weight = 1.0 - 1.0 / span
    average = lfilter([1.0 - weight], [1.0, -weight], values)
    return average / (1.0 - weight ** np.arange(1, values.size + 1))


@styled
def training_figure(series: dict[str, Series], columns: list[str]) -> bytes:
    """One panel per logged column against step: raw values faint, smoothed line on top."""
    fig, axes = panel_grid(len(columns))
    for ax, column in zip(axes, columns):
        curve = series[column]
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        if curve.values.size >= 2 * SMOOTHING_FRACTION:
            ax.plot(curve.steps, curve.values, color=LINE_COLOUR, alpha=0.25, linewidth=0.8)
        ax.plot(curve.steps, smoothed(curve.values), color=LINE_COLOUR, linewidth=1.4)
        ax.set_title(column)
        ax.set_xlabel("step")
    return png_bytes(fig)


@styled
def validation_figure(series: dict[str, Series], columns: list[str]) -> bytes:
    """One panel per validation metric against step, a marker per validation run."""
    fig, axes = panel_grid(len(columns))
    for ax, column in zip(axes, columns):
        curve = series[column]
        ax.plot(curve.steps, curve.values, color=LINE_COLOUR, marker="o", markersize=3.5, linewidth=1.2)
        ax.set_title(column)
        ax.set_xlabel("step")
    return png_bytes(fig)


@styled
def box_plots(table: MetricsTable, units: dict[str, str]) -> bytes:
    """One box plot per numeric metric over the subjects, every subject drawn as a point."""
    fig, axes = panel_grid(len(table.numeric), height=2.6)
    for ax, column in zip(axes, table.numeric):
        values = table.values(column)
        values = values[np.isfinite(values)]
        unit = units.get(column, "")
        ax.set_title(f"{column} ({unit})" if unit and unit != "1" else column)
        if values.size == 0:
            ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        else:
            ax.boxplot(values, widths=0.5, showfliers=False, medianprops={"color": FLAGGED_COLOUR})
            # Spread the points sideways in a fixed pattern (no random jitter: reruns give the same image).
            offsets = np.linspace(-0.12, 0.12, values.size) if values.size > 1 else np.zeros(1)
            ax.scatter(1 + offsets, np.sort(values), s=12, color=LINE_COLOUR, alpha=0.7, zorder=3)
        ax.set_xticks([])
    return png_bytes(fig)


@styled
def dice_figure(before: np.ndarray, after: np.ndarray, flagged: list[bool], threshold: float | None) -> bytes:
    """Body-mask Dice before and after registration, one line per pair; flagged pairs in red."""
    fig = Figure(figsize=(3.6, 3.0), layout="constrained")
    ax = fig.subplots()
    for b, a, bad in zip(before, after, flagged):
        colour = FLAGGED_COLOUR if bad else LINE_COLOUR
        ax.plot([0, 1], [b, a], color=colour, marker="o", markersize=4, alpha=0.8, linewidth=1.0)
    if threshold is not None:
        ax.axhline(threshold, color="grey", linestyle="--", linewidth=1.0)
    ax.set_xticks([0, 1], ["before", "after"])
    ax.set_xlim(-0.3, 1.3)
    ax.set_ylabel("body-mask Dice")
    ax.set_title(f"registration ({len(before)} pairs)")
    return png_bytes(fig)


@styled
def montage_figure(montage: Montage) -> bytes:
    """Rows axial / coronal / sagittal; columns input, synthetic, real, error (with a colour bar in HU)."""
    panels = montage.panels + ([montage.error] if montage.error is not None else [])
    ratios = [min(3.0, max(0.3, height / width)) for width, height in montage.extents_mm]
    fig = Figure(figsize=(PANEL_INCHES * len(panels) + (0.9 if montage.error else 0.3),
                          PANEL_INCHES * sum(ratios) + 0.6), layout="constrained")
    grid = fig.add_gridspec(3, len(panels), height_ratios=ratios)
    error_axes, error_image = [], None
    for column, panel in enumerate(panels):
        for row, plane in enumerate(PLANES):
            ax = fig.add_subplot(grid[row, column])
            image = ax.imshow(panel.slices[row], cmap=panel.cmap, vmin=panel.window[0], vmax=panel.window[1],
                              aspect=montage.aspects[row])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if row == 0:
                ax.set_title(panel.title)
            if column == 0:
                ax.set_ylabel(plane)
                label_edges(ax, plane)
            if panel is montage.error:
                error_axes.append(ax)
                error_image = image
    if error_image is not None:
        fig.colorbar(error_image, ax=error_axes, label="|synthetic - real| (HU)", extend="max", shrink=0.6)
    return png_bytes(fig)


def label_edges(ax: Axes, plane: str) -> None:
    """Patient-direction letters at the left and top edge of a slice."""
    left, top = EDGE_LETTERS[plane]
    style = {"color": "#ffd400", "fontsize": 8, "fontweight": "bold", "transform": ax.transAxes}
    ax.text(0.02, 0.5, left, ha="left", va="center", **style)
    ax.text(0.5, 0.98, top, ha="center", va="top", **style)
