"""An installed wheel finds its configs without the checkout."""

import os
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.mark.slow
def test_wheel_install_runs_a_job_from_anywhere(tmp_path):
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(wheels), str(REPO)], check=True, capture_output=True)
    wheel = next(wheels.glob("dsslab-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    where = subprocess.run([sys.executable, "-c", "import dsslab; print(dsslab.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(site))
    result = subprocess.run(
        [sys.executable, "-m", "dsslab.train", "strategy=glister", "epochs=1", "hardware=cpu",
         "wandb.mode=disabled", "hydra.run.dir=run"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "summary.json").exists()
    assert (tmp_path / "run" / ".hydra" / "config.yaml").exists()


def test_every_package_is_listed_for_the_wheel():
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    found = {".".join(path.parent.relative_to(REPO).parts)
             for path in (REPO / "dsslab").rglob("__init__.py")}
    assert found | {"dsslab.conf"} == listed
