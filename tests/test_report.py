"""python -m dsslab.report: tables and charts from run directories written by the test."""

import csv
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.image
import PIL.Image
import pytest
import yaml

from dsslab.report import as_dataframe, build_table, load_runs, render, sort_table
from dsslab.report.charts import accuracy_against_speedup, accuracy_curves
from dsslab.report.cli import main

REPO = Path(__file__).resolve().parents[1]
EXPERIMENT = {"dataset": "digits", "model": "lenet", "epochs": 2}


def write_run(directory, strategy, fraction, seed, status, val_accuracies, elapsed,
              selection, test_accuracy=None, total=None, epochs=2, group="sweep-1"):
    """A job directory as train writes it: run.json, metrics.jsonl, summary.json on success."""
    directory.mkdir(parents=True)
    (directory / ".hydra").mkdir()
    overrides = [f"strategy={strategy}", f"fraction={fraction}", f"seed={seed}",
                 "wandb.mode=disabled"]
    (directory / ".hydra" / "overrides.yaml").write_text(
        "".join(f"- {override}\n" for override in overrides))
    effective = 1.0 if strategy == "full" else fraction
    info = {"status": status, "error": None if status != "failed" else "boom",
            "strategy": strategy, "fraction": effective, "seed": seed, "epochs": epochs,
            "dataset": "digits", "model": "lenet", "started_at": "2024-01-01T00:00:00",
            "ended_at": None, "job_name": f"strategy={strategy}", "group": group}
    (directory / "run.json").write_text(json.dumps(info))

    lines, previous = [], 0.0
    for index, (accuracy, clock, spent) in enumerate(zip(val_accuracies, elapsed, selection)):
        lines.append(json.dumps({
            "epoch": index + 1, "train/loss": 1.0, "train/acc": 0.5, "val/loss": 1.0,
            "val/acc": accuracy, "time/epoch_s": clock - previous, "time/selection_s": spent,
            "time/train_s": 0.1, "time/eval_s": 0.1, "time/elapsed_s": clock,
            "subset/size": 10, "subset/fraction": effective, "selection/ran": spent > 0}))
        previous = clock
    (directory / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    if status == "completed":
        summary = {"strategy": strategy, "fraction": effective, "effective_fraction": effective,
                   "seed": seed, "epochs": epochs, "dataset": "digits", "model": "lenet",
                   "val/acc_best": max(val_accuracies), "val/acc_final": val_accuracies[-1],
                   "test/loss": 0.5, "test/acc": test_accuracy, "time/total_s": total,
                   "time/selection_total_s": sum(selection), "time/train_total_s": 1.0,
                   "time/epoch_mean_s": elapsed[-1] / len(elapsed)}
        (directory / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def sweep(tmp_path):
    """Nine jobs with hand-picked figures; job 8 is another experiment (5 epochs)."""
    root = tmp_path / "sweep"
    write_run(root / "0", "full", 0.3, 0, "completed", [0.80, 0.90], [9.0, 19.0], [0, 0],
              test_accuracy=0.88, total=20.0)
    write_run(root / "1", "full", 0.3, 1, "completed", [0.85, 0.87], [10.0, 21.0], [0, 0],
              test_accuracy=0.86, total=22.0)
    write_run(root / "2", "glister", 0.3, 0, "completed", [0.70, 0.84], [4.0, 7.5], [1.0, 1.0],
              test_accuracy=0.85, total=8.0)
    write_run(root / "3", "glister", 0.3, 1, "completed", [0.72, 0.80], [4.5, 8.5], [1.5, 1.0],
              test_accuracy=0.83, total=9.0)
    write_run(root / "4", "random_online", 0.1, 0, "completed", [0.50, 0.66], [2.0, 3.9],
              [0.1, 0.1], test_accuracy=0.70, total=4.0)
    write_run(root / "5", "random_online", 0.1, 2, "completed", [0.55, 0.68], [2.5, 4.8],
              [0.2, 0.2], test_accuracy=0.72, total=5.0)
    write_run(root / "6", "glister", 0.1, 0, "failed", [0.40], [3.0], [2.0])
    write_run(root / "7", "random_online", 0.3, 0, "running", [0.61], [2.0], [0.5])
    write_run(root / "8", "full", 0.3, 0, "completed", [0.9, 0.9], [20.0, 50.0], [0, 0],
              test_accuracy=0.99, total=50.0, epochs=5)
    return root


def rows_by(records, strategy, fraction, status="completed", epochs=2):
    """The one record of a strategy at a fraction."""
    found = [row for row in records if (row["strategy"], row["fraction"], row["status"],
                                        row["epochs"]) == (strategy, fraction, status, epochs)]
    assert len(found) == 1, found
    return found[0]


def test_per_run_rows_hold_the_summary_figures_and_speedup_against_the_same_seed(sweep):
    records = build_table(load_runs(sweep), aggregate=False)
    glister = [row for row in records if row["dirs"] == ["2"]][0]
    assert glister == {
        **EXPERIMENT, "strategy": "glister", "fraction": 0.3, "settings": "", "seeds": [0],
        "runs": 1, "status": "completed", "epochs_done": 2.0, "effective_fraction": 0.3,
        "val/acc_best": 0.84, "val/acc_final": 0.84, "test/acc": 0.85,
        "test/acc_change": 0.85 - 0.88, "time/epoch_mean_s": 7.5 / 2,
        "time/selection_total_s": 2.0, "time/total_s": 8.0, "selection/share": 2.0 / 8.0,
        "speedup/ideal": 1 / 0.3, "speedup/measured": 20.0 / 8.0,
        **{key: None for key in glister if key.endswith("_std")}, "dirs": ["2"],
    }
    assert sum(key.endswith("_std") for key in glister) == 11


def test_a_seed_without_its_own_full_run_is_compared_with_the_mean_over_full_seeds(sweep):
    records = build_table(load_runs(sweep), aggregate=False)
    seed_two = [row for row in records if row["dirs"] == ["5"]][0]
    assert seed_two["speedup/measured"] == pytest.approx(((20.0 + 22.0) / 2) / 5.0, rel=1e-12)
    assert seed_two["test/acc_change"] == pytest.approx(0.72 - (0.88 + 0.86) / 2, rel=1e-12)


def test_a_full_run_is_its_own_reference_and_other_epochs_never_match(sweep):
    records = build_table(load_runs(sweep), aggregate=False)
    five_epochs = [row for row in records if row["epochs"] == 5][0]
    assert five_epochs["speedup/measured"] == 1.0
    assert five_epochs["test/acc_change"] == 0.0
    assert five_epochs["speedup/ideal"] == 1.0


def test_seeds_aggregate_to_mean_and_sample_standard_deviation(sweep):
    glister = rows_by(build_table(load_runs(sweep)), "glister", 0.3)
    speedups = [20.0 / 8.0, 22.0 / 9.0]
    assert glister["seeds"] == [0, 1]
    assert glister["runs"] == 2
    assert glister["dirs"] == ["2", "3"]
    assert glister["speedup/measured"] == pytest.approx(statistics.fmean(speedups), rel=1e-12)
    assert glister["speedup/measured_std"] == pytest.approx(statistics.stdev(speedups), rel=1e-12)
    assert glister["test/acc"] == pytest.approx(0.84, rel=1e-12)
    assert glister["test/acc_std"] == pytest.approx(0.02 / 2 ** 0.5, rel=1e-9)
    assert glister["time/total_s"] == 8.5
    assert glister["time/selection_total_s"] == 2.25
    assert glister["selection/share"] == pytest.approx((2.0 / 8.0 + 2.5 / 9.0) / 2, rel=1e-12)
    assert glister["val/acc_best"] == pytest.approx((0.84 + 0.80) / 2, rel=1e-12)
    assert glister["val/acc_best_std"] == pytest.approx(0.04 / 2 ** 0.5, rel=1e-9)


def test_full_runs_of_different_fraction_overrides_are_one_row(sweep):
    records = build_table(load_runs(sweep))
    full = rows_by(records, "full", 1.0)
    assert (full["seeds"], full["speedup/measured"], full["test/acc_change"]) == ([0, 1], 1, 0)
    assert len(records) == 6


def test_failed_and_running_jobs_show_their_status_and_partial_figures(sweep):
    records = build_table(load_runs(sweep))
    failed = rows_by(records, "glister", 0.1, status="failed")
    running = rows_by(records, "random_online", 0.3, status="running")
    assert (failed["epochs_done"], failed["val/acc_best"], failed["time/total_s"]) == (1, 0.4, 3)
    assert failed["time/selection_total_s"] == 2.0
    assert failed["selection/share"] == 2.0 / 3.0
    assert (failed["test/acc"], failed["speedup/measured"], failed["test/acc_change"]) == (
        None, None, None)
    assert (running["val/acc_final"], running["time/epoch_mean_s"]) == (0.61, 2.0)
    assert running["speedup/measured"] is None


def test_sort_puts_the_best_accuracy_first_and_missing_values_last(sweep):
    records = build_table(load_runs(sweep), aggregate=False, sort="val/acc_best")
    best = [row["val/acc_best"] for row in records]
    assert best == sorted(best, reverse=True)
    by_time = sort_table(records, "time/total_s")
    assert [row["time/total_s"] for row in by_time][:3] == [2.0, 3.0, 4.0]
    by_test = sort_table(records, "test/acc")
    assert {row["status"] for row in by_test[-2:]} == {"failed", "running"}
    assert [row["test/acc"] for row in by_test][:2] == [0.99, 0.88]


def test_a_single_job_directory_is_a_report_of_one_run(sweep):
    (run,) = load_runs(sweep / "2")
    assert (run.name, run.status, len(run.metrics)) == (".", "completed", 2)
    assert run.overrides == ("strategy=glister", "fraction=0.3", "seed=0", "wandb.mode=disabled")


def test_a_torn_last_metrics_line_of_a_killed_job_is_skipped(sweep):
    with open(sweep / "7" / "metrics.jsonl", "a") as metrics:
        metrics.write('{"epoch": 2, "val/a')
    (running,) = [run for run in load_runs(sweep) if run.name == "7"]
    assert [epoch["val/acc"] for epoch in running.metrics] == [0.61]


def test_sorting_by_an_unknown_column_names_it(sweep):
    with pytest.raises(Exception, match="val/accuracy"):
        sort_table(build_table(load_runs(sweep)), "val/accuracy")


def test_csv_and_json_hold_the_exact_values(sweep):
    records = build_table(load_runs(sweep), aggregate=False)
    parsed = list(csv.DictReader(io.StringIO(render(records, "csv"))))
    assert len(parsed) == 9
    glister = [row for row in parsed if row["dirs"] == "2"][0]
    assert float(glister["speedup/measured"]) == 2.5
    assert float(glister["test/acc"]) == 0.85
    assert json.loads(render(records, "json")) == records


def test_markdown_shows_spread_and_hides_the_empty_settings_column(sweep):
    text = render(build_table(load_runs(sweep)), "md")
    header = text.splitlines()[0]
    assert "settings" not in header and "speedup/measured" in header and "_std" not in header
    glister = [line for line in text.splitlines() if "| glister | 0.3 |" in line][0]
    assert "| 0,1 | 2 | completed |" in glister
    assert "| 2.47 ± 0.04 |" in glister  # mean of 2.5 and 2.444, std 0.039


def test_dataframe_has_the_table_columns(sweep):
    frame = as_dataframe(build_table(load_runs(sweep)))
    assert list(frame.columns) == list(build_table(load_runs(sweep))[0])
    assert len(frame) == 6


def test_each_run_is_one_series_in_the_accuracy_charts(sweep):
    runs = load_runs(sweep)
    for x_key in ("epoch", "time/elapsed_s"):
        axes = accuracy_curves(runs, x_key, x_key).axes[0]
        assert len(axes.lines) == len(runs) == 9
        glister = axes.lines[2]
        assert list(glister.get_ydata()) == [0.70, 0.84]
    time_axes = accuracy_curves(runs, "time/elapsed_s", "s").axes[0]
    assert list(time_axes.lines[2].get_xdata()) == [4.0, 7.5]


def test_trade_off_chart_has_one_series_per_strategy_and_the_full_reference(sweep):
    figure = accuracy_against_speedup(build_table(load_runs(sweep)))
    assert len(figure.axes) == 2  # 2 and 5 epochs
    handles, labels = figure.axes[0].get_legend_handles_labels()
    assert labels == ["full data", "glister", "random_online"]
    glister = figure.axes[0].containers[0]
    x_values = list(glister.lines[0].get_xdata())
    assert x_values == pytest.approx([statistics.fmean([2.5, 22 / 9])], rel=1e-12)


def test_cli_writes_the_table_and_three_readable_pngs(sweep, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--sort", "val/acc_best"]) == 0
    printed = capsys.readouterr().out
    assert printed == (out / "report.md").read_text()
    assert printed.splitlines()[2].startswith("| digits | lenet | 5 | full |")
    for name in ("val_acc_epoch", "val_acc_time", "accuracy_speedup"):
        image = matplotlib.image.imread(out / f"report_{name}.png")
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_cli_writes_next_to_the_runs_by_default(sweep, capsys):
    assert main([str(sweep), "--format", "json", "--no-charts"]) == 0
    assert json.loads((sweep / "report.json").read_text()) == json.loads(capsys.readouterr().out)
    assert not (sweep / "report_val_acc_epoch.png").exists()


def test_missing_path_and_empty_directory_fail_naming_the_path(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main([str(missing)]) == 1
    assert f"'{missing}' does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty"
    (empty / "wandb").mkdir(parents=True)
    assert main([str(empty)]) == 1
    assert f"no runs found under '{empty}'" in capsys.readouterr().err


def test_module_entry_point_exits_non_zero_for_a_bad_path(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dsslab.report", str(tmp_path / "nowhere")],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert "nowhere' does not exist" in result.stderr


def test_wandb_upload_logs_the_table_and_charts_offline(sweep, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SILENT", "true")
    out = tmp_path / "report"
    assert main([str(sweep), "--out", str(out), "--wandb", "--wandb-mode", "offline"]) == 0
    (run_dir,) = (out / "wandb").glob("offline-run-*")
    media = run_dir / "files" / "media"
    (table_file,) = (media / "table" / "report").glob("table_*.table.json")
    table = json.loads(table_file.read_text())
    assert len(table["data"]) == 6 and "speedup/measured" in table["columns"]
    assert len(list((media / "images" / "report").glob("*.png"))) == 3


# End to end: real jobs through the real CLI, then the report on their directories.

SWEEP_STRATEGIES = "full,glister,random_online"


def run_cli(arguments, timeout=300):
    """python -m <arguments> in the repository, one CPU thread, W&B off; the finished process."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    result = subprocess.run([sys.executable, "-m", *arguments], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def terminate_after_first_epoch(run_dir):
    """Start a long job, SIGTERM it once an epoch is logged; train records it as failed."""
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(
        [sys.executable, "-m", "dsslab.train", "strategy=random_online", "fraction=0.1",
         "epochs=100000", "wandb.mode=disabled", f"hydra.run.dir={run_dir}"],
        cwd=REPO, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    metrics = run_dir / "metrics.jsonl"
    while not (metrics.exists() and metrics.read_text().strip()):
        assert job.poll() is None and time.monotonic() < deadline, "job never logged an epoch"
        time.sleep(0.1)
    job.send_signal(signal.SIGTERM)
    job.wait(timeout=60)


def read_json(path):
    return json.loads(path.read_text())


@pytest.mark.slow
def test_report_of_a_real_sweep_equals_what_its_files_say(tmp_path):
    sweep = tmp_path / "sweep"
    run_cli(["dsslab.train", "-m", f"strategy={SWEEP_STRATEGIES}", "fraction=0.1,0.3",
             "epochs=2", "dataset=digits", "wandb.mode=disabled", f"hydra.sweep.dir={sweep}"])
    terminate_after_first_epoch(sweep / "killed")
    out = tmp_path / "report"
    printed = run_cli(["dsslab.report", str(sweep), "--format", "json", "--out", str(out)]).stdout
    records = json.loads(printed)

    summaries = {path.parent.name: read_json(path) for path in sweep.glob("*/summary.json")}
    full = [summary for summary in summaries.values() if summary["strategy"] == "full"]
    full_total = statistics.fmean(summary["time/total_s"] for summary in full)
    full_test = statistics.fmean(summary["test/acc"] for summary in full)
    assert len(summaries) == 6 and len(full) == 2
    assert len(records) == 6  # both full jobs are one row (seed 0 twice), plus the killed job
    for row in records:
        if row["status"] != "completed" or row["strategy"] == "full":
            continue
        (name,) = row["dirs"]
        summary = summaries[name]
        epochs = [json.loads(line) for line in (sweep / name / "metrics.jsonl").open()]
        assert row["val/acc_best"] == max(epoch["val/acc"] for epoch in epochs)
        assert row["val/acc_final"] == epochs[-1]["val/acc"] == summary["val/acc_final"]
        assert row["time/selection_total_s"] == summary["time/selection_total_s"]
        assert row["effective_fraction"] == summary["effective_fraction"]
        assert row["speedup/measured"] == pytest.approx(
            full_total / summary["time/total_s"], rel=1e-12)
        assert row["test/acc_change"] == pytest.approx(
            summary["test/acc"] - full_test, rel=1e-12, abs=1e-15)
        assert row["speedup/ideal"] == pytest.approx(1 / row["fraction"], rel=1e-12)

    (killed,) = [row for row in records if row["dirs"] == ["killed"]]
    assert killed["status"] == "failed" and killed["epochs_done"] >= 1
    assert read_json(sweep / "killed" / "run.json")["status"] == "failed"
    for name in ("val_acc_epoch", "val_acc_time", "accuracy_speedup"):
        with PIL.Image.open(out / f"report_{name}.png") as image:
            assert image.width > 100 and image.height > 100


@pytest.mark.slow
def test_optuna_preset_maximizes_best_val_acc_over_fraction_and_lr(tmp_path):
    sweep = tmp_path / "optuna"
    run_cli(["dsslab.train", "-m", "hparams_search=optuna", "strategy=random_online", "epochs=1",
             "wandb.mode=disabled", "hydra.sweeper.n_trials=3",
             "hydra.sweeper.sampler.n_startup_trials=2", f"hydra.sweep.dir={sweep}"])
    results = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    trials = {}
    for number in range(3):
        overrides = yaml.safe_load((sweep / str(number) / ".hydra/overrides.yaml").read_text())
        settings = dict(override.split("=", 1) for override in overrides)
        summary = read_json(sweep / str(number) / "summary.json")
        trials[number] = (float(settings["fraction"]), float(settings["optimizer.lr"]), summary)
        assert 0.05 <= summary["fraction"] <= 0.5
        assert summary["fraction"] == float(settings["fraction"])
        assert 0.005 <= float(settings["optimizer.lr"]) <= 0.2

    best = max(trials.values(), key=lambda trial: trial[2]["val/acc_best"])
    assert results["best_value"] == best[2]["val/acc_best"]
    assert results["best_params"] == {"fraction": best[0], "optimizer.lr": best[1]}
    records = build_table(load_runs(sweep), sort="val/acc_best")
    assert len(records) == 3 and records[0]["val/acc_best"] == results["best_value"]
