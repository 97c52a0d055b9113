"""The CPU database: every row sourced and self-consistent, the story's CPU present, SoCs tied to their GPU rows."""

from __future__ import annotations

from planner.data.cpus import cpu_for_gpu, cpu_key, load_cpus, match_cpu
from planner.data.gpus import load_gpus, match_gpu


def test_at_least_80_rows_each_with_a_source() -> None:
    rows = load_cpus()
    assert len(rows) >= 80
    for row in rows:
        assert len(row.source) >= 20, row.name
        assert row.threads >= row.cores, row.name


def test_bandwidth_is_stated_or_derived_from_the_bus() -> None:
    for row in load_cpus():
        gbs, how = row.bandwidth()
        if row.memory_bandwidth_gbs:
            assert how == "stated by the source"
        elif gbs is not None:
            bus_bits = row.memory_bus_bits or 64 * (row.memory_channels or 0)
            assert gbs == round(bus_bits / 8 * (row.memory_speed_mts or 0) / 1000, 1), row.name
        if row.memory_bandwidth_gbs and row.memory_bus_bits and row.memory_speed_mts:
            derived = row.memory_bus_bits / 8 * row.memory_speed_mts / 1000
            assert abs(derived / row.memory_bandwidth_gbs - 1) < 0.03, row.name  # a stated figure agrees with its bus


def test_the_seed_story_cpu_and_the_issue_cpus_are_known() -> None:
    story = match_cpu("12th Gen Intel(R) Core(TM) i3-12100")  # as /proc/cpuinfo names it
    assert story is not None and (story.performance_cores, story.threads) == (4, 8)
    for name in ("Raspberry Pi 5", "Ryzen 9 7950X", "Ryzen AI Max+ 395", "EPYC 9654", "Xeon w9-3475X", "M4 Max",
                 "Jetson AGX Orin 64GB", "Snapdragon X Elite", "Threadripper 7980X"):  # fmt: skip
        assert match_cpu(name) is not None, name


def test_every_soc_gpu_row_implies_one_cpu() -> None:
    gpu_names = {g.name for g in load_gpus()}
    for row in load_cpus():
        for gpu in row.implies_gpus:
            assert gpu in gpu_names, (row.name, gpu)
    for gpu in load_gpus():
        if gpu.vendor == "apple":
            assert cpu_for_gpu(gpu.name) is not None, gpu.name
    assert cpu_for_gpu(match_gpu("DGX Spark GB10").name).name == "DGX Spark GB10 CPU"


def test_names_do_not_collide() -> None:
    keys: dict[str, str] = {}
    for row in load_cpus():
        for written in (row.name, *row.aliases):
            assert keys.setdefault(cpu_key(written), row.name) == row.name, written


def test_a_probed_hybrid_cpu_computes_on_its_p_cores() -> None:
    from planner.data.cpus import enrich_cpu
    from planner.types.hardware import Cpu

    probed = Cpu(model="13th Gen Intel(R) Core(TM) i9-13900K", physical_cores=24, logical_cores=32)
    enriched = enrich_cpu(probed)
    assert enriched.performance_cores == 8 and enriched.db_match == "Core i9-13900K"
    assert enriched.memory_bandwidth_gbs is None  # the board's memory, not the chip's maximum
    vm = Cpu(model="AMD EPYC 7763 64-Core Processor", physical_cores=2, logical_cores=2)  # a 2-vCPU slice
    assert enrich_cpu(vm) == vm
    unknown = Cpu(model="Intel(R) Xeon(R) Processor", physical_cores=2, logical_cores=2)
    assert enrich_cpu(unknown) == unknown
