"""dsslab.kernels: backend choice, build cache and failures, the plan, the kernel's draw, and
agreement of the kernels with the PyTorch gradient algebra and GLISTER path, checked on the
kernel code compiled for the CPU (dsslab.kernels.emulator) and, with a device, on the GPU."""

import itertools
import shutil
from collections import Counter

import pytest
import torch

from dsslab.kernels import (
    KernelBuildError,
    backend,
    build,
    emulator,
    gains,
    greedy_round,
    load_backend,
    plan,
    sampling,
    segment_sums,
)
from dsslab.selection import gradients

try:
    build.toolkit_root()
    HAVE_NVCC = True
except KernelBuildError:
    HAVE_NVCC = False

compiler_missing = emulator.compiler() is None
needs_nvcc = pytest.mark.skipif(not HAVE_NVCC, reason="nvcc (CUDA toolkit) not found")
needs_gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
needs_compiler = pytest.mark.skipif(compiler_missing, reason="no C++ compiler for the emulator")


@pytest.fixture
def fresh_build(monkeypatch, tmp_path):
    """A process where the extension has not been loaded, with a private build cache."""
    monkeypatch.setattr(build, "_loaded", {})
    monkeypatch.setenv("DSSLAB_KERNELS_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def broken_sources(tmp_path):
    source_dir = tmp_path / "csrc"
    source_dir.mkdir()
    (source_dir / "broken.cu").write_text("__global__ void kernel() { this is not C++ }\n")
    return source_dir


# --- load_backend without a GPU -------------------------------------------------------------

def test_torch_mode_uses_the_pytorch_path():
    expected = backend.KernelBackend("torch", "hardware.kernels=torch")
    assert load_backend("torch", "cuda") == expected


def test_auto_on_a_cpu_device_uses_the_pytorch_path_and_says_why():
    chosen = load_backend("auto", "cpu")
    assert chosen.name == "torch"
    assert "the device is cpu, not a CUDA device" in chosen.reason


def test_cuda_mode_on_a_cpu_device_raises_saying_why():
    with pytest.raises(RuntimeError, match="hardware.kernels=cuda .* not a CUDA device"):
        load_backend("cuda", torch.device("cpu"))


def test_auto_without_a_visible_gpu_falls_back(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    chosen = load_backend("auto", "cuda")
    assert (chosen.name, "no CUDA device is visible" in chosen.reason) == ("torch", True)


def test_cuda_mode_without_a_visible_gpu_raises(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="no CUDA device is visible"):
        load_backend("cuda", "cuda")


def test_unknown_kernels_setting_names_the_key():
    with pytest.raises(ValueError, match="hardware.kernels must be one of"):
        load_backend("triton", "cpu")


def test_build_failure_falls_back_in_auto_and_raises_in_cuda_mode(monkeypatch):
    def failing_build(*args, **kwargs):
        raise KernelBuildError("building the CUDA kernels failed:\nerror: expected a ';'")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(build, "build", failing_build)
    chosen = load_backend("auto", "cuda")
    assert chosen.name == "torch"
    assert "error: expected a ';'" in chosen.reason
    with pytest.raises(RuntimeError, match="expected a ';'"):
        load_backend("cuda", "cuda")


def test_missing_nvcc_is_reported_by_name(monkeypatch, fresh_build):
    monkeypatch.setattr(build, "toolkit_candidates", lambda: [str(fresh_build)])
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    chosen = load_backend("auto", "cuda")
    assert chosen.name == "torch"
    assert "nvcc not found: set CUDA_HOME" in chosen.reason
    with pytest.raises(RuntimeError, match="nvcc not found"):
        load_backend("cuda", "cuda")


# --- build cache ------------------------------------------------------------------------------

def test_cache_key_changes_with_sources_arch_and_torch(tmp_path, monkeypatch):
    source_dir = tmp_path / "csrc"
    shutil.copytree(build.SOURCE_DIR, source_dir)
    original = build.cache_key(source_dir, "9.0+PTX")
    assert build.cache_key(source_dir, "9.0+PTX") == original
    assert build.cache_key(source_dir, "8.0+PTX") != original
    monkeypatch.setattr(torch, "__version__", "0.0.0")
    assert build.cache_key(source_dir, "9.0+PTX") != original
    monkeypatch.undo()
    source = next(source_dir.glob("*.cu"))
    source.write_text(source.read_text() + "\n// edited\n")
    assert build.cache_key(source_dir, "9.0+PTX") != original


def test_cache_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DSSLAB_KERNELS_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert build.cache_root() == tmp_path / "dsslab" / "kernels"
    monkeypatch.setenv("DSSLAB_KERNELS_CACHE", str(tmp_path / "own"))
    assert build.cache_root() == tmp_path / "own"


def test_arch_list_is_the_environment_setting_else_sm90_with_ptx(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    assert build.arch_list() == "9.0+PTX"
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
    assert build.arch_list() == "8.0;9.0"


def test_missing_source_directory_is_a_build_error(tmp_path):
    with pytest.raises(KernelBuildError, match="does not exist"):
        build.sources(tmp_path / "absent")


def test_error_summary_keeps_the_compiler_error_lines():
    log = "[1/2] nvcc -c a.cu\na.cu(3): error: identifier x is undefined\nninja: build stopped"
    assert build.error_summary(log) == "a.cu(3): error: identifier x is undefined"


# --- the plan ---------------------------------------------------------------------------------

def test_grid_has_one_block_per_multiprocessor_with_at_least_16_rows_each():
    assert plan.grid_blocks(5000, 132) == 132
    assert plan.grid_blocks(50, 132) == 4  # ceil(50 / 16)
    assert plan.grid_blocks(50, 132, blocks=7) == 7
    assert plan.grid_blocks(5, 132, blocks=7) == 5


def test_pairwise_limit_at_cifar_scale():
    # 132 blocks of 38 rows. Last layer: 38 x (10 + 512) > 5130, so a pairwise candidate costs
    # 5130 + 132 per block against the block's gradient, and 5130 / 132 sharded; the fixed
    # costs differ by sharded's reduction and barriers, 5130 + 132 + 2 x 2^19.
    assert plan.pairwise_limit(45000, 5000, 10, 512, True, 132) == 201
    # Bias: 10 + 132 per candidate against 10 / 132; fixed costs differ by 10 + 132 + 2^20.
    assert plan.pairwise_limit(45000, 5000, 10, 0, False, 132) == 7389
    # C = 100: 38 x 612 < 51,300, so pair by pair: 23,256 + 132 per candidate against
    # 51,300 / 132, and sharded's fixed cost 38 x 51,300 + 51,300 + 132 + 2^20 in full.
    assert plan.pairwise_limit(45000, 5000, 100, 512, True, 132) == 132


def test_stochastic_cifar_round_scores_pairwise_and_naive_starts_sharded():
    for linear, dim in ((False, 0), (True, 512)):
        stochastic = plan.plan_greedy(45000, 5000, 10, dim, linear, "stochastic", 15, 132)
        naive = plan.plan_greedy(45000, 5000, 10, dim, linear, "naive", 15, 132)
        assert stochastic.sample_size == 15 and stochastic.sample_size <= stochastic.pairwise_limit
        assert naive.sample_size == 45000 and naive.pairwise_limit < 45000


def test_forced_methods_and_bad_arguments():
    assert plan.plan_greedy(100, 20, 3, 4, True, "naive", 1, 8, "pairwise").pairwise_limit == 100
    assert plan.plan_greedy(100, 20, 3, 4, True, "naive", 1, 8, "sharded").pairwise_limit == 0
    with pytest.raises(ValueError, match="greedy must be 'naive' or 'stochastic'"):
        plan.plan_greedy(100, 20, 3, 4, True, "rgreedy", 1, 8)
    with pytest.raises(ValueError, match="method must be one of"):
        plan.plan_greedy(100, 20, 3, 4, True, "naive", 1, 8, "fast")


# --- the kernel's candidate draw, in Python ---------------------------------------------------

def test_mix64_is_splitmix64():
    # The first three outputs of SplitMix64 seeded with 0, as published with xoshiro.
    state, outputs = 0, []
    for _ in range(3):
        outputs.append(sampling.mix64(state))
        state = (state + 0x9E3779B97F4A7C15) & sampling.MASK
    assert outputs == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]


def test_draw_gives_distinct_sorted_positions_of_the_remaining_pool():
    for seed, step in itertools.product(range(20), range(5)):
        positions = sampling.draw_positions(seed, step, 50, 15)
        assert len(set(positions)) == 15 and positions == sorted(positions)
        assert 0 <= positions[0] and positions[-1] < 50
    assert sampling.draw_positions(3, 0, 4, 9) == [0, 1, 2, 3]


def test_draw_is_uniform_over_subsets():
    counts = Counter(tuple(sampling.draw_positions(seed, 0, 6, 2)) for seed in range(6000))
    assert len(counts) == 15  # every 2-subset of 6 positions occurs
    expected = 6000 / 15
    chi_square = sum((n - expected) ** 2 / expected for n in counts.values())
    assert chi_square < 36.1  # the 0.999 quantile of chi-square with 14 degrees of freedom


def test_pool_swap_remove_keeps_the_remaining_samples_first():
    pool = sampling.KernelPool(6)
    for sample in (2, 5, 0):
        pool.remove(sample)
    assert pool.remaining == 3
    assert pool.pool[:3] == [3, 1, 4]  # 2 <- 5, then 5 (at 2) <- 4, then 0 <- 3


def test_replay_with_a_sample_size_beyond_the_pool_scores_everything_left():
    steps = sampling.replay_candidates(seed=1, picks=[3, 0, 2], samples=4, sample_size=9)
    assert steps == [[0, 1, 2, 3], [0, 1, 2], [1, 2]]


# --- Python entry points without a GPU --------------------------------------------------------

def test_kernels_reject_cpu_tensors_before_building():
    residuals = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="greedy_round needs CUDA tensors"):
        greedy_round(residuals, None, torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), None,
                     2, 0.1, False, "naive", 4, 0)
    with pytest.raises(ValueError, match="gains needs CUDA tensors"):
        gains(residuals, None, torch.zeros(3))
    with pytest.raises(ValueError, match="segment_sums needs CUDA tensors"):
        segment_sums(residuals, None, torch.zeros(4, dtype=torch.long), 1, linear_layer=False)


