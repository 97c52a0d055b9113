"""`planner bench URL`: the deploy verification against any OpenAI-compatible server, plus a concurrency run.

N parallel streams work through M requests; each request is timed on the client (time to first token, total
latency, generated tokens). Aggregate throughput is all generated tokens over the wall time of the run.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from planner.errors import BadInput
from planner.serving.verify import PROMPT, failure_summary, stream_chat, verify_server
from planner.types.deploy import BenchReport, ConcurrencyRun, Measured, Percentiles, RequestResult


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), for q in [0, 100]."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summarize(values: list[float]) -> Percentiles | None:
    if not values:
        return None
    return Percentiles(
        p50=round(percentile(values, 50), 4),
        p90=round(percentile(values, 90), 4),
        p99=round(percentile(values, 99), 4),
        mean=round(sum(values) / len(values), 4),
    )


def _one(
    base_url: str, api_key: str | None, model: str, max_tokens: int, timeout_s: float
) -> tuple[RequestResult, Measured | None]:
    try:
        _, m = stream_chat(base_url, api_key, model, prompt=PROMPT, max_tokens=max_tokens, timeout=timeout_s)
    except Exception as err:  # any failure of one request is a data point, not the end of the run
        return RequestResult(ok=False, error=f"{type(err).__name__}: {err}".splitlines()[0]), None
    return (
        RequestResult(
            ok=True, time_to_first_token_s=m.time_to_first_token_s, latency_s=m.total_s,
            prompt_tokens=m.prompt_tokens, completion_tokens=m.completion_tokens,
        ),
        m,
    )  # fmt: skip


def concurrency_run(
    base_url: str, api_key: str | None, model: str, *, concurrency: int, requests: int, max_tokens: int = 64,
    timeout_s: float = 600, progress: Any | None = None,
) -> ConcurrencyRun:  # fmt: skip
    """`requests` streamed requests, `concurrency` at a time, each one ending within `timeout_s`."""
    if concurrency < 1 or requests < 1:
        raise BadInput("--concurrency and --requests must be at least 1")
    task = progress.add_task(f"{requests} requests, {concurrency} at a time", total=requests) if progress else None
    results: list[tuple[RequestResult, Measured | None]] = []
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(_one, base_url, api_key, model, max_tokens, timeout_s) for _ in range(requests)]
        for future in futures:
            results.append(future.result())
            if progress is not None and task is not None:
                progress.advance(task)
    wall = time.perf_counter() - started
    good = [r for r, _ in results if r.ok]
    speeds = [m.generation_tokens_per_s for _, m in results if m and m.generation_tokens_per_s]
    return ConcurrencyRun(
        concurrency=concurrency,
        requests=requests,
        succeeded=len(good),
        failed=len(results) - len(good),
        wall_s=round(wall, 3),
        generation_tokens_per_s=round(sum(r.completion_tokens for r in good) / wall, 2) if wall > 0 else 0.0,
        per_stream_generation_tokens_per_s=round(sum(speeds) / len(speeds), 2) if speeds else None,
        time_to_first_token_s=summarize([r.time_to_first_token_s for r in good if r.time_to_first_token_s]),
        latency_s=summarize([r.latency_s for r in good if r.latency_s]),
        errors=sorted({r.error for r, _ in results if r.error})[:5],
    )


def check_url(url: str) -> str:
    """`url` when it is an http(s) URL with a host and a valid port; else one BadInput line saying what is wrong."""
    from urllib.parse import urlsplit

    example = "e.g. http://127.0.0.1:8080/v1"
    if not url.startswith(("http://", "https://")):
        raise BadInput(f"not an http(s) URL: {url!r} ({example})")
    if any(c.isspace() or not c.isprintable() for c in url):
        raise BadInput(f"{url!r}: a URL cannot contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it validates it (urllib raises ValueError past 65535)
    except ValueError as err:
        raise BadInput(f"not a valid URL: {url!r} ({err})") from None
    if not parts.hostname:
        raise BadInput(f"{url!r} names no host ({example})")
    return url


def run_bench(
    url: str,
    api_key: str | None,
    *,
    concurrency: int = 1,
    requests: int = 0,
    timeout_s: float = 60,
    progress: Any | None = None,
) -> BenchReport:
    """Verify the server at `url` (…/v1 or its root), then, when requests > 0, run the concurrency test.

    `timeout_s` bounds the wait for readiness and each request, streaming included. The concurrency test runs only
    when the verification's own streamed request worked: against a server that stalls or garbles, it would only
    repeat the failure `requests` times.
    """
    base = check_url(url).rstrip("/")
    base = base if base.endswith("/v1") else base + "/v1"
    verification = verify_server(base, api_key, timeout_s=timeout_s, progress=progress)
    report = BenchReport(url=base, verification=verification)
    if requests > 0 and verification.model_id and verification.measured is not None:
        report.run = concurrency_run(
            base, api_key, verification.model_id, concurrency=concurrency, requests=requests, timeout_s=timeout_s,
            progress=progress,
        )  # fmt: skip
    return report


def bench_failure(report: BenchReport) -> str | None:
    """The one `planner: error:` line for a bench that did not pass; None when it passed."""
    if not report.verification.ok:
        return failure_summary(report.verification.problems)
    if report.run is not None and report.run.failed:
        first = f": {report.run.errors[0]}" if report.run.errors else ""
        return f"{report.run.failed} of {report.run.requests} requests failed{first}"
    return None
