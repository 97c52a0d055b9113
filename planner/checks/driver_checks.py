"""Checks of the NVIDIA driver layer and of the llama.cpp server image a deployment would use."""

from __future__ import annotations

from planner.checks.context import CheckContext, Finding
from planner.data.engines import (
    DriverSupportEnd,
    cc_version,
    driver_supports,
    driver_version_of,
    load_cuda,
    load_images,
    parse_version,
    reported_driver_cuda,
)

# NVML return codes (nvml.h): the probe stores them in DriverStatus.nvml_error_code.
NVML_NO_PERMISSION = 4
NVML_DRIVER_NOT_LOADED = 9
NVML_LIBRARY_NOT_FOUND = 12
NVML_VERSION_MISMATCH = 18

VERSION_COMMANDS = ["cat /proc/driver/nvidia/version", "nvidia-smi"]


def _driver_error_kind(ctx: CheckContext) -> str | None:
    driver = ctx.hardware.driver
    if not ctx.driver_is_real or (not driver.error and driver.nvml_error_code is None):
        return None
    code = driver.nvml_error_code
    text = (driver.error or "").lower()
    if code == NVML_VERSION_MISMATCH or "mismatch" in text:
        return "mismatch"
    if code == NVML_DRIVER_NOT_LOADED or "not loaded" in text or "couldn't communicate" in text:
        return "not-loaded"
    if code == NVML_LIBRARY_NOT_FOUND or "not found" in text or "not installed" in text:
        return "missing"
    if code == NVML_NO_PERMISSION or "permission" in text:
        return "permission"
    return "other"


def _nvidia_card_on_bus(ctx: CheckContext) -> bool:
    # The probe adds this warning when sysfs shows an NVIDIA display controller that NVML cannot use.
    return any("NVIDIA GPU" in w and "PCI bus" in w for w in ctx.hardware.warnings)


def check_nvml(ctx: CheckContext) -> Finding | None:
    """The driver answers (ok), or the exact reason it does not: mismatch, not loaded, not installed."""
    kind = _driver_error_kind(ctx)
    driver = ctx.hardware.driver
    if kind == "mismatch":
        library = f" (NVML library {driver.nvml_version})" if driver.nvml_version else ""
        return Finding(
            id="driver-library-mismatch",
            severity="error",
            title="NVIDIA driver/library version mismatch: no program can use the GPU",
            detail=(
                f"NVML failed to start: {driver.error}{library}. The driver's user-space libraries were upgraded "
                "(often by unattended-upgrades) while the old kernel module is still loaded. Until the two match, "
                "llama.cpp, docker's GPU containers and nvidia-smi all fail; a model would run on the CPU only."
            ),
            fix=(
                "Reboot to load the new kernel module. Without a reboot: stop everything using the GPU and reload "
                "the module. If the versions still differ after a reboot, reinstall the nvidia-utils / driver "
                "package of the loaded version (compare the two commands below). To stop it recurring, keep the "
                "driver out of unattended upgrades."
            ),
            commands=[
                "cat /proc/driver/nvidia/version",
                "dpkg -l | grep -E 'nvidia-(utils|driver|kernel)'",
                "sudo reboot",
                "sudo rmmod nvidia_uvm nvidia_drm nvidia_modeset nvidia && sudo modprobe nvidia",
            ],
        )
    if kind == "not-loaded":
        return Finding(
            id="driver-not-loaded",
            severity="error",
            title="NVIDIA driver is installed but not loaded",
            detail=(
                f"NVML: {driver.error}. The kernel module is not running (a kernel update without a rebuilt DKMS "
                "module, Secure Boot refusing an unsigned module, or nouveau holding the card). The GPU is unusable "
                "until it loads."
            ),
            fix=(
                "Load the module and read why it fails; rebuild it for the running kernel if DKMS lost it; with "
                "Secure Boot on, enrol the module key or reinstall the signed driver package."
            ),
            commands=[
                "sudo modprobe nvidia",
                "sudo dmesg | grep -iE 'nvidia|nouveau' | tail -n 20",
                "dkms status",
                "mokutil --sb-state",
                "sudo ubuntu-drivers install",
            ],
        )
    if kind == "missing":
        if _nvidia_card_on_bus(ctx):
            return Finding(
                id="driver-missing",
                severity="error",
                title="NVIDIA GPU present but no NVIDIA driver installed",
                detail=(
                    f"NVML: {driver.error}. The PCI bus shows an NVIDIA GPU, but without the driver it cannot run "
                    "anything; plans fall back to the CPU."
                ),
                fix="Install the recommended driver (for Pascal, Maxwell or Volta cards the R580 branch), reboot.",
                commands=["sudo ubuntu-drivers install", "sudo reboot", "nvidia-smi"],
            )
        if not ctx.hardware.gpus:
            return Finding(
                id="no-nvidia-driver",
                severity="info",
                title="No NVIDIA driver and no GPU: plans run on the CPU",
                detail=(
                    "No NVIDIA driver is installed and no other GPU was found; llama.cpp runs on the CPU. If this "
                    "machine has an NVIDIA card, install its driver and run `planner doctor` again."
                ),
            )
        return None
    if kind == "permission":
        return Finding(
            id="nvml-no-permission",
            severity="warn",
            title="No permission to query the NVIDIA driver",
            detail=f"NVML: {driver.error}. Free memory, processes and clocks could not be read.",
            fix="Run as a user with access to /dev/nvidia* (the video/render group), or as root.",
            commands=["ls -l /dev/nvidia*", "id"],
        )
    if kind == "other":
        return Finding(
            id="nvml-error",
            severity="error",
            title="The NVIDIA driver reports an error",
            detail=f"NVML: {driver.error}. GPU state could not be read; a GPU that 'fell off the bus' needs a reset.",
            fix="Read the kernel log for Xid errors; reboot if the GPU is lost.",
            commands=["sudo dmesg | grep -i xid | tail -n 20", *VERSION_COMMANDS],
        )
    gpus = ctx.nvidia_gpus
    if gpus and ctx.probed and driver.nvml_available:
        return Finding(
            id="driver-ok",
            severity="ok",
            title=(
                f"NVIDIA driver {driver.driver_version or '(version not reported)'}"
                f"{f' (CUDA {driver.cuda_driver_version})' if driver.cuda_driver_version else ''}"
                f" sees {len(gpus)} GPU(s)"
            ),
            detail=", ".join(f"{gpu.index}: {gpu.name}" for gpu in gpus),
        )
    return None


