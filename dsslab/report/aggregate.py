"""Runs that differ only by seed become one row holding the mean and standard deviation."""

from __future__ import annotations

import statistics

# A row's identity; runs sharing all of these differ only by seed.
GROUP_COLUMNS = ("dataset", "model", "epochs", "strategy", "fraction", "settings", "status")

# Columns measured per run, aggregated to mean with a "<column>_std" companion.
MEASURED_COLUMNS = (
    "epochs_done",
    "effective_fraction",
    "val/acc_best",
    "val/acc_final",
    "test/acc",
    "test/acc_change",
    "time/epoch_mean_s",
    "time/selection_total_s",
    "time/total_s",
    "selection/share",
    "speedup/measured",
)
STD_SUFFIX = "_std"


def aggregate_seeds(rows: list[dict]) -> list[dict]:
    """One row per group of runs that differ only by seed, in order of first appearance."""
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        groups.setdefault(tuple(row[column] for column in GROUP_COLUMNS), []).append(row)
    return [merge_rows(members) for members in groups.values()]


def merge_rows(members: list[dict]) -> dict:
    """Mean and sample standard deviation of each measured column over `members`.

    The standard deviation is None for fewer than two values; values that are None
    (a figure a run does not have) are left out of both.
    """
    first = members[0]
    merged = {column: first[column] for column in GROUP_COLUMNS}
    merged["seeds"] = sorted(seed for member in members for seed in member["seeds"])
    merged["runs"] = len(members)
    merged["speedup/ideal"] = first["speedup/ideal"]
    for column in MEASURED_COLUMNS:
        values = [member[column] for member in members if member[column] is not None]
        merged[column] = statistics.fmean(values) if values else None
        merged[column + STD_SUFFIX] = statistics.stdev(values) if len(values) > 1 else None
    merged["dirs"] = [name for member in members for name in member["dirs"]]
    return merged
