"""Compile the CUDA sources once per (sources, torch, CUDA, arch list) and load them.

The extension lands in a cache directory named by a hash of everything that changes the
binary, so editing a source or upgrading torch rebuilds it and nothing else ever does. Its
operators appear as torch.ops.dsslab_kernels.*. Building needs nvcc but no GPU:

    CUDA_HOME=/usr/local/cuda-13.0 TORCH_CUDA_ARCH_LIST="9.0+PTX" python -m dsslab.kernels.build

exits 0 after compiling and loading the library, or 1 with the compiler's errors.
"""

import argparse
import contextlib
import hashlib
import logging
import os
import sys
import time
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).parent / "csrc"
LIBRARY = "dsslab_kernels"
CUDA_FLAGS = ("-O3",)
DEFAULT_ARCH_LIST = "9.0+PTX"  # Hopper binaries plus PTX that newer GPUs compile on load
_loaded: dict[str, Path] = {}  # library name -> build directory, once loaded in this process


class KernelBuildError(RuntimeError):
    """The CUDA kernels cannot be built or loaded here; the message says why."""


def sources(source_dir: Path | None = None) -> list[Path]:
    """The .cu and .cpp files that make up the extension, in a stable order."""
    source_dir = Path(source_dir or SOURCE_DIR)
    if not source_dir.is_dir():
        raise KernelBuildError(f"the kernel source directory {source_dir} does not exist")
    files = sorted(p for p in source_dir.iterdir() if p.suffix in (".cu", ".cpp"))
    if not files:
        raise KernelBuildError(f"no .cu or .cpp sources in {source_dir}")
    return files


def arch_list() -> str:
    """TORCH_CUDA_ARCH_LIST if set, else the visible GPU's architecture, else sm_90 + PTX."""
    configured = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if configured:
        return configured
    if not torch.cuda.is_available():
        return DEFAULT_ARCH_LIST
    try:
        major, minor = torch.cuda.get_device_capability()
    except (RuntimeError, AssertionError):  # a driver that fails to initialise
        return DEFAULT_ARCH_LIST
    return f"{major}.{minor}+PTX"


def cache_key(source_dir: Path | None = None, arch: str | None = None) -> str:
    """Hash of the sources and headers, the torch and CUDA versions, the arch list and flags."""
    digest = hashlib.sha256()
    headers = sorted(Path(source_dir or SOURCE_DIR).glob("*.cuh"))
    for path in sources(source_dir) + headers:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for part in (torch.__version__, str(torch.version.cuda), arch or arch_list(), *CUDA_FLAGS):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    """DSSLAB_KERNELS_CACHE, else $XDG_CACHE_HOME/dsslab/kernels, else ~/.cache/dsslab/kernels."""
    if os.environ.get("DSSLAB_KERNELS_CACHE"):
        return Path(os.environ["DSSLAB_KERNELS_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dsslab" / "kernels"


def toolkit_candidates() -> list[str]:
    """Where to look for the CUDA toolkit, in order of preference."""
    from torch.utils import cpp_extension

    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
                  cpp_extension.CUDA_HOME, f"/usr/local/cuda-{torch.version.cuda}",
                  "/usr/local/cuda"]
    return [c for c in candidates if c]


def toolkit_root() -> Path:
    """The first candidate that holds both bin/nvcc and include/cuda_runtime.h.

    torch guesses the toolkit from the nvcc on PATH; a wrapper script in /usr/local/bin makes
    that guess /usr/local, which has no CUDA headers, hence the check.
    """
    candidates = toolkit_candidates()
    for candidate in candidates:
        root = Path(candidate)
        if (root / "bin" / "nvcc").exists() and (root / "include" / "cuda_runtime.h").exists():
            return root
    raise KernelBuildError("nvcc not found: set CUDA_HOME to the CUDA toolkit directory "
                           "(the one holding bin/nvcc and include/cuda_runtime.h); tried "
                           + (", ".join(candidates) or "nothing"))


def check_toolchain() -> Path:
    """Raise KernelBuildError unless this torch has CUDA support and a toolkit is installed."""
    if torch.version.cuda is None:
        raise KernelBuildError(f"torch {torch.__version__} is a build without CUDA support")
    return toolkit_root()


@contextlib.contextmanager
def _build_environment(root: Path, arch: str):
    """Point torch's extension builder at the toolkit and arch list, then restore both."""
    from torch.utils import cpp_extension

    saved_home, saved_arch = cpp_extension.CUDA_HOME, os.environ.get("TORCH_CUDA_ARCH_LIST")
    cpp_extension.CUDA_HOME = str(root)
    os.environ["TORCH_CUDA_ARCH_LIST"] = arch
    try:
        yield
    finally:
        cpp_extension.CUDA_HOME = saved_home
        if saved_arch is None:
            os.environ.pop("TORCH_CUDA_ARCH_LIST", None)
        else:
            os.environ["TORCH_CUDA_ARCH_LIST"] = saved_arch


def error_summary(message: str, lines: int = 12) -> str:
    """The compiler's error lines (or the message's tail) from a failed build."""
    text = message.splitlines()
    errors = [line.strip() for line in text if "error" in line.lower()]
    return "\n".join((errors or text)[-lines:])


def build(source_dir: Path | None = None, verbose: bool = False) -> Path:
    """Compile (unless cached) and load the extension; return its build directory.

    Loading happens once per process; a later call returns the loaded build's directory.
    Raises KernelBuildError with the compiler's error lines when anything fails.
    """
    if LIBRARY in _loaded:
        return _loaded[LIBRARY]
    root = check_toolchain()
    arch = arch_list()
    directory = cache_root() / cache_key(source_dir, arch)
    directory.mkdir(parents=True, exist_ok=True)
    from torch.utils import cpp_extension

    started = time.perf_counter()
    try:
        with _build_environment(root, arch):
            cpp_extension.load(name=LIBRARY, sources=[str(p) for p in sources(source_dir)],
                               build_directory=str(directory), extra_cuda_cflags=list(CUDA_FLAGS),
                               is_python_module=False, verbose=verbose)
    except (RuntimeError, OSError, ValueError) as error:
        raise KernelBuildError(f"building the CUDA kernels in {directory} failed:\n"
                               + error_summary(str(error))) from error
    log.info("CUDA kernels for %s loaded from %s in %.1f s", arch, directory,
             time.perf_counter() - started)
    _loaded[LIBRARY] = directory
    return directory


def operators():
    """torch.ops.dsslab_kernels, building the extension first if this process has not."""
    build()
    return getattr(torch.ops, LIBRARY)


def main(argv: list[str] | None = None) -> int:
    """CLI: compile and load the extension; print where and how long, or the compiler error."""
    parser = argparse.ArgumentParser(prog="python -m dsslab.kernels.build", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--verbose", action="store_true", help="show the compiler commands")
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        directory = build(verbose=arguments.verbose)
    except KernelBuildError as error:
        print(error, file=sys.stderr)
        if error.__cause__ is not None:
            print(f"\nfull build output:\n{error.__cause__}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started
    print(f"dsslab CUDA kernels built for {arch_list()} in {directory} ({seconds:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
