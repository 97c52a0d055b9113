"""The NVIDIA probe against recordings of real hosts (tests/fixtures/nvml/, from tests/fixtures/nvidia-smi/)."""

from __future__ import annotations

import ctypes
import json
from pathlib import Path

import pynvml as real_pynvml
import pytest

from hardware.fake_pynvml import (
    MIB,
    SOURCES,
    build_fake_pynvml,
    install_fake_nvml,
    load_recording,
    probed_hardware,
    recording_names,
)
from planner.hardware.nvidia import probe_nvidia


def test_every_recording_names_its_source_and_agrees_with_it() -> None:
    """A recording is only as good as its copy of the source: names, sizes and versions must appear there."""
    names = recording_names()
    assert len(names) >= 9
    for name in names:
        recording = load_recording(name)
        source = (SOURCES / recording["source"]).read_text()
        for key in ("driver_version", "cuda_version", "nvml_version"):
            if recording.get(key):
                assert recording[key] in source, (name, key)
        for gpu in recording.get("gpus", []):
            assert gpu["name"] in source, name
            if "memory_total_mib" in gpu:
                total = gpu["memory_total_mib"]
                assert f"{total}MiB" in source or f"{total} MiB" in source, name
            if "memory_reserved_mib" in gpu:
                assert f"Reserved                                       : {gpu['memory_reserved_mib']} MiB" in source
            for process in gpu.get("processes", []):
                assert str(process["pid"]) in source and process["name"] in source, name


