"""Doctor checks against recorded states of real machines (tests/fixtures/nvml/, from /work/shared/fixtures).

The NVML boundary is the fake (hardware/fake_pynvml.py); the probe, the GPU database and every check run for real.
The host parts (CPU, RAM, disk, docker) come from this test machine in a probe, so the GPU tests pin them to fixed
values: they are what the host checks are tested on separately below.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hardware.fake_pynvml import build_fake_pynvml, probed_hardware

from planner.checks import Finding, Findings, run_checks
from planner.hardware.nvidia import probe_nvidia
from planner.types.hardware import Container, Cpu, Disk, Gpu, Hardware, Memory
from planner.types.plan import DeviceMemory, HostMemory, MemoryUse, Plan, Settings, Speed

GiB = 1024**3
MiB = 1024**2
QUIET_HOST = {
    "cpu": Cpu(model="Intel Core i3-12100", physical_cores=4, logical_cores=8, flags=["avx", "avx2", "fma", "f16c"]),
    "memory": Memory(total_bytes=32 * GiB, available_bytes=28 * GiB),
    "disk": Disk(path="/models", total_bytes=500 * GiB, free_bytes=300 * GiB),
    "container": Container(docker_client=True, docker_version="27.3.1", engine_reachable=True, nvidia_runtime=True),
}


def recorded(monkeypatch: pytest.MonkeyPatch, name: str) -> Hardware:
    """The probe of a recorded machine, with a quiet, fixed host around its GPUs."""
    return probed_hardware(monkeypatch, name).model_copy(update=QUIET_HOST)


def ids(findings: Findings, *severities: str) -> set[str]:
    return {f.id for f in findings.findings if not severities or f.severity in severities}


def the(findings: Findings, finding_id: str, gpu_index: int | None = None) -> Finding:
    matches = [f for f in findings.findings if f.id == finding_id and (gpu_index is None or f.gpu_index == gpu_index)]
    assert matches, f"{finding_id} not in {findings.ids()}"
    return matches[0]


def tiny_plan(
    hardware: Hardware, *, device_bytes: int, host_bytes: int, size_bytes: int, quant: str = "Q4_K_M"
) -> Plan:
    """A plan with only the numbers the doctor reads (what the solver would put there for this model)."""
    return Plan(
        model={"repo": "Qwen/Qwen1.5-14B-Chat-GGUF", "quant": quant, "size_bytes": size_bytes, "source": "hf"},
        hardware=hardware,
        settings=Settings(),
        memory=MemoryUse(
            devices=[DeviceMemory(name=g.name, index=g.index, total_bytes=device_bytes) for g in hardware.gpus],
            host=HostMemory(total_bytes=host_bytes),
        ),
        speed=Speed(prompt_tokens_per_s=100, generation_tokens_per_s=10, low=8, high=12, basis="test"),
    )


# -------------------------------------------------------------------------------------- recorded GPU states


def test_tesla_p4_on_driver_470_is_too_old_for_the_cuda12_image(monkeypatch: pytest.MonkeyPatch) -> None:
    findings = run_checks(recorded(monkeypatch, "tesla-p4-driver-470"))
    too_old = the(findings, "driver-too-old-for-image")
    assert too_old.severity == "error" and findings.exit_code == 1
    assert "470.256.02" in too_old.title and "11.4" in too_old.title and "12.8" in too_old.title
    # Pascal: the fix is the last driver branch that still supports it, not "the newest driver"
    assert "sudo apt install nvidia-driver-580-server" in too_old.commands
    assert "R580" in (too_old.fix or "") and "570.124.06" in (too_old.fix or "")
    assert {"vllm-unsupported", "ptx-jit-first-start", "passive-cooling"} <= ids(findings, "warn", "info")
    assert the(findings, "passive-cooling").severity == "info"  # 46 °C measured, idle
    assert findings.image is not None and findings.image.tag == "server-cuda"
    assert findings.findings[0].severity == "error"  # worst first


def test_tesla_p4_on_driver_535_is_still_too_old() -> None:
    # tesla-p4_driver-535_nvidia-smi.txt (Aliyun gn5i VM): 535.129.03 / CUDA 12.2, 7680 MiB, 41 C, 23 W / 75 W
    p4 = Gpu(
        name="Tesla P4",
        compute_capability="6.1",
        memory_total_bytes=7680 * MiB,
        memory_free_bytes=7680 * MiB,
        memory_used_bytes=0,
        driver_version="535.129.03",
        cuda_driver_version="12.2",
        temperature_c=41,
        power_draw_watts=23,
        power_limit_watts=75,
        persistence_mode=False,
    )
    hardware = Hardware(gpus=[p4], **QUIET_HOST)
    hardware.driver.nvml_available, hardware.driver.driver_version = True, "535.129.03"
    findings = run_checks(hardware)
    assert the(findings, "driver-too-old-for-image").severity == "error"


def test_desktop_card_with_xorg_holding_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = recorded(monkeypatch, "geforce-laptop-xorg-firefox")
    held = the(run_checks(hardware), "vram-held-by-other-processes")
    assert held.severity == "info"  # 377 MiB of 16 GiB: worth knowing, not alarming
    assert "/usr/lib/xorg/Xorg" in held.detail and "/usr/lib/firefox/firefox" in held.detail
    assert "377 MiB" in held.title
    # A plan that needs more than what Xorg and firefox left free is an error, with the shortfall
    free = hardware.gpus[0].memory_free_bytes
    assert free is not None
    plan = tiny_plan(hardware, device_bytes=free + 100 * MiB, host_bytes=GiB, size_bytes=8 * GiB)
    short = the(run_checks(hardware, plan), "vram-held-by-other-processes")
    assert short.severity == "error" and "100 MiB short" in short.detail
    fits = tiny_plan(hardware, device_bytes=free - 500 * MiB, host_bytes=GiB, size_bytes=8 * GiB)
    assert the(run_checks(hardware, fits), "vram-held-by-other-processes").severity == "info"


def test_idle_pcie_downshift_is_not_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    # rtx-4080-super: idle at Gen1 of Gen4 x16, "Idle" clock event active: benign power saving
    link = the(run_checks(recorded(monkeypatch, "rtx-4080-super-desktop-idle")), "pcie-link-below-max")
    assert link.severity == "info" and "idle" in link.title
    assert "nvidia-smi -q -d PCIE" in link.commands


def test_degraded_pcie_link_under_load_is_a_warning() -> None:
    # Partial lead in /work/shared/fixtures/nvidia-smi/README.md: fangq/mcx#18, GTX 980 Ti at x8 of x16 while
    # busy (100 % util, P2). The width is what is degraded; a busy card does not drop width to save power.
    card = Gpu(
        name="NVIDIA GeForce GTX 980 Ti",
        compute_capability="5.2",
        memory_total_bytes=6144 * MiB,
        pcie_gen_current=3,
        pcie_gen_max=3,
        pcie_width_current=8,
        pcie_width_max=16,
        power_draw_watts=190,
        power_limit_watts=250,
    )
    link = the(run_checks(Hardware(gpus=[card], **QUIET_HOST)), "pcie-link-below-max")
    assert link.severity == "warn" and "Gen3 x8 of Gen3 x16" in link.title


def test_v100_hw_power_brake_throttling(monkeypatch: pytest.MonkeyPatch) -> None:
    findings = run_checks(recorded(monkeypatch, "v100-hw-power-brake"))
    throttled = the(findings, "gpu-throttling")
    assert throttled.severity == "warn"
    assert "power brake" in throttled.detail.lower() and "BMC" in (throttled.fix or "")
    assert "vllm-unsupported" in ids(findings)  # Volta 7.0 < vLLM's 7.5


@pytest.mark.parametrize("name", ["error-driver-library-mismatch-460", "error-driver-library-mismatch-550"])
def test_driver_library_mismatch(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    findings = run_checks(recorded(monkeypatch, name))
    mismatch = the(findings, "driver-library-mismatch")
    assert mismatch.severity == "error" and findings.exit_code == 1
    assert "cat /proc/driver/nvidia/version" in mismatch.commands and "sudo reboot" in mismatch.commands
    assert "nvidia-utils" in (mismatch.fix or "")


def test_driver_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    findings = run_checks(recorded(monkeypatch, "error-driver-not-loaded-460"))
    assert the(findings, "driver-not-loaded").severity == "error"
    assert findings.exit_code == 1


def test_no_driver_with_an_nvidia_card_on_the_bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A machine with an NVIDIA card and no driver: NVML's shared library is absent (NVML_ERROR_LIBRARY_NOT_FOUND)
    # and sysfs lists an NVIDIA display controller (vendor 0x10de, class 0x0302xx, as a Tesla P4 reports).
    card = tmp_path / "0000:0b:00.0"
    card.mkdir()
    (card / "vendor").write_text("0x10de\n")
    (card / "class").write_text("0x030200\n")
    fake = build_fake_pynvml({"source": "no driver installed", "init_error": "NVML_ERROR_LIBRARY_NOT_FOUND"})
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    found = probe_nvidia(pci_devices=tmp_path)
    hardware = Hardware(driver=found.driver, warnings=found.warnings, **QUIET_HOST)
    missing = the(run_checks(hardware), "driver-missing")
    assert missing.severity == "error" and "sudo ubuntu-drivers install" in missing.commands
    # the same machine without the card on the bus: a CPU machine, nothing to fix
    found = probe_nvidia(pci_devices=tmp_path / "empty")
    cpu_only = run_checks(Hardware(driver=found.driver, warnings=found.warnings, **QUIET_HOST))
    assert the(cpu_only, "no-nvidia-driver").severity == "info" and cpu_only.exit_code == 0


def test_healthy_h100_has_only_the_expected_findings(monkeypatch: pytest.MonkeyPatch) -> None:
    findings = run_checks(recorded(monkeypatch, "h100-under-load"))
    # gpu_burn and two memhogs really hold 19.8 GB in the recording: the one expected warning
    assert ids(findings, "warn", "error") == {"vram-held-by-other-processes"}
    held = the(findings, "vram-held-by-other-processes")
    assert "./gpu_burn" in held.detail and "/root/tools/memhog" in held.detail
    assert {"driver-ok", "driver-supports-image", "engines-ok", "docker-ok"} <= ids(findings, "ok")
    assert findings.exit_code == 0


def test_a100_with_mig_enabled() -> None:
    # a100-sxm4-40gb_driver-510_mig-enabled_nvidia-smi-q-x.xml.txt: A100-SXM4-40GB, 510.47.03 / CUDA 11.6, MIG on,
    # Gen4 x16, 400 W limit, 36 C
    a100 = Gpu(
        name="NVIDIA A100-SXM4-40GB",
        compute_capability="8.0",
        memory_total_bytes=40960 * MiB,
        driver_version="510.47.03",
        cuda_driver_version="11.6",
        mig_enabled=True,
        pcie_gen_current=4,
        pcie_gen_max=4,
        pcie_width_current=16,
        pcie_width_max=16,
        power_limit_watts=400,
        temperature_c=36,
        persistence_mode=True,
    )
    findings = run_checks(Hardware(gpus=[a100], **QUIET_HOST))
    assert the(findings, "mig-enabled").severity == "warn"
    too_old = the(findings, "driver-too-old-for-image")
    assert "sudo ubuntu-drivers install" in too_old.commands  # Ampere: no R580 ceiling


def test_hot_passive_card_and_ecc_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    # tesla-p40x3_driver-418: GPU 0 at 82 C training; GPUs 1-2 idle at 25-26 C
    findings = run_checks(recorded(monkeypatch, "tesla-p40x3-one-full"))
    assert the(findings, "passive-cooling", gpu_index=0).severity == "warn"
    assert the(findings, "passive-cooling", gpu_index=1).severity == "info"
    held = the(findings, "vram-held-by-other-processes", gpu_index=0)
    assert held.severity == "warn" and "not visible here" in held.detail  # the table shows no process list
    hardware = recorded(monkeypatch, "tesla-p40x3-one-full")
    hardware.gpus[2].ecc_errors_uncorrected = 3
    assert the(run_checks(hardware), "ecc-uncorrected-errors", gpu_index=2).severity == "warn"


# ------------------------------------------------------------------------------------------------ host


def test_host_checks_cpu_ram_disk_docker() -> None:
    p4 = Gpu(name="Tesla P4", compute_capability="6.1", memory_total_bytes=7611 * MiB, source="what-if")
    host = dict(QUIET_HOST)
    host["cpu"] = Cpu(model="Intel Pentium G4560", flags=["sse4_2"])
    host["memory"] = Memory(total_bytes=8 * GiB, available_bytes=5 * GiB, swap_total_bytes=4 * GiB)
    host["disk"] = Disk(path="/models", total_bytes=100 * GiB, free_bytes=6 * GiB)
    host["container"] = Container(docker_client=True, engine_reachable=True, nvidia_runtime=False)
    hardware = Hardware(gpus=[p4], **host)
    plan = tiny_plan(hardware, device_bytes=7 * GiB, host_bytes=6 * GiB, size_bytes=7 * GiB)
    findings = run_checks(hardware, plan)
    assert the(findings, "cpu-without-avx2").severity == "warn"
    assert the(findings, "ram-short-for-plan").severity == "warn"
    assert the(findings, "disk-too-small-for-model").severity == "error"
    docker = the(findings, "docker-without-nvidia-runtime")
    assert "sudo nvidia-ctk runtime configure --runtime=docker" in docker.commands
    bigger = tiny_plan(hardware, device_bytes=7 * GiB, host_bytes=9 * GiB, size_bytes=5 * GiB)
    findings = run_checks(hardware, bigger)
    assert the(findings, "ram-too-small-for-plan").severity == "error"
    assert the(findings, "disk-nearly-full-after-download").severity == "warn"
    host["container"] = Container(docker_client=False)
    assert the(run_checks(Hardware(**host)), "docker-absent").severity == "info"


def test_bf16_and_float_weights_on_pascal_are_flagged_by_the_plan() -> None:
    p4 = Gpu(name="Tesla P4", compute_capability="6.1", memory_total_bytes=7611 * MiB, source="what-if")
    hardware = Hardware(gpus=[p4], **QUIET_HOST)
    quantized = run_checks(hardware, tiny_plan(hardware, device_bytes=GiB, host_bytes=GiB, size_bytes=GiB))
    assert the(quantized, "slow-fp16").severity == "info" and the(quantized, "no-bf16").severity == "info"
    bf16 = tiny_plan(hardware, device_bytes=GiB, host_bytes=GiB, size_bytes=GiB, quant="BF16")
    findings = run_checks(hardware, bf16)
    assert the(findings, "slow-fp16").severity == "warn" and the(findings, "no-bf16").severity == "warn"


def test_findings_json_round_trips(monkeypatch: pytest.MonkeyPatch) -> None:
    findings = run_checks(recorded(monkeypatch, "tesla-p4-driver-470"))
    again = Findings.model_validate_json(findings.model_dump_json())
    assert again == findings and again.hardware.gpus[0].name == "Tesla P4"
