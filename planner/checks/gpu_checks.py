"""The state of each GPU right now: memory others hold, PCIe link, clocks, cooling, ECC, persistence, MIG."""

from __future__ import annotations

from planner.checks.context import CheckContext, Finding
from planner.data.engines import is_passively_cooled
from planner.types.hardware import Gpu

MiB = 1024 * 1024
HELD_WARN_FRACTION = 0.05  # others holding >= 5 % of a GPU's memory is worth a warning even without a plan
HOT_C = 80  # datacenter cards start to slow down in the mid 80s (P4/T4 slowdown temperatures); warn earlier
THROTTLE_WARN = {
    "hw_slowdown": "HW slowdown (the board's own protection: over-temperature or power brake)",
    "hw_power_brake_slowdown": "HW power brake (an external signal from the server's power supply or BMC)",
    "hw_thermal_slowdown": "HW thermal slowdown (the GPU is too hot)",
    "sw_thermal_slowdown": "SW thermal slowdown (the driver cut clocks to stay under its temperature limit)",
}


def _mib(value: int) -> str:
    return f"{value / MiB:,.0f} MiB"


def _label(gpu: Gpu) -> str:
    return f"GPU {gpu.index} ({gpu.name})"


def _plan_need(ctx: CheckContext, gpu: Gpu) -> int | None:
    if ctx.plan is None:
        return None
    for device in ctx.plan.memory.devices:
        if device.index == gpu.index:
            return device.total_bytes
    return None


def check_vram_held(ctx: CheckContext) -> list[Finding]:
    """Memory other processes hold is memory the model cannot use; say who holds it and what the plan loses."""
    findings = []
    for gpu in ctx.hardware.gpus:
        processes = [p for p in gpu.processes if p.used_memory_bytes]
        held = sum(p.used_memory_bytes or 0 for p in processes)
        used = gpu.memory_used_bytes or 0
        if not gpu.memory_total_bytes or (not processes and used < HELD_WARN_FRACTION * gpu.memory_total_bytes):
            continue  # memory not reported, or a few MiB of driver bookkeeping on an idle card
        free = gpu.memory_free_bytes if gpu.memory_free_bytes is not None else gpu.memory_total_bytes - used
        who = "; ".join(f"{p.name} (pid {p.pid}) {_mib(p.used_memory_bytes or 0)}" for p in processes)
        if not who:
            who = f"{_mib(used)} used by processes not visible here (another container, VM or user)"
            held = used
        need = _plan_need(ctx, gpu)
        fraction = held / gpu.memory_total_bytes if gpu.memory_total_bytes else 0
        detail = (
            f"{_label(gpu)}: {who}. Together {_mib(held)} of {_mib(gpu.memory_total_bytes)} "
            f"({fraction:.0%}); {_mib(free)} free for llama.cpp."
        )
        if need is not None and need > free:
            severity, title = "error", f"{_label(gpu)}: other processes leave too little memory for the plan"
            detail += f" The plan needs {_mib(need)} on this GPU: {_mib(need - free)} short."
        elif need is not None:
            severity, title = "info", f"{_label(gpu)}: other processes hold {_mib(held)}; the plan still fits"
            detail += f" The plan needs {_mib(need)}, leaving {_mib(free - need)}."
        else:
            severity = "warn" if fraction >= HELD_WARN_FRACTION else "info"
            title = f"{_label(gpu)}: other processes hold {_mib(held)} of GPU memory"
            detail += " Plans made on this machine count only the free memory."
        findings.append(
            Finding(
                id="vram-held-by-other-processes",
                severity=severity,
                title=title,
                detail=detail,
                fix=(
                    "Close what you do not need (a desktop session's compositor and browser hold memory on the "
                    "display GPU); on a desktop, run the model on a GPU without a display attached."
                ),
                commands=["nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv", "nvidia-smi"],
                gpu_index=gpu.index,
            )
        )
    return findings


