"""probe_hardware(): this machine as one Hardware object (GPUs of every vendor, CPU, RAM, disk, docker).

The slow parts (NVML start-up, `docker info`) run side by side, so the whole probe stays well under a second
on a machine whose docker engine answers, and about DOCKER_TIMEOUT_S when it hangs.
"""

from __future__ import annotations

import os
import stat
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from planner.data.cpus import enrich_cpu
from planner.errors import BadInput, EnvironmentProblem
from planner.hardware import amd, apple, host, intel, nvidia
from planner.hardware.llama_cpp_build import probe_llama_cpp_python
from planner.types.hardware import Container, Hardware


def probe_hardware(models_dir: Path | None = None, *, gpus: bool = True, container: bool = True) -> Hardware:
    """Probe this machine; never raises for missing drivers or tools (those become facts and warnings).

    `gpus=False` skips the GPU probes (what-if GPUs replace them anyway); `container=False` skips asking docker,
    which only deploy and doctor need: both save a subprocess on plan's start-up path.
    """
    with ThreadPoolExecutor(max_workers=2) as pool:
        container_job = pool.submit(host.probe_container) if container else None
        nvidia_job = pool.submit(nvidia.probe_nvidia) if gpus else None
        warnings: list[str] = []
        cpu = enrich_cpu(host.probe_cpu())  # a hybrid part computes on its P-cores (llama.cpp cpu_get_num_math)
        memory = host.probe_memory()
        disk = host.probe_disk(models_dir)
        os_name, os_release = host.probe_os()
        other_gpus = amd.probe_amd() + intel.probe_intel(warnings) + apple.probe_apple() if gpus else []
        found = nvidia_job.result() if nvidia_job else nvidia.NvidiaProbe()
        docker = container_job.result() if container_job else Container(detail="not probed")
    return Hardware(
        gpus=found.gpus + other_gpus,
        cpu=cpu,
        memory=memory,
        disk=disk,
        container=docker,
        os=os_name,
        os_release=os_release,
        driver=found.driver,
        llama_cpp_python=probe_llama_cpp_python(),
        source="probe",
        warnings=found.warnings + warnings,
    )


def _refuse_non_regular(path: Path) -> None:
    """--save replaces only a regular file: never a device node, FIFO or socket, and never a link (lstat).

    The rename would swap /dev/null or a link the user keeps for a JSON file, even as root; a link's target is
    not what the user named.
    """
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # nothing there (the folder is checked next)
        return
    if stat.S_ISDIR(mode):
        raise BadInput(f"{path} is a folder; give a file name for the hardware profile")
    if stat.S_ISLNK(mode):
        raise BadInput(f"{path} is a symbolic link; give the path of a regular file to save the profile to")
    if not stat.S_ISREG(mode):
        raise BadInput(f"{path} is not a regular file (a device, FIFO or socket); give another file name")


def save_hardware(hardware: Hardware, path: Path, force: bool = False) -> Path:
    """Write the profile as JSON atomically (temp file + rename); refuse to replace a file unless `force`."""
    path = Path(path).expanduser()
    _refuse_non_regular(path)
    if os.path.lexists(path) and not force:
        raise BadInput(f"{path} already exists; use --force to replace it")
    if not path.parent.is_dir():
        state = "is a file, not a folder" if path.parent.exists() else "does not exist"
        raise BadInput(f"--save {path}: {path.parent} {state}")
    try:
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(hardware.model_dump_json(indent=2) + "\n")
            os.chmod(temp, 0o644)  # mkstemp makes it private; a hardware profile is meant to be shared
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as err:
        raise EnvironmentProblem(f"could not write {path}: {err.strerror or err}") from err
    return path