def _oldest_cc(ctx: CheckContext) -> tuple[int, ...] | None:
    ccs = [cc for gpu in ctx.nvidia_gpus if (cc := cc_version(gpu.compute_capability))]
    return min(ccs) if ccs else None


def _support_end(cc: tuple[int, ...] | None) -> DriverSupportEnd | None:
    if cc is None:
        return None
    for end in load_cuda().driver_support_ends:
        if (parse_version(end.min_cc) or ()) <= cc[:2] <= (parse_version(end.max_cc) or ()):
            return end
    return None


def _driver_install_advice(ctx: CheckContext, min_driver: str | None) -> tuple[str, list[str]]:
    end = _support_end(_oldest_cc(ctx))
    if end is not None:
        branch = end.last_branch
        return (
            f"Install a driver >= {min_driver} but no newer than the R{branch} branch: R{branch} is the last "
            f"driver for {'/'.join(end.architectures)} GPUs ({end.source}).",
            [f"sudo apt install nvidia-driver-{branch}-server", "sudo reboot", "nvidia-smi"],
        )
    return (
        f"Install a driver >= {min_driver} (the recommended driver of your distribution usually is).",
        ["sudo ubuntu-drivers install", "sudo reboot", "nvidia-smi"],
    )


def check_driver_for_image(ctx: CheckContext) -> Finding | None:
    """The driver must support the CUDA version of the image the plan would deploy."""
    gpus = ctx.nvidia_gpus
    if not gpus or _driver_error_kind(ctx) is not None:
        return None
    image = ctx.image
    if not image.cuda_version:
        return None
    driver = driver_version_of(ctx.hardware, gpus[0])
    driver_cuda = reported_driver_cuda(ctx.hardware, gpus[0])
    cuda = ".".join(str(p) for p in (parse_version(image.cuda_version) or ())[:2])
    if not driver and not driver_cuda:
        advice, commands = _driver_install_advice(ctx, image.min_driver)
        return Finding(
            id="driver-unknown",
            severity="info",
            title=f"{image.tag} needs a driver for CUDA >= {cuda}",
            detail=(
                f"The driver of this hardware is not known (what-if or saved profile without one). The planned image "
                f"{image.image} is built with CUDA {image.cuda_version} and needs a Linux driver >= "
                f"{image.min_driver}."
            ),
            fix=advice,
            commands=commands,
        )
    if driver_supports(image.cuda_version, driver, driver_cuda):
        return Finding(
            id="driver-supports-image",
            severity="ok",
            title=f"Driver {driver or ''} (CUDA {driver_cuda}) runs {image.tag} (CUDA {image.cuda_version})",
            detail=f"The deployment image would be {image.image}.",
        )
    advice, commands = _driver_install_advice(ctx, image.min_driver)
    sources = load_cuda().sources
    return Finding(
        id="driver-too-old-for-image",
        severity="error",
        title=f"Driver {driver or '?'} (CUDA {driver_cuda or '?'}) is too old for the CUDA {cuda} llama.cpp image",
        detail=(
            f"The image a deployment would use, {image.image}, is built with CUDA {image.cuda_version} and needs a "
            f"driver >= {image.min_driver} (CUDA >= {cuda}). This driver supports CUDA {driver_cuda or 'unknown'}: "
            "docker refuses to start the container ('nvidia-container-cli: requirement error: unsatisfied "
            f"condition: cuda>={cuda}'), and the driver could not JIT-compile the image's PTX anyway."
        ),
        fix=(
            f"{advice} Or run llama.cpp outside docker, built from source against a CUDA toolkit this driver "
            f"supports (CUDA {driver_cuda or 'of the driver'} or older)."
        ),
        commands=[*commands, "cat /proc/driver/nvidia/version"],
        sources=[sources["release_notes"], sources["container_requirement"], *image.sources],
    )


