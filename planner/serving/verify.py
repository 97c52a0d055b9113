"""Check a running OpenAI-compatible server the way a client would, with the official `openai` client.

Readiness (/health, else /v1/models), the served model id and context size, one streamed chat completion with the
API key (prompt tokens/s = prompt tokens / time to first token; generation tokens/s = tokens after the first /
the time they took), and a wrong key, which must be refused with 401.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
from collections.abc import Callable
from typing import Any

from planner.errors import EnvironmentProblem
from planner.serving.bounded import BadReply, NotHttp, get_json, get_status, openai_http_client, within
from planner.types.deploy import Measured, Verification

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


def server_root(base_url: str) -> str:
    """http://host:port for http://host:port/v1 (the health route lives outside /v1)."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


_POLL_S = 5.0  # one readiness poll; the loop's own deadline is the caller's timeout


def wait_ready(
    base_url: str,
    api_key: str | None,
    *,
    timeout_s: float,
    alive: Callable[[], str | None] | None = None,
    progress: Any | None = None,
) -> float:
    """Poll until the server answers; returns the seconds it took. `alive()` returns why the server died, or None.

    Each poll ends by the deadline too, so a server that accepts connections and then stalls costs `timeout_s`;
    something on the port that does not speak HTTP is an EnvironmentProblem at once (it will not become a server).
    """
    root = server_root(base_url)
    start = time.monotonic()
    task = progress.add_task("waiting for the server to load the model", total=None) if progress else None
    status_text = "not listening yet"
    while True:
        waited = time.monotonic() - start
        if alive is not None and (died := alive()):
            raise EnvironmentProblem(f"the server stopped while starting: {died}")
        poll_s = max(0.2, min(_POLL_S, timeout_s - waited))
        try:
            status = get_status(f"{root}/health", timeout_s=poll_s)
            if status == 404:  # llama-cpp-python has no /health; /v1/models answers once the model is loaded
                status, _ = get_json(f"{root}/v1/models", api_key, timeout_s=poll_s)
            if status in (200, 401, 403):  # 401/403: up, and refusing this key (verification reports it)
                if progress is not None and task is not None:
                    progress.update(task, description=f"server ready after {waited:.1f} s", completed=1, total=1)
                return waited
            status_text = f"HTTP {status}" + (" (loading the model)" if status == 503 else "")
        except NotHttp:
            raise
        except BadReply as err:  # stalled, or an endless /v1/models: not ready (yet)
            status_text = err.message
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
            status_text = f"not listening yet ({getattr(err, 'reason', err)})"
        if progress is not None and task is not None:
            progress.update(task, description=f"waiting for the server: {status_text}, {waited:.0f} s")
        waited = time.monotonic() - start
        if waited >= timeout_s:
            raise EnvironmentProblem(f"the server at {root} was not ready after {timeout_s:g} s: {status_text}")
        time.sleep(min(0.5, timeout_s - waited))


def _client(base_url: str, api_key: str | None, timeout: float) -> Any:
    from openai import OpenAI

    return OpenAI(
        base_url=base_url, api_key=api_key or "none", timeout=timeout, max_retries=0,
        http_client=openai_http_client(timeout),
    )  # fmt: skip


