"""What-if hardware: sizes, --gpu values, --hardware files and overriding a probed machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.fake_pynvml import MIB, install_fake_nvml
from planner.errors import BadInput
from planner.hardware.whatif import apply_what_if, parse_gpu_arg, parse_size, resolve_hardware
from planner.types.hardware import Cpu, Gpu, Hardware, Memory

GIB = 1 << 30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8GB", 8_000_000_000),
        ("8 GiB", 8 * GIB),
        ("8gib", 8 * GIB),
        ("512MB", 512_000_000),
        ("512 MiB", 512 * MIB),
        ("7.5GB", 7_500_000_000),
        (" 16 GB ", 16_000_000_000),
        ("1TiB", 1 << 40),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["8", "", "eight GB", "8 GQ", "-1GB", "0GB", "GB"])
def test_parse_size_rejects_with_one_line(text: str) -> None:
    with pytest.raises(BadInput) as raised:
        parse_size(text)
    assert "\n" not in raised.value.message and raised.value.exit_code == 2


def test_parse_gpu_arg_counts_and_cpu_only() -> None:
    for text in ("2x RTX 3090", "RTX 3090 x2", "2 x rtx 3090", "2×RTX 3090", "RTX 3090, RTX 3090"):
        assert [spec.name for spec in parse_gpu_arg(text)] == ["RTX 3090", "RTX 3090"], text
    assert [spec.name for spec in parse_gpu_arg("Tesla P4")] == ["Tesla P4"]
    assert [spec.name for spec in parse_gpu_arg("P4, P40")] == ["Tesla P4", "Tesla P40"]
    assert parse_gpu_arg("none") == [] and parse_gpu_arg("CPU") == []
    assert len(parse_gpu_arg("Tesla K80")) == 2  # one board, two devices in nvidia-smi
    assert parse_gpu_arg("A100 40GB")[0].vram_bytes == 40 * GIB


def test_parse_gpu_arg_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(BadInput) as raised:
        parse_gpu_arg("RTX 3099")
    assert raised.value.message.startswith("unknown GPU 'RTX 3099'; closest: RTX 3090, RTX 3090 Ti")
    with pytest.raises(BadInput, match="see `planner gpus`"):
        parse_gpu_arg("qqqqqq")
    with pytest.raises(BadInput, match="at least 1"):
        parse_gpu_arg("0x RTX 3090")
    with pytest.raises(BadInput, match="at most 64"):
        parse_gpu_arg("65x T4")


def canonical_box() -> Hardware:
    """The project's canonical user: one Tesla P4 (as NVML reports it), an i3-12100 (4 cores, 8 threads), 8 GB."""
    return Hardware(
        gpus=[Gpu(name="Tesla P4", memory_total_bytes=7611 * MIB, memory_free_bytes=7611 * MIB, db_match="Tesla P4")],
        cpu=Cpu(model="12th Gen Intel(R) Core(TM) i3-12100", physical_cores=4, logical_cores=8, flags=["avx2"]),
        memory=Memory(total_bytes=8 * GIB, available_bytes=7 * GIB, swap_total_bytes=GIB, swap_free_bytes=GIB),
        os="linux",
    )


def test_hardware_file_round_trip(tmp_path: Path) -> None:
    saved = tmp_path / "p4-box.json"
    saved.write_text(canonical_box().model_dump_json(indent=2))
    loaded = resolve_hardware(None, None, None, saved)
    assert loaded.source == "file"
    assert loaded.gpus[0].name == "Tesla P4" and loaded.cpu.physical_cores == 4
    assert loaded.model_dump(exclude={"source"}) == canonical_box().model_dump(exclude={"source"})


def test_gpu_what_if_keeps_the_file_host(tmp_path: Path) -> None:
    saved = tmp_path / "p4-box.json"
    saved.write_text(canonical_box().model_dump_json())
    hardware = resolve_hardware(["2x RTX 3090"], None, None, saved)
    assert hardware.source == "what-if"
    assert [(g.index, g.name, g.source) for g in hardware.gpus] == [
        (0, "RTX 3090", "what-if"),
        (1, "RTX 3090", "what-if"),
    ]
    assert hardware.cpu.model.endswith("i3-12100") and hardware.memory.total_bytes == 8 * GIB
    assert any("RTX 3090" in warning for warning in hardware.warnings)


