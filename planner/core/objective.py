"""What planner optimises, in one place: hard constraints, then the preference order, and the words for each step.

Hard constraints (the search only ever hands over options that satisfy the first):
  - the plan fits under the margin on every GPU and in RAM;
  - the context is at least the floor: 4096 tokens (16384 with --use-case reasoning), or the model's own maximum
    if smaller (--min-ctx changes it, --ctx fixes it). When no option reaches the floor, the largest context any
    option reaches is taken, and the plan says so.

Preference (the default, `balanced`):
  1. among options at or above the usable speed (--min-speed, default 5 tokens/s of generation): the best quality
     of the file (its quant, best first as the candidates come);
  2. then speed: options within NEAR_TIE of the fastest count as equally fast;
  3. then context, up to the target (32768, or what --ctx asks), and never more than the machine can read in
     PROMPT_FILL_SECONDS;
  4. then the exact KV cache (f16 before q8_0 before q4_0), then speed again, then the smaller context (less
     memory for the same result).
  When no option reaches the usable speed: the fastest at the floor, quality breaking near-ties, then context.

`--prefer quality` drops the speed floor (best quality that fits, then speed, then context); `--prefer speed` is the
slow-machine rule everywhere (fastest first, quality breaking near-ties); `--prefer context` puts the largest context
(up to the model's own maximum) first, then quality and speed, among options at the usable speed.

Every step of the choice records, for each option it drops, what it lost and against which value, so the
alternatives' "why not" and the plan's reasons are the comparison actually made, never a canned sentence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Prefer = Literal["balanced", "quality", "speed", "context"]

USABLE_TOKENS_PER_S = 5.0  # below this a chat feels broken (about reading speed is 5-8 tokens/s)
USEFUL_CTX = 4096  # the context floor: a real chat with a system prompt and a few turns
REASONING_CTX = 16384  # the floor for --use-case reasoning: a thinking trace alone runs to thousands of tokens
TARGET_CTX = 32768  # longer contexts cost memory and prompt time without helping most chats
NEAR_TIE = 0.05  # speeds within 5 % are equal: far inside the estimate's +/-30 % band
PROMPT_FILL_SECONDS = 300  # a context the machine needs more than 5 minutes to read is not useful
KV_RANK = {"f32": 0, "f16": 0, "bf16": 0, "q8_0": 1, "q5_1": 2, "q5_0": 2, "iq4_nl": 3, "q4_1": 3, "q4_0": 3}


@dataclass(frozen=True)
class Objective:
    min_speed: float = USABLE_TOKENS_PER_S
    floor_ctx: int = USEFUL_CTX  # already capped to the model's maximum by the caller
    target_ctx: int = TARGET_CTX
    prefer: Prefer = "balanced"


@dataclass
class Option:
    """One configuration that fits: which file (by quality rank), where it runs, at what speed and context."""

    rank: int  # the candidate's position, best quality first
    quant: str
    kv: tuple[str, str]
    speed: float  # generation tokens/s
    prompt_speed: float
    ctx: int
    where: str  # "GPU" | "GPU+CPU" | "CPU"
    n_gpu_layers: int
    n_layers: int  # units a full offload puts on the GPU (n_layer + 1)
    n_cpu_moe: int = 0
    payload: object = None  # the search's (Candidate, Fit), carried through untouched

    @property
    def kv_rank(self) -> int:
        return max(KV_RANK.get(self.kv[0], 4), KV_RANK.get(self.kv[1], 4))

    def placement(self) -> str:
        if self.where == "GPU":
            return "fits fully on the GPU"
        if self.where == "CPU":
            return "runs on the CPU"
        if self.n_cpu_moe:
            return f"fits with the experts of {self.n_cpu_moe} layers in RAM"
        return f"fits with {self.n_gpu_layers} of {self.n_layers} layers on the GPU"

    def label(self) -> str:
        return f"{self.quant} (KV {self.kv[0]}/{self.kv[1]}, ctx {self.ctx}, {self.where})"


def readable_ctx(opt: Option, obj: Objective) -> float:
    """The most context the machine fills in PROMPT_FILL_SECONDS (at least the floor); unbounded when the prompt
    speed is unknown (inf)."""
    return max(obj.floor_ctx, opt.prompt_speed * PROMPT_FILL_SECONDS)


def effective_ctx(opt: Option, obj: Objective) -> int:
    """The context that counts toward the objective: up to the target, and what the machine reads in time. A
    context beyond what the machine reads in PROMPT_FILL_SECONDS counts only as the floor: it buys nothing a user
    would wait for, so the one that is readable (or the smaller one, at equal speed) wins."""
    readable = readable_ctx(opt, obj)
    if opt.ctx > readable:
        return min(obj.floor_ctx, obj.target_ctx)
    return min(opt.ctx, obj.target_ctx)


def dominates(a: Option, b: Option) -> bool:
    """a is at least as good as b on quant quality, KV quality and context, and strictly faster."""
    return a.rank <= b.rank and a.kv_rank <= b.kv_rank and a.ctx >= b.ctx and a.speed > b.speed


def weakly_dominates(a: Option, b: Option) -> bool:
    """a is at least as good as b everywhere and better somewhere: b adds nothing to a table that shows a."""
    at_least = a.rank <= b.rank and a.kv_rank <= b.kv_rank and a.ctx >= b.ctx and a.speed >= b.speed
    return at_least and (a.rank, a.kv_rank, -a.ctx, -a.speed) != (b.rank, b.kv_rank, -b.ctx, -b.speed)


def frontier(options: list[Option]) -> list[Option]:
    """The Pareto frontier over (quality, generation speed, context): options nothing else dominates."""
    return [o for o in options if not any(dominates(p, o) for p in options if p is not o)]


@dataclass
class Choice:
    chosen: Option
    why_not: dict[int, str] = field(default_factory=dict)  # id(option) -> the step that dropped it, in words
    below_floor: bool = False  # nothing reached the context floor
    slow: bool = False  # nothing reached the usable speed (balanced) or speed was preferred
    steps: list[str] = field(default_factory=list)  # the criteria applied, in order


def choose_option(options: list[Option], obj: Objective) -> Choice | None:
    """The objective's choice among fitting options, with the reason each other option lost."""
    if not options:
        return None
    why: dict[int, str] = {}
    pool = list(options)
    below_floor = not any(o.ctx >= obj.floor_ctx for o in pool)
    if below_floor:
        largest = max(o.ctx for o in pool)
        pool = _drop(pool, lambda o: o.ctx >= largest, why, lambda o: f"context {o.ctx}: others reach {largest}")
    else:
        pool = _drop(
            pool, lambda o: o.ctx >= obj.floor_ctx, why, lambda o: f"context {o.ctx} is under the {obj.floor_ctx} floor"
        )
    usable = [o for o in pool if o.speed >= obj.min_speed]
    slow = obj.prefer == "speed" or (obj.prefer in ("balanced", "context") and not usable)
    if obj.prefer in ("balanced", "context") and usable:
        pool = _drop(
            pool,
            lambda o: o.speed >= obj.min_speed,
            why,
            lambda o: f"{o.placement()}, but {o.speed:g} t/s is under the {obj.min_speed:g} t/s floor",
        )
    order = _criteria(obj, slow)
    for criterion in order:
        pool = criterion(pool, why, obj)
    chosen = pool[0]
    for other in pool[1:]:
        why[id(other)] = f"equivalent to the chosen {chosen.label()}"
    return Choice(chosen, why, below_floor, slow and obj.prefer != "speed", [c.__name__ for c in order])