def served_model(base_url: str, api_key: str | None, *, timeout_s: float = 30) -> tuple[str, int | None]:
    """The first model id the server lists and the per-sequence context it reports (llama-server's meta.n_ctx).

    BadReply when /v1/models is not an OpenAI model list with at least one model (HTML, garbage, an empty list).
    """
    url = f"{base_url}/models"
    status, listing = get_json(url, api_key, timeout_s=timeout_s)
    if status == 401:
        raise BadReply("the server refused the API key (401)")
    if status != 200:
        raise BadReply(f"{url} answered HTTP {status}")
    models = listing.get("data") if isinstance(listing, dict) else None
    if not isinstance(models, list):
        raise BadReply(f"{url} did not answer with an OpenAI model list (JSON with a 'data' list)")
    if not models:
        raise BadReply("the server lists no models")
    first = models[0]
    model_id = first.get("id") if isinstance(first, dict) else None
    if not isinstance(model_id, str) or not model_id.strip():
        raise BadReply(f"{url}: the first model has no id")
    meta = first.get("meta")
    ctx = _context_size(meta.get("n_ctx") if isinstance(meta, dict) else None, url)
    if ctx is None:  # older llama-server builds: /props has it
        props_url = f"{server_root(base_url)}/props"
        status, props = get_json(props_url, api_key, timeout_s=timeout_s)
        if status == 200 and isinstance(props, dict):
            settings = props.get("default_generation_settings")
            nested = settings.get("n_ctx") if isinstance(settings, dict) else None
            ctx = _context_size(nested if nested is not None else props.get("n_ctx"), props_url)
    return model_id[:200], ctx