# --- with the CUDA compiler -------------------------------------------------------------------

@pytest.mark.nvcc
@needs_nvcc
def test_extension_builds_and_registers_cuda_only_operators():
    build.build()  # fast when `python -m dsslab.kernels.build` filled the cache
    operators = build.operators()
    schema = str(operators.greedy_round.default._schema)
    assert "int sample_size, int pairwise_limit, int blocks, int seed" in schema
    with pytest.raises(NotImplementedError, match="'CPU' backend"):
        operators.gains(torch.zeros(2, 3), None, torch.zeros(3), None)


@pytest.mark.nvcc
@needs_nvcc
def test_compile_error_is_raised_with_the_compiler_message(fresh_build, broken_sources):
    with pytest.raises(KernelBuildError, match="(?s)failed.*error"):
        build.build(broken_sources)


@pytest.mark.nvcc
@needs_nvcc
def test_compile_error_in_auto_mode_falls_back(monkeypatch, fresh_build, broken_sources):
    monkeypatch.setattr(build, "SOURCE_DIR", broken_sources)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    chosen = load_backend("auto", "cuda")
    assert chosen.name == "torch" and "error" in chosen.reason
    with pytest.raises(RuntimeError, match="hardware.kernels=cuda but .*failed"):
        load_backend("cuda", "cuda")


