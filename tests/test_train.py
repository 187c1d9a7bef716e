"""End-to-end runs on the bundled digits data, through train() and through the real CLI."""

import json

import pytest

from conftest import FAST, REPO
from dsslab.selection import budget_for
from dsslab.train import train

DIGITS_TRAIN = 1295  # 1,797 digits minus 20% test, minus 10% of the rest for validation


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


STRATEGY_CONFIGS = sorted(path.stem for path in (REPO / "conf/strategy").glob("*.yaml"))


@pytest.mark.parametrize("strategy", STRATEGY_CONFIGS)
def test_every_strategy_trains_an_epoch_on_digits(make_config, tmp_path, strategy):
    cfg = make_config(f"strategy={strategy}", "fraction=0.3", *FAST)
    summary = train(cfg, tmp_path)
    metrics = read_jsonl(tmp_path / "metrics.jsonl")
    expected = DIGITS_TRAIN if strategy == "full" else budget_for(0.3, DIGITS_TRAIN)
    assert len(metrics) == 1
    assert metrics[0]["subset/size"] == expected == 389 or strategy == "full"
    assert summary["fraction"] == (1.0 if strategy == "full" else 0.3)
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "completed"


def test_full_data_logs_effective_fraction_one(make_config, tmp_path):
    summary = train(make_config("strategy=full", "fraction=0.1", *FAST), tmp_path)
    assert summary["effective_fraction"] == 1.0
    assert read_jsonl(tmp_path / "metrics.jsonl")[0]["subset/size"] == DIGITS_TRAIN


def test_metrics_hold_every_per_epoch_key(make_config, tmp_path):
    train(make_config("strategy=random_online", "fraction=0.5", *FAST), tmp_path)
    metrics = read_jsonl(tmp_path / "metrics.jsonl")[0]
    for key in ("train/loss", "train/acc", "val/loss", "val/acc", "time/epoch_s",
                "time/selection_s", "time/train_s", "time/elapsed_s", "subset/size",
                "subset/fraction"):
        assert key in metrics
    assert metrics["subset/fraction"] == 648 / DIGITS_TRAIN


@pytest.mark.slow
def test_a_fraction_sweep_gives_one_tracked_job_per_fraction(cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli("-m", "strategy=random_online", "fraction=0.1,0.3,0.5", "epochs=1",
                 "hardware=cpu", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    jobs = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert [job.name for job in jobs] == ["0", "1", "2"]
    for job, fraction in zip(jobs, (0.1, 0.3, 0.5)):
        assert json.loads((job / "run.json").read_text())["fraction"] == fraction
        assert json.loads((job / "run.json").read_text())["group"] == sweep.name
        metrics = read_jsonl(job / "metrics.jsonl")
        assert metrics[0]["subset/size"] == budget_for(fraction, DIGITS_TRAIN)
        assert len(list((job / "wandb").glob("offline-run-*"))) == 1


@pytest.mark.slow
def test_a_bad_fraction_exits_non_zero_naming_fraction(cli, tmp_path):
    result = cli("fraction=1.5", "hardware=cpu", "hydra.run.dir=run")
    assert result.returncode != 0
    assert "fraction=1.5 is not allowed: expected a number in (0, 1]" in result.stderr
    assert not list(tmp_path.rglob("summary.json"))
    assert not list(tmp_path.rglob("metrics.jsonl"))


def test_warm_start_trains_on_all_data_before_the_first_selection(make_config, tmp_path):
    cfg = make_config("strategy=glister", "fraction=0.3", "epochs=3",
                      "strategy.warm_start_epochs=2", *FAST[1:])
    train(cfg, tmp_path)
    metrics = read_jsonl(tmp_path / "metrics.jsonl")
    assert [m["subset/size"] for m in metrics] == [DIGITS_TRAIN, DIGITS_TRAIN, 389]
    assert [m["selection/ran"] for m in metrics] == [False, False, True]
    assert all(m["train/loss"] > 0 for m in metrics)


def test_selection_rounds_follow_select_every(make_config, tmp_path):
    cfg = make_config("strategy=random_online", "epochs=5", "strategy.select_every=2",
                      *FAST[1:])
    train(cfg, tmp_path)
    ran = [m["selection/ran"] for m in read_jsonl(tmp_path / "metrics.jsonl")]
    assert ran == [True, False, True, False, True]


@pytest.mark.slow
def test_the_readme_quickstart_command_runs_and_prints_the_table(cli, tmp_path):
    readme = (REPO / "README.md").read_text()
    command = readme.split("## Quickstart", 1)[1].split("```bash\n", 1)[1].split("\n", 1)[0]
    assert command == "python -m dsslab.train experiment=quickstart"
    result = cli("experiment=quickstart", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| full | 1 | completed |" in result.stdout
    assert "| glister | 0.3 | completed |" in result.stdout
    assert len(list((tmp_path / "sweep").glob("*/summary.json"))) == 2
