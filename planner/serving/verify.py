"""Check a running OpenAI-compatible server the way a client would, with the official `openai` client.

Readiness (/health, else /v1/models), the served model id and context size, one streamed chat completion with the
API key (prompt tokens/s = prompt tokens / time to first token; generation tokens/s = tokens after the first /
the time they took), and a wrong key, which must be refused with 401.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from planner.errors import EnvironmentProblem

# A prompt of a few hundred tokens, so the prompt speed is measured on a real batch, not on a handful of tokens.
_FACTS = [
    "Mercury is the closest planet to the Sun and has almost no atmosphere.",
    "Venus rotates backwards compared with most planets, so its Sun rises in the west.",
    "Earth is the only planet known to have liquid water on its surface.",
    "Mars has the tallest volcano in the solar system, Olympus Mons.",
    "Jupiter is so large that more than a thousand Earths would fit inside it.",
    "Saturn's rings are made mostly of ice with some rock and dust.",
    "Uranus is tilted on its side, so its poles take turns facing the Sun.",
    "Neptune has the fastest winds measured on any planet.",
]
PROMPT = (
    "Read these notes about the planets carefully.\n"
    + "\n".join(f"Note {i + 1}.{j + 1}: {fact}" for i in range(3) for j, fact in enumerate(_FACTS))
    + "\nIn two sentences, which planet do you find most surprising, and why?"
)


class Measured(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    time_to_first_token_s: float
    total_s: float
    prompt_tokens_per_s: float | None  # prompt tokens / time to first token
    generation_tokens_per_s: float | None  # (completion tokens - 1) / (last token time - first token time)
    ctx_size: int | None = None  # per-sequence context the server reports (None: it does not say)


class Verification(BaseModel):
    endpoint: str
    ready: bool = False
    ready_after_s: float | None = None
    model_id: str | None = None
    answer: str = ""
    measured: Measured | None = None
    wrong_key_status: int | None = None
    wrong_key_refused: bool = False
    problems: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.ready and bool(self.answer.strip()) and self.wrong_key_refused and not self.problems


def server_root(base_url: str) -> str:
    """http://host:port for http://host:port/v1 (the health route lives outside /v1)."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _get(url: str, api_key: str | None, timeout: float = 5.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
            return response.status, json.loads(body or b"null")
    except urllib.error.HTTPError as err:
        return err.code, None
    except ValueError:
        return 200, None


def wait_ready(
    base_url: str,
    api_key: str | None,
    *,
    timeout_s: float,
    alive: Callable[[], str | None] | None = None,
    progress: Any | None = None,
) -> float:
    """Poll until the server answers; returns the seconds it took. `alive()` returns why the server died, or None."""
    root = server_root(base_url)
    start = time.monotonic()
    task = progress.add_task("waiting for the server to load the model", total=None) if progress else None
    status_text = "not listening yet"
    while True:
        waited = time.monotonic() - start
        if alive is not None and (died := alive()):
            raise EnvironmentProblem(f"the server stopped while starting: {died}")
        try:
            status, _ = _get(f"{root}/health", None)
            if status == 404:  # llama-cpp-python has no /health; /v1/models answers once the model is loaded
                status, _ = _get(f"{root}/v1/models", api_key)
            if status in (200, 401, 403):  # 401/403: up, and refusing this key (verification reports it)
                if progress is not None and task is not None:
                    progress.update(task, description=f"server ready after {waited:.1f} s", completed=1, total=1)
                return waited
            status_text = f"HTTP {status}" + (" (loading the model)" if status == 503 else "")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
            status_text = f"not listening yet ({getattr(err, 'reason', err)})"
        if progress is not None and task is not None:
            progress.update(task, description=f"waiting for the server: {status_text}, {waited:.0f} s")
        if waited > timeout_s:
            raise EnvironmentProblem(f"the server at {root} was not ready after {timeout_s:.0f} s: {status_text}")
        time.sleep(0.5)


def _client(base_url: str, api_key: str | None, timeout: float) -> Any:
    from openai import OpenAI

    return OpenAI(base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=0)


def served_model(base_url: str, api_key: str | None) -> tuple[str | None, int | None]:
    """The first model id the server lists and the per-sequence context it reports (llama-server's meta.n_ctx)."""
    models = list(_client(base_url, api_key, 30).models.list())
    if not models:
        return None, None
    first = models[0]
    meta = (first.model_extra or {}).get("meta") or {}
    ctx = meta.get("n_ctx")
    if ctx is None:  # older llama-server builds: /props has it
        status, props = _get(f"{server_root(base_url)}/props", api_key)
        if status == 200 and isinstance(props, dict):
            ctx = (props.get("default_generation_settings") or {}).get("n_ctx") or props.get("n_ctx")
    return first.id, int(ctx) if ctx else None


