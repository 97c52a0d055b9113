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
    assert overridden.cpu == hardware.cpu  # the probed CPU stays


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
