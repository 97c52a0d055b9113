"""The GPU database (hardware_db/gpus): its data, its validation, and matching the names drivers report."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardware.fake_pynvml import MIB, load_recording, probed_hardware, recording_names
from planner.data.gpus import (
    GpuDatabaseError,
    closest_names,
    enrich_gpu,
    gpu_from_spec,
    load_gpus,
    match_gpu,
    normalize,
    search_gpus,
)
from planner.types.hardware import Gpu

GIB = 1 << 30

# Cards issue #2 names; each must be in the database under a name a person would type.
REQUIRED = [
    "Tesla K80", "Tesla M40", "Tesla P4", "Tesla P40", "P100 12GB", "P100 16GB", "V100 PCIe 16GB", "V100 SXM2 32GB",
    "T4", "A2", "A10", "A16", "A30", "A40", "A100 40GB", "A100 80GB PCIe", "L4", "L40", "L40S", "H100 PCIe",
    "H100 SXM", "H100 NVL", "H200", "GH200", "B200", "GTX 1050 Ti", "GTX 1060 6GB", "GTX 1070", "GTX 1080 Ti",
    "GTX 1660 Ti", "RTX 2080 Ti", "RTX 3060", "RTX 3090", "RTX 4060 Ti 16GB", "RTX 4090", "RTX 5090",
    "Quadro P6000", "Quadro RTX 8000", "RTX A4000", "RTX A6000", "RTX 4000 Ada", "RTX 6000 Ada",
    "RTX PRO 6000 Blackwell", "MI50", "MI60", "MI100", "MI210", "MI250X", "MI300X", "MI325X", "RX 6800",
    "RX 6900 XT", "RX 7900 XT", "RX 7900 XTX", "RX 9070 XT", "Arc A380", "Arc A750", "Arc A770", "Arc B580",
    "M1", "M1 Max", "M2 Ultra", "M3 Max", "M4 Pro",
]  # fmt: skip


def test_database_loads_with_at_least_80_sourced_entries() -> None:
    specs = load_gpus()
    assert len(specs) >= 80
    assert all(len(spec.source) >= 10 for spec in specs)
    assert {spec.vendor for spec in specs} == {"nvidia", "amd", "intel", "apple"}
    assert len({spec.name for spec in specs}) == len(specs)


@pytest.mark.parametrize("name", REQUIRED)
def test_required_card_is_known(name: str) -> None:
    assert match_gpu(name) is not None, name


def test_tesla_p4_facts() -> None:
    p4 = match_gpu("Tesla P4")
    assert p4 is not None
    assert (p4.vram_bytes, p4.usable_vram_bytes) == (8 * GIB, 7611 * MIB)  # nvidia-smi shows 7611 MiB
    assert (p4.compute_capability, p4.memory_bandwidth_gbs, p4.tdp_watts) == ("6.1", 192, 75)
    assert p4.passive_cooling and p4.fp16 and p4.fp16_crippled and p4.int8
    assert not p4.bf16 and not p4.tensor_cores
    assert p4.fp16_tflops is not None and p4.fp32_tflops is not None
    assert p4.fp16_tflops == pytest.approx(p4.fp32_tflops / 64, rel=0.05)


def test_fp16_is_crippled_exactly_on_consumer_pascal_dies() -> None:
    for spec in load_gpus():
        consumer_pascal = spec.chip in {"GP102", "GP104", "GP106", "GP107"}
        assert spec.fp16_crippled == consumer_pascal, spec.name
    p100 = match_gpu("Tesla P100-PCIE-16GB")
    assert p100 is not None and p100.fp16 and not p100.fp16_crippled and not p100.int8  # sm_60: no dp4a


def test_nvidia_flags_follow_compute_capability() -> None:
    for spec in load_gpus():
        if spec.vendor == "nvidia":
            cc = tuple(int(part) for part in spec.compute_capability.split("."))  # type: ignore[union-attr]
            assert spec.bf16 == (cc >= (8, 0)), spec.name
            assert spec.int8 == (cc >= (6, 1)), spec.name
        else:
            assert spec.compute_capability is None
        if spec.vendor == "amd":
            assert spec.gfx_target and spec.gfx_target.startswith("gfx")


def test_apple_entries_are_unified_and_list_their_memory_sizes() -> None:
    apple = [spec for spec in load_gpus() if spec.vendor == "apple"]
    assert len(apple) >= 12
    for spec in apple:
        assert spec.unified_memory and spec.memory_options_bytes
        assert max(spec.memory_options_bytes) == spec.vram_bytes


def test_usable_memory_is_never_above_nominal_and_always_sourced() -> None:
    with_usable = [spec for spec in load_gpus() if spec.usable_vram_bytes is not None]
    assert len(with_usable) >= 6
    for spec in with_usable:
        assert spec.usable_vram_source and spec.usable_vram_bytes <= spec.vram_bytes  # type: ignore[operator]
        assert spec.usable_vram_bytes >= 0.9 * spec.vram_bytes, spec.name  # type: ignore[operator]


# ---- validation errors name the file and the entry ------------------------------------------------------------

GOOD_ENTRY = """
  - name: Good Card
    vendor: nvidia
    family: datacenter
    architecture: Pascal
    compute_capability: "6.1"
    vram_bytes: 8 GiB
    memory_bandwidth_gbs: 192
    fp16: true
    year: 2016
    source: a datasheet somewhere
