"""Engine/runtime facts: the server image per GPU and driver, driver/CUDA arithmetic, engine gates, data rows."""

from __future__ import annotations

import re

import pytest

from planner.data.engines import (
    driver_cuda_version,
    driver_supports,
    engine_support,
    is_passively_cooled,
    load_cuda,
    load_engines,
    load_images,
    min_driver_for,
    native_code_for,
    ptx_for,
    server_image_for,
)
from planner.types.hardware import Gpu, Hardware, Memory

GiB = 1024**3
CUDA12 = ["50-virtual", "61-virtual", "70-virtual", "75-virtual", "80-virtual", "86-real", "89-real", "90-virtual"]


def machine(*gpus: Gpu, driver: str | None = None, cuda: str | None = None) -> Hardware:
    hardware = Hardware(gpus=list(gpus), memory=Memory(total_bytes=8 * GiB, available_bytes=6 * GiB))
    hardware.driver.driver_version, hardware.driver.cuda_driver_version = driver, cuda
    return hardware


def nvidia(name: str, cc: str, driver: str | None = None, cuda: str | None = None, source: str = "probe") -> Gpu:
    return Gpu(
        name=name,
        compute_capability=cc,
        memory_total_bytes=8 * GiB,
        driver_version=driver,
        cuda_driver_version=cuda,
        source=source,
    )


# Driver -> CUDA pairs printed by real nvidia-smi headers (/work/shared/fixtures/nvidia-smi/*).
FIXTURE_DRIVERS = [
    ("418.39", "10.1"),  # tesla-p40x3_driver-418
    ("470.256.02", "11.4"),  # tesla-p4_driver-470
    ("470.63.01", "11.4"),  # geforce-laptop-16gb_driver-470
    ("510.47.03", "11.6"),  # tesla-p100-pcie-16gb_driver-510
    ("535.129.03", "12.2"),  # tesla-p4_driver-535
    ("535.309.01", "12.2"),  # gtx-1070+tesla-p40_driver-535
    ("590.48.01", "13.1"),  # h100-80gb-hbm3_driver-590
    ("595.71.05", "13.2"),  # rtx-4080-super_driver-595
]


@pytest.mark.parametrize(("driver", "cuda"), FIXTURE_DRIVERS)
def test_toolkit_table_agrees_with_real_driver_headers(driver: str, cuda: str) -> None:
    assert driver_cuda_version(driver) == cuda


def test_driver_supports_uses_the_reported_cuda_version_first() -> None:
    assert not driver_supports("12.8.1", "470.256.02")
    assert not driver_supports("12.8.1", "535.129.03")
    assert driver_supports("12.8.1", "570.124.06")
    assert not driver_supports("12.8.1", "570.86.10")  # below 12.8 Update 1's minimum in the table ...
    assert driver_supports("12.8.1", "570.86.10", driver_cuda="12.8")  # ... but the driver's own word decides
    assert not driver_supports("13.3.0", "595.71.05", driver_cuda="13.2")
    assert driver_supports("12.8", None, driver_cuda="13.1")
    assert not driver_supports("12.8", None)  # nothing known: not supported
    assert min_driver_for("12.8.1") == "570.124.06" and min_driver_for("99.1") is None
    with pytest.raises(ValueError):
        driver_supports("twelve", "535.129.03")


def test_code_paths_follow_cuda_binary_compatibility() -> None:
    assert native_code_for((8, 9), CUDA12) == "86-real"  # sm_86 SASS runs on 8.9 (same major, higher minor)
    assert native_code_for((8, 0), CUDA12) is None and ptx_for((8, 0), CUDA12) == "80-virtual"
    assert native_code_for((12, 0), ["120a-real"]) == "120a-real"
    assert native_code_for((12, 1), ["120a-real"]) is None  # 'a' targets run only on exactly that GPU
    assert ptx_for((6, 0), CUDA12) == "50-virtual"  # the P100 gets Maxwell PTX: there is no 60 entry
    assert ptx_for((3, 7), CUDA12) is None


def test_tesla_p4_gets_the_pinned_cuda12_image_through_ptx_and_its_driver_is_too_old() -> None:
    # tesla-p4_driver-470_nvidia-smi.txt: driver 470.256.02, CUDA 11.4
    choice = server_image_for(machine(nvidia("Tesla P4", "6.1", "470.256.02", "11.4")))
    build = load_images().build
    assert choice.image == f"ghcr.io/ggml-org/llama.cpp:server-cuda-{build}"
    assert choice.backend == "cuda" and choice.cuda_version == "12.8.1" and choice.min_driver == "570.124.06"
    assert choice.jit_warning and "61-virtual" in choice.jit_warning and "/root/.nv/ComputeCache" in choice.jit_warning
    assert any("too old" in reason for reason in choice.reasons)
    assert choice.port == 8080 and choice.env == {"LLAMA_ARG_HOST": "0.0.0.0"}
    assert choice.healthcheck[-1] == "http://localhost:8080/health"


