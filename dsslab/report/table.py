"""The report table: rows built from runs, aggregated over seeds, sorted, as records."""

from __future__ import annotations

from dsslab.report.aggregate import MEASURED_COLUMNS, STD_SUFFIX, aggregate_seeds, merge_rows
from dsslab.report.rows import compare_with_full, run_row
from dsslab.report.runs import ReportError, Run

COLUMNS = (
    "dataset",
    "model",
    "epochs",
    "strategy",
    "fraction",
    "settings",
    "seeds",
    "runs",
    "status",
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
    "speedup/ideal",
    "speedup/measured",
    *(column + STD_SUFFIX for column in MEASURED_COLUMNS),
    "dirs",
)

# Sorting by a column whose name holds one of these puts the largest value first.
DESCENDING_WORDS = ("acc", "speedup")
ORDERS = ("auto", "asc", "desc")


def build_table(
    runs: list[Run], aggregate: bool = True, sort: str | None = None, order: str = "auto"
) -> list[dict]:
    """Table records (one dict per row, keys COLUMNS) for `runs`.

    aggregate: merge runs that differ only by seed into mean and standard deviation.
    sort: a column to order by (see sort_table); rows are otherwise grouped by dataset,
    model and epochs, largest fraction first.
    """
    rows = [run_row(run) for run in runs]
    compare_with_full(rows)
    rows = aggregate_seeds(rows) if aggregate else [merge_rows([row]) for row in rows]
    rows = [{column: row[column] for column in COLUMNS} for row in rows]
    rows.sort(key=default_order)
    return sort_table(rows, sort, order) if sort else rows


def default_order(row: dict) -> tuple:
    """Experiment first, then the full-data run, then smaller fractions further down."""
    return (
        str(row["dataset"]), str(row["model"]), row["epochs"] or 0,
        -(row["fraction"] or 0), str(row["strategy"]), row["settings"], row["status"],
    )


def sort_table(rows: list[dict], column: str, order: str = "auto") -> list[dict]:
    """Rows ordered by `column`; rows without a value go last whatever the order.

    order "auto" sorts accuracy and speedup columns descending and all others ascending.
    """
    if column not in COLUMNS:
        raise ReportError(f"cannot sort by '{column}': expected one of {', '.join(COLUMNS)}")
    if order not in ORDERS:
        raise ReportError(f"order must be one of {', '.join(ORDERS)}, got '{order}'")
    descending = order == "desc" or (
        order == "auto" and any(word in column for word in DESCENDING_WORDS)
    )
    present = [row for row in rows if row[column] is not None]
    missing = [row for row in rows if row[column] is None]
    present.sort(key=lambda row: sortable(row[column]), reverse=descending)
    return present + missing


def sortable(value):
    """Lists (seeds, dirs) compare as tuples."""
    return tuple(value) if isinstance(value, list) else value


def as_dataframe(records: list[dict]):
    """The records as a pandas DataFrame with the columns in table order."""
    try:
        import pandas
    except ImportError as error:
        raise ImportError("as_dataframe needs pandas: pip install pandas") from error
    return pandas.DataFrame.from_records(records, columns=list(COLUMNS))
