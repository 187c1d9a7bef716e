"""The CUDA kernels' own code run on the CPU, for tests on machines without a GPU.

emulator/cuda_on_cpu.h maps the CUDA built-ins that csrc/selection_kernels.cuh uses (thread
and block indices, __syncthreads, warp shuffles, grid.sync, atomics) onto OS threads and
barriers; driver.cpp runs a kernel on arrays exchanged through a directory. These functions
mirror dsslab.kernels.ops (same plan, same arguments) and return CPU tensors. Blocks have
EMULATED_THREADS threads instead of 256 so that a round stays quick. It checks the algorithm,
indexing and barrier structure of the kernels; it cannot check the GPU memory model or speed.
"""

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from dsslab.kernels import build
from dsslab.kernels.plan import plan_greedy

HERE = Path(__file__).parent
EMULATED_THREADS = 64  # two warps per block
EMULATED_MULTIPROCESSORS = 132  # an H100 / H200, for the plan's grid size
FLAGS = ("-std=c++20", "-O1", "-U_FORTIFY_SOURCE", f"-DDSSLAB_THREADS={EMULATED_THREADS}")
TIMEOUT_S = 120  # a missing or divergent barrier hangs; this turns it into a failure


def compiler() -> str | None:
    """The C++ compiler to build the emulator with, or None."""
    return shutil.which("g++") or shutil.which("clang++")


def executable() -> Path:
    """Compile the emulator once per source version into the kernel cache; return its path."""
    files = [HERE / "driver.cpp", HERE / "cuda_on_cpu.h",
             build.SOURCE_DIR / "selection_kernels.cuh"]
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in files) + str(FLAGS).encode())
    target = build.cache_root() / "emulator" / digest.hexdigest()[:16] / "emulator"
    if target.exists():
        return target
    if compiler() is None:
        raise RuntimeError("no C++ compiler (g++ or clang++) to build the kernel emulator")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"emulator.{os.getpid()}.partial")  # concurrent builds
    subprocess.run([compiler(), *FLAGS, "-o", str(partial), str(HERE / "driver.cpp")],
                   check=True, capture_output=True, text=True)
    partial.rename(target)
    return target


def _run(command: str, arrays: dict, meta: list, outputs: dict,
         schedule_seed: int | None = None) -> dict:
    environment = dict(os.environ)
    environment.pop("DSSLAB_EMULATOR_SEED", None)
    if schedule_seed is not None:
        environment["DSSLAB_EMULATOR_SEED"] = str(schedule_seed)
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        (folder / "meta.txt").write_text(" ".join(str(value) for value in meta))
        for name, array in arrays.items():
            array.tofile(folder / name)
        result = subprocess.run([str(executable()), command, directory], capture_output=True,
                                text=True, timeout=TIMEOUT_S, env=environment, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"emulated {command} failed: {result.stderr.strip()}")
        found = {name: np.fromfile(folder / name, dtype=dtype) for name, dtype in outputs.items()}
        if (folder / "layout.txt").exists():
            found["layout"] = (folder / "layout.txt").read_text().split()
        return found


def _f32(tensor) -> np.ndarray:
    if tensor is None:
        return np.zeros(0, dtype=np.float32)
    return tensor.detach().cpu().to(torch.float32).contiguous().numpy()


def greedy_round(residuals, embeddings, val_logits, val_labels, val_embeddings, budget, eta,
                 linear_layer, greedy, candidates_per_step, seed, *, method="auto", blocks=None,
                 schedule_seed=None):
    """dsslab.kernels.greedy_round, emulated: (indices, gains, layout).

    layout: grid blocks, validation rows per block, gradient in shared memory (0/1), pairwise
    against the block's own gradient (0/1). schedule_seed shuffles the order in which emulated
    threads run between barriers (None: round robin).
    """
    samples, classes = residuals.shape
    dim = embeddings.shape[1] if linear_layer else 0
    plan = plan_greedy(samples, len(val_logits), classes, dim, linear_layer, greedy,
                       candidates_per_step, EMULATED_MULTIPROCESSORS, method, blocks)
    meta = [samples, classes, dim, len(val_logits), budget, repr(float(eta)),
            int(seed) & ((1 << 64) - 1), plan.sample_size, plan.pairwise_limit, plan.blocks]
    arrays = {"residuals.f32": _f32(residuals), "val_logits.f32": _f32(val_logits),
              "embeddings.f32": _f32(embeddings if linear_layer else None),
              "val_embeddings.f32": _f32(val_embeddings if linear_layer else None),
              "val_labels.i64": val_labels.cpu().to(torch.int64).numpy()}
    found = _run("greedy", arrays, meta, {"picked.i64": np.int64, "gains.f32": np.float32},
                 schedule_seed)
    layout = [int(value) for value in found["layout"]]
    return torch.from_numpy(found["picked.i64"]), torch.from_numpy(found["gains.f32"]), layout


def gains(residuals, embeddings, target_bias, target_weight=None) -> torch.Tensor:
    """dsslab.kernels.gains, emulated."""
    samples, classes = residuals.shape
    dim = embeddings.shape[1] if target_weight is not None else 0
    arrays = {"residuals.f32": _f32(residuals), "target_bias.f32": _f32(target_bias),
              "embeddings.f32": _f32(embeddings if dim else None),
              "target_weight.f32": _f32(target_weight)}
    found = _run("gains", arrays, [samples, classes, dim], {"gains.f32": np.float32})
    return torch.from_numpy(found["gains.f32"])


def segment_sums(residuals, embeddings, group_ids, num_groups, weights=None,
                 linear_layer=True):
    """dsslab.kernels.segment_sums, emulated."""
    samples, classes = residuals.shape
    dim = embeddings.shape[1] if linear_layer else 0
    group_ids = group_ids.cpu().to(torch.int64)
    order = torch.argsort(group_ids, stable=True)
    arrays = {"residuals.f32": _f32(residuals), "embeddings.f32": _f32(
              embeddings if linear_layer else None), "order.i64": order.numpy(),
              "sorted_groups.i64": group_ids[order].numpy(), "weights.f32": _f32(weights)}
    meta = [samples, classes, dim, num_groups, int(weights is not None)]
    found = _run("segment_sums", arrays, meta,
                 {"bias_sums.f32": np.float32, "weight_sums.f32": np.float32})
    bias_sums = torch.from_numpy(found["bias_sums.f32"]).reshape(num_groups, classes)
    if not linear_layer:
        return bias_sums, None
    return bias_sums, torch.from_numpy(found["weight_sums.f32"]).reshape(num_groups, classes,
                                                                          dim)