def stream_chat(
    base_url: str, api_key: str | None, model: str, *, prompt: str = PROMPT, max_tokens: int = 96, timeout: float = 600
) -> tuple[str, Measured]:
    """One streamed chat completion, timed on the client."""
    client = _client(base_url, api_key, timeout)
    started = time.perf_counter()
    first_at = last_at = None
    pieces: list[str] = []
    chunks_with_text = 0
    usage = None
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        now = time.perf_counter()
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text = choice.delta.content if choice.delta else None
            if text:
                first_at = first_at or now
                last_at = now
                chunks_with_text += 1
                pieces.append(text)
    ended = time.perf_counter()
    if first_at is None or last_at is None:
        raise EnvironmentProblem(f"the server at {base_url} streamed no text")
    completion_tokens = usage.completion_tokens if usage else chunks_with_text
    prompt_tokens = usage.prompt_tokens if usage else _prompt_tokens(client, model, prompt)
    ttft = first_at - started
    gen_time = last_at - first_at
    measured = Measured(
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        time_to_first_token_s=round(ttft, 4),
        total_s=round(ended - started, 4),
        prompt_tokens_per_s=round(prompt_tokens / ttft, 2) if ttft > 0 and prompt_tokens else None,
        generation_tokens_per_s=round((completion_tokens - 1) / gen_time, 2)
        if gen_time > 0 and completion_tokens > 1
        else None,
    )
    return "".join(pieces), measured


def _prompt_tokens(client: Any, model: str, prompt: str) -> int:
    """When a stream carries no usage: a one-token request reports how many tokens the prompt is."""
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=1, temperature=0
    )
    return response.usage.prompt_tokens if response.usage else 0


def wrong_key_status(base_url: str, model: str) -> int | None:
    """The HTTP status a request with a made-up key gets (401 expected); None when the server accepted it."""
    import openai

    try:
        _client(base_url, "wrong-" + secrets.token_urlsafe(12), 60).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=1
        )
    except openai.APIStatusError as err:
        return err.status_code
    return None


def verify_server(
    base_url: str,
    api_key: str | None,
    *,
    timeout_s: float = 300,
    expected_model: str | None = None,
    expected_ctx: int | None = None,
    alive: Callable[[], str | None] | None = None,
    progress: Any | None = None,
) -> Verification:
    """Everything a deploy (or `planner bench`) checks about a server, as one result."""
    import openai

    result = Verification(endpoint=base_url)
    result.ready_after_s = round(wait_ready(base_url, api_key, timeout_s=timeout_s, alive=alive, progress=progress), 2)
    result.ready = True
    try:
        result.model_id, ctx = served_model(base_url, api_key)
        model = result.model_id or expected_model or "model"
        if expected_model and result.model_id != expected_model:
            result.problems.append(f"the server serves {result.model_id!r}, not {expected_model!r}")
        if expected_ctx and ctx and ctx != expected_ctx:
            result.problems.append(f"the server's context is {ctx} tokens, the plan set {expected_ctx}")
        result.answer, result.measured = stream_chat(base_url, api_key, model)
        result.measured.ctx_size = ctx
        if not result.answer.strip():
            result.problems.append("the streamed answer was empty")
        if api_key:
            result.wrong_key_status = wrong_key_status(base_url, model)
            result.wrong_key_refused = result.wrong_key_status == 401
            if not result.wrong_key_refused:
                got = "accepted" if result.wrong_key_status is None else f"answered {result.wrong_key_status}"
                result.problems.append(f"a wrong API key was {got}, not refused with 401")
        else:
            result.problems.append("no API key: anyone who can reach the port can use the server")
    except openai.AuthenticationError:
        result.problems.append("the server refused the API key (401)")
    except openai.APIError as err:
        result.problems.append(f"the server failed a request: {err}".splitlines()[0])
    return result


def compare_speed(measured: Measured, plan_speed: Any) -> list[str]:
    """Lines comparing measured speeds with the plan's prediction and its band."""
    lines = []
    gen = measured.generation_tokens_per_s
    if gen is not None and plan_speed is not None:
        predicted = plan_speed.generation_tokens_per_s
        where = "within" if plan_speed.low <= gen <= plan_speed.high else ("below" if gen < plan_speed.low else "above")
        lines.append(
            f"generation: {gen:.1f} tokens/s measured, {predicted:.1f} predicted "
            f"({gen / predicted:.2f}x; {where} the predicted band {plan_speed.low:.1f}-{plan_speed.high:.1f})"
        )
    pp = measured.prompt_tokens_per_s
    if pp is not None and plan_speed is not None and plan_speed.prompt_tokens_per_s:
        predicted_pp = plan_speed.prompt_tokens_per_s
        lines.append(
            f"prompt: {pp:.1f} tokens/s measured over {measured.prompt_tokens} tokens (time to first token "
            f"{measured.time_to_first_token_s:.2f} s, including request overhead), {predicted_pp:.1f} predicted "
            f"({pp / predicted_pp:.2f}x)"
        )
    return lines