def test_ram_and_cores_override() -> None:
    hardware = apply_what_if(canonical_box(), ram="32GB", cpu_cores=8)
    assert hardware.memory.total_bytes == hardware.memory.available_bytes == 32_000_000_000
    assert (hardware.cpu.physical_cores, hardware.cpu.logical_cores) == (8, 16)  # i3-12100 runs 2 threads a core
    assert hardware.gpus[0].name == "Tesla P4"  # GPUs untouched without --gpu
    no_smt = canonical_box()
    no_smt.cpu.logical_cores = 4
    assert apply_what_if(no_smt, cpu_cores=6).cpu.logical_cores == 6
    assert canonical_box().memory.total_bytes == 8 * GIB  # the base is not changed


def test_cpu_only_what_if() -> None:
    hardware = apply_what_if(canonical_box(), gpu=["none"])
    assert hardware.gpus == [] and hardware.source == "what-if"


def test_apple_what_if_becomes_a_unified_memory_mac() -> None:
    hardware = apply_what_if(canonical_box(), gpu=["M2 Max 32GB"])
    (gpu,) = hardware.gpus
    assert gpu.unified_memory and gpu.vendor == "apple" and gpu.memory_total_bytes == 32 * GIB
    assert hardware.memory.total_bytes == 32 * GIB and hardware.os == "darwin"
    assert hardware.cpu.architecture == "arm64"
    assert apply_what_if(canonical_box(), gpu=["M2 Max 32GB"], ram="64GiB").memory.total_bytes == 64 * GIB


def test_bad_hardware_files_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        resolve_hardware(None, None, None, tmp_path / "missing.json")
    (tmp_path / "notes.txt").write_text("my box has a P4")
    with pytest.raises(BadInput, match="not a hardware profile saved by `planner probe --save`"):
        resolve_hardware(None, None, None, tmp_path / "notes.txt")
    (tmp_path / "partial.json").write_text('{"gpus": []}')
    with pytest.raises(BadInput) as raised:
        resolve_hardware(None, None, None, tmp_path / "partial.json")
    assert "memory" in raised.value.message and "\n" not in raised.value.message


def test_nothing_given_probes_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    install_fake_nvml(monkeypatch, "tesla-p4-driver-470")
    hardware = resolve_hardware(None, None, None, None)
    assert hardware.source == "probe"
    assert [g.name for g in hardware.gpus] == ["Tesla P4"] and hardware.gpus[0].db_match == "Tesla P4"
    assert hardware.memory.total_bytes > 0
    overridden = resolve_hardware(["L4"], "16GiB", None, None)
    assert [g.name for g in overridden.gpus] == ["L4"] and overridden.memory.total_bytes == 16 * GIB
    # a machine named by its GPU is another machine: not this one's CPU but the stated default, and it says so
    assert overridden.cpu.source == "what-if: default" and overridden.cpu.model == "Core i5-12400"
    assert any("planner's default" in w and "Core i5-12400" in w for w in overridden.warnings)
    # --ram alone plans this machine with other RAM: its probed CPU stays
    assert resolve_hardware(None, "16GiB", None, None).cpu == hardware.cpu


def test_cpu_what_if_takes_the_database_row() -> None:
    """--cpu sets cores, threads, performance cores, SIMD and RAM bandwidth from the row, and says which."""
    pi = apply_what_if(canonical_box(), gpu=["none"], cpu="Raspberry Pi 5")
    assert (pi.cpu.model, pi.cpu.physical_cores, pi.cpu.logical_cores) == ("Raspberry Pi 5", 4, 4)
    assert pi.cpu.architecture == "arm64" and pi.cpu.source == "what-if: --cpu"
    assert pi.cpu.memory_bandwidth_gbs == pytest.approx(4 * 4267 / 1000, abs=0.05)  # 32-bit LPDDR4X-4267
    ryzen = apply_what_if(canonical_box(), cpu="AMD Ryzen 9 7950X 16-Core Processor")  # as /proc/cpuinfo writes it
    assert (ryzen.cpu.physical_cores, ryzen.cpu.logical_cores) == (16, 32)
    assert ryzen.cpu.memory_bandwidth_gbs == pytest.approx(83.2) and "avx512f" in ryzen.cpu.flags
    assert ryzen.gpus[0].name == "Tesla P4"  # --cpu alone keeps this machine's GPUs
    hybrid = apply_what_if(canonical_box(), cpu="i9-13900K")
    assert (hybrid.cpu.physical_cores, hybrid.cpu.performance_cores, hybrid.cpu.logical_cores) == (24, 8, 32)


