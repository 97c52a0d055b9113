"""MoE and op-offload physics on the catalog's MoE models: the speed JSON's bytes redone from each plan's own layout.

Every scenario is a real plan (the solver on catalog facts and what-if GPUs); the test recomputes, from the plan's
settings and memory alone, what llama.cpp reads and copies (see planner/core/speed.py for the scheduler rules) and
checks the figures the plan prints against it.
"""

from __future__ import annotations

import itertools
from functools import cache

import pytest

from planner.api import plan_request
from planner.core.memory import kv_bytes_per_token
from planner.core.speed import DEFAULT_PCIE, PCIE_GBS
from planner.data.catalog import facts_from_catalog, load_catalog
from planner.errors import NothingFits
from planner.hardware.whatif import apply_what_if
from planner.types.hardware import Cpu, Hardware, Memory
from planner.types.model import ModelFacts
from planner.types.plan import Overrides, Plan, PlanRequest

GB = 1e9
BASE = Hardware(
    cpu=Cpu(model="test CPU", physical_cores=8, logical_cores=16, memory_bandwidth_gbs=60.0),
    memory=Memory(total_bytes=512 * 2**30, available_bytes=512 * 2**30),
    source="file",
)
GPUS = ["RTX 3060 8GB", "RTX 4080", "RTX 3090", "2x RTX 3090"]
UBATCHES = [512, 64, 16]  # 16: below GGML_OP_OFFLOAD_MIN_BATCH, the host weights are computed by the CPU


def _moe_scenarios() -> list[tuple[str, str]]:
    return [(m.name, q.quant) for m in load_catalog() if m.shape.n_expert for q in m.quants]


@cache
def _plan(model: str, quant: str, gpu: str, ubatch: int) -> Plan | None:
    hw = apply_what_if(BASE, gpu=gpu.split(" + "))
    request = PlanRequest(model=model, hardware=hw, overrides=Overrides(quant=quant, ubatch_size=ubatch), offline=True)
    try:
        return plan_request(request)
    except NothingFits:
        return None


def _facts(model: str, quant: str) -> ModelFacts:
    entry = next(m for m in load_catalog() if m.name == model)
    return facts_from_catalog(entry, quant)


def _host_layout(facts: ModelFacts, plan: Plan) -> tuple[int, int, int, int]:
    """(host blocks, non-expert bytes of host blocks, expert bytes in RAM, host output bytes) of a plan: -ngl offloads
    the last blocks, --n-cpu-moe keeps the experts of the first N blocks in RAM."""
    gpu_blocks = sum(d.layers for d in plan.memory.devices)
    host_blocks = facts.n_layer - gpu_blocks
    dense = sum(facts.layer_bytes[il] - facts.layer_expert_bytes[il] for il in range(host_blocks))
    experts = sum(facts.layer_expert_bytes[il] for il in range(max(host_blocks, plan.settings.n_cpu_moe)))
    output = 0 if any(d.output_layer for d in plan.memory.devices) else facts.output_bytes
    return host_blocks, dense, experts, output


SCENARIOS = [(m, q, g, u) for (m, q), g, u in itertools.product(_moe_scenarios(), GPUS, UBATCHES)]


def test_the_corpus_has_moe_offload_plans() -> None:
    plans = [p for p in (_plan(*s) for s in SCENARIOS) if p is not None]
    offloaded = [p for p in plans if p.speed.host_bytes_per_token > 0]
    assert len(plans) >= 40 and len(offloaded) >= 20, (len(plans), len(offloaded))
    assert any(p.settings.n_cpu_moe > 0 for p in offloaded)


@pytest.mark.parametrize("model,quant,gpu,ubatch", SCENARIOS)
def test_host_bytes_per_token_is_the_arithmetic_of_the_layout(model: str, quant: str, gpu: str, ubatch: int) -> None:
    plan = _plan(model, quant, gpu, ubatch)
    if plan is None or not plan.fits:
        pytest.skip("nothing fits")
    facts = _facts(model, quant)
    host_blocks, dense, experts, output = _host_layout(facts, plan)
    share = facts.n_expert_used / facts.n_expert
    kv = kv_bytes_per_token(facts, plan.settings.cache_type_k, plan.settings.cache_type_v)
    kv_host = kv * min(512, plan.settings.ctx_size) * host_blocks / facts.n_layer
    expected = dense + experts * share + output + kv_host
    assert abs(plan.speed.host_bytes_per_token - expected) <= 2, (plan.speed.host_bytes_per_token, expected)
    # the experts a token does not use are read nowhere: GPU + host reads add up to the model's active bytes
    gpu_experts = sum(facts.layer_expert_bytes) - experts
    gpu_expected = sum(d.weights_bytes for d in plan.memory.devices) - gpu_experts * (1 - share)
    kv_gpu = kv * min(512, plan.settings.ctx_size) * (facts.n_layer - host_blocks) / facts.n_layer
    assert len(plan.speed.gpu_bytes_per_token) == len(plan.memory.devices)
    assert abs(sum(plan.speed.gpu_bytes_per_token) - gpu_expected - kv_gpu) <= 2 * len(plan.memory.devices) + 2


