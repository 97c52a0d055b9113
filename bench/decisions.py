"""How good planner's choices are over the scenario corpus (tests/decision_corpus.py), and what they cost.

    python bench/decisions.py

Prints, for the default objective: the share of chosen plans on the Pareto frontier (quality, generation speed,
context) of everything that fits; the chosen speed over the best speed among fitting plans of equal or better
quality at the floor context (1.0 = nothing as good is faster); how many fell back (nothing usable / nothing at the
floor / nothing fits); and plan time per scenario (search + Plan, median and worst) with the configurations
evaluated; then the frontier share of the runs with a knob set.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from decision_corpus import scenarios  # noqa: E402

from planner.core.objective import dominates  # noqa: E402
from planner.core.planning import plan_of  # noqa: E402
from planner.types.plan import Overrides  # noqa: E402


def main() -> int:
    everything = scenarios()
    corpus = [s for s in everything if s.overrides == Overrides()]
    knobs = [s for s in everything if s.overrides != Overrides()]
    knob_frontier = knob_plans = 0
    for scenario in knobs:
        result = scenario.search()
        if result.choice is not None:
            knob_plans += 1
            knob_frontier += not any(dominates(o, result.choice.chosen) for o in result.options)
    times, ratios, evaluations = [], [], []
    on_frontier = chosen = slow = below = none = 0
    for scenario in corpus:
        start = time.perf_counter()
        result = scenario.search()
        plan_of(result, scenario.candidates, scenario.request(), [])
        times.append(time.perf_counter() - start)
        evaluations.append(result.evaluations)
        if result.choice is None:
            none += 1
            continue
        chosen += 1
        pick = result.choice.chosen
        slow += result.choice.slow
        below += result.choice.below_floor
        on_frontier += not any(dominates(o, pick) for o in result.options)
        floor = min(result.objective.floor_ctx, pick.ctx)
        as_good = [o.speed for o in result.options if o.rank <= pick.rank and o.ctx >= floor]
        ratios.append(pick.speed / max(as_good) if as_good and max(as_good) > 0 else 1.0)
    print(f"scenarios                          {len(corpus)}")
    print(f"plans that fit                     {chosen}  (nothing fits: {none})")
    print(f"on the frontier                    {on_frontier / max(chosen, 1):.1%}")
    print(f"chosen / best speed at >= quality  median {statistics.median(ratios):.2f}, worst {min(ratios):.2f}")
    print(f"nothing at the usable speed        {slow}  (fastest at the floor chosen, said in the plan)")
    print(f"nothing at the context floor       {below}")
    print(f"plan time (search + Plan)          median {statistics.median(times) * 1000:.0f} ms, "
          f"worst {max(times) * 1000:.0f} ms")  # fmt: skip
    print(f"configurations evaluated           median {statistics.median(evaluations):.0f}, worst {max(evaluations)}")
    print(f"with a knob (--prefer, --min-*)    {len(knobs)} runs, {knob_plans} fit, "
          f"{knob_frontier / max(knob_plans, 1):.1%} on the frontier")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
