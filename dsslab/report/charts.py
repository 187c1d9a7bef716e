"""The report's charts, drawn on matplotlib's Agg canvas so no display is needed."""

from __future__ import annotations

import logging
from pathlib import Path

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dsslab.report.rows import COMPLETED, FULL, settings_of
from dsslab.report.runs import Run

logger = logging.getLogger(__name__)

CHART_FILES = {
    "val_acc_epoch": "report_val_acc_epoch.png",
    "val_acc_time": "report_val_acc_time.png",
    "accuracy_speedup": "report_accuracy_speedup.png",
}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")


def write_charts(runs: list[Run], records: list[dict], out_dir: Path) -> dict[str, Path]:
    """Draw every chart and save it as PNG in `out_dir`; returns chart name -> file."""
    figures = {
        "val_acc_epoch": accuracy_curves(runs, "epoch", "epoch"),
        "val_acc_time": accuracy_curves(runs, "time/elapsed_s", "wall-clock time (s)"),
        "accuracy_speedup": accuracy_against_speedup(records),
    }
    paths = {}
    for name, figure in figures.items():
        paths[name] = Path(out_dir) / CHART_FILES[name]
        figure.savefig(paths[name], dpi=120, bbox_inches="tight")
    return paths


def new_figure(rows: int = 1) -> tuple[Figure, list]:
    """A figure on an Agg canvas with `rows` stacked axes."""
    figure = Figure(figsize=(9, 4.5 * rows))
    FigureCanvasAgg(figure)
    return figure, [figure.add_subplot(rows, 1, index + 1) for index in range(rows)]


def accuracy_curves(runs: list[Run], x_key: str, x_label: str) -> Figure:
    """val/acc against `x_key` of each epoch line: one series per run that has any epoch.

    Colour follows the strategy and the marker the fraction, so seeds of one setting
    look alike; runs that did not complete are dashed.
    """
    figure, (axes,) = new_figure()
    colours = palette(sorted({str(run.info.get("strategy")) for run in runs}))
    fractions = sorted({run.info.get("fraction") or 0 for run in runs})
    several_experiments = len({experiment_of(run.info) for run in runs}) > 1
    for run in runs:
        points = [(epoch[x_key], epoch["val/acc"]) for epoch in run.metrics
                  if epoch.get(x_key) is not None and epoch.get("val/acc") is not None]
        if not points:
            logger.info("chart skips %s: no epoch finished", run.name)
            continue
        xs, ys = zip(*points)
        axes.plot(
            xs, ys, label=run_label(run, several_experiments),
            color=colours[str(run.info.get("strategy"))],
            marker=MARKERS[fractions.index(run.info.get("fraction") or 0) % len(MARKERS)],
            markersize=4, linestyle="-" if run.status == COMPLETED else "--",
        )
    axes.set(xlabel=x_label, ylabel="val/acc", title=f"val/acc against {x_label}")
    if x_key == "epoch":
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    finish_axes(axes)
    return figure


def accuracy_against_speedup(records: list[dict]) -> Figure:
    """test/acc against measured speedup, one series per strategy, per experiment.

    An experiment is a (dataset, model, epochs) triple; its full-data run is drawn as a
    horizontal reference line and a star at speedup 1. Error bars are standard deviations.
    """
    completed = [row for row in records if row["status"] == COMPLETED]
    experiments = sorted({experiment_of(row) for row in completed}, key=str) or [
        ("none", "none", 0)]
    figure, all_axes = new_figure(len(experiments))
    for axes, experiment in zip(all_axes, experiments):
        rows = [row for row in completed if experiment_of(row) == experiment]
        draw_full_reference(axes, rows)
        draw_strategies(axes, rows)
        title = "test/acc against measured speedup: {} {} {} epochs".format(*experiment)
        axes.set(xlabel="measured speedup (x)", ylabel="test/acc", title=title)
        if not axes.lines:
            axes.text(0.5, 0.5, "no completed run with a matching full-data run",
                      ha="center", va="center", transform=axes.transAxes)
        finish_axes(axes)
    return figure


def draw_full_reference(axes, rows: list[dict]) -> None:
    """A dashed line at each full-data run's test/acc and a star at speedup 1."""
    for row in rows:
        if row["strategy"] != FULL or row["test/acc"] is None:
            continue
        label = " ".join(filter(None, ["full data", row["settings"]]))
        axes.axhline(row["test/acc"], color="grey", linestyle=":", linewidth=1)
        axes.plot([1.0], [row["test/acc"]], marker="*", markersize=12, color="black",
                  linestyle="none", label=label)


def draw_strategies(axes, rows: list[dict]) -> None:
    """One error-bar series per strategy (and settings), points in order of speedup."""
    series: dict[str, list[dict]] = {}
    for row in rows:
        if row["strategy"] == FULL or None in (row["speedup/measured"], row["test/acc"]):
            continue
        label = " ".join(filter(None, [str(row["strategy"]), row["settings"]]))
        series.setdefault(label, []).append(row)
    for label, members in sorted(series.items()):
        members.sort(key=lambda row: row["speedup/measured"])
        axes.errorbar(
            [row["speedup/measured"] for row in members], [row["test/acc"] for row in members],
            xerr=spreads(members, "speedup/measured_std"), yerr=spreads(members, "test/acc_std"),
            marker="o", capsize=3, label=label,
        )
        for row in members:
            axes.annotate(f"f={row['fraction']:g}", (row["speedup/measured"], row["test/acc"]),
                          textcoords="offset points", xytext=(4, 4), fontsize="x-small")


def spreads(rows: list[dict], column: str) -> list[float] | None:
    """Error-bar lengths (0 where a row has no spread), None when no row has one."""
    values = [row[column] or 0.0 for row in rows]
    return values if any(values) else None


def palette(names: list[str]) -> dict[str, tuple]:
    """A distinct colour per name from matplotlib's tab10 cycle."""
    colours = colormaps["tab10"]
    return {name: colours(index % 10) for index, name in enumerate(names)}


def experiment_of(info: dict) -> tuple:
    """The (dataset, model, epochs) a run or row belongs to."""
    return info.get("dataset"), info.get("model"), info.get("epochs")


def run_label(run: Run, with_experiment: bool = False) -> str:
    """strategy, fraction, seed, distinguishing overrides, status unless completed, job dir.

    with_experiment prefixes dataset, model and epochs, for charts that mix experiments.
    """
    info = run.info
    parts = ["{}/{}/{}ep".format(*experiment_of(info))] if with_experiment else []
    parts += [str(info.get("strategy")), f"f={info.get('fraction')}", f"seed={info.get('seed')}"]
    parts.append(settings_of(run.overrides))
    if run.status != COMPLETED:
        parts.append(f"({run.status})")
    parts.append(f"[{run.name}]")
    return " ".join(part for part in parts if part)


def finish_axes(axes) -> None:
    """Grid, and a legend beside the plot when there is anything to name."""
    axes.grid(True, alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
