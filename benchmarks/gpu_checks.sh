#!/usr/bin/env bash
# Every GPU check and benchmark in one run, for a session with a CUDA device (see README).
# Expects the CIFAR-10 JPEG archive at .device_data/cifar10-jpeg.tar.gz (an ignored folder).
# Writes its logs under ${OUT:-gpu_results}/.
set -uo pipefail
out="${OUT:-gpu_results}"
mkdir -p "$out"
export CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}" TORCH_CUDA_ARCH_LIST="9.0+PTX" PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"

python -m dsslab.kernels.build 2>&1 | tee "$out/build.log"
python -m pytest tests/test_kernels.py -q -m gpu -x 2>&1 | tee "$out/gpu_tests.log"
python benchmarks/kernels.py --repeats 3 2>&1 | tee "$out/kernels.log"

if [ -f .device_data/cifar10-jpeg.tar.gz ]; then
    mkdir -p .device_data/cifar10 && tar -xzf .device_data/cifar10-jpeg.tar.gz -C .device_data/cifar10
    python benchmarks/training.py --root .device_data/cifar10 --hardware cuda --epochs 3 \
        2>&1 | grep -v INFO | tee "$out/training.log"
fi
