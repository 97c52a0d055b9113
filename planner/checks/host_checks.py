"""The host around the GPU: docker and the NVIDIA runtime, CPU instructions, RAM, swap, disk."""

from __future__ import annotations

from planner.checks.context import CheckContext, Finding

GiB = 1024**3
DISK_HEADROOM = 2 * GiB  # a download that leaves less than this free will fill the disk for everything else


def _gib(value: int) -> str:
    return f"{value / GiB:.1f} GiB"


def check_docker(ctx: CheckContext) -> Finding | None:
    """Docker deployments need the engine, and the NVIDIA container runtime for GPU reservations."""
    if not ctx.probed:
        return None
    container = ctx.hardware.container
    if not container.docker_client:
        return Finding(
            id="docker-absent",
            severity="info",
            title="Docker is not installed: planner will launch llama.cpp directly",
            detail=(
                "Without docker, `planner deploy` runs llama-server natively or embedded (llama-cpp-python); "
                "compose files are still written for another machine."
            ),
        )
    if not container.engine_reachable:
        return Finding(
            id="docker-engine-unreachable",
            severity="warn",
            title="The docker client is installed but the engine does not answer",
            detail=f"`docker info` failed{': ' + container.detail if container.detail else ''}.",
            fix="Start the engine, and give your user access to its socket (log out and in afterwards).",
            commands=["sudo systemctl enable --now docker", "sudo usermod -aG docker $USER", "docker info"],
        )
    if ctx.nvidia_gpus and not container.nvidia_runtime:
        return Finding(
            id="docker-without-nvidia-runtime",
            severity="warn",
            title="Docker has no NVIDIA runtime: GPU containers will fail to start",
            detail=(
                "The engine does not list the nvidia runtime (NVIDIA Container Toolkit), so a compose file that "
                "reserves GPUs fails with 'could not select device driver \"nvidia\" with capabilities: [[gpu]]' "
                "and llama.cpp would not see the GPU."
            ),
            fix="Install the NVIDIA Container Toolkit, register it with docker, restart docker.",
            commands=[
                "sudo apt-get install -y nvidia-container-toolkit",
                "sudo nvidia-ctk runtime configure --runtime=docker",
                "sudo systemctl restart docker",
                "docker run --rm --gpus all ubuntu nvidia-smi",
            ],
        )
    version = f" {container.docker_version}" if container.docker_version else ""
    runtime = " with the NVIDIA runtime" if container.nvidia_runtime else ""
    return Finding(id="docker-ok", severity="ok", title=f"Docker{version} is running{runtime}", detail="")


def check_cpu_instructions(ctx: CheckContext) -> Finding | None:
    """x86 CPUs without AVX2: binaries built for AVX2 die with SIGILL, and CPU layers are slow."""
    cpu = ctx.hardware.cpu
    if cpu.architecture not in ("x86_64", "amd64") or not cpu.flags:
        return None
    if "avx2" in cpu.flags:
        return None
    has_avx = "avx" in cpu.flags
    return Finding(
        id="cpu-without-avx2",
        severity="warn",
        title=f"{cpu.model} has no AVX2{'' if has_avx else ' (nor AVX)'}",
        detail=(
            "llama.cpp builds compiled for AVX2 (many prebuilt binaries and wheels) stop with 'Illegal "
            "instruction' (SIGILL) on this CPU. The official images choose a CPU variant at run time, and a build "
            "from source for this CPU works, but any layers or KV cache on the CPU run several times slower "
            "than on an AVX2 CPU."
        ),
        fix="Build llama.cpp from source for this CPU (GGML_NATIVE=ON), and keep all layers on the GPU.",
        commands=["cmake -B build -DGGML_NATIVE=ON && cmake --build build -j --target llama-server"],
    )