def test_build_cli_exits_nonzero_with_the_error(monkeypatch, capsys):
    def failing_build(*args, **kwargs):
        raise KernelBuildError("building the CUDA kernels failed:\nerror: boom")

    monkeypatch.setattr(build, "build", failing_build)
    assert build.main([]) == 1
    assert "error: boom" in capsys.readouterr().err


# --- the kernels themselves: on the CPU emulation, and on a GPU when there is one ------------

class CudaKernels:
    """dsslab.kernels on the GPU, taking and returning CPU tensors."""

    @staticmethod
    def _cuda(values):
        return [v.cuda() if isinstance(v, torch.Tensor) else v for v in values]

    def greedy_round(self, *arguments, **options):
        options.pop("schedule_seed", None)
        picks, pick_gains = greedy_round(*self._cuda(arguments), **options)
        return picks.cpu(), pick_gains.cpu()

    def gains(self, *arguments):
        return gains(*self._cuda(arguments)).cpu()

    def segment_sums(self, *arguments):
        sums = segment_sums(*self._cuda(arguments))
        return tuple(None if t is None else t.cpu() for t in sums)


class EmulatedKernels:
    """The same kernel code compiled for the CPU (dsslab.kernels.emulator)."""

    def greedy_round(self, *arguments, **options):
        picks, pick_gains, _ = emulator.greedy_round(*arguments, **options)
        return picks, pick_gains

    def gains(self, *arguments):
        return emulator.gains(*arguments)

    def segment_sums(self, *arguments):
        return emulator.segment_sums(*arguments)