def test_a_soc_gpu_implies_its_cpu() -> None:
    mac = apply_what_if(canonical_box(), gpu=["M2 16GB"])
    assert mac.cpu.model == "Apple M2" and mac.cpu.source == "what-if: platform"
    assert (mac.cpu.physical_cores, mac.cpu.performance_cores) == (8, 4)
    assert any("the SoC of the M2" in w for w in mac.warnings)
    max40 = apply_what_if(canonical_box(), gpu=["M4 Max (40-core GPU)"])
    assert max40.cpu.model == "Apple M4 Max (16-core CPU)"
    named = apply_what_if(canonical_box(), gpu=["M2 16GB"], cpu="M2 Pro")
    assert named.cpu.model == "Apple M2 Pro (12-core CPU)"  # --cpu wins over the platform


def test_ram_bandwidth_overrides_the_cpu_row() -> None:
    hardware = apply_what_if(canonical_box(), cpu="Ryzen 9 7950X", ram_bandwidth="20GB/s")
    assert hardware.cpu.memory_bandwidth_gbs == 20.0
    assert apply_what_if(canonical_box(), ram_bandwidth="19.5 GiB/s").cpu.memory_bandwidth_gbs == pytest.approx(
        20.94, abs=0.01
    )


@pytest.mark.parametrize("value", ["20", "20GB", "fast", "-3GB/s", "0GB/s"])
def test_bad_ram_bandwidth_is_one_line(value: str) -> None:
    with pytest.raises(BadInput) as raised:
        apply_what_if(canonical_box(), ram_bandwidth=value)
    assert raised.value.exit_code == 2 and "\n" not in raised.value.message


def test_unknown_cpu_suggests_close_names() -> None:
    with pytest.raises(BadInput) as raised:
        apply_what_if(canonical_box(), cpu="Ryzen 9 7950Y")
    assert raised.value.message.startswith("unknown CPU 'Ryzen 9 7950Y'; closest: Ryzen 9 7950X")
    with pytest.raises(BadInput, match="hardware_db/cpus"):
        apply_what_if(canonical_box(), cpu="qqqqqq")


@pytest.mark.parametrize(
    ("written", "expected"),
    [("3090", "RTX 3090"), ("rtx3090", "RTX 3090"), ("RTX3090", "RTX 3090"), ("p40", "Tesla P40"),
     ("4060ti", "RTX 4060 Ti 8GB"), ("4060 Ti 16GB", "RTX 4060 Ti 16GB")],
)  # fmt: skip
def test_compact_spellings_resolve(written: str, expected: str) -> None:
    assert [s.name for s in parse_gpu_arg(written)] == [expected]


def test_a_size_the_database_does_not_list_is_a_custom_what_if_said_plainly() -> None:
    hw = resolve_hardware(["RTX 4090 48GB"], "64GB", 8, None)
    assert hw.gpus[0].memory_total_bytes == 48 * 1024**3
    assert any("lists the RTX 4090 with 24 GB only" in w and "48 GB" in w for w in hw.warnings)
    hw = resolve_hardware(["RTX 3060 8GB"], "64GB", 8, None)
    assert hw.gpus[0].memory_total_bytes == 8 * 1024**3 and any("RTX 3060 with 12 GB only" in w for w in hw.warnings)
    with pytest.raises(BadInput, match="not a memory size"):
        parse_gpu_arg("RTX 4090 5000GB")


@pytest.mark.parametrize("written", ["H100", "P100", "M3 Max", "A100"])
def test_an_ambiguous_name_resolves_with_a_note_naming_the_variants(written: str) -> None:
    hw = resolve_hardware([written], "64GB", 8, None)
    note = next(w for w in hw.warnings if w.startswith(f"--gpu {written!r} could be any of"))
    assert hw.gpus[0].name in note and "name one" in note


def test_a_written_size_picks_the_variant_without_a_note() -> None:
    hw = resolve_hardware(["A100 40GB"], "64GB", 8, None)
    assert hw.gpus[0].name.endswith("40GB") and not any(w.startswith("--gpu") for w in hw.warnings)