def _busy(gpu: Gpu) -> bool:
    return "gpu_idle" not in gpu.throttle_reasons and bool(
        gpu.power_draw_watts and gpu.power_limit_watts and gpu.power_draw_watts > 0.3 * gpu.power_limit_watts
    )


def check_pcie_link(ctx: CheckContext) -> list[Finding]:
    """A narrower or slower PCIe link than the card supports slows model loading and partial offload."""
    findings = []
    for gpu in ctx.nvidia_gpus:
        width_low = gpu.pcie_width_current and gpu.pcie_width_max and gpu.pcie_width_current < gpu.pcie_width_max
        gen_low = gpu.pcie_gen_current and gpu.pcie_gen_max and gpu.pcie_gen_current < gpu.pcie_gen_max
        if not (width_low or gen_low):
            continue
        link = f"Gen{gpu.pcie_gen_current} x{gpu.pcie_width_current} of Gen{gpu.pcie_gen_max} x{gpu.pcie_width_max}"
        why = (
            "PCIe carries the weights at load time, and with partial offload llama.cpp copies CPU-resident weights "
            "to the GPU for every large prompt batch, so a degraded link slows loading and prompt processing."
        )
        if gen_low and not width_low and not _busy(gpu):
            severity = "info"
            title = f"{_label(gpu)}: PCIe link at {link} while idle (normal power saving)"
            detail = (
                f"Idle GPUs drop their PCIe link to a lower generation to save power; this is expected. {why} "
                "Check the link again while the GPU is busy."
            )
        else:
            severity = "warn"
            title = f"{_label(gpu)}: PCIe link degraded: {link}"
            detail = (
                f"The link runs below what the card supports"
                f"{' while the GPU is busy' if _busy(gpu) else ''} (a x8/x4 slot, a riser, a chipset-attached "
                f"slot, or a dirty/loose contact). {why}"
            )
        findings.append(
            Finding(
                id="pcie-link-below-max",
                severity=severity,
                title=title,
                detail=detail,
                fix="Check under load; if it stays low, move the card to a CPU-attached x16 slot or reseat it.",
                commands=["nvidia-smi -q -d PCIE", "sudo lspci -vv | grep -E 'LnkCap|LnkSta'"],
                gpu_index=gpu.index,
            )
        )
    return findings


def check_throttling(ctx: CheckContext) -> list[Finding]:
    """Clocks held down by heat or power right now: generation speed drops with them."""
    findings = []
    for gpu in ctx.nvidia_gpus:
        active = [THROTTLE_WARN[r] for r in gpu.throttle_reasons if r in THROTTLE_WARN]
        if not active:
            continue
        brake = "hw_power_brake_slowdown" in gpu.throttle_reasons
        temp = f" at {gpu.temperature_c} °C" if gpu.temperature_c is not None else ""
        findings.append(
            Finding(
                id="gpu-throttling",
                severity="warn",
                title=f"{_label(gpu)}: clocks throttled now{temp}",
                detail=(
                    f"Active: {'; '.join(active)}. Token generation slows in proportion to the clocks; a power brake "
                    "can pin the GPU at a few hundred MHz."
                ),
                fix=(
                    "Power brake: the server's BMC or power supply asserts it (e.g. a Dell iDRAC power-cap or a "
                    "missing redundant PSU); check the BMC's power settings and PSU health."
                    if brake
                    else "Thermal: improve airflow through the card (server fans, case fans, a blower for "
                    "passive cards)."
                ),
                commands=["nvidia-smi -q -d PERFORMANCE,TEMPERATURE,POWER"],
                gpu_index=gpu.index,
            )
        )
    return findings


