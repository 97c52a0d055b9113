"""A stand-in `pynvml` module that answers from a recording of a real host (tests/fixtures/nvml/*.json).

Only the NVML boundary is fake: the module keeps nvidia-ml-py's real constants and NVMLError classes, and its
functions return what NVML would have returned on the recorded host (bytes, milliwatts, bitmasks). A field the
recording marks "N/A" or does not show raises NVMLError_NotSupported, as NVML does for unsupported fields, so
the probe leaves it None. Everything above this module (planner.hardware.*) runs for real.

Reusable by other tests (doctor):
    from hardware.fake_pynvml import install_fake_nvml, load_recording, probed_hardware
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pynvml as real_pynvml
import pytest

from planner.types.hardware import Hardware

RECORDINGS = Path(__file__).resolve().parent.parent / "fixtures" / "nvml"
# The nvidia-smi outputs the recordings were made from (copied byte-exact; README.md there says from where).
SOURCES = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia-smi"
MIB = 1024 * 1024

# nvidia-smi -q's "Clocks Event Reasons" labels -> the NVML bit that nvidia-smi printed them from.
_REASON_BITS = {
    "Idle": real_pynvml.nvmlClocksThrottleReasonGpuIdle,
    "Applications Clocks Setting": real_pynvml.nvmlClocksThrottleReasonApplicationsClocksSetting,
    "SW Power Cap": real_pynvml.nvmlClocksThrottleReasonSwPowerCap,
    "HW Slowdown": real_pynvml.nvmlClocksThrottleReasonHwSlowdown,
    "HW Thermal Slowdown": real_pynvml.nvmlClocksThrottleReasonHwThermalSlowdown,
    "HW Power Brake Slowdown": real_pynvml.nvmlClocksThrottleReasonHwPowerBrakeSlowdown,
    "Sync Boost": real_pynvml.nvmlClocksThrottleReasonSyncBoost,
    "SW Thermal Slowdown": real_pynvml.nvmlClocksThrottleReasonSwThermalSlowdown,
    "Display Clock Setting": real_pynvml.nvmlClocksThrottleReasonDisplayClockSetting,
}
# nvidia-smi -q's "Product Architecture" -> NVML's architecture enum.
_ARCHITECTURES = {
    "Pascal": real_pynvml.NVML_DEVICE_ARCH_PASCAL,
    "Volta": real_pynvml.NVML_DEVICE_ARCH_VOLTA,
    "Turing": real_pynvml.NVML_DEVICE_ARCH_TURING,
    "Ampere": real_pynvml.NVML_DEVICE_ARCH_AMPERE,
    "Ada Lovelace": real_pynvml.NVML_DEVICE_ARCH_ADA,
    "Hopper": real_pynvml.NVML_DEVICE_ARCH_HOPPER,
}
_ON = {"On", "Enabled"}
_OFF = {"Off", "Disabled"}


def recording_names() -> list[str]:
    return sorted(path.stem for path in RECORDINGS.glob("*.json"))


def load_recording(name: str) -> dict[str, Any]:
    """The recording tests/fixtures/nvml/NAME.json (NAME without .json)."""
    return json.loads((RECORDINGS / f"{name}.json").read_text())


def build_fake_pynvml(recording: dict[str, Any]) -> types.ModuleType:
    fake = types.ModuleType("pynvml")
    fake.__doc__ = f"fake pynvml answering from {recording['source']}"
    # Real constants, error classes and structs; none of the real functions (they would call the C library).
    for attribute, value in vars(real_pynvml).items():
        if not isinstance(value, types.FunctionType) and not attribute.startswith("__"):
            setattr(fake, attribute, value)
    _FakeNvml(recording).attach(fake)
    return fake


def install_fake_nvml(
    monkeypatch: pytest.MonkeyPatch, recording_name: str, pci_devices: Path | None = None
) -> types.ModuleType:
    """Make `import pynvml` return the fake for this test. sysfs's PCI list (read only when NVML fails) is
    pointed at `pci_devices`, default an empty place, so the real host's cards do not leak into the test."""
    fake = build_fake_pynvml(load_recording(recording_name))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr("planner.hardware.nvidia.PCI_DEVICES", pci_devices or Path("/nonexistent-pci-devices"))
    return fake


def probed_hardware(monkeypatch: pytest.MonkeyPatch, recording_name: str, pci_devices: Path | None = None) -> Hardware:
    """The whole real probe (CPU, RAM, disk, docker of this machine) with NVML answering from the recording."""
    from planner.hardware.probe import probe_hardware

    install_fake_nvml(monkeypatch, recording_name, pci_devices)
    return probe_hardware()


