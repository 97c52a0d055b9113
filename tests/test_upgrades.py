"""`plan --upgrade` over many machines and models: every change it lists is re-planned again here from its own
options, as a user would type them, and must come out exactly as listed; the floors, the RAM ladder and the prices
hold. Pure what-if hardware and the offline catalog: no probe of GPUs, no network."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from decision_corpus import MACHINES

import planner
from planner.core.upgrades import RAM_TOLERANCE, STANDARD_RAM_GB, floors_for, ram_sizes_above, shortfall
from planner.types.plan import Overrides, Plan

MODELS = [  # (catalog alias, the quant fixed on the command line or None)
    ("llama-3.3-70b", "Q4_K_M"),
    ("llama-3.3-70b", None),
    ("qwen1.5-14b", "Q8_0"),
    ("llama-3.1-8b", "Q8_0"),
    ("qwen3-30b-a3b", None),
    ("llama-3.1-405b", "Q4_K_M"),
]
KNOBS: list[dict[str, object]] = [{}, {"min_speed": 20.0}, {"ctx_size": 32768}, {"parallel": 4, "min_speed": 12.0}]


@dataclass
class Case:
    model: str
    gpus: list[str]
    ram: str
    cores: int
    overrides: dict[str, object] = field(default_factory=dict)

    def plan(self, *, model: str | None = None, gpus: list[str] | None = None, ram: str | None = None,
             upgrade: bool = False, prices: dict[str, float] | None = None, **knobs: object) -> Plan:  # fmt: skip
        hw = planner.what_if(gpus if gpus is not None else self.gpus, ram or self.ram, self.cores)
        ov = Overrides(**{**self.overrides, **knobs})  # type: ignore[arg-type]
        return planner.plan(model or self.model, hardware=hw, offline=True, overrides=ov, upgrade=upgrade,
                            prices=prices)  # fmt: skip

    def replan(self, options: list[str]) -> Plan:
        """The plan the upgrade's options give, read as the CLI reads them: a bare word is the model, --gpu
        replaces the GPUs, --ram the RAM, the rest are the plan overrides of the same names."""
        model, gpus, ram, knobs = None, None, None, {}
        words = iter(options)
        for word in words:
            if not word.startswith("--"):
                model = word
                continue
            value = next(words)
            if word == "--gpu":
                gpus = [*(gpus or []), value]
            elif word == "--ram":
                ram = value
            else:
                name = {"--ctx": "ctx_size", "--min-ctx": "min_ctx"}.get(word, word[2:])
                knobs[name] = value if name == "quant" else int(value)
        if model is not None and "quant" not in knobs:
            knobs["quant"] = None  # another model: its own file choice unless the option names one
        return self.plan(model=model, gpus=gpus, ram=ram, **knobs)


def cases() -> list[Case]:
    machines = [m for m in MACHINES if not any(g.startswith(("M2", "M3", "M4")) for g in m[0])][::2]
    out = []
    for i, (gpus, ram, cores) in enumerate(machines):
        for j, (model, quant) in enumerate(MODELS):
            knobs = KNOBS[(i + j) % len(KNOBS)]
            out.append(Case(model, gpus, ram, cores, {**({"quant": quant} if quant else {}), **knobs}))
    return out


CASES = cases()


def test_the_cases_are_broad() -> None:
    assert len(CASES) >= 80
    plans = [c.plan() for c in CASES[::7]]
    assert any(not p.fits for p in plans) and any(p.fits for p in plans)


@pytest.mark.parametrize("chunk", range(4))
def test_every_listed_upgrade_is_what_its_options_plan(chunk: int) -> None:
    checked = 0
    for case in CASES[chunk::4]:
        plan = case.plan(upgrade=True)
        request_floors = floors_for(plan, planner.PlanRequest(model=case.model, hardware=plan.hardware,
                                                               overrides=Overrides(**case.overrides)))  # type: ignore[arg-type]  # fmt: skip
        usable = shortfall(plan, request_floors) is None
        assert plan.upgrade_notes, case
        if usable:
            assert plan.upgrades == [], case  # nothing to change on a plan that is usable
            continue
        fixes = [u.fixes for u in plan.upgrades]
        assert fixes == sorted(fixes, reverse=True), case  # the changes that fix it come first
        for up in plan.upgrades:
            assert up.price is None, (case, up)  # no prices given: none shown
            again = case.replan(up.options)
            assert again.fits == up.fits, (case, up)
            if not up.fits:
                assert up.generation_tokens_per_s is None and not up.fixes
                continue
            assert again.speed.generation_tokens_per_s == up.generation_tokens_per_s, (case, up)
            assert again.settings.ctx_size == up.ctx_size and again.model.quant == up.quant, (case, up)
            assert again.where == up.where, (case, up)
            if up.fixes:
                ov = {**case.overrides}
                speed_floor = float(ov.get("min_speed") or 5.0)  # type: ignore[arg-type]
                assert up.generation_tokens_per_s is not None and up.generation_tokens_per_s >= speed_floor, up
            checked += 1
            if up.kind == "ram":
                _check_ram(case, up.options, up.fixes)
    assert checked >= 10


def _check_ram(case: Case, options: list[str], fixes: bool) -> None:
    """More RAM is a standard total above the machine's; when it fixes the plan, no smaller standard total does."""
    gb = int(options[options.index("--ram") + 1].removesuffix("GB"))
    assert gb in STANDARD_RAM_GB
    total = int(case.ram.removesuffix("GB")) * 10**9
    assert gb * 1e9 > total * (1 + RAM_TOLERANCE) and gb == min(s for s in ram_sizes_above(total) if s >= gb)
    if fixes:
        below = [s for s in ram_sizes_above(total) if s < gb]
        if below:
            smaller = case.plan(ram=f"{below[-1]}GB")
            assert not (smaller.fits and shortfall(smaller, floors_for(smaller, _request(case))) is None), case


