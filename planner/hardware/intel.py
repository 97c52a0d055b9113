"""Intel discrete GPUs (Arc), best effort: found on the PCI bus through sysfs, named by lspci.

The i915 driver does not publish the VRAM size in sysfs (only amdgpu's mem_info_vram_total does, which the xe
driver may or may not provide), so a card whose memory cannot be read is reported as a warning rather than as
a GPU with a made-up size. Integrated graphics (PCI 00:02.0, sharing host RAM) are skipped. Never raises.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from planner.hardware.sysfs import read_int, read_text
from planner.types.hardware import Gpu

PCI_DEVICES = Path("/sys/bus/pci/devices")
INTEGRATED_SLOT = "00:02.0"  # where Intel puts its integrated GPU on every platform since Sandy Bridge
LSPCI_TIMEOUT_S = 1.0


def probe_intel(warnings: list[str] | None = None, pci_devices: Path = PCI_DEVICES) -> list[Gpu]:
    try:
        gpus: list[Gpu] = []
        for device in _discrete_intel_display_devices(pci_devices):
            name = _lspci_name(device.name) or f"Intel GPU (PCI 8086:{read_text(device / 'device') or '?'})"
            total = read_int(device / "mem_info_vram_total")
            if total is None:
                if warnings is not None:
                    warnings.append(
                        f"Intel GPU {name} at {device.name}: its memory size is not readable from sysfs; "
                        "describe it with --gpu to plan for it"
                    )
                continue
            used = read_int(device / "mem_info_vram_used")
            gpus.append(
                Gpu(
                    index=len(gpus),
                    name=name,
                    vendor="intel",
                    memory_total_bytes=total,
                    memory_used_bytes=used,
                    memory_free_bytes=total - used if used is not None else None,
                )
            )
        return gpus
    except Exception:  # best effort by contract
        return []


def _discrete_intel_display_devices(pci_devices: Path) -> list[Path]:
    found = []
    try:
        entries = sorted(pci_devices.iterdir())
    except OSError:
        return []
    for device in entries:
        if device.name.endswith(INTEGRATED_SLOT):
            continue
        if read_text(device / "vendor") == "0x8086" and (read_text(device / "class") or "").startswith("0x03"):
            found.append(device)
    return found


def _lspci_name(address: str) -> str | None:
    """'Intel Corporation DG2 [Arc A770]' from `lspci -mm -s ADDRESS` (quoted fields: class, vendor, device)."""
    lspci = shutil.which("lspci")
    if lspci is None:
        return None
    try:
        done = subprocess.run(
            [lspci, "-mm", "-s", address], capture_output=True, text=True, timeout=LSPCI_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    fields = done.stdout.split('"')[1::2]
    if len(fields) >= 3:
        return f"{fields[1]} {fields[2]}".strip()
    return None
