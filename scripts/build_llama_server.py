"""Build a CPU `llama-server` from the llama.cpp source vendored in the llama-cpp-python sdist.

The tests that need the real binary (tests/deploy/test_native_server.py, tests/estimate/test_llama_server_cpu.py)
use the same llama.cpp version as the llama-cpp-python in the venv, so the server, the Python bindings and the
planner's recorded build all agree. The sdist comes from PyPI through pip (the only registry the tests may use).

    python scripts/build_llama_server.py             # build once, then a no-op while the version is unchanged
    python scripts/build_llama_server.py --force     # rebuild
    python scripts/build_llama_server.py --source DIR  # use an already-extracted llama.cpp tree (a speed-up only)

It is built with GGML_RPC=ON, and `ggml-rpc-server` (llama.cpp's RPC worker, tools/rpc) beside it, for the
cluster tests on loopback: the official images and most distributions ship neither with RPC.

The binaries land in tests/fixtures/cache/llama-server/bin/ (git-ignored) next to a stamp file that
names the version and the cmake flags; a later run with the same stamp and a working binary skips the build.
It is linked statically against ggml/llama, so the single file can be moved or put on PATH on its own.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "tests" / "fixtures" / "cache" / "llama-server"
BINARY = CACHE / "bin" / "llama-server"
RPC_SERVER = CACHE / "bin" / "ggml-rpc-server"
TARGETS = ("llama-server", "ggml-rpc-server")
STAMP = CACHE / "bin" / "build.json"

# A portable CPU build (AVX2/FMA/F16C baseline instead of -march=native, so a cached binary survives a runner
# change), no web UI (its asset step embeds an empty table without the prebuilt bundle), no HTTPS client (the
# tests never download), static libraries so one file is the whole server. -O1 instead of Release's -O3: the
# tests run a 135M model, and on CI's 2 cores the optimiser is most of the build time.
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DCMAKE_C_FLAGS_RELEASE=-O1 -DNDEBUG",
    "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG",
    "-DBUILD_SHARED_LIBS=OFF",
    "-DGGML_NATIVE=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",
    "-DLLAMA_OPENSSL=OFF",
    # The RPC backend: llama-server --rpc host:port places layers on remote ggml-rpc-server devices.
    "-DGGML_RPC=ON",
]


# The upstream build number ("b11312" = `git rev-list --count` in ggml-org/llama.cpp) of the llama.cpp commit each
# llama-cpp-python release vendors (its CHANGELOG names the commit). The sdist has no git history, and llama.cpp's
# cmake would otherwise take the count and hash of whatever repository encloses the source (this checkout!), so
# `llama-server --version` would report planner's commit count, and planner would choose flags for the wrong build.
# 0c1e57098bba43ac29e6e3b677cdceebdd22334f is b11312 (2026-10-01), as recorded by independent public projects
# that pin it ("b11312-0c1e57098"; "llama.cpp b11312, commit 0c1e57098bba..."); 4df29be4f (0.3.35) is b10454
# (shared research llamacpp-memory.md, section 0).
BUILD_NUMBERS = {"0c1e57098": 11312, "4df29be4f": 10454}
_VENDORED_COMMIT = re.compile(r"update llama\.cpp to ggml-org/llama\.cpp@([0-9a-f]{7,40})")


def vendored_build(source: Path, version: str) -> tuple[int, str]:
    """(build number, commit) of the vendored llama.cpp, from the sdist CHANGELOG; 0 / "unknown" when not known.

    0 is what llama.cpp itself reports for a build without git, which planner reads as "build unknown".
    """
    changelog = source.parent.parent / "CHANGELOG.md"
    if not changelog.exists():
        return 0, "unknown"
    section = changelog.read_text(errors="replace").split(f"## [{version}]", 1)
    match = _VENDORED_COMMIT.search(section[1].split("\n## [", 1)[0]) if len(section) == 2 else None
    if match is None:
        return 0, "unknown"
    commit = match.group(1)[:9]
    return BUILD_NUMBERS.get(commit, 0), commit


def installed_version() -> str:
    """The llama-cpp-python version in the running interpreter's environment (the venv ./scripts/test uses)."""
    try:
        return metadata.version("llama-cpp-python")
    except metadata.PackageNotFoundError:
        sys.exit("build_llama_server: llama-cpp-python is not installed in this Python; install '.[serve]' first")


def stamp_for(version: str) -> dict[str, str]:
    flags = hashlib.sha256("\n".join(CMAKE_FLAGS).encode()).hexdigest()[:16]
    known = ",".join(f"{c}={n}" for c, n in sorted(BUILD_NUMBERS.items()))
    return {"llama_cpp_python": version, "cmake_flags": flags, "build_numbers": known}


def is_current(version: str) -> bool:
    """True when the cached binary was built from this version with these flags and still starts."""
    if not BINARY.exists() or not RPC_SERVER.exists() or not STAMP.exists():
        return False
    try:
        if json.loads(STAMP.read_text()) != stamp_for(version):
            return False
    except (OSError, ValueError):
        return False
    probe = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True, timeout=60)
    return probe.returncode == 0