class _FakeNvml:
    def __init__(self, recording: dict[str, Any]) -> None:
        self.recording = recording
        self.gpus: list[dict[str, Any]] = recording.get("gpus", [])
        self.initialised = False

    def attach(self, module: types.ModuleType) -> None:
        for attribute in dir(self):
            if attribute.startswith("nvml"):
                setattr(module, attribute, getattr(self, attribute))

    # -- helpers ---------------------------------------------------------------------------------------
    @staticmethod
    def _error(code: int) -> real_pynvml.NVMLError:
        return real_pynvml.NVMLError(code)  # NVMLError.__new__ picks the subclass, e.g. NVMLError_NotSupported

    def _need_init(self) -> None:
        if not self.initialised:
            raise self._error(real_pynvml.NVML_ERROR_UNINITIALIZED)

    def _value(self, handle: int, key: str) -> Any:
        self._need_init()
        value = self.gpus[handle].get(key)
        if value is None or value == "N/A":
            raise self._error(real_pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    def _processes(self, handle: int, kind: str) -> list[types.SimpleNamespace]:
        processes = self._value(handle, "processes")
        return [
            types.SimpleNamespace(
                pid=p["pid"],
                usedGpuMemory=p["used_mib"] * MIB if p.get("used_mib") is not None else None,
                gpuInstanceId=0xFFFFFFFF,
                computeInstanceId=0xFFFFFFFF,
            )
            for p in processes
            if kind in p["type"].split("+")
        ]

    # -- system ------------------------------------------------------------------------------------------
    def nvmlInit(self) -> None:
        error = self.recording.get("init_error")
        if error:
            raise self._error(getattr(real_pynvml, error))
        self.initialised = True

    def nvmlInitWithFlags(self, flags: int) -> None:
        self.nvmlInit()

    def nvmlShutdown(self) -> None:
        self._need_init()
        self.initialised = False

    def nvmlSystemGetDriverVersion(self) -> str:
        self._need_init()
        return self._system("driver_version")

    def nvmlSystemGetNVMLVersion(self) -> str:
        # nvidia-smi prints "NVML library version" even when nvmlInit failed, so this needs no init.
        return self._system("nvml_version")

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._need_init()
        major, minor = self._system("cuda_version").split(".")
        return int(major) * 1000 + int(minor) * 10

    def nvmlSystemGetCudaDriverVersion_v2(self) -> int:
        return self.nvmlSystemGetCudaDriverVersion()

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        self._need_init()
        for gpu in self.gpus:
            for process in gpu.get("processes") or []:
                if process["pid"] == pid:
                    return process["name"]
        raise self._error(real_pynvml.NVML_ERROR_NOT_FOUND)

    def _system(self, key: str) -> Any:
        value = self.recording.get(key)
        if value is None:
            raise self._error(real_pynvml.NVML_ERROR_NOT_SUPPORTED)
        return value

    # -- devices -----------------------------------------------------------------------------------------
    def nvmlDeviceGetCount(self) -> int:
        self._need_init()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        self._need_init()
        if not 0 <= index < len(self.gpus):
            raise self._error(real_pynvml.NVML_ERROR_INVALID_ARGUMENT)
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return self._value(handle, "name")

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return self._value(handle, "uuid")

    def nvmlDeviceGetArchitecture(self, handle: int) -> int:
        return _ARCHITECTURES[self._value(handle, "architecture")]

    def nvmlDeviceGetCudaComputeCapability(self, handle: int) -> tuple[int, int]:
        major, minor = self._value(handle, "compute_capability").split(".")
        return int(major), int(minor)

    def nvmlDeviceGetMemoryInfo(self, handle: int, version: Any = None) -> types.SimpleNamespace:
        memory = types.SimpleNamespace(
            total=self._value(handle, "memory_total_mib") * MIB,
            free=self._value(handle, "memory_free_mib") * MIB,
            used=self._value(handle, "memory_used_mib") * MIB,
        )
        if not version:
            return memory
        # nvmlDeviceGetMemoryInfo_v2 (nvidia-smi's "Reserved" line): only where the source shows reserved
        # memory; older drivers lack the function, and pynvml then raises FunctionNotFound.
        if self.gpus[handle].get("memory_reserved_mib") is None:
            raise self._error(real_pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        memory.reserved = self.gpus[handle]["memory_reserved_mib"] * MIB
        memory.version = version
        return memory

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: int) -> int:
        return self._value(handle, "pcie_gen_current")

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: int) -> int:
        return self._value(handle, "pcie_gen_max")

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: int) -> int:
        return self._value(handle, "pcie_width_current")

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: int) -> int:
        return self._value(handle, "pcie_width_max")

    def nvmlDeviceGetPowerManagementLimit(self, handle: int) -> int:
        return round(self._value(handle, "power_limit_w") * 1000)

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: int) -> int:
        return self.nvmlDeviceGetPowerManagementLimit(handle)

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        return round(self._value(handle, "power_draw_w") * 1000)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        if sensor != real_pynvml.NVML_TEMPERATURE_GPU:
            raise self._error(real_pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self._value(handle, "temperature_c")

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, handle: int) -> int:
        mask = 0
        for label in self._value(handle, "clocks_event_reasons_active"):
            mask |= _REASON_BITS[label]
        return mask

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: int) -> int:
        return self.nvmlDeviceGetCurrentClocksThrottleReasons(handle)

    def nvmlDeviceGetPersistenceMode(self, handle: int) -> int:
        value = self._value(handle, "persistence_mode")
        if value in _ON:
            return real_pynvml.NVML_FEATURE_ENABLED
        if value in _OFF:
            return real_pynvml.NVML_FEATURE_DISABLED
        raise ValueError(f"persistence_mode {value!r} in the recording")

    def nvmlDeviceGetTotalEccErrors(self, handle: int, error_type: int, counter_type: int) -> int:
        if (error_type, counter_type) != (
            real_pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            real_pynvml.NVML_VOLATILE_ECC,
        ):
            raise self._error(real_pynvml.NVML_ERROR_NOT_SUPPORTED)
        return self._value(handle, "ecc_uncorrected_volatile")

    def nvmlDeviceGetMigMode(self, handle: int) -> list[int]:
        value = self._value(handle, "mig_mode")
        mode = real_pynvml.NVML_DEVICE_MIG_ENABLE if value in _ON else real_pynvml.NVML_DEVICE_MIG_DISABLE
        return [mode, mode]

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[types.SimpleNamespace]:
        return self._processes(handle, "C")

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[types.SimpleNamespace]:
        return self._processes(handle, "G")