def check_amx_build(ctx: CheckContext) -> Finding | None:
    """A native llama-cpp-python build on an AMX CPU runs llama.cpp's AMX kernels, which crash on some such hosts."""
    build = ctx.hardware.llama_cpp_python
    if build is None or not build.amx_kernels or "amx_int8" not in ctx.hardware.cpu.flags:
        return None
    version = f" {build.version}" if build.version else ""
    return Finding(
        id="llama-cpp-python-amx",
        severity="warn",
        title=f"llama-cpp-python{version} here runs llama.cpp's AMX kernels",
        detail=(
            f"It was built for this CPU (-march=native) and {ctx.hardware.cpu.model} has AMX, so CPU matrix "
            "multiplies of Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K and IQ4_XS weights go through "
            "ggml_backend_amx_mul_mat. On some Sapphire Rapids hosts that function crashes at the first "
            "generation (llama.cpp #20824, open without a fix); planner's own CI host is one. The embedded launch "
            "(--launch-with embedded) would then die with SIGSEGV. A portable build (AVX2 baseline, no AMX) "
            "avoids it. The official llama.cpp images pick a CPU variant at run time, and on this CPU that is "
            "their sapphirerapids variant, with the same AMX kernels (ggml/src/CMakeLists.txt)."
        ),
        fix="Rebuild llama-cpp-python portable (no -march=native); a llama-server built the same way also avoids it.",
        commands=[
            'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install --force-reinstall --no-cache-dir --no-deps llama-cpp-python'
        ],
    )


def check_ram(ctx: CheckContext) -> Finding | None:
    """The plan's host part (CPU layers, KV, buffers) against the RAM there is."""
    plan = ctx.plan
    if plan is None:
        return None
    need = plan.memory.host.total_bytes
    memory = ctx.hardware.memory
    if need > memory.total_bytes:
        return Finding(
            id="ram-too-small-for-plan",
            severity="error",
            title=f"The plan needs {_gib(need)} of RAM; the machine has {_gib(memory.total_bytes)}",
            detail=(
                "The CPU-side weights, KV cache and buffers do not fit in RAM: with mmap the weights would be read "
                "from disk again and again (seconds per token), without it the server is killed."
            ),
            fix="Choose a smaller quant or model, or put more layers on the GPU (see `planner plan MODEL`).",
            commands=["planner plan MODEL"],
        )
    if need > memory.available_bytes:
        return Finding(
            id="ram-short-for-plan",
            severity="warn",
            title=f"The plan needs {_gib(need)} of RAM; {_gib(memory.available_bytes)} is available now",
            detail=(
                f"The machine has {_gib(memory.total_bytes)} but other programs use the rest; the kernel will "
                "page out (swap) or evict the model's pages, which slows generation badly."
            ),
            fix="Close memory-hungry programs before starting the server.",
            commands=["free -h", "ps aux --sort=-rss | head"],
        )
    return Finding(
        id="ram-ok",
        severity="ok",
        title=f"RAM: the plan needs {_gib(need)}, {_gib(memory.available_bytes)} available",
        detail="",
    )


def check_swap(ctx: CheckContext) -> Finding | None:
    """Swap already in use means memory pressure before the model even starts."""
    memory = ctx.hardware.memory
    used = memory.swap_total_bytes - memory.swap_free_bytes
    if not ctx.probed or used < GiB:
        return None
    return Finding(
        id="swap-in-use",
        severity="info",
        title=f"{_gib(used)} of swap in use",
        detail=(
            "The machine is already short of memory. If any of the model's memory is swapped out, each token "
            "waits on the disk."
        ),
        commands=["free -h", "swapon --show"],
    )


def check_disk(ctx: CheckContext) -> Finding | None:
    """The planned download against the free space of the model cache."""
    plan = ctx.plan
    disk = ctx.hardware.disk
    if plan is None or disk.free_bytes is None:
        return None
    size = plan.model.size_bytes
    if not size or ctx.model_on_disk:
        return None  # the files are already on disk: nothing to download
    where = disk.path or "the model cache"
    if size > disk.free_bytes:
        return Finding(
            id="disk-too-small-for-model",
            severity="error",
            title=f"The model file needs {_gib(size)}; {where} has {_gib(disk.free_bytes)} free",
            detail="The download would fail part way.",
            fix="Free space, or choose a models folder on a larger disk (planner deploy --models-dir PATH).",
            commands=[f"df -h {disk.path or '.'}"],
        )
    if disk.free_bytes - size < DISK_HEADROOM:
        return Finding(
            id="disk-nearly-full-after-download",
            severity="warn",
            title=f"After the {_gib(size)} download, {where} would have {_gib(disk.free_bytes - size)} left",
            detail="A nearly full disk breaks logs, docker layers and other programs.",
            fix="Free space, or choose a models folder on a larger disk (planner deploy --models-dir PATH).",
            commands=[f"df -h {disk.path or '.'}"],
        )
    return Finding(
        id="disk-ok",
        severity="ok",
        title=f"Disk: the {_gib(size)} model fits in {_gib(disk.free_bytes)} free",
        detail=where,
    )


CHECKS = [check_docker, check_cpu_instructions, check_amx_build, check_ram, check_swap, check_disk]
