"""The objective's invariants on every plan of tests/decision_corpus.py (248 hardware x model pairs, plus 300 runs
of the objective's knobs on a fifth of them): the choice is on the frontier, floors hold or the plan says why not,
every alternative says why it lost and each why is true against the numbers shown, the options the reasons cite
are in the table, no speed beats memory bandwidth, and a plan that does not fit has no tokens/s."""

from __future__ import annotations

import re

import pytest
from decision_corpus import Scenario, scenarios

from planner.core.objective import dominates
from planner.core.planning import plan_of
from planner.core.speed import host_bandwidth
from planner.types.plan import Plan

CORPUS = scenarios()


def test_the_corpus_is_broad() -> None:
    assert len(CORPUS) >= 150
    kinds = {s.hardware.gpus[0].vendor if s.hardware.gpus else "cpu" for s in CORPUS}
    assert {"nvidia", "amd", "apple", "cpu"} <= kinds
    assert any(len(s.hardware.gpus) >= 8 for s in CORPUS)
    assert any(len({g.name for g in s.hardware.gpus}) > 1 for s in CORPUS)  # mixed cards
    moe = {s.candidates[0].model for s in CORPUS if s.candidates[0].facts.is_moe}
    assert len(moe) >= 2


def _check_alternative_whys(plan: Plan, floor_speed: float) -> None:
    rank = {q: i for i, q in enumerate(a.quant for a in plan.alternatives)}
    order = [plan.model.quant, *rank]
    for alt in plan.alternatives:
        assert alt.why, f"{alt.quant}: an alternative without a why"
        why = alt.why
        if m := re.search(r"but ([\d.]+) t/s is under the ([\d.]+) t/s floor", why):
            assert alt.fits and alt.generation_tokens_per_s == float(m[1]) and float(m[1]) < float(m[2])
        if m := re.match(r"([\d.]+) t/s against ([\d.]+) t/s", why):
            assert alt.generation_tokens_per_s == float(m[1]) and float(m[1]) < float(m[2])
        if m := re.match(r"(\S+) is lower quality than (\S+),", why):
            assert m[1] == alt.quant and m[2] in order and m[2] != alt.quant
        if m := re.match(r"context (\d+) is under the (\d+) floor", why):
            assert alt.ctx_size == int(m[1]) < int(m[2])
        if not alt.fits:
            assert alt.generation_tokens_per_s is None
            assert "needs" in why or "more than" in why or "fits only" in why, why


def _check_scenario(scenario: Scenario) -> None:
    result = scenario.search()
    plan = plan_of(result, scenario.candidates, scenario.request(), [])
    plan.model_dump_json()  # the JSON contract holds
    _check_alternative_whys(plan, result.objective.min_speed)
    if result.choice is None:
        assert not plan.fits and plan.speed.generation_tokens_per_s is None and plan.speed.low is None
        assert plan.reasons[0].startswith("nothing fits") and ("GiB more" in plan.reasons[0])
        return
    chosen = result.choice.chosen
    obj = result.objective
    # on the frontier: nothing that fits is at least as good in quality, KV and context and faster
    beaters = [o.label() for o in result.options if dominates(o, chosen)]
    assert not beaters, f"{chosen.label()} is dominated by {beaters}"
    # floors respected, or the plan says plainly that nothing reaches them
    if chosen.ctx < obj.floor_ctx:
        assert result.choice.below_floor and any(f"under the {obj.floor_ctx}-token floor" in r for r in plan.reasons)
    if chosen.speed < obj.min_speed and obj.prefer == "balanced":
        assert result.choice.slow and any(r.startswith("nothing reaches the usable") for r in plan.reasons)
    if obj.prefer != "balanced":
        assert f"--prefer {obj.prefer}" in plan.reasons[0]
    assert f"{plan.speed.generation_tokens_per_s:g} t/s" in " ".join(plan.reasons)
    # the reasons' "better files lost" name the alternatives' own whys
    for reason in plan.reasons:
        if reason.startswith("better files lost: "):
            whys = {(a.quant, a.why) for a in plan.alternatives}
            for part in reason.removeprefix("better files lost: ").split("; "):
                quant, why = part.split(": ", 1)
                assert (quant, why) in whys, part
    # the options the context reason cites are in the table
    rows = {(a.quant, a.cache_type_k, a.cache_type_v, a.ctx_size, a.where) for a in plan.alternatives}
    for reason in plan.reasons:
        if m := re.match(r"context \d+ tokens: (\S+) \(KV (\w+)/(\w+), ctx (\d+), ([A-Z+]+)\) also fits", reason):
            assert (m[1], m[2], m[3], int(m[4]), m[5]) in rows, reason
    # generation never above memory bandwidth / the bytes of weights read per token
    for option in result.options:
        cand, fit = option.payload  # type: ignore[misc]
        facts = cand.facts
        active = facts.size_bytes
        if facts.is_moe and facts.layer_expert_bytes:
            experts = sum(facts.layer_expert_bytes)
            active = facts.size_bytes - experts + experts * facts.n_expert_used / max(1, facts.n_expert)
        used = [g for g, d in zip(scenario.hardware.gpus, fit.memory.devices) if d.weights_bytes]
        bandwidth = max([g.memory_bandwidth_gbs or 0 for g in used] + [host_bandwidth(scenario.hardware.cpu)]) * 1e9
        assert option.speed <= round(bandwidth / active, 1) + 0.1, f"{option.label()}: {option.speed} t/s"


@pytest.mark.parametrize("chunk", range(4))
def test_every_plan_in_the_corpus_keeps_the_invariants(chunk: int) -> None:
    for scenario in CORPUS[chunk::4]:
        try:
            _check_scenario(scenario)
        except AssertionError as err:
            raise AssertionError(f"{scenario.name}: {err}") from err