def check_ptx_jit(ctx: CheckContext) -> Finding | None:
    """No native code for the GPU in the image: the driver compiles PTX at the first start."""
    image = ctx.image
    if not ctx.nvidia_gpus or not image.jit_warning:
        return None
    oldest = _oldest_cc(ctx)
    old_gpu = oldest is not None and oldest[:2] < (7, 5)
    cache = image.jit_cache_dir or load_images().jit_cache_dir
    return Finding(
        id="ptx-jit-first-start",
        severity="warn" if old_gpu else "info",
        title="The llama.cpp image has no native code for this GPU: slow first start (PTX JIT)",
        detail=image.jit_warning
        + (
            ". Pascal/Maxwell/Volta cards are served only through this PTX, and only by drivers from R570 (CUDA "
            "12.8) to R580 (their last branch)"
            if old_gpu
            else ""
        ),
        fix=f"Keep the JIT cache in a named volume mounted at {cache}, so only the first start compiles.",
        commands=[f"docker volume create llama-jit-cache  # then: -v llama-jit-cache:{cache}"],
    )


def check_image_has_code(ctx: CheckContext) -> Finding | None:
    """A GPU older than every architecture in the image cannot use it at all (Kepler and older)."""
    image = ctx.image
    if not ctx.nvidia_gpus or image.runs_on_gpu:
        return None
    return Finding(
        id="gpu-not-in-image",
        severity="error",
        title="The official llama.cpp CUDA images have no code for this GPU",
        detail="; ".join(image.reasons),
        fix=(
            "Build llama.cpp from source with a CUDA toolkit that still supports this GPU (CUDA 11.x for Kepler "
            "3.5/3.7), or use the Vulkan backend; otherwise the model runs on the CPU."
        ),
        commands=[
            "cmake -B build -DGGML_VULKAN=ON && cmake --build build -j --target llama-server",
        ],
    )


def check_cuda13_pin(ctx: CheckContext) -> Finding | None:
    """GPUs below 7.5 get nothing from CUDA 13: pin the CUDA 12 image; their driver line ends at R580."""
    oldest = _oldest_cc(ctx)
    if oldest is None or oldest[:2] >= (7, 5) or not ctx.image.runs_on_gpu:
        return None
    end = _support_end(oldest)
    cuda = load_cuda()
    ceiling = (
        f" NVIDIA's R{end.last_branch} driver branch is the last for this GPU, so CUDA {end.newest_cuda} is the "
        "newest it will ever run."
        if end and end.last_branch >= 580
        else ""
    )
    return Finding(
        id="pin-cuda12-image",
        severity="info",
        title=f"Compute capability {oldest[0]}.{oldest[1]}: use the pinned CUDA 12 image, never the CUDA 13 one",
        detail=(
            "CUDA 13 dropped Maxwell, Pascal and Volta: the "
            f":server-cuda13 images contain no code for this GPU, so llama.cpp cannot use it there. "
            f"planner pins {ctx.image.image}; an unpinned tag could move to CUDA 13 in a later build.{ceiling}"
        ),
        fix=f"Deploy with the pinned tag {ctx.image.image}.",
        sources=[cuda.source("cuda13_drops_old_gpus")] + ([end.source] if end else []),
    )


CHECKS = [check_nvml, check_driver_for_image, check_image_has_code, check_ptx_jit, check_cuda13_pin]