@pytest.fixture(params=[
    pytest.param(EmulatedKernels(), id="emulated", marks=needs_compiler),
    pytest.param(CudaKernels(), id="cuda", marks=[pytest.mark.gpu, needs_gpu]),
])
def kernels(request):
    return request.param


def random_problem(seed, samples=60, val_samples=37, classes=5, dim=16, duplicates=True):
    """Train/validation factors with an exact duplicate pair (3 and 7)."""
    generator = torch.Generator().manual_seed(seed)
    embeddings = torch.randn(samples, dim, generator=generator) / dim**0.5  # e . e' ~ N(0, 1)
    logits = 2 * torch.randn(samples, classes, generator=generator)
    labels = torch.randint(0, classes, (samples,), generator=generator)
    if duplicates:
        embeddings[7], logits[7], labels[7] = embeddings[3], logits[3], labels[3]
    val_embeddings = torch.randn(val_samples, dim, generator=generator) / dim**0.5
    val_logits = 2 * torch.randn(val_samples, classes, generator=generator)
    val_labels = torch.randint(0, classes, (val_samples,), generator=generator)
    return embeddings, logits, labels, val_embeddings, val_logits, val_labels


def reference_gains(residuals, embeddings, val_logits, val_labels, val_embeddings, linear):
    """Gains of every sample at the given validation logits, float64 on the CPU."""
    bias, weight = gradients.validation_gradient(val_logits.double(), val_labels,
                                                 val_embeddings.double(), linear)
    return gradients.gains(residuals.double(), embeddings.double(), bias, weight)


def moved_logits(val_logits, residuals, embeddings, val_embeddings, pick, eta, linear):
    step = residuals[pick].double()[None, :] * eta
    if linear:
        step = step * (1 + val_embeddings.double() @ embeddings[pick].double())[:, None]
    return val_logits.double() - step


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_segment_sums_match_the_pytorch_group_sums(kernels, linear, weighted):
    embeddings, logits, labels, *_ = random_problem(0, samples=300, dim=24)
    residuals = gradients.residuals(logits, labels)
    groups = torch.randint(0, 13, (300,), generator=torch.Generator().manual_seed(1))
    weights = torch.rand(300, generator=torch.Generator().manual_seed(2)) if weighted else None
    expected = gradients.group_sums(residuals, embeddings, groups, 14, weights, linear)
    got = kernels.segment_sums(residuals, embeddings, groups, 14, weights, linear)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-5)
    assert (got[1] is None) == (not linear)
    if linear:
        torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("linear", [False, True])