Criterion = Callable[[list[Option], dict[int, str], Objective], list[Option]]


def _criteria(obj: Objective, slow: bool) -> list[Criterion]:
    if obj.prefer == "context":
        return [_by_context, _by_quality, _by_speed, _by_kv, _by_exact_speed, _by_smaller_ctx]
    if slow:
        return [_by_speed, _by_quality, _by_context, _by_kv, _by_exact_speed, _by_smaller_ctx]
    return [_by_quality, _by_speed, _by_context, _by_kv, _by_exact_speed, _by_smaller_ctx]


def _drop(
    pool: list[Option], keep: Callable[[Option], bool], why: dict[int, str], because: Callable[[Option], str]
) -> list[Option]:
    """The options that `keep`; each dropped one gets `because` as its why-not (the first reason it lost)."""
    kept = [o for o in pool if keep(o)]
    for o in pool:
        if not keep(o):
            why.setdefault(id(o), because(o))
    return kept


def _by_quality(pool: list[Option], why: dict[int, str], obj: Objective) -> list[Option]:
    # the file's quality only: the KV cache type (q8_0 costs ~0.002 perplexity) comes after speed and context
    best = min(pool, key=lambda o: o.rank)
    return _drop(
        pool,
        lambda o: o.rank == best.rank,
        why,
        lambda o: f"{o.quant} is lower quality than {best.quant}, which {_meets(best, obj)}",
    )


