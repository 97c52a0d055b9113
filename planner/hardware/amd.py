"""AMD GPUs (best effort): the amdgpu driver's sysfs files, named by rocm-smi when it is installed.

Returns [] when there is no AMD GPU; never raises.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from planner.hardware.sysfs import read_int, read_text
from planner.types.hardware import Gpu

DRM = Path("/sys/class/drm")
KFD_NODES = Path("/sys/class/kfd/kfd/topology/nodes")
ROCM_SMI_TIMEOUT_S = 3.0


def probe_amd(drm: Path = DRM, kfd_nodes: Path = KFD_NODES) -> list[Gpu]:
    try:
        cards = _sysfs_cards(drm)
        if not cards:
            return []
        names = _rocm_smi_names()
        targets = _gfx_targets(kfd_nodes, drm)
        gpus = []
        for index, (card, device) in enumerate(cards):
            total = read_int(device / "mem_info_vram_total")
            if total is None:
                continue
            used = read_int(device / "mem_info_vram_used")
            pci_id = read_text(device / "device") or "?"
            gpus.append(
                Gpu(
                    index=index,
                    name=names.get(card) or read_text(device / "product_name") or f"AMD GPU (PCI 1002:{pci_id[2:]})",
                    vendor="amd",
                    gfx_target=targets.get(device.resolve()),
                    memory_total_bytes=total,
                    memory_used_bytes=used,
                    memory_free_bytes=total - used if used is not None else None,
                )
            )
        return gpus
    except Exception:  # best effort by contract: an odd sysfs must not break `planner probe`
        return []


def _sysfs_cards(drm: Path) -> list[tuple[str, Path]]:
    """("card0", its PCI device folder) for each AMD card with its own VRAM counter."""
    found = []
    for card in sorted(drm.glob("card[0-9]*")):
        if "-" in card.name:  # connectors such as card0-DP-1
            continue
        device = card / "device"
        if read_text(device / "vendor") == "0x1002" and (device / "mem_info_vram_total").exists():
            found.append((card.name, device))
    return found


def _rocm_smi_names() -> dict[str, str]:
    """{"card0": "Radeon RX 7900 XTX", ...} from `rocm-smi --showproductname --json`, {} without rocm-smi."""
    rocm_smi = shutil.which("rocm-smi")
    if rocm_smi is None:
        return {}
    try:
        done = subprocess.run(
            [rocm_smi, "--showproductname", "--json"],
            capture_output=True,
            text=True,
            timeout=ROCM_SMI_TIMEOUT_S,
            check=False,
        )
        data = json.loads(done.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return {}
    names = {}
    for card, fields in data.items():
        if isinstance(fields, dict):
            name = fields.get("Card Series") or fields.get("Card series") or fields.get("Device Name")
            if name:
                names[card] = str(name)
    return names


def _gfx_targets(kfd_nodes: Path, drm: Path) -> dict[Path, str]:
    """PCI device folder -> "gfx1100", from the ROCm kernel driver's topology (gfx_target_version 110000)."""
    targets = {}
    for properties in sorted(kfd_nodes.glob("*/properties")):
        fields = {}
        for line in (read_text(properties) or "").splitlines():
            key, _, value = line.partition(" ")
            fields[key] = value.strip()
        version = int(fields.get("gfx_target_version", "0") or 0)
        minor = fields.get("drm_render_minor")
        if not version or not minor:
            continue  # CPU nodes have no gfx target
        device = drm / f"renderD{minor}" / "device"
        targets[device.resolve()] = gfx_target_name(version)
    return targets


def gfx_target_name(version: int) -> str:
    """KFD's gfx_target_version (major*10000 + minor*100 + stepping) as the LLVM target: 90010 -> gfx90a."""
    major, minor, stepping = version // 10000, (version // 100) % 100, version % 100
    return f"gfx{major}{minor:x}{stepping:x}"
