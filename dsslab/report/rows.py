"""One row per job: what it was, what it measured, and how it compares with full data."""

from __future__ import annotations

import statistics

from dsslab.report.runs import Run

FULL = "full"
COMPLETED = "completed"

# Figures summary.json holds for a finished job; the same figures are derived from
# metrics.jsonl for a job that failed or is still running.
SUMMARY_FIGURES = (
    "effective_fraction",
    "val/acc_best",
    "val/acc_final",
    "test/acc",
    "time/epoch_mean_s",
    "time/selection_total_s",
    "time/total_s",
)

# Overrides that are already columns of their own (a variant or experiment preset sets strategy,
# fraction, dataset, model and epochs), or that change logging, speed or where results go but
# never what is learned.
NOT_SETTINGS = {"seed", "fraction", "strategy", "dataset", "model", "epochs", "hparams_search",
                "variant", "experiment", "resume", "eval_batch_size"}
NOT_SETTINGS_PREFIXES = ("wandb.", "hydra.", "hardware.")


def run_row(run: Run) -> dict:
    """The table row of one job, before any comparison with full-data runs."""
    seed = run.info.get("seed", (run.summary or {}).get("seed"))
    row = {
        "dataset": run.info.get("dataset"),
        "model": run.info.get("model"),
        "epochs": run.info.get("epochs"),
        "strategy": run.info.get("strategy"),
        "fraction": run.info.get("fraction"),
        "settings": settings_of(run.overrides),
        "seeds": [] if seed is None else [seed],
        "status": run.status,
        "dirs": [run.name],
    }
    row.update(measured_figures(run))
    row["speedup/ideal"] = ratio(1.0, row["fraction"])
    row["selection/share"] = ratio(row["time/selection_total_s"], row["time/total_s"])
    return row


def settings_of(overrides: tuple[str, ...]) -> str:
    """The overrides that set a run apart beyond its columns, sorted and space separated."""
    kept = []
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key in NOT_SETTINGS or key.startswith(NOT_SETTINGS_PREFIXES):
            continue
        kept.append(override)
    return " ".join(sorted(kept))


def measured_figures(run: Run) -> dict:
    """Figures from summary.json where it has them, else derived from metrics.jsonl."""
    figures = figures_from_metrics(run.metrics)
    summary = run.summary or {}
    for key in SUMMARY_FIGURES:
        if summary.get(key) is not None:
            figures[key] = summary[key]
    return figures


def figures_from_metrics(epochs: list[dict]) -> dict:
    """The summary figures recomputed from per-epoch lines (test/acc is unknown there)."""
    def series(key: str) -> list:
        return [epoch[key] for epoch in epochs if epoch.get(key) is not None]

    accuracies = series("val/acc")
    elapsed = series("time/elapsed_s")
    selection = series("time/selection_s")
    return {
        "epochs_done": len(epochs),
        "effective_fraction": mean_or_none(series("subset/fraction")),
        "val/acc_best": max(accuracies, default=None),
        "val/acc_final": accuracies[-1] if accuracies else None,
        "test/acc": None,
        "time/epoch_mean_s": mean_or_none(series("time/epoch_s")),
        "time/selection_total_s": sum(selection) if selection else None,
        "time/total_s": elapsed[-1] if elapsed else None,
    }


def compare_with_full(rows: list[dict]) -> None:
    """Add measured speedup and test/acc change against the matching full-data run, in place.

    Only finished jobs are compared: a failed or running job's total time is partial.
    """
    references = [row for row in rows if row["strategy"] == FULL and row["status"] == COMPLETED]
    for row in rows:
        reference = full_reference(row, references) if row["status"] == COMPLETED else None
        reference = reference or {"time/total_s": None, "test/acc": None}
        row["speedup/measured"] = ratio(reference["time/total_s"], row["time/total_s"])
        row["test/acc_change"] = difference(row["test/acc"], reference["test/acc"])


def full_reference(row: dict, references: list[dict]) -> dict | None:
    """Mean total time and test/acc of the full runs matching `row`'s dataset, model, epochs.

    Full runs with the row's own seed are preferred; without one, all matching seeds count.
    """
    matching = [
        reference for reference in references
        if all(reference[key] == row[key] for key in ("dataset", "model", "epochs"))
    ]
    same_seed = [reference for reference in matching if reference["seeds"] == row["seeds"]]
    chosen = same_seed or matching
    if not chosen:
        return None
    return {
        key: mean_or_none([reference[key] for reference in chosen if reference[key] is not None])
        for key in ("time/total_s", "test/acc")
    }


def mean_or_none(values: list) -> float | None:
    """Arithmetic mean, or None for no values."""
    return statistics.fmean(values) if values else None


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator, None when either is missing or the denominator is not positive."""
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def difference(value: float | None, reference: float | None) -> float | None:
    """value - reference, None when either is missing."""
    if value is None or reference is None:
        return None
    return value - reference
