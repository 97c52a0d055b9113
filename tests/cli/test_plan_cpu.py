"""CPUs as what-if hardware through the real CLI: --cpu, --ram-bandwidth, and what a what-if machine's CPU is."""

from __future__ import annotations

import json
import os

import pytest
from cli.test_plan import planner

from planner.data.cpus import match_cpu

MODEL = "qwen2.5-1.5b-instruct"


def _plan(*args: str) -> dict:
    proc = planner("plan", MODEL, "--offline", "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _host_gbs(plan: dict) -> float:
    """The RAM bandwidth the basis says generation was computed with ("at 0.60 x 17 GB/s")."""
    basis = plan["speed"]["basis"]
    return float(basis.split("host RAM:")[1].split(" GB/s")[0].split(" x ")[-1])


@pytest.mark.parametrize(("cpu", "threads", "gbs"), [("Raspberry Pi 5", 4, 17.1), ("Ryzen 9 7950X", 16, 83.2)])
def test_cpu_only_plans_use_that_cpus_cores_and_bandwidth(cpu: str, threads: int, gbs: float) -> None:
    plan = _plan("--gpu", "none", "--cpu", cpu, "--ram", "16GB")
    assert plan["hardware"]["cpu"]["model"] == match_cpu(cpu).name
    assert plan["settings"]["threads"] == threads
    assert plan["command"][plan["command"].index("--threads") + 1] == str(threads)
    assert plan["hardware"]["cpu"]["memory_bandwidth_gbs"] == pytest.approx(gbs)
    assert _host_gbs(plan) == pytest.approx(gbs, abs=0.5)
    # every generated token reads the weights from that RAM: the speed cannot beat bandwidth / bytes per token
    assert plan["speed"]["generation_tokens_per_s"] <= gbs * 1e9 / plan["speed"]["host_bytes_per_token"]


def test_the_pi_is_slower_than_the_ryzen_by_its_bandwidth() -> None:
    pi = _plan("--gpu", "none", "--cpu", "Raspberry Pi 5", "--ram", "8GB", "--ctx", "4096")
    ryzen = _plan("--gpu", "none", "--cpu", "Ryzen 9 7950X", "--ram", "8GB", "--ctx", "4096")
    ratio = ryzen["speed"]["generation_tokens_per_s"] / pi["speed"]["generation_tokens_per_s"]
    assert 83.2 / 17.1 * 0.8 <= ratio <= 83.2 / 17.1 * 1.25


def test_ram_bandwidth_overrides_the_cpu_row() -> None:
    plan = _plan("--gpu", "none", "--cpu", "Ryzen 9 7950X", "--ram-bandwidth", "20GB/s", "--ram", "16GB")
    assert plan["hardware"]["cpu"]["memory_bandwidth_gbs"] == 20.0 and _host_gbs(plan) == 20.0


def test_a_what_if_gpu_machine_does_not_print_this_machines_threads() -> None:
    mac = _plan("--gpu", "M2 16GB")
    assert mac["hardware"]["cpu"]["model"] == "Apple M2" and mac["settings"]["threads"] == 4  # its P-cores
    assert any("the SoC of the M2" in w for w in mac["warnings"])
    card = _plan("--gpu", "RTX 3090", "--ram", "32GB")
    assert card["hardware"]["cpu"]["source"] == "what-if: default"
    assert card["settings"]["threads"] == 6  # the stated default CPU's cores, whatever this machine has
    assert any("planner's default" in w for w in card["warnings"])
    reason = next(r for r in card["reasons"] if "threads" in r)
    assert reason.startswith("6 threads: one per physical core of the Core i5-12400")
    assert str(os.cpu_count()) + " threads" not in reason or os.cpu_count() == 6


@pytest.mark.parametrize("args", [["--cpu", "Ryzen 9 7950Y"], ["--ram-bandwidth", "20"], ["--cpu", ""]])
def test_bad_cpu_options_are_one_line_and_exit_2(args: list[str]) -> None:
    proc = planner("plan", MODEL, "--offline", "--gpu", "none", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error:"), proc.stderr


def test_backend_option_plans_for_that_backend() -> None:
    rocm = _plan("--gpu", "RX 7900 XT", "--ram", "32GB", "--backend", "rocm")
    assert "(ROCm constants)" in rocm["speed"]["basis"]
    default = _plan("--gpu", "RX 7900 XT", "--ram", "32GB")  # the image planner deploys for gfx1100 is ROCm
    assert "(ROCm constants)" in default["speed"]["basis"]
    vulkan = _plan("--gpu", "RX 7900 XT", "--ram", "32GB", "--backend", "vulkan")
    assert "(Vulkan (ROCm's until fitted) constants)" in vulkan["speed"]["basis"]
    cpu = _plan("--gpu", "RX 7900 XT", "--ram", "32GB", "--backend", "cpu")
    assert cpu["where"] == "CPU" and cpu["memory"]["devices"] == []
    cuda = _plan("--gpu", "RTX 3090", "--ram", "32GB", "--backend", "cuda")
    assert "(CUDA ampere_plus constants)" in cuda["speed"]["basis"]


@pytest.mark.parametrize("args", [["--backend", "opencl"], ["--gpu", "RTX 3090", "--backend", "metal"]])
def test_bad_backend_is_one_line_and_exit_2(args: list[str]) -> None:
    proc = planner("plan", MODEL, "--offline", *args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("planner: error:") and "--backend" in lines[0], proc.stderr