def download_source(version: str, into: Path) -> Path:
    """pip-download the llama-cpp-python sdist and extract its vendored llama.cpp tree (kept for rebuilds)."""
    source = into / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    if (source / "CMakeLists.txt").exists():
        return source
    spec = f"llama-cpp-python=={version}"
    print(f"build_llama_server: downloading the {spec} sdist", flush=True)
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into, prefix="download-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", tmp, spec],
            check=True,
        )
        sdist = Path(tmp) / f"llama_cpp_python-{version}.tar.gz"
        if not sdist.exists():
            sys.exit(f"build_llama_server: pip did not leave {sdist.name} in {tmp}")
        extracted = Path(tmp) / "extracted"
        with tarfile.open(sdist) as tar:
            # The sdist comes from PyPI, but refuse members that would escape the target anyway.
            tar.extractall(extracted, filter="data")
        tree = extracted / f"llama_cpp_python-{version}"
        if not (tree / "vendor" / "llama.cpp" / "CMakeLists.txt").exists():
            sys.exit(f"build_llama_server: no vendored llama.cpp in {sdist.name}")
        # Move the whole tree in at once, so an interrupted extraction is never mistaken for a complete one.
        shutil.rmtree(into / tree.name, ignore_errors=True)
        os.replace(tree, into / tree.name)
    return source


def same_source(build_dir: Path, source: Path) -> bool:
    """Whether an existing build directory was configured for this source tree (cmake refuses a different one)."""
    cache = build_dir / "CMakeCache.txt"
    if not cache.exists():
        return True
    for line in cache.read_text(errors="replace").splitlines():
        if line.startswith("CMAKE_HOME_DIRECTORY:"):
            return Path(line.split("=", 1)[1]).resolve() == source.resolve()
    return False


def build(source: Path, build_dir: Path, jobs: int, build_number: int, commit: str) -> list[Path]:
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    identity = [f"-DLLAMA_BUILD_NUMBER={build_number}", f"-DLLAMA_BUILD_COMMIT={commit}"]
    subprocess.run(["cmake", "-S", str(source), "-B", str(build_dir), *generator, *CMAKE_FLAGS, *identity], check=True)
    subprocess.run(
        ["cmake", "--build", str(build_dir), "--config", "Release", "--target", *TARGETS, "-j", str(jobs)],
        check=True,
    )
    built = [build_dir / "bin" / target for target in TARGETS]
    for binary in built:
        if not binary.exists():
            sys.exit(f"build_llama_server: the build finished but {binary} does not exist")
    return built


def install(built: list[Path], version: str) -> None:
    """Copy the binaries and their stamp in atomically, so an interrupted run never leaves a half-written server."""
    BINARY.parent.mkdir(parents=True, exist_ok=True)
    for binary in built:
        target = BINARY.parent / binary.name
        partial = target.with_name(target.name + ".partial")
        shutil.copy2(binary, partial)
        partial.chmod(0o755)
        os.replace(partial, target)
    stamp_partial = STAMP.with_name(STAMP.name + ".partial")
    stamp_partial.write_text(json.dumps(stamp_for(version)) + "\n")
    os.replace(stamp_partial, STAMP)


def default_jobs() -> int:
    """CMAKE_BUILD_PARALLEL_LEVEL when set (as for the llama-cpp-python build), else the cores this process may use."""
    level = os.environ.get("CMAKE_BUILD_PARALLEL_LEVEL", "")
    if level.isdigit() and int(level) > 0:
        return int(level)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", type=Path, help="an extracted llama.cpp tree of the same version (skips pip)")
    parser.add_argument("--jobs", type=int, default=default_jobs(), help="parallel compile jobs (default: all cores)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cached binary is current")
    args = parser.parse_args(argv)

    version = installed_version()
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once: the second waits, then finds the binary current
        return build_once(version, args)


def build_once(version: str, args: argparse.Namespace) -> int:
    if not args.force and is_current(version):
        print(f"build_llama_server: {BINARY} is current (llama-cpp-python {version})")
        return 0

    started = time.monotonic()
    if args.source is not None:
        if not (args.source / "CMakeLists.txt").exists():
            sys.exit(f"build_llama_server: --source {args.source} is not a llama.cpp tree")
        source = args.source
    else:
        source = download_source(version, CACHE / "src")
    # The build directory is kept so a rebuild after --force or an interrupted run is incremental.
    build_dir = CACHE / f"build-{version}"
    if not same_source(build_dir, source):
        shutil.rmtree(build_dir)
    build_number, commit = vendored_build(source, version)
    if build_number == 0:
        print(
            f"build_llama_server: the llama.cpp build number of llama-cpp-python {version} (commit {commit}) is not"
            " in BUILD_NUMBERS; the server will report build 0 (unknown)",
            flush=True,
        )
    built = build(source, build_dir, args.jobs, build_number, commit)
    install(built, version)
    elapsed = time.monotonic() - started
    print(
        f"build_llama_server: built {', '.join(TARGETS)} in {BINARY.parent} (llama-cpp-python {version})"
        f" in {elapsed:.0f} s with {args.jobs} jobs"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
