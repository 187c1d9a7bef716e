"""Selection benchmark on CIFAR-scale synthetic features: time and peak extra memory per case.

    python benchmarks/selection.py [--quick] [--threads N] [--only SUBSTRING]

Each case runs in a fresh subprocess: it builds the features (45,000 train and 5,000
validation samples, 512-d nonnegative embeddings like post-ReLU features, C classes), then runs
one selection. Peak extra memory is the peak resident set size during the selection minus the
resident size just before it, from whichever is larger of ru_maxrss and a thread that samples
/proc/self/statm every 10 ms. Wall and CPU seconds are both printed: on a shared machine the
CPU seconds show the work done when other jobs take part of the cores. --quick runs only the
issue's target cases; --threads sets torch's intra-op threads (NumPy's BLAS follows it).

Other strategies add rows by registering a selection function in SELECTORS and appending
Case entries to CASES.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from suite_cases import ROWS as SUITE_ROWS  # CRAIG and GRAD-MATCH rows, next to this file
from suite_cases import SELECTORS as SUITE_SELECTORS

TRAIN, VAL, DIMS = 45_000, 5_000, 512
ETA = 0.05
# Measured on the 2-core development machine with other jobs running: two threads made the
# target cases 2x (bias) to 10x (last layer) slower than one, and no case faster.
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class Case:
    """One benchmark row: which selector, on how many classes, at which fraction."""

    selector: str
    classes: int
    fraction: float
    options: dict = field(default_factory=dict)
    target: str = ""  # the target for this case, if any
    quick: bool = False  # part of --quick

    @property
    def label(self) -> str:
        settings = " ".join(f"{k}={v}" for k, v in self.options.items())
        return f"{self.selector} C={self.classes} {self.fraction:.0%} {settings}"


def run_glister(features, budget, generator, **options):
    """GLISTER-ONLINE through the tensor-level API."""
    from dsslab.selection.glister import glister_select

    return glister_select(*features, budget, eta=ETA, generator=generator, **options)


SELECTORS: dict[str, Callable] = {"glister": run_glister}


def glister_cases() -> list[Case]:
    """The issue's target cases first, then every variant and mode at C = 10 and C = 100."""
    bias, last = {"linear_layer": False}, {"linear_layer": True}
    cases = [
        Case("glister", 10, 0.3, {"greedy": "stochastic", **bias}, "<= 0.5 s", True),
        Case("glister", 10, 0.3, {"greedy": "stochastic", **last}, "<= 5 s", True),
        Case("glister", 10, 0.1, {"greedy": "naive", **bias}, "<= 3 s", True),
        Case("glister", 100, 0.1, {"greedy": "stochastic", **last}, "<= 10 s, <= 2 GB", True),
    ]
    for classes in (10, 100):
        for gradient in (bias, last):
            cases += [
                Case("glister", classes, 0.1, {"greedy": "stochastic", **gradient}),
                Case("glister", classes, 0.3, {"greedy": "rgreedy", **gradient}),
                Case("glister", classes, 0.3, {"greedy": "stochastic", "mode": "per_class",
                                               **gradient}),
                Case("glister", classes, 0.3, {"greedy": "stochastic", "mode": "per_batch",
                                               **gradient}),
            ]
    cases += [
        Case("glister", 10, 0.1, {"greedy": "naive", **last}),
        Case("glister", 100, 0.3, {"greedy": "stochastic", **last}),
    ]
    unique = {case.label: case for case in reversed(cases)}  # keep the first of equal rows
    return [case for case in cases if unique[case.label] is case]


CASES: list[Case] = glister_cases()
SELECTORS.update(SUITE_SELECTORS)
CASES += [Case(**row) for row in SUITE_ROWS]


def make_features(classes: int, seed: int = 0):
    """Train and validation features of a model that is right about 70% of the time.

    Built in blocks of rows, so building leaves no temporary larger than a block behind.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, DIMS, generator=generator)
    weight = centers / DIMS**0.5

    def split(count, block=5_000):
        labels = torch.randint(0, classes, (count,), generator=generator)
        embeddings = torch.empty(count, DIMS)
        logits = torch.empty(count, classes)
        for start in range(0, count, block):
            rows = embeddings[start : start + block]
            rows.normal_(generator=generator).add_(centers[labels[start : start + block]],
                                                   alpha=0.3)
            rows.clamp_(min=0).mul_(2.0 / DIMS**0.5)
            torch.mm(rows, weight.T, out=logits[start : start + block]).mul_(8.0)
        return embeddings, logits, labels

    return (*split(TRAIN), *split(VAL))


class PeakMemory:
    """Peak resident set size while a block runs, minus the size when it started (bytes)."""

    def __init__(self, interval: float = 0.01):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _resident(self) -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self.page

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._resident())
            time.sleep(self.interval)

    def __enter__(self):
        self.start = self._resident()
        self.start_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.peak, self._stop = self.start, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.extra = max(self.peak - self.start, maxrss - self.start_maxrss, 0)


def run_case(index: int, threads: int) -> dict:
    """Build the features, run one case, return its figures (in the subprocess)."""
    import torch

    from dsslab.selection.budget import budget_for

    torch.set_num_threads(threads)
    case = CASES[index]
    features = make_features(case.classes)
    budget = budget_for(case.fraction, TRAIN)
    generator = torch.Generator().manual_seed(0)
    with PeakMemory() as memory:
        start, cpu_start = time.perf_counter(), time.process_time()
        subset = SELECTORS[case.selector](features, budget, generator, **case.options)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return {"k": budget, "seconds": seconds, "cpu": cpu, "extra_mb": memory.extra / 2**20,
            "samples": len(subset.indices), "route": subset.info.get("route", "")}


def run_in_subprocess(index: int, threads: int) -> dict:
    command = [sys.executable, __file__, "--case", str(index), "--threads", str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_table(rows: list[tuple[Case, dict]]) -> None:
    header = (f"{'case':<62} {'k':>6} {'time (s)':>9} {'cpu (s)':>8} {'extra MB':>9} "
              f"{'route':>13}  target")
    print(header)
    print("-" * len(header))
    for case, result in rows:
        if "error" in result:
            print(f"{case.label:<62} failed: {result['error']}")
            continue
        print(f"{case.label:<62} {result['k']:>6} {result['seconds']:>9.2f} "
              f"{result['cpu']:>8.2f} {result['extra_mb']:>9.0f} {result['route']:>13}  "
              f"{case.target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the target cases")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument("--only", default="", help="run cases whose label contains this")
    parser.add_argument("--case", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case is not None:
        print(json.dumps(run_case(args.case, args.threads)))
        return

    print(f"selection benchmark: {TRAIN} train, {VAL} val, D={DIMS}, eta={ETA}, "
          f"intra-op threads={args.threads}, {os.cpu_count()} CPUs")
    chosen = [i for i, case in enumerate(CASES)
              if (case.quick or not args.quick) and args.only in case.label]
    rows = []
    for index in chosen:
        rows.append((CASES[index], run_in_subprocess(index, args.threads)))
    print_table(rows)


if __name__ == "__main__":
    main()