def _meets(best: Option, obj: Objective) -> str:
    if best.speed >= obj.min_speed:
        return f"{best.placement()} at {best.speed:g} t/s"
    return f"{best.placement()} about as fast ({best.speed:g} t/s)"


def _by_speed(pool: list[Option], why: dict[int, str], obj: Objective) -> list[Option]:
    fastest = max(pool, key=lambda o: o.speed)
    bar = fastest.speed * (1 - NEAR_TIE)
    return _drop(
        pool,
        lambda o: o.speed >= bar,
        why,
        lambda o: f"{o.speed:g} t/s against {fastest.speed:g} t/s for {fastest.label()}",
    )


def _by_context(pool: list[Option], why: dict[int, str], obj: Objective) -> list[Option]:
    if obj.prefer == "context":
        best = max(o.ctx for o in pool)
        return _drop(pool, lambda o: o.ctx >= best, why, lambda o: f"context {o.ctx} against {best}")
    best = max(effective_ctx(o, obj) for o in pool)

    def because(o: Option) -> str:
        if o.ctx > readable_ctx(o, obj):
            minutes = o.ctx / max(o.prompt_speed, 0.1) / 60
            return (
                f"context {o.ctx} would take {minutes:.0f} minutes to fill at {o.prompt_speed:g} t/s of prompt "
                f"processing (over the {PROMPT_FILL_SECONDS // 60}-minute limit; --ctx asks for it)"
            )
        return f"context {o.ctx} against {best} at about the same speed"

    return _drop(pool, lambda o: effective_ctx(o, obj) >= best, why, because)


def _by_kv(pool: list[Option], why: dict[int, str], obj: Objective) -> list[Option]:
    best = min(o.kv_rank for o in pool)
    exact = next(o for o in pool if o.kv_rank == best)
    return _drop(
        pool,
        lambda o: o.kv_rank == best,
        why,
        lambda o: f"KV {o.kv[0]}/{o.kv[1]} where {exact.kv[0]}/{exact.kv[1]} fits as well",
    )


def _by_exact_speed(pool: list[Option], why: dict[int, str], obj: Objective) -> list[Option]:
    fastest = max(o.speed for o in pool)
    return _drop(pool, lambda o: o.speed >= fastest, why, lambda o: f"{o.speed:g} t/s against {fastest:g} t/s")


def _by_smaller_ctx(pool: list[Option], why: dict[int, str], obj: Objective) -> list[Option]:
    smallest = min(o.ctx for o in pool)

    def because(o: Option) -> str:
        if o.ctx > obj.target_ctx:
            return f"context {o.ctx} is above the {obj.target_ctx} target (--ctx asks for more)"
        minutes = o.ctx / max(o.prompt_speed, 0.1) / 60
        return (
            f"context {o.ctx} would take {minutes:.0f} minutes to fill at {o.prompt_speed:g} t/s of prompt "
            f"processing (over the {PROMPT_FILL_SECONDS // 60}-minute limit; --ctx asks for it)"
        )

    return _drop(pool, lambda o: o.ctx <= smallest, why, because)