def _request(case: Case) -> planner.PlanRequest:
    hw = planner.what_if(case.gpus, case.ram, case.cores)
    return planner.PlanRequest(model=case.model, hardware=hw, overrides=Overrides(**case.overrides))  # type: ignore[arg-type]


def test_the_done_when_scenario_lists_fixes_with_their_speeds() -> None:
    case = Case("llama-3.3-70b", ["RTX 3090"], "32GB", 6, {"quant": "Q4_K_M"})
    plan = case.plan(upgrade=True)
    assert plan.fits and plan.speed.generation_tokens_per_s is not None and plan.speed.generation_tokens_per_s < 5
    kinds = {u.kind for u in plan.upgrades if u.fixes}
    assert {"second_gpu", "gpu", "quant"} <= kinds
    second = next(u for u in plan.upgrades if u.kind == "second_gpu")
    assert second.options == ["--gpu", "2x RTX 3090"] and second.where == "GPU"
    ram = next(u for u in plan.upgrades if u.kind == "ram")
    assert ram.options == ["--ram", "48GB"] and not ram.fixes  # the next size; RAM does not read faster
    for up in plan.upgrades:
        assert up.fixes == (up.fits and (up.generation_tokens_per_s or 0) >= 5), up


def test_prices_rank_the_cards_and_are_never_invented() -> None:
    case = Case("llama-3.3-70b", ["RTX 3090"], "32GB", 6, {"quant": "Q4_K_M"})
    prices = {"RTX 3090": 700.0, "RTX A6000": 4000.0, "Quadro RTX 8000": 2500.0, "H100 PCIe": 25000.0, "RTX 5090": 2000}
    plan = case.plan(upgrade=True, prices=prices)
    cards = [u for u in plan.upgrades if u.kind == "gpu"]
    assert cards and all(u.price is not None for u in cards)
    named = {"RTX A6000": 4000.0, "Quadro RTX 8000": 2500.0, "H100 PCIe": 25000.0, "RTX 5090": 2000.0}
    for up in cards:
        assert named[up.options[1]] == up.price  # the price given for that very card
    assert [u.price for u in cards] == sorted(u.price for u in cards if u.price is not None)
    assert cards[0].options == ["--gpu", "Quadro RTX 8000"]  # the 5090 is cheaper but does not fix it
    second = next(u for u in plan.upgrades if u.kind == "second_gpu")
    assert second.price == 700.0
    assert all(u.price is None for u in plan.upgrades if u.kind not in ("gpu", "second_gpu"))
    assert any("cheapest first" in n for n in plan.upgrade_notes)
    unpriced = case.plan(upgrade=True)
    assert all(u.price is None for u in unpriced.upgrades)
    assert any("no prices given" in n for n in unpriced.upgrade_notes)


def test_bad_prices_are_one_bad_input_line() -> None:
    case = Case("llama-3.3-70b", ["RTX 3090"], "32GB", 6, {"quant": "Q4_K_M"})
    for bad in ({"RTX 9999": 5.0}, {"RTX 3090": -1.0}, {"RTX 3090": "cheap"}, {"RTX 3090": True}, {}):
        with pytest.raises(planner.BadInput) as err:
            case.plan(upgrade=True, prices=bad)  # type: ignore[arg-type]
        assert "\n" not in str(err.value)
    with pytest.raises(planner.BadInput, match="--upgrade"):
        case.plan(prices={"RTX 3090": 700.0})


def test_ram_sizes_step_from_the_installed_total() -> None:
    assert ram_sizes_above(32 * 10**9)[:3] == [48, 64, 96]
    assert ram_sizes_above(31 * 2**30)[0] == 48  # a 32 GB machine reports a little less: it has 32 installed
    assert ram_sizes_above(40 * 10**9)[0] == 48  # not a standard total: the next one above it
    assert ram_sizes_above(8 * 10**9)[0] == 16


@pytest.mark.parametrize(
    "case",
    [
        Case("llama-3.1-8b", ["none"], "4GB", 6, {"quant": "Q4_K_M"}),  # does not fit in RAM at all
        Case("qwen3-30b-a3b", ["none"], "8GB", 6, {"quant": "Q4_K_M"}),
        Case("qwen3-30b-a3b", ["RTX 3060"], "8GB", 6, {"quant": "Q4_K_M"}),  # fits, under the context floor
    ],
)
def test_more_ram_is_the_smallest_standard_total_that_fixes_it(case: Case) -> None:
    plan = case.plan(upgrade=True)
    ram = next(u for u in plan.upgrades if u.kind == "ram")
    assert ram.fixes
    _check_ram(case, ram.options, ram.fixes)
    again = case.replan(ram.options)
    assert again.fits and again.speed.generation_tokens_per_s == ram.generation_tokens_per_s
