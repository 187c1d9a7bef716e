"""Faults seen through the real command line: sweeps, signals, tracking without a network."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow
QUICK = ["epochs=1", "hardware=cpu", "hardware.threads=1"]


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wandb_exit_code(job_dir):
    """The exit code the W&B run was finished with, from its offline debug log."""
    logs = list(job_dir.glob("wandb/offline-run-*/logs/debug.log"))
    assert len(logs) == 1, logs
    text = logs[0].read_text()
    assert "got exitcode:" in text
    return int(text.rsplit("got exitcode:", 1)[1].split()[0])


def test_sweep_without_multirun_flag_says_to_add_it(cli):
    result = cli("fraction=0.1,0.3", *QUICK)
    assert result.returncode != 0 and "--multirun" in result.stderr


def test_a_failing_job_fails_alone_and_the_sweep_exits_non_zero(cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli("-m", "strategy=random_online", "optimizer.lr=0.05,1e30", *QUICK,
                 f"hydra.sweep.dir={sweep}")
    assert result.returncode != 0
    good, bad = sweep / "0", sweep / "1"
    assert (good / "summary.json").exists() and wandb_exit_code(good) == 0
    assert not (bad / "summary.json").exists()
    assert json.loads((bad / "run.json").read_text())["status"] == "failed"
    log = (bad / "train.log").read_text()
    assert "Traceback" in log and "NonFiniteLossError" in log
    assert wandb_exit_code(bad) == 1


def test_sweep_values_keep_their_types(cli, tmp_path):
    sweep = tmp_path / "sweep"
    result = cli("-m", "strategy=random_online", "fraction=1e-1,5e-1", "optimizer.lr=1e-5",
                 "scheduler._target_=torch.optim.lr_scheduler.MultiStepLR",
                 "~scheduler.eta_min", "+scheduler.milestones=[2,4]", "wandb.mode=disabled",
                 *QUICK, f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    jobs = sorted(path for path in sweep.iterdir() if path.is_dir())
    assert len(jobs) == 2
    for job, fraction in zip(jobs, (0.1, 0.5)):
        config = (job / ".hydra" / "config.yaml").read_text()
        assert f"fraction: {fraction}\n" in config and "lr: 1.0e-05\n" in config
        assert "milestones:\n  - 2\n  - 4\n" in config
        assert json.loads((job / "run.json").read_text())["fraction"] == fraction


def test_offline_tracking_costs_about_what_disabled_tracking_costs(cli):
    started = time.perf_counter()
    disabled = cli("strategy=full", *QUICK, "wandb.mode=disabled", "hydra.run.dir=disabled")
    disabled_s = time.perf_counter() - started
    started = time.perf_counter()
    offline = cli("strategy=full", *QUICK, "hydra.run.dir=offline")
    offline_s = time.perf_counter() - started
    assert disabled.returncode == 0 and offline.returncode == 0
    assert offline_s < disabled_s + 15
    output = (offline.stdout + offline.stderr).lower()
    assert "retry" not in output and "retrying" not in output


def test_online_without_a_network_falls_back_to_offline_in_bounded_time(cli, tmp_path):
    started = time.perf_counter()
    result = cli("strategy=full", *QUICK, "wandb.mode=online", "wandb.init_timeout_s=5",
                 "hydra.run.dir=run", env={"WANDB_BASE_URL": "http://127.0.0.1:9",
                                           "WANDB_API_KEY": "a" * 40})
    assert result.returncode == 0, result.stderr
    assert time.perf_counter() - started < 90
    assert "logging offline instead" in result.stdout + result.stderr
    assert (tmp_path / "run" / "summary.json").exists()


def test_runs_started_together_never_share_an_output_dir(tmp_path):
    command = [sys.executable, "-m", "dsslab.train", "strategy=full", *QUICK,
               "wandb.mode=disabled"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    processes = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for _ in range(2)]
    assert [process.wait(timeout=300) for process in processes] == [0, 0]
    assert len(list(tmp_path.glob("outputs/runs/*/*/summary.json"))) == 2


def test_sigterm_keeps_finished_epochs_and_closes_the_run(tmp_path):
    command = [sys.executable, "-m", "dsslab.train", "strategy=random_online", "epochs=500",
               "hardware=cpu", "hardware.threads=1", "hydra.run.dir=run"]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and len(read_jsonl(metrics)) >= 2):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode != 0
    logged = read_jsonl(metrics)
    from dsslab.checkpoint import load_checkpoint

    checkpoint, _ = load_checkpoint(str(tmp_path / "run"))
    assert checkpoint["progress"]["epoch"] in (len(logged), len(logged) - 1)
    assert [epoch["epoch"] for epoch in logged] == list(range(1, len(logged) + 1))
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["status"] == "failed" and "signal 15" in record["error"]
    assert wandb_exit_code(tmp_path / "run") == 1
    assert not (tmp_path / "run" / "summary.json").exists()
