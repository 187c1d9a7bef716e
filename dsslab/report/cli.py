"""python -m dsslab.report: the table and charts of a sweep or outputs directory."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dsslab.report.render import FORMATS, render
from dsslab.report.runs import ReportError, load_runs
from dsslab.report.table import COLUMNS, ORDERS, build_table
from dsslab.report.wandb_upload import WANDB_MODES

logger = logging.getLogger("dsslab.report")


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The command line; see --help."""
    parser = argparse.ArgumentParser(
        prog="python -m dsslab.report",
        description="Speedup-against-accuracy table and charts for every run under a directory.",
    )
    parser.add_argument("path", type=Path, help="a sweep dir, an outputs dir or one job dir")
    parser.add_argument("--sort", metavar="COLUMN", help="order rows by this column, e.g. "
                        "val/acc_best (accuracy and speedup columns sort largest first)")
    parser.add_argument("--order", choices=ORDERS, default="auto", help="sort direction")
    parser.add_argument("--format", choices=FORMATS, default="md", help="table format")
    parser.add_argument("--out", type=Path, help="directory for report.<format> and the "
                        "charts (default: the path given)")
    parser.add_argument("--no-aggregate", action="store_true",
                        help="one row per run instead of the mean and std over seeds")
    parser.add_argument("--no-charts", action="store_true", help="write the table only")
    parser.add_argument("--wandb", action="store_true",
                        help="log the table and charts to W&B in the sweep's group")
    parser.add_argument("--wandb-mode", choices=WANDB_MODES, default="offline")
    parser.add_argument("--wandb-project", help="default: wandb.project of the runs' config")
    parser.add_argument("--wandb-entity", help="default: wandb.entity of the runs' config")
    parser.add_argument("--wandb-group", help="default: the group (sweep id) the runs share")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the report; 0 on success, 1 with a message naming the problem otherwise."""
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        text = make_report(arguments)
    except ReportError as error:
        print(f"python -m dsslab.report: error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    return 0


def make_report(arguments: argparse.Namespace) -> str:
    """Read the runs, write the table and charts, optionally upload; returns the table text."""
    if arguments.sort and arguments.sort not in COLUMNS:
        raise ReportError(f"--sort '{arguments.sort}' is not a column; expected one of "
                          f"{', '.join(COLUMNS)}")
    runs = load_runs(arguments.path)
    records = build_table(runs, aggregate=not arguments.no_aggregate,
                          sort=arguments.sort, order=arguments.order)
    text = render(records, arguments.format)

    out_dir = arguments.out or arguments.path
    out_dir.mkdir(parents=True, exist_ok=True)
    table_path = out_dir / f"report.{arguments.format}"
    table_path.write_text(text)
    charts = {} if arguments.no_charts else draw_charts(runs, out_dir)
    logger.info("wrote %s and %d charts", table_path, len(charts))

    if arguments.wandb:
        upload(arguments, runs, records, charts, out_dir)
    return text


def draw_charts(runs, out_dir: Path) -> dict[str, Path]:
    """The charts; the trade-off chart always uses the seed-aggregated rows."""
    from dsslab.report.charts import write_charts  # matplotlib only when charts are wanted

    return write_charts(runs, build_table(runs, aggregate=True), out_dir)


def upload(arguments, runs, records, charts, out_dir: Path) -> None:
    """Send the report to W&B with the project, entity and group of the runs by default."""
    from dsslab.report.wandb_upload import common_group, tracking_target, upload_report

    project, entity = tracking_target(runs)
    upload_report(
        records, charts, out_dir, mode=arguments.wandb_mode,
        project=arguments.wandb_project or project,
        entity=arguments.wandb_entity or entity,
        group=arguments.wandb_group or common_group(runs),
    )
