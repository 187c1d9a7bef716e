"""The table as Markdown, CSV or JSON text."""

from __future__ import annotations

import csv
import io
import json
import math

from dsslab.report.aggregate import STD_SUFFIX
from dsslab.report.table import COLUMNS

FORMATS = ("md", "csv", "json")

# Columns the Markdown table leaves out: spreads are shown as "mean ± std" instead.
MARKDOWN_HIDDEN = ("dirs",)


def render(records: list[dict], format: str) -> str:
    """The records as text in `format` (md, csv or json)."""
    renderers = {"md": to_markdown, "csv": to_csv, "json": to_json}
    if format not in renderers:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got '{format}'")
    return renderers[format](records)


def to_json(records: list[dict]) -> str:
    """A JSON list of records; NaN and infinity become null."""
    clean = [{key: finite_or_none(value) for key, value in row.items()} for row in records]
    return json.dumps(clean, indent=2)


def to_csv(records: list[dict]) -> str:
    """All columns at full precision; lists are joined with commas."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in records:
        writer.writerow([plain_cell(row[column]) for column in COLUMNS])
    return buffer.getvalue()


def to_markdown(records: list[dict], columns: list[str] | None = None) -> str:
    """A pipe table with rounded figures; 'settings' only appears when some row has any."""
    columns = columns or markdown_columns(records)
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "|".join("---" for _ in columns) + "|",
    ]
    for row in records:
        cells = [markdown_cell(row, column).replace("|", "\\|") for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown_columns(records: list[dict]) -> list[str]:
    """The columns worth a place in the Markdown table."""
    columns = [
        column for column in COLUMNS
        if not column.endswith(STD_SUFFIX) and column not in MARKDOWN_HIDDEN
    ]
    if not any(row["settings"] for row in records):
        columns.remove("settings")
    return columns


def markdown_cell(row: dict, column: str) -> str:
    """The cell text: the value rounded for its column, with '± std' when seeds disagree.

    A spread that rounds to zero at the column's precision is left out.
    """
    text = format_value(column, row[column])
    spread = format_value(column, row.get(column + STD_SUFFIX)).lstrip("+")
    if spread.strip("0.") and row["runs"] > 1:
        text += " ± " + spread
    return text


def format_value(column: str, value) -> str:
    """Round a figure the way its column is read: accuracies to 4 places, times to 2."""
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if not isinstance(value, float):
        return str(value)
    if column == "test/acc_change":
        return f"{value:+.4f}"
    if "acc" in column:
        return f"{value:.4f}"
    if column.startswith(("time/", "speedup/")):
        return f"{value:.2f}"
    if column in ("effective_fraction", "selection/share"):
        return f"{value:.3f}"
    return f"{value:g}"


def plain_cell(value):
    """A CSV cell: lists joined with commas, None and NaN empty."""
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    value = finite_or_none(value)
    return "" if value is None else value


def finite_or_none(value):
    """None for NaN and infinities, the value otherwise."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