def test_gains_match_the_pytorch_gains(kernels, linear):
    embeddings, logits, labels, val_embeddings, val_logits, val_labels = random_problem(
        3, samples=200, dim=40)
    residuals = gradients.residuals(logits, labels)
    bias, weight = gradients.validation_gradient(val_logits, val_labels, val_embeddings, linear)
    expected = gradients.gains(residuals, embeddings, bias, weight)
    got = kernels.gains(residuals, embeddings, bias, weight)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


# Scoring paths of the greedy kernel (37 validation rows, C = 5, D = 16 unless wide):
# 3 blocks of 13 rows: pairwise against each block's gradient (13 x 21 >= 5 x 17);
# 10 blocks of 4 rows: pairwise pair by pair (4 x 21 < 85); sharded, gradient in shared memory;
# wide (C = 120, D = 512: 246 KB of gradient): sharded reading it from L2, pairwise pair by pair.
PATHS = [("auto", None, False), ("pairwise", 3, False), ("pairwise", 10, False),
         ("sharded", 5, False), ("sharded", 4, True), ("pairwise", 4, True)]


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("method,blocks,wide", PATHS)
def test_naive_round_picks_what_the_pytorch_glister_picks(kernels, linear, method, blocks,
                                                           wide):
    from dsslab.selection.glister import glister_select

    shape = {"samples": 40, "classes": 120, "dim": 512} if wide else {}
    problem = random_problem(11, **shape)
    embeddings, logits, labels, val_embeddings, val_logits, val_labels = problem
    budget = 10 if wide else 20
    expected = glister_select(*problem, budget, eta=0.5, greedy="naive", linear_layer=linear,
                              kernels="torch").indices
    residuals = gradients.residuals(logits, labels)
    picks, pick_gains = kernels.greedy_round(
        residuals, embeddings, val_logits, val_labels, val_embeddings, budget, 0.5, linear,
        "naive", 1, 0, method=method, blocks=blocks)
    assert picks.tolist() == expected.tolist()
    first = reference_gains(residuals, embeddings, val_logits, val_labels, val_embeddings, linear)
    assert pick_gains[0].item() == pytest.approx(first.max().item(), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("method,blocks", [("pairwise", 4), ("pairwise", 10), ("sharded", 4)])
def test_stochastic_round_is_reproducible_and_picks_the_best_drawn(kernels, linear, method,
                                                                    blocks):
    embeddings, logits, labels, val_embeddings, val_logits, val_labels = random_problem(5)
    residuals = gradients.residuals(logits, labels)
    arguments = (residuals, embeddings, val_logits, val_labels, val_embeddings, 60, 0.3,
                 linear, "stochastic", 9)
    picks, pick_gains = kernels.greedy_round(*arguments, 1234, method=method, blocks=blocks)
    again, _ = kernels.greedy_round(*arguments, 1234, method=method, blocks=blocks,
                                    schedule_seed=7)
    other, _ = kernels.greedy_round(*arguments, 99, method=method, blocks=blocks)
    picks = picks.tolist()
    assert picks == again.tolist() and picks != other.tolist()
    assert sorted(picks) == list(range(60))  # k = N: every sample exactly once

    drawn = sampling.replay_candidates(1234, picks, 60, 9)
    logits_now = val_logits
    for step, (pick, candidates) in enumerate(zip(picks, drawn, strict=True)):
        scores = reference_gains(residuals, embeddings, logits_now, val_labels, val_embeddings,
                                 linear)[candidates]
        assert pick in candidates
        assert scores[candidates.index(pick)] >= scores.max() - 1e-5 * (1 + scores.abs().max())
        assert pick_gains[step].item() == pytest.approx(
            scores[candidates.index(pick)].item(), rel=1e-3, abs=1e-5)
        logits_now = moved_logits(logits_now, residuals, embeddings, val_embeddings, pick, 0.3,
                                  linear)


@pytest.mark.parametrize("linear", [False, True])
@pytest.mark.parametrize("method", ["pairwise", "sharded"])
def test_equal_gains_go_to_the_lowest_index(kernels, linear, method):
    embeddings, logits, labels, val_embeddings, val_logits, val_labels = random_problem(
        9, duplicates=False)
    residuals = gradients.residuals(logits, labels)
    best = int(reference_gains(residuals, embeddings, val_logits, val_labels, val_embeddings,
                               linear).argmax())
    for copy in (0, 59):
        twins = [t.clone() for t in (embeddings, residuals)]
        for tensor in twins:
            tensor[copy] = tensor[best]
        picks, _ = kernels.greedy_round(twins[1], twins[0], val_logits, val_labels,
                                        val_embeddings, 1, 0.5, linear, "naive", 1, 0,
                                        method=method, blocks=3)
        assert picks.item() == min(copy, best)


def test_stochastic_draw_larger_than_the_pool_scores_all_remaining(kernels):
    _, logits, labels, _, val_logits, val_labels = random_problem(8)
    residuals = gradients.residuals(logits, labels)
    arguments = (residuals, None, val_logits, val_labels, None, 30, 0.5, False)
    picks, _ = kernels.greedy_round(*arguments, "stochastic", 10**6, 7)
    naive, _ = kernels.greedy_round(*arguments, "naive", 1, 7)
    assert picks.tolist() == naive.tolist()


def test_emulated_round_survives_shuffled_thread_schedules():
    if compiler_missing:
        pytest.skip("no C++ compiler for the kernel emulator")
    embeddings, logits, labels, val_embeddings, val_logits, val_labels = random_problem(13)
    residuals = gradients.residuals(logits, labels)
    arguments = (residuals, embeddings, val_logits, val_labels, val_embeddings, 25, 0.4, True)
    for greedy, method in (("naive", "sharded"), ("stochastic", "pairwise")):
        runs = [emulator.greedy_round(*arguments, greedy, 6, 3, method=method, blocks=5,
                                      schedule_seed=seed)[0].tolist() for seed in (None, 1, 2)]
        assert runs[0] == runs[1] == runs[2]


@needs_compiler
@pytest.mark.parametrize("mode", ["all", "per_class"])
def test_glister_select_through_the_emulated_kernels_matches_the_torch_path(monkeypatch, mode):
    from dsslab.kernels import ops
    from dsslab.selection.glister import glister_select

    def emulated(*arguments):
        return emulator.greedy_round(*arguments)[:2]

    monkeypatch.setattr(ops, "greedy_round", emulated)
    problem = random_problem(17, samples=50, val_samples=30)
    for linear in (False, True):
        options = {"eta": 0.3, "greedy": "naive", "mode": mode, "linear_layer": linear}
        expected = glister_select(*problem, 15, kernels="torch", **options)
        got = glister_select(*problem, 15, kernels="cuda", **options)
        assert got.info["route"] == "cuda"
        assert got.indices.tolist() == expected.indices.tolist()


@pytest.mark.gpu
@needs_gpu
def test_glister_select_with_cuda_kernels_matches_the_torch_path_for_naive_greedy():
    from dsslab.selection.glister import glister_select

    problem = tuple(t.cuda() for t in random_problem(21, samples=300, val_samples=64))
    for linear in (False, True):
        expected = glister_select(*problem, 60, eta=0.2, greedy="naive", linear_layer=linear,
                                  kernels="torch").indices
        got = glister_select(*problem, 60, eta=0.2, greedy="naive", linear_layer=linear,
                             kernels="cuda").indices
        assert got.tolist() == expected.tolist()
