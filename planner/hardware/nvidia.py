"""NVIDIA GPUs through NVML (nvidia-ml-py's `pynvml`, imported lazily).

Every per-field NVML call may fail on some card, driver or vGPU (NotSupported, NoPermission ...): the field is
left None and the probe goes on. A missing library, a missing driver or a driver/library mismatch becomes a
DriverStatus fact, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from planner.types.hardware import DriverStatus, Gpu, GpuProcess

T = TypeVar("T")

# NVML error codes (nvml.h) worth a sentence of their own. The mismatch text is nvidia-smi's own wording
# ("Failed to initialize NVML: Driver/library version mismatch"), which is what people search for.
_INIT_ERRORS = {
    9: "NVIDIA driver is not loaded (nvidia-smi: couldn't communicate with the NVIDIA driver)",
    12: "NVML library not found: no NVIDIA driver is installed",
    18: "Driver/library version mismatch",
    4: "no permission to use NVML",
}

# Clock throttle ("clocks event") reason bits, named after their pynvml constants. Bits are looked up by name
# so the table follows whatever nvidia-ml-py version is installed.
_THROTTLE_REASONS = (
    ("gpu_idle", "GpuIdle"),
    ("applications_clocks_setting", "ApplicationsClocksSetting"),
    ("sw_power_cap", "SwPowerCap"),
    ("hw_slowdown", "HwSlowdown"),
    ("sync_boost", "SyncBoost"),
    ("sw_thermal_slowdown", "SwThermalSlowdown"),
    ("hw_thermal_slowdown", "HwThermalSlowdown"),
    ("hw_power_brake_slowdown", "HwPowerBrakeSlowdown"),
    ("display_clock_setting", "DisplayClockSetting"),
)

_ARCHITECTURES = {
    "KEPLER": "Kepler",
    "MAXWELL": "Maxwell",
    "PASCAL": "Pascal",
    "VOLTA": "Volta",
    "TURING": "Turing",
    "AMPERE": "Ampere",
    "ADA": "Ada Lovelace",
    "HOPPER": "Hopper",
    "BLACKWELL": "Blackwell",
}

PCI_DEVICES = Path("/sys/bus/pci/devices")


@dataclass
class NvidiaProbe:
    gpus: list[Gpu] = field(default_factory=list)
    driver: DriverStatus = field(default_factory=DriverStatus)
    warnings: list[str] = field(default_factory=list)


def probe_nvidia(pci_devices: Path | None = None) -> NvidiaProbe:
    """Probe every NVIDIA GPU that NVML can see; never raises.

    `pci_devices` (default: sysfs) is only read when NVML fails, to say whether an NVIDIA card is there anyway.
    """
    pci_devices = pci_devices if pci_devices is not None else PCI_DEVICES
    try:
        import pynvml
    except ImportError:
        result = NvidiaProbe(driver=DriverStatus(error="the nvidia-ml-py package (pynvml) is not installed"))
        _warn_if_unseen_nvidia_card(result, pci_devices)
        return result

    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        code = getattr(err, "value", None)
        result = NvidiaProbe(
            driver=DriverStatus(
                error=(_INIT_ERRORS.get(code) if isinstance(code, int) else None) or f"NVML failed to start: {err}",
                nvml_error_code=code,
                nvml_version=_text(_call(pynvml, pynvml.nvmlSystemGetNVMLVersion)),
            )
        )
        if code == 18:
            result.warnings.append(
                "NVIDIA driver/library version mismatch: the driver was upgraded but the old kernel module is "
                "still loaded; GPUs are unusable until a reboot (or reloading the nvidia module)"
            )
        elif code != 12:
            result.warnings.append(f"NVIDIA driver problem: {result.driver.error}")
        _warn_if_unseen_nvidia_card(result, pci_devices)
        return result

    try:
        return _probe_initialised(pynvml)
    finally:
        _call(pynvml, pynvml.nvmlShutdown)


def _probe_initialised(pynvml: Any) -> NvidiaProbe:
    driver = DriverStatus(
        nvml_available=True,
        driver_version=_text(_call(pynvml, pynvml.nvmlSystemGetDriverVersion)),
        cuda_driver_version=_cuda_version(_call(pynvml, pynvml.nvmlSystemGetCudaDriverVersion)),
        nvml_version=_text(_call(pynvml, pynvml.nvmlSystemGetNVMLVersion)),
    )
    result = NvidiaProbe(driver=driver)
    count = _call(pynvml, pynvml.nvmlDeviceGetCount)
    if count is None:
        driver.error = "NVML could not count the GPUs"
        result.warnings.append(f"NVIDIA driver problem: {driver.error}")
        return result
    for index in range(count):
        try:
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        except pynvml.NVMLError as err:
            # A GPU that fell off the bus ("GPU is lost") or is held by a reset: say so, keep the others.
            result.warnings.append(f"NVIDIA GPU {index} could not be opened: {_error_text(err)}")
            continue
        gpu, warnings = _probe_device(pynvml, index, handle, driver)
        result.gpus.append(gpu)
        result.warnings.extend(warnings)
    return result


def _probe_device(pynvml: Any, index: int, handle: Any, driver: DriverStatus) -> tuple[Gpu, list[str]]:
    warnings: list[str] = []
    name = _text(_call(pynvml, pynvml.nvmlDeviceGetName, handle)) or f"NVIDIA GPU {index}"
    memory = _memory_info(pynvml, handle)
    if memory is None:
        warnings.append(f"NVML did not report the memory of GPU {index} ({name}); it counts as 0 bytes")
    cc = _call(pynvml, pynvml.nvmlDeviceGetCudaComputeCapability, handle)
    mig = _call(pynvml, pynvml.nvmlDeviceGetMigMode, handle)
    persistence = _call(pynvml, pynvml.nvmlDeviceGetPersistenceMode, handle)
    gpu = Gpu(
        index=index,
        name=name,
        vendor="nvidia",
        uuid=_text(_call(pynvml, pynvml.nvmlDeviceGetUUID, handle)),
        architecture=_architecture(pynvml, _call(pynvml, pynvml.nvmlDeviceGetArchitecture, handle)),
        compute_capability=f"{cc[0]}.{cc[1]}" if cc else None,
        memory_total_bytes=int(memory.total) if memory is not None else 0,
        memory_free_bytes=int(memory.free) if memory is not None else None,
        memory_used_bytes=int(memory.used) if memory is not None else None,
        memory_reserved_bytes=_int_or_none(getattr(memory, "reserved", None)),
        driver_version=driver.driver_version,
        cuda_driver_version=driver.cuda_driver_version,
        pcie_gen_current=_call(pynvml, pynvml.nvmlDeviceGetCurrPcieLinkGeneration, handle),
        pcie_gen_max=_call(pynvml, pynvml.nvmlDeviceGetMaxPcieLinkGeneration, handle),
        pcie_width_current=_call(pynvml, pynvml.nvmlDeviceGetCurrPcieLinkWidth, handle),
        pcie_width_max=_call(pynvml, pynvml.nvmlDeviceGetMaxPcieLinkWidth, handle),
        power_limit_watts=_milliwatts(_call(pynvml, pynvml.nvmlDeviceGetPowerManagementLimit, handle)),
        power_draw_watts=_milliwatts(_call(pynvml, pynvml.nvmlDeviceGetPowerUsage, handle)),
        temperature_c=_call(pynvml, pynvml.nvmlDeviceGetTemperature, handle, pynvml.NVML_TEMPERATURE_GPU),
        throttle_reasons=decode_throttle_reasons(pynvml, _throttle_mask(pynvml, handle)),
        persistence_mode=bool(persistence) if persistence is not None else None,
        ecc_errors_uncorrected=_call(
            pynvml,
            pynvml.nvmlDeviceGetTotalEccErrors,
            handle,
            pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            pynvml.NVML_VOLATILE_ECC,  # since the last driver load, like nvidia-smi's "Volatile Uncorr. ECC"
        ),
        mig_enabled=bool(mig[0]) if mig is not None else None,
        processes=_processes(pynvml, handle),
    )
    enriched, warning = _enrich(gpu)
    if warning:
        warnings.append(warning)
    return enriched, warnings


def _memory_info(pynvml: Any, handle: Any) -> Any:
    """NVML's memory figures, v2 first: v1's `used` also counts the driver's reserved memory (615 MiB on an
    H200 with driver 580), so it disagrees with nvidia-smi; v2 reports `reserved` apart, as nvidia-smi does.
    Drivers or bindings without v2 fall back to v1."""
    version = getattr(pynvml, "nvmlMemory_v2", None)
    if version is not None:
        memory = _call(pynvml, pynvml.nvmlDeviceGetMemoryInfo, handle, version)
        if memory is not None:
            return memory
    return _call(pynvml, pynvml.nvmlDeviceGetMemoryInfo, handle)


def decode_throttle_reasons(pynvml: Any, mask: int | None) -> list[str]:
    """Name the bits set in an NVML clocks-throttle/clocks-event reason mask."""
    if not mask:
        return []
    names = []
    for name, suffix in _THROTTLE_REASONS:
        bit = getattr(pynvml, f"nvmlClocksEventReason{suffix}", None)
        if bit is None:
            bit = getattr(pynvml, f"nvmlClocksThrottleReason{suffix}", None)
        if bit and mask & bit:
            names.append(name)
    return names


def _throttle_mask(pynvml: Any, handle: Any) -> int | None:
    # NVML 12.x renamed "throttle reasons" to "clocks event reasons"; older bindings only have the first name.
    getter = getattr(pynvml, "nvmlDeviceGetCurrentClocksEventReasons", None) or getattr(
        pynvml, "nvmlDeviceGetCurrentClocksThrottleReasons", None
    )
    return _call(pynvml, getter, handle) if getter else None


def _processes(pynvml: Any, handle: Any) -> list[GpuProcess]:
    """Compute and graphics processes holding memory on this GPU; a C+G process is listed once."""
    found: dict[int, GpuProcess] = {}
    for getter in (pynvml.nvmlDeviceGetComputeRunningProcesses, pynvml.nvmlDeviceGetGraphicsRunningProcesses):
        for info in _call(pynvml, getter, handle) or []:
            pid = int(info.pid)
            used = info.usedGpuMemory  # pynvml gives None when the driver cannot tell (WDDM, vGPU)
            if pid in found:
                if found[pid].used_memory_bytes is None and used is not None:
                    found[pid].used_memory_bytes = int(used)
                continue
            found[pid] = GpuProcess(
                pid=pid,
                name=_process_name(pynvml, pid),
                used_memory_bytes=int(used) if used is not None else None,
            )
    return list(found.values())


def _process_name(pynvml: Any, pid: int) -> str:
    # NVML first: it names the process the driver sees, even when its pid is in another pid namespace.
    name = _text(_call(pynvml, pynvml.nvmlSystemGetProcessName, pid))
    if name:
        return name
    try:
        import psutil

        return psutil.Process(pid).name()
    except Exception:  # gone, or not in our pid namespace
        return f"pid {pid}"


def _enrich(gpu: Gpu) -> tuple[Gpu, str | None]:
    """Fill what NVML does not say (bandwidth, fp16 speed ...) from the hardware database."""
    try:
        from planner.data.gpus import enrich_gpu
    except ImportError:
        return gpu, None
    try:
        return enrich_gpu(gpu)
    except Exception as err:  # a broken database row must not take the probe down with it
        return gpu, f"hardware database lookup failed for {gpu.name}: {err}"


def _warn_if_unseen_nvidia_card(result: NvidiaProbe, pci_devices: Path) -> None:
    """NVML failed: if an NVIDIA display controller sits on the PCI bus anyway, that is worth saying."""
    cards = nvidia_pci_display_devices(pci_devices)
    if cards:
        result.warnings.append(
            f"{len(cards)} NVIDIA GPU(s) on the PCI bus ({', '.join(cards)}) but NVML cannot use them: "
            f"{result.driver.error}"
        )


def nvidia_pci_display_devices(pci_devices: Path | None = None) -> list[str]:
    """PCI addresses of NVIDIA display controllers (vendor 0x10de, class 0x03xxxx), from sysfs."""
    found = []
    try:
        entries = sorted((pci_devices if pci_devices is not None else PCI_DEVICES).iterdir())
    except OSError:
        return []
    for entry in entries:
        try:
            vendor = (entry / "vendor").read_text().strip()
            device_class = (entry / "class").read_text().strip()
        except OSError:
            continue
        if vendor == "0x10de" and device_class.startswith("0x03"):
            found.append(entry.name)
    return found


def _call(pynvml: Any, function: Callable[..., T] | None, *args: Any) -> T | None:
    """One NVML call; any NVML error (NotSupported, NoPermission, GpuIsLost ...) means "unknown"."""
    if function is None:
        return None
    try:
        return function(*args)
    except pynvml.NVMLError:
        return None


def _error_text(err: Exception) -> str:
    code = getattr(err, "value", None)
    return _INIT_ERRORS.get(code, str(err)) if isinstance(code, int) else str(err)


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):  # nvidia-ml-py < 11.515 returned bytes
        value = value.decode(errors="replace")
    text = str(value).strip()
    return text or None


def _cuda_version(value: int | None) -> str | None:
    """NVML encodes the CUDA version the driver supports as 1000*major + 10*minor: 12020 -> "12.2"."""
    if not value:
        return None
    return f"{value // 1000}.{(value % 1000) // 10}"


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int) else None


def _milliwatts(value: int | None) -> float | None:
    return round(value / 1000, 2) if value is not None else None


def _architecture(pynvml: Any, value: int | None) -> str | None:
    if value is None:
        return None
    for constant, name in _ARCHITECTURES.items():
        if getattr(pynvml, f"NVML_DEVICE_ARCH_{constant}", None) == value:
            return name
    return None