def _context_size(value: object, where: str) -> int | None:
    """A reported context size: None when not reported; BadReply when it is not a positive whole number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadReply(f"{where} reports a context size that is not a positive whole number: {str(value)[:40]!r}")
    return value


def stream_chat(
    base_url: str, api_key: str | None, model: str, *, prompt: str = PROMPT, max_tokens: int = 96, timeout: float = 600
) -> tuple[str, Measured]:
    """One streamed chat completion, timed on the client, complete within `timeout` seconds in all.

    BadReply when the stream is not a complete, well-formed chat completion stream: chunks of another shape, or a
    stream that ends without a finish_reason (cut before the server finished), or one that takes longer.
    """
    return within(
        timeout, lambda: _stream_chat(base_url, api_key, model, prompt, max_tokens, timeout), "the streamed answer"
    )


def _stream_chat(
    base_url: str, api_key: str | None, model: str, prompt: str, max_tokens: int, timeout: float
) -> tuple[str, Measured]:
    import openai

    client = _client(base_url, api_key, timeout)
    started = time.perf_counter()
    first_at = last_at = None
    pieces: list[str] = []
    chunks_with_text = 0
    usage = None
    finished = False
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": prompt}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    try:
        for chunk in stream:
            now = time.perf_counter()
            chunk_usage, texts, chunk_finished = _chunk_parts(chunk)
            usage = chunk_usage or usage
            finished = finished or chunk_finished
            for text in texts:
                first_at = first_at or now
                last_at = now
                chunks_with_text += 1
                pieces.append(text)
    except ValueError as err:  # an event whose data is not JSON
        raise BadReply(f"the server's stream is not valid server-sent JSON events ({str(err)[:80]})") from None
    except openai.APIConnectionError as err:  # cut mid-chunk, reset
        raise BadReply(f"the stream broke off: {err.__cause__ or err}".splitlines()[0]) from None
    finally:
        stream.close()
    ended = time.perf_counter()
    if first_at is None or last_at is None:
        raise BadReply(f"the server at {base_url} streamed no text")
    if not finished:
        raise BadReply("the stream ended before the server finished the answer (no finish_reason)")
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


def _chunk_parts(chunk: Any) -> tuple[Any, list[str], bool]:
    """(usage or None, the chunk's texts, whether a choice finished). BadReply for a chunk of another shape.

    The openai client builds chunks without validating them (a field can hold anything the server sent), so the
    shape is checked here before it is used.
    """
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletionChunk
    from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta

    def bad(what: str) -> BadReply:
        return BadReply(f"the server streamed a chunk that is not a chat completion chunk ({what})")

    if not isinstance(chunk, ChatCompletionChunk) or not isinstance(chunk.choices, list):
        raise bad("no 'choices' list")
    usage = chunk.usage
    if usage is not None and not (
        isinstance(usage, CompletionUsage)
        and all(isinstance(n, int) and n >= 0 for n in (usage.prompt_tokens, usage.completion_tokens))
    ):
        raise bad("'usage' without token counts")
    texts: list[str] = []
    finished = False
    for choice in chunk.choices:
        if not isinstance(choice, Choice) or not (choice.delta is None or isinstance(choice.delta, ChoiceDelta)):
            raise bad("a choice without a 'delta'")
        text = choice.delta.content if choice.delta is not None else None
        if not (text is None or isinstance(text, str)) or not (
            choice.finish_reason is None or isinstance(choice.finish_reason, str)
        ):
            raise bad("'content' or 'finish_reason' is not a string")
        if text:
            texts.append(text)
        finished = finished or bool(choice.finish_reason)
    return usage, texts, finished


def _prompt_tokens(client: Any, model: str, prompt: str) -> int:
    """When a stream carries no usage: a one-token request reports how many tokens the prompt is."""
    response = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": prompt}], max_tokens=1, temperature=0
    )
    usage = getattr(response, "usage", None)
    count = getattr(usage, "prompt_tokens", None)
    return count if isinstance(count, int) and count >= 0 else 0


def wrong_key_status(base_url: str, model: str, *, timeout_s: float = 60) -> int | None:
    """The HTTP status a request with a made-up key gets (401 expected); None when the server accepted it."""
    import openai

    def ask() -> int | None:
        try:
            _client(base_url, "wrong-" + secrets.token_urlsafe(12), timeout_s).chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}], max_tokens=1
            )
        except openai.APIStatusError as err:
            return err.status_code
        return None

    return within(timeout_s, ask, "the request with a wrong API key")


def verify_server(
    base_url: str,
    api_key: str | None,
    *,
    timeout_s: float = 300,
    request_timeout_s: float | None = None,
    expected_model: str | None = None,
    expected_ctx: int | None = None,
    alive: Callable[[], str | None] | None = None,
    progress: Any | None = None,
) -> Verification:
    """Everything a deploy (or `planner bench`) checks about a server, as one result.

    `timeout_s` bounds the wait for readiness; `request_timeout_s` (default the same) each request after it, the
    whole request, streaming included. The first request the server fails ends the checks: it is the problem.
    """
    import openai

    per_request = request_timeout_s or timeout_s
    result = Verification(endpoint=base_url)
    result.ready_after_s = round(wait_ready(base_url, api_key, timeout_s=timeout_s, alive=alive, progress=progress), 2)
    result.ready = True
    try:
        result.model_id, ctx = served_model(base_url, api_key, timeout_s=per_request)
        if expected_model and result.model_id != expected_model:
            result.problems.append(f"the server serves {result.model_id!r}, not {expected_model!r}")
        if expected_ctx and ctx and ctx != expected_ctx:
            result.problems.append(f"the server's context is {ctx} tokens, the plan set {expected_ctx}")
        result.answer, result.measured = stream_chat(base_url, api_key, result.model_id, timeout=per_request)
        result.measured.ctx_size = ctx
        if not result.answer.strip():
            result.problems.append("the streamed answer was empty")
        if api_key:
            result.wrong_key_status = wrong_key_status(base_url, result.model_id, timeout_s=per_request)
            result.wrong_key_checked = True
            result.wrong_key_refused = result.wrong_key_status == 401
            if not result.wrong_key_refused:
                got = "accepted" if result.wrong_key_status is None else f"answered {result.wrong_key_status}"
                result.problems.append(f"a wrong API key was {got}, not refused with 401")
        else:
            result.problems.append("no API key: anyone who can reach the port can use the server")
    except BadReply as err:
        result.problems.append(err.message)
    except openai.AuthenticationError:
        result.problems.append("the server refused the API key (401)")
    except openai.APIError as err:
        result.problems.append(f"the server failed a request: {err}".splitlines()[0])
    return result


def failure_summary(problems: list[str]) -> str:
    """One line for `planner: error:`: the first problem, and how many more the report lists."""
    extra = len(problems) - 1
    more = f" (and {extra} more in the report)" if extra > 0 else ""
    return f"verification failed: {problems[0] if problems else 'no answer'}{more}"


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