"""


def test_invalid_entry_error_names_file_and_entry(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text(
        "gpus:" + GOOD_ENTRY + GOOD_ENTRY.replace("Good Card", "Bad Card").replace("192", "-5")
    )
    with pytest.raises(GpuDatabaseError) as raised:
        load_gpus(tmp_path)
    assert "broken.yaml" in raised.value.message
    assert "entry 2 ('Bad Card')" in raised.value.message
    assert "memory_bandwidth_gbs" in raised.value.message
    assert "\n" not in raised.value.message


def test_missing_source_and_inconsistent_bf16_are_rejected(tmp_path: Path) -> None:
    no_source = GOOD_ENTRY.replace("    source: a datasheet somewhere\n", "")
    (tmp_path / "a.yaml").write_text("gpus:" + no_source)
    with pytest.raises(GpuDatabaseError, match=r"a\.yaml: entry 1 \('Good Card'\): source"):
        load_gpus(tmp_path)
    (tmp_path / "a.yaml").write_text("gpus:" + GOOD_ENTRY + "    bf16: true\n")
    with pytest.raises(GpuDatabaseError, match="bf16 must be true exactly when"):
        load_gpus(tmp_path)


def test_yaml_syntax_error_and_duplicate_names_are_reported(tmp_path: Path) -> None:
    (tmp_path / "syntax.yaml").write_text("gpus:\n  - name: [unclosed\n")
    with pytest.raises(GpuDatabaseError, match=r"syntax\.yaml is not valid YAML"):
        load_gpus(tmp_path)
    (tmp_path / "syntax.yaml").unlink()
    (tmp_path / "dup.yaml").write_text("gpus:" + GOOD_ENTRY + GOOD_ENTRY.replace("Good Card", "NVIDIA Good Card"))
    with pytest.raises(GpuDatabaseError, match="both answer to the name 'good card'"):
        load_gpus(tmp_path)


def test_defaults_apply_to_every_entry_of_a_file(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("defaults:\n  passive_cooling: true\ngpus:" + GOOD_ENTRY)
    (spec,) = load_gpus(tmp_path)
    assert spec.passive_cooling and spec.int8 and spec.bf16 is False  # int8/bf16 derived from cc 6.1


# ---- matching names as drivers report them ------------------------------------------------------------------

# Every GPU in the project's NVML recordings (tests/fixtures/nvml, from public nvidia-smi outputs), and the entry it
# must match. The laptop's name is cut off by nvidia-smi ("NVIDIA GeForce ..."): no entry should claim it.
EXPECTED_FROM_RECORDINGS = {
    "Tesla P4": "Tesla P4",
    "Tesla P40": "Tesla P40",
    "NVIDIA GeForce GTX 1070": "GTX 1070",
    "NVIDIA H100 80GB HBM3": "H100 SXM",
    "NVIDIA GeForce RTX 4080 SUPER": "RTX 4080 SUPER",
    "Tesla V100-SXM2-32GB": "Tesla V100 SXM2 32GB",
    "NVIDIA GeForce ...": None,
}


def test_every_recorded_nvml_name_matches_its_entry() -> None:
    seen = set()
    for recording in recording_names():
        for gpu in load_recording(recording).get("gpus", []):
            total = gpu.get("memory_total_mib")
            spec = match_gpu(gpu["name"], total * MIB if total else None)
            assert (spec.name if spec else None) == EXPECTED_FROM_RECORDINGS[gpu["name"]], gpu["name"]
            seen.add(gpu["name"])
    assert len(seen) >= 6


@pytest.mark.parametrize(
    ("name", "total_mib", "expected"),
    [
        # netdata's A100 MIG capture and tesla-p100.xml (nvidia-smi -q -x, driver 510.47.03)
        ("NVIDIA A100-SXM4-40GB", 40960, "A100 SXM4 40GB"),
        ("Tesla P100-PCIE-16GB", 16384, "Tesla P100 PCIe 16GB"),
        ("Tesla P4", 7680, "Tesla P4"),  # driver 535.129.03
        ("NVIDIA A100 80GB PCIe", 81920, "A100 PCIe 80GB"),
        ("NVIDIA A100-SXM4-80GB", 81920, "A100 SXM4 80GB"),
        ("Tesla V100-PCIE-16GB", 16160, "Tesla V100 PCIe 16GB"),
        ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", 97887, "RTX PRO 6000 Blackwell"),
        ("GeForce GTX 1080 Ti", 11178, "GTX 1080 Ti"),  # pre-R470 drivers leave out "NVIDIA "
        ("NVIDIA GeForce RTX 4060 Ti", 16380, "RTX 4060 Ti 16GB"),
        ("NVIDIA GeForce RTX 4060 Ti", 8188, "RTX 4060 Ti 8GB"),
        ("Intel(R) Arc(TM) A770 Graphics", 16225, "Arc A770 16GB"),
        ("AMD Radeon RX 7900 XTX", 24560, "Radeon RX 7900 XTX"),
        ("GRID P4-1Q", 1024, None),  # a vGPU slice is not a Tesla P4
    ],
)
def test_match_probed_names(name: str, total_mib: int, expected: str | None) -> None:
    spec = match_gpu(name, total_mib * MIB)
    assert (spec.name if spec else None) == expected


def test_a100_variant_is_picked_by_memory() -> None:
    assert match_gpu("A100", 40536 * MIB).name == "A100 SXM4 40GB"  # type: ignore[union-attr]
    assert match_gpu("A100", 81920 * MIB).name == "A100 SXM4 80GB"  # type: ignore[union-attr]
    assert match_gpu("a100 40gb pcie").name == "A100 PCIe 40GB"  # type: ignore[union-attr]
    assert match_gpu("A100 80 GB").vram_bytes == 80 * GIB  # type: ignore[union-attr]


def test_spelling_variants_reach_the_same_card() -> None:
    for spelling in ("rtx 3080ti", "RTX 3080 Ti", "NVIDIA GeForce RTX 3080 Ti", "geforce rtx 3080 TI"):
        assert match_gpu(spelling).name == "RTX 3080 Ti"  # type: ignore[union-attr]
    assert match_gpu("RTX 3080").name == "RTX 3080"  # type: ignore[union-attr]
    assert normalize("NVIDIA H100 80 GB HBM3") == "h100 80gb hbm3"


def test_apple_memory_configuration_is_picked() -> None:
    m2max = match_gpu("Apple M2 Max", 32 * GIB)
    assert m2max is not None and m2max.name == "M2 Max" and m2max.vram_bytes == 32 * GIB
    assert match_gpu("M2 Max 96GB").vram_bytes == 96 * GIB  # type: ignore[union-attr]
    assert match_gpu("Apple M3 Max", 36 * GIB).name == "M3 Max (30-core GPU)"  # type: ignore[union-attr]
    assert match_gpu("Apple M3 Max", 128 * GIB).name == "M3 Max (40-core GPU)"  # type: ignore[union-attr]


def test_unknown_names() -> None:
    assert match_gpu("RTX 3099") is None
    assert match_gpu("   ") is None
    assert closest_names("RTX 3099")[:2] == ["RTX 3090", "RTX 3090 Ti"]
    assert closest_names("zzzz") == []


def test_search() -> None:
    assert [spec.name for spec in search_gpus("p4")] == ["Tesla P4"]
    assert [spec.name for spec in search_gpus("3090")] == ["RTX 3090", "RTX 3090 Ti"]
    assert {spec.architecture for spec in search_gpus("pascal")} == {"Pascal"}
    assert len(search_gpus("apple")) == len([s for s in load_gpus() if s.vendor == "apple"])
    assert len(search_gpus("a100")) == 4
    assert search_gpus("gfx1100") and all(s.gfx_target == "gfx1100" for s in search_gpus("gfx1100"))
    assert search_gpus(None) == load_gpus()
    assert search_gpus("no such thing") == []


# ---- into the Hardware model ---------------------------------------------------------------------------------


def test_gpu_from_spec_uses_usable_memory() -> None:
    gpu = gpu_from_spec(match_gpu("Tesla P4"), 3)  # type: ignore[arg-type]
    assert (gpu.index, gpu.name, gpu.source, gpu.db_match) == (3, "Tesla P4", "what-if", "Tesla P4")
    assert (gpu.memory_total_bytes, gpu.memory_free_bytes, gpu.usable_bytes) == (8 * GIB, 7611 * MIB, 7611 * MIB)
    assert gpu.fp16_crippled and gpu.memory_bandwidth_gbs == 192 and gpu.cc_tuple() == (6, 1)
    rtx = gpu_from_spec(match_gpu("RTX 3090"), 0)  # type: ignore[arg-type]
    assert rtx.memory_free_bytes == rtx.memory_total_bytes == 24 * GIB  # no published usable size: nominal


def test_enrich_fills_what_nvml_does_not_say() -> None:
    probed = Gpu(name="Tesla P4", memory_total_bytes=7611 * MIB, memory_free_bytes=7609 * MIB)
    enriched, warning = enrich_gpu(probed)
    assert warning is None
    assert enriched.db_match == "Tesla P4" and enriched.memory_bandwidth_gbs == 192
    assert enriched.compute_capability == "6.1" and enriched.fp16_crippled and enriched.bf16 is False
    assert (enriched.memory_total_bytes, enriched.memory_free_bytes) == (7611 * MIB, 7609 * MIB)  # driver wins


def test_enrich_keeps_driver_facts_for_unknown_or_contradicting_cards() -> None:
    grid = Gpu(name="GRID P4-1Q", memory_total_bytes=1024 * MIB, compute_capability="6.1")
    same, warning = enrich_gpu(grid)
    assert same == grid and warning is not None and "GRID P4-1Q" in warning
    odd = Gpu(name="Tesla P4", memory_total_bytes=7611 * MIB, compute_capability="7.5")
    kept, warning = enrich_gpu(odd)
    assert kept.db_match is None and kept.compute_capability == "7.5" and "6.1" in (warning or "")


def test_probe_with_recorded_nvml_is_enriched_from_the_database(monkeypatch: pytest.MonkeyPatch) -> None:
    hardware = probed_hardware(monkeypatch, "gtx-1070-and-tesla-p40")
    by_name = {gpu.name: gpu for gpu in hardware.gpus}
    assert by_name["Tesla P40"].db_match == "Tesla P40"
    assert by_name["Tesla P40"].memory_bandwidth_gbs == 346
    assert by_name["NVIDIA GeForce GTX 1070"].db_match == "GTX 1070"
    assert all(gpu.fp16_crippled for gpu in hardware.gpus)