@pytest.mark.parametrize("model,quant,gpu,ubatch", SCENARIOS)
def test_prompt_speed_never_exceeds_the_pcie_copy_bound(model: str, quant: str, gpu: str, ubatch: int) -> None:
    plan = _plan(model, quant, gpu, ubatch)
    if plan is None or not plan.fits:
        pytest.skip("nothing fits")
    facts = _facts(model, quant)
    _blocks, dense, experts, _output = _host_layout(facts, plan)
    u = plan.settings.ubatch_size
    if dense + experts == 0 or u < 32:
        assert plan.speed.pcie_seconds_per_ubatch is None  # nothing copied: no op offload
        return
    # a ubatch copies the host blocks' weights and the experts its tokens route to (uniform routing)
    share = facts.n_expert_used / facts.n_expert
    copied = dense + experts * (1 - (1 - share) ** u)
    link = PCIE_GBS[DEFAULT_PCIE[0]] * DEFAULT_PCIE[1] * GB  # what-if GPUs: no probed link
    assert plan.speed.pcie_seconds_per_ubatch == pytest.approx(copied / link, rel=1e-3, abs=1e-4)
    bound = u / (copied / link)
    assert plan.speed.prompt_tokens_per_s <= bound + 0.05, (  # + the 0.1 t/s rounding of the JSON
        plan.speed.prompt_tokens_per_s,
        bound,
    )
    assert f"{copied / GB:.2f} GB of host weights per ubatch" in plan.speed.basis


def test_issue_figures_gpt_oss_120b_on_a_16gb_card() -> None:
    """The issue's own arithmetic: 29 layers x 1.69 GB of experts x 4/128 read from RAM per token."""
    plan = _plan("gpt-oss-120b", "MXFP4_MOE", "RTX 4080", 512)
    assert plan is not None and plan.settings.n_cpu_moe == 29
    assert plan.speed.host_bytes_per_token == pytest.approx(29 * 1692057600 * 4 / 128, abs=2)
    # 49 GB copied per 512-token ubatch at 15.8 GB/s caps the prompt near 160 tokens/s
    assert plan.speed.prompt_tokens_per_s < 512 / (29 * 1692057600 / (PCIE_GBS[3] * 16 * GB))


def test_a_real_moe_file_reads_its_experts_at_their_own_types(tmp_path) -> None:  # noqa: ANN001
    """A real GGUF whose expert tensors mix types as llama-quantize does (Q6_K ffn_down, Q4_K gate/up): the bytes a
    token reads from RAM are those tensors' own bytes, n_expert_used of n_expert, read off the header by gguf-py."""
    import json

    import gguf
    from cli.test_plan import planner
    from ggufgen import write_model

    path = write_model(
        tmp_path / "moe-mixed.gguf", n_layer=4, n_embd=256, n_head=4, n_head_kv=2, n_ff=256, n_vocab=2000,
        n_expert=4, n_expert_used=2, wtype="Q8_0", tensor_types={"ffn_down_exps": "Q6_K", "_exps": "Q4_K"},
        zeros=True,
    )  # fmt: skip
    reader = gguf.GGUFReader(path)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.ffn_down_exps.weight"] == "Q6_K" and types["blk.0.ffn_up_exps.weight"] == "Q4_K"
    proc = planner("plan", str(path), "--gpu", "RTX 3090", "--n-cpu-moe", "2", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["settings"]["n_cpu_moe"] == 2 and plan["memory"]["devices"][0]["layers"] == 4
    in_ram = sum(
        int(t.n_bytes) for t in reader.tensors if t.name.startswith(("blk.0.", "blk.1.")) and "_exps" in t.name
    )
    assert plan["speed"]["host_bytes_per_token"] == pytest.approx(in_ram * 2 / 4, abs=2)