def test_newer_gpus_get_cuda13_only_when_the_driver_supports_it() -> None:
    h100 = nvidia("NVIDIA H100 80GB HBM3", "9.0", "590.48.01", "13.1")  # h100-80gb-hbm3_driver-590
    assert server_image_for(machine(h100)).tag == "server-cuda"
    future = nvidia("NVIDIA H100 80GB HBM3", "9.0", "600.10", "13.3")
    choice = server_image_for(machine(future))
    assert choice.tag == "server-cuda13" and choice.cuda_version == "13.3.0"
    rtx = nvidia("NVIDIA GeForce RTX 4080 SUPER", "8.9", "595.71.05", "13.2")
    choice = server_image_for(machine(rtx))
    assert choice.tag == "server-cuda" and choice.jit_warning is None  # 86-real SASS runs on 8.9


def test_a_pascal_card_never_gets_cuda13_even_with_a_new_driver() -> None:
    choice = server_image_for(machine(nvidia("Tesla P40", "6.1", "600.10", "13.3")))
    assert choice.tag == "server-cuda"


def test_what_if_gpus_ignore_this_hosts_driver() -> None:
    hardware = machine(nvidia("Tesla P4", "6.1", source="what-if"), driver="470.256.02", cuda="11.4")
    choice = server_image_for(hardware)
    assert not any("too old" in reason for reason in choice.reasons)


def test_kepler_has_no_code_in_the_official_images() -> None:
    choice = server_image_for(machine(nvidia("Tesla K80", "3.7", "470.256.02", "11.4")))
    assert not choice.runs_on_gpu and any("no code in this image" in r for r in choice.reasons)


def test_other_vendors_and_cpu_only() -> None:
    build = load_images().build
    rdna3 = Gpu(name="Radeon RX 7900 XTX", vendor="amd", gfx_target="gfx1100", memory_total_bytes=24 * GiB)
    rdna1 = Gpu(name="Radeon RX 5700 XT", vendor="amd", gfx_target="gfx1010", memory_total_bytes=8 * GiB)
    arc = Gpu(name="Intel Arc A770", vendor="intel", memory_total_bytes=16 * GiB)
    apple = Gpu(name="Apple M2 Max", vendor="apple", memory_total_bytes=32 * GiB, unified_memory=True)
    assert server_image_for(machine(rdna3)).image == f"ghcr.io/ggml-org/llama.cpp:server-rocm-{build}"
    assert server_image_for(machine(rdna1)).backend == "vulkan"
    assert server_image_for(machine(arc)).backend == "intel"
    cpu = server_image_for(machine())
    assert cpu.image == f"ghcr.io/ggml-org/llama.cpp:server-{build}" and cpu.backend == "cpu"
    assert not server_image_for(machine(apple)).runs_on_gpu


def test_engine_gates_by_compute_capability() -> None:
    def supported(cc: str) -> set[str]:
        return {row.engine for row in engine_support(cc) if row.supported}

    pascal, turing, ampere, ada = supported("6.1"), supported("7.5"), supported("8.0"), supported("8.9")
    assert {"llama.cpp", "ollama"} <= pascal
    assert not {"vllm", "vllm-gptq", "vllm-awq", "tabbyapi", "tensorrt-llm"} & pascal
    assert "vllm" not in supported("7.0")  # Volta: current vLLM needs 7.5
    assert {"vllm", "vllm-gptq", "vllm-awq"} <= turing and not {"vllm-marlin", "tabbyapi"} & turing
    assert {"vllm-marlin", "tabbyapi", "tensorrt-llm", "vllm-flashattention2"} <= ampere
    assert "vllm-fp8" not in ampere and "vllm-fp8" in ada
    assert not any(row.supported for row in engine_support(None) if row.engine == "vllm")
    amd = {row.engine for row in engine_support(None, vendor="amd") if row.supported}
    assert "vllm" in amd and "tabbyapi" not in amd


def test_passive_cooling_list_matches_whole_names() -> None:
    def card(name: str) -> Gpu:
        return Gpu(name=name, memory_total_bytes=GiB)

    assert is_passively_cooled(card("Tesla P4")) and is_passively_cooled(card("NVIDIA L4"))
    assert is_passively_cooled(card("Tesla T4")) and is_passively_cooled(card("Tesla P40"))
    assert not is_passively_cooled(card("NVIDIA GeForce RTX 4080 SUPER"))
    assert not is_passively_cooled(card("NVIDIA RTX A2000"))  # "A2" must not match inside "A2000"
    assert is_passively_cooled(card("NVIDIA A100-PCIE-40GB")) and is_passively_cooled(card("Tesla P100-PCIE-16GB"))


def test_every_data_row_names_a_source() -> None:
    cuda = load_cuda()
    for row in cuda.toolkits:
        assert row.source in cuda.sources, row
    for engine in load_engines().engines:
        assert engine.source.strip(), engine
    for image in load_images().images:
        assert image.source.strip(), image
    assert load_engines().passive_cooling.source.strip()
    # the toolkit table is ordered, so "newest CUDA a driver supports" is well defined
    versions = [tuple(int(p) for p in row.cuda.split(".")) for row in cuda.toolkits]
    assert versions == sorted(versions)


def test_image_tags_are_pinned_to_a_build_number() -> None:
    catalog = load_images()
    assert re.fullmatch(r"b\d{4,}", catalog.build)
    for row in catalog.images:
        assert catalog.pinned(row).endswith(f"{row.tag}-{catalog.build}")