def check_passive_cooling(ctx: CheckContext) -> list[Finding]:
    """Passively cooled datacenter cards overheat without server airflow (e.g. a Tesla P4 in a desktop case)."""
    findings = []
    for gpu in ctx.nvidia_gpus:
        if not is_passively_cooled(gpu):
            continue
        temp = gpu.temperature_c
        hot = temp is not None and temp >= HOT_C
        seen = f" It reads {temp} °C now." if temp is not None else " Its temperature is not known here."
        findings.append(
            Finding(
                id="passive-cooling",
                severity="warn" if hot or temp is None else "info",
                title=f"{_label(gpu)} is passively cooled: it needs server airflow",
                detail=(
                    f"{gpu.name} has no fan of its own; it relies on the chassis pushing air through its "
                    "heatsink. In a desktop case it overheats within minutes of sustained generation, then "
                    f"throttles or shuts down.{seen}"
                ),
                fix=(
                    "Run it in a server chassis with front-to-back airflow, or fit a blower/shroud; watch the "
                    "temperature and clock events during a long generation."
                ),
                commands=[
                    "nvidia-smi --query-gpu=index,temperature.gpu,clocks.sm,clocks_event_reasons.active "
                    "--format=csv -l 5"
                ],
                gpu_index=gpu.index,
            )
        )
    return findings


def check_ecc(ctx: CheckContext) -> list[Finding]:
    findings = []
    for gpu in ctx.nvidia_gpus:
        if not gpu.ecc_errors_uncorrected:
            continue
        findings.append(
            Finding(
                id="ecc-uncorrected-errors",
                severity="warn",
                title=f"{_label(gpu)}: {gpu.ecc_errors_uncorrected} uncorrected ECC memory errors since driver load",
                detail=(
                    "Uncorrectable memory errors corrupt whatever occupied that memory (weights, KV cache) and the "
                    "driver kills the process using it (Xid 48). Repeated errors mean failing memory."
                ),
                fix="Read the retired/remapped pages; reset the GPU or reboot; if errors recur, replace the card.",
                commands=["nvidia-smi -q -d ECC,PAGE_RETIREMENT,ROW_REMAPPER", f"sudo nvidia-smi -r -i {gpu.index}"],
                gpu_index=gpu.index,
            )
        )
    return findings


def check_persistence(ctx: CheckContext) -> Finding | None:
    """Without persistence mode a headless GPU is re-initialised for every program that opens it."""
    if ctx.hardware.os != "linux":
        return None
    off = [gpu for gpu in ctx.nvidia_gpus if gpu.persistence_mode is False]
    if not off:
        return None
    return Finding(
        id="persistence-mode-off",
        severity="info",
        title=f"Persistence mode is off on {', '.join(_label(g) for g in off)}",
        detail=(
            "On a headless Linux machine the driver tears the GPU down when the last program exits and "
            "initialises it again (seconds) for the next one: slower server starts, slower nvidia-smi/NVML probes."
        ),
        fix="Turn it on (lasts until reboot), or enable the persistence daemon permanently.",
        commands=["sudo nvidia-smi -pm 1", "sudo systemctl enable --now nvidia-persistenced"],
    )


def check_mig(ctx: CheckContext) -> list[Finding]:
    findings = []
    for gpu in ctx.nvidia_gpus:
        if not gpu.mig_enabled:
            continue
        findings.append(
            Finding(
                id="mig-enabled",
                severity="warn",
                title=f"{_label(gpu)}: MIG is enabled: the card is split into smaller GPU instances",
                detail=(
                    "With MIG on, llama.cpp sees only the MIG instances it is given (CUDA_VISIBLE_DEVICES=MIG-<uuid>), "
                    "each with its own slice of memory; the card's total memory is not available to one model."
                ),
                fix="Plan for one instance's memory, or disable MIG (needs a GPU reset) to use the whole card.",
                commands=["nvidia-smi -L", f"sudo nvidia-smi -i {gpu.index} -mig 0"],
                gpu_index=gpu.index,
            )
        )
    return findings


CHECKS = [
    check_vram_held,
    check_pcie_link,
    check_throttling,
    check_passive_cooling,
    check_ecc,
    check_persistence,
    check_mig,
]