def test_tesla_p4_driver_470(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = probed_hardware(monkeypatch, "tesla-p4-driver-470")
    assert hardware.driver.nvml_available and hardware.driver.error is None
    assert hardware.driver.driver_version == "470.256.02"
    assert hardware.driver.cuda_driver_version == "11.4"
    [p4] = hardware.gpus
    assert p4.name == "Tesla P4" and p4.vendor == "nvidia" and p4.index == 0
    assert p4.memory_total_bytes == 7611 * MIB
    assert p4.memory_free_bytes == 7611 * MIB and p4.memory_used_bytes == 0
    assert p4.memory_reserved_bytes is None  # no v2 figures in the source: the probe fell back to v1
    assert p4.driver_version == "470.256.02" and p4.cuda_driver_version == "11.4"
    assert (p4.power_draw_watts, p4.power_limit_watts, p4.temperature_c) == (23.0, 75.0, 46)
    assert p4.persistence_mode is False
    assert p4.ecc_errors_uncorrected == 0
    # What the source does not show (N/A or absent) stays unknown rather than invented.
    assert p4.mig_enabled is None and p4.pcie_gen_current is None and p4.uuid is None
    assert p4.throttle_reasons == [] and p4.processes == []


def test_laptop_with_desktop_processes_holding_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = probed_hardware(monkeypatch, "geforce-laptop-xorg-firefox")
    [gpu] = hardware.gpus
    assert gpu.memory_total_bytes == 16116 * MIB and gpu.memory_used_bytes == 393 * MIB
    assert gpu.usable_bytes == (16116 - 393) * MIB
    assert [p.pid for p in gpu.processes] == [3279, 8090, 8219, 10010, 12963, 13426]
    assert {p.name for p in gpu.processes} == {"/usr/lib/xorg/Xorg", "/usr/bin/gnome-shell", "/usr/lib/firefox/firefox"}
    assert sum(p.used_memory_bytes or 0 for p in gpu.processes) == 377 * MIB
    assert gpu.power_limit_watts is None and gpu.power_draw_watts == 21.0  # "21W /  N/A"
    assert gpu.ecc_errors_uncorrected is None


def test_mixed_gtx_1070_and_tesla_p40(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = probed_hardware(monkeypatch, "gtx-1070-and-tesla-p40")
    gtx, p40 = hardware.gpus
    assert (gtx.index, gtx.name, gtx.memory_total_bytes) == (0, "NVIDIA GeForce GTX 1070", 8192 * MIB)
    assert (p40.index, p40.name, p40.memory_total_bytes) == (1, "Tesla P40", 23040 * MIB)
    assert gtx.ecc_errors_uncorrected is None and p40.ecc_errors_uncorrected == 0
    assert (gtx.power_limit_watts, p40.power_limit_watts) == (180.0, 250.0)
    assert gtx.cuda_driver_version == p40.cuda_driver_version == "12.2"
    assert gtx.persistence_mode is True and p40.persistence_mode is True


def test_three_p40_one_full(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = probed_hardware(monkeypatch, "tesla-p40x3-one-full")
    assert [g.index for g in hardware.gpus] == [0, 1, 2]
    busy = hardware.gpus[0]
    assert busy.memory_free_bytes == 172 * MIB and busy.temperature_c == 82
    assert busy.power_draw_watts == 172.0
    assert [g.usable_bytes for g in hardware.gpus[1:]] == [22909 * MIB, 22909 * MIB]
    assert hardware.driver.cuda_driver_version == "10.1"


def test_h100_under_load(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = probed_hardware(monkeypatch, "h100-under-load")
    [h100] = hardware.gpus
    assert h100.name == "NVIDIA H100 80GB HBM3"
    assert h100.uuid == "GPU-00000000-0000-0000-0000-000000000000"
    assert h100.compute_capability == "9.0" and h100.cc_tuple() == (9, 0)
    assert h100.architecture == "Hopper"
    assert (h100.memory_total_bytes, h100.memory_free_bytes) == (81559 * MIB, 61263 * MIB)
    # NVML memory v2: used and reserved apart, as nvidia-smi shows them.
    assert (h100.memory_used_bytes, h100.memory_reserved_bytes) == (19818 * MIB, 479 * MIB)
    assert (h100.pcie_gen_current, h100.pcie_gen_max, h100.pcie_width_current, h100.pcie_width_max) == (5, 5, 16, 16)
    assert (h100.power_draw_watts, h100.power_limit_watts, h100.temperature_c) == (629.45, 700.0, 59)
    assert h100.throttle_reasons == []
    assert h100.persistence_mode is True and h100.mig_enabled is False and h100.ecc_errors_uncorrected == 0
    assert [(p.pid, p.name, p.used_memory_bytes) for p in h100.processes] == [
        (11327, "/root/tools/memhog", 2566 * MIB),
        (11328, "/root/tools/memhog", 1542 * MIB),
        (11345, "./gpu_burn", 15690 * MIB),
    ]
    assert hardware.driver.driver_version == "590.48.01" and hardware.driver.cuda_driver_version == "13.1"


def test_desktop_card_idle_pcie_downshift_and_compositor(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = probed_hardware(monkeypatch, "rtx-4080-super-desktop-idle")
    [gpu] = hardware.gpus
    # The link idles at Gen1 of Gen4: the probe reports both, judging it is doctor's job.
    assert (gpu.pcie_gen_current, gpu.pcie_gen_max) == (1, 4)
    assert gpu.throttle_reasons == ["gpu_idle"]
    assert gpu.compute_capability == "8.9" and gpu.architecture == "Ada Lovelace"
    # kwin_wayland is C+G: NVML lists it as compute and as graphics; it must appear once.
    assert [p.pid for p in gpu.processes] == [2165, 2496, 2620, 2954, 3527]
    assert gpu.processes[0].name == "/usr/bin/kwin_wayland" and gpu.processes[0].used_memory_bytes == 25 * MIB
    assert gpu.persistence_mode is False and gpu.mig_enabled is None


def test_v100_held_back_by_hw_power_brake(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = probed_hardware(monkeypatch, "v100-hw-power-brake")
    [gpu] = hardware.gpus
    assert gpu.name == "Tesla V100-SXM2-32GB"
    assert gpu.throttle_reasons == ["hw_slowdown", "hw_power_brake_slowdown"]
    # The excerpt shows no memory figures: the probe says so instead of guessing.
    assert gpu.memory_total_bytes == 0 and gpu.memory_free_bytes is None
    assert any("did not report the memory of GPU 0" in w for w in hardware.warnings)


@pytest.mark.parametrize("recording", ["error-driver-library-mismatch-550", "error-driver-library-mismatch-460"])
def test_driver_library_mismatch_is_a_fact_not_a_crash(monkeypatch: pytest.MonkeyPatch, recording: str) -> None:
    hardware = probed_hardware(monkeypatch, recording)
    assert hardware.gpus == []
    assert hardware.driver.nvml_available is False
    assert hardware.driver.error == "Driver/library version mismatch"
    assert hardware.driver.nvml_error_code == 18
    expected_version = load_recording(recording).get("nvml_version")
    assert hardware.driver.nvml_version == expected_version
    assert any("mismatch" in w and "reboot" in w for w in hardware.warnings)
    # Host facts are still probed for real.
    assert hardware.memory.total_bytes > 0 and hardware.cpu.logical_cores >= 1


def test_driver_not_loaded_with_card_on_the_bus(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A sysfs PCI entry built from the H100 capture's own PCI values (Bus Id 00000000:00:09.0,
    # Device Id 0x233010DE, Base/Sub Classcode 0x3/0x2).
    device = tmp_path / "0000:00:09.0"
    device.mkdir()
    (device / "vendor").write_text("0x10de\n")
    (device / "device").write_text("0x2330\n")
    (device / "class").write_text("0x030200\n")
    hardware = probed_hardware(monkeypatch, "error-driver-not-loaded-460", pci_devices=tmp_path)
    assert hardware.gpus == [] and hardware.driver.nvml_error_code == 9
    assert "not loaded" in (hardware.driver.error or "")
    assert any("0000:00:09.0" in w and "NVML cannot use them" in w for w in hardware.warnings)


def test_no_nvidia_driver_at_all_with_the_real_nvml_binding() -> None:
    """Not faked: nvidia-ml-py itself, on a machine without libnvidia-ml."""
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        pass
    else:
        pytest.skip("this machine has an NVIDIA driver")
    import pynvml

    assert not hasattr(pynvml, "_FakeNvml") and "fake" not in (pynvml.__doc__ or "")
    result = probe_nvidia(pci_devices=Path("/nonexistent"))
    assert result.gpus == []
    assert result.driver.nvml_available is False
    assert result.driver.nvml_error_code == 12
    assert result.driver.error == "NVML library not found: no NVIDIA driver is installed"
    assert result.warnings == []  # nothing on the bus, nothing to warn about


def test_fake_rejects_nvml_calls_it_does_not_model() -> None:
    """The fake must not silently fall through to the real C library for a function it lacks."""
    fake = build_fake_pynvml(load_recording("h100-under-load"))
    assert not hasattr(fake, "nvmlDeviceGetFanSpeed")
    assert fake.NVMLError is real_pynvml.NVMLError  # the real error classes, so `except NVMLError` works
    assert fake.nvmlClocksThrottleReasonHwSlowdown == real_pynvml.nvmlClocksThrottleReasonHwSlowdown


def test_probe_json_contract_from_a_recording(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_nvml(monkeypatch, "tesla-p4-driver-470")
    from typer.testing import CliRunner

    from planner.cli.app import app

    result = CliRunner().invoke(app, ["probe", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    gpu = data["gpus"][0]
    for key in ("index", "name", "compute_capability", "memory_total_bytes", "memory_free_bytes", "driver_version"):
        assert key in gpu
    assert gpu["name"] == "Tesla P4" and gpu["memory_total_bytes"] == 7611 * MIB
    assert set(data["cpu"]) >= {"model", "physical_cores", "logical_cores", "flags"}
    assert set(data["memory"]) >= {"total_bytes", "available_bytes"}
    assert {"disk", "container", "driver"} <= set(data)


def test_rich_view_shows_processes_and_driver_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from planner.cli.app import app

    install_fake_nvml(monkeypatch, "geforce-laptop-xorg-firefox")
    shown = CliRunner().invoke(app, ["probe"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "NVIDIA GeForce ..." in shown.output and "Xorg" in shown.output and "firefox" in shown.output
    assert "470.63.01" in shown.output
    assert "░" in shown.output  # the memory bar survives output without colour

    install_fake_nvml(monkeypatch, "error-driver-library-mismatch-550")
    broken = CliRunner().invoke(app, ["probe"], env={"COLUMNS": "200"})
    assert broken.exit_code == 0, broken.output
    assert "Driver/library version mismatch" in broken.output
    assert "none found" in broken.output
