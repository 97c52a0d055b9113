"""Requests to a server planner does not trust: each ends by a deadline and reads a bounded number of bytes.

A socket timeout bounds one read, not a request: a server that sends its headers and then nothing, or a byte every
few seconds, would hold a request as long as it likes (the openai client's timeout is per read too). So each request
runs on a daemon thread that the caller waits for until the deadline; one still running then is abandoned (its own
socket timeout ends it later, and a daemon thread never holds up planner's exit). Bodies are read up to a cap, so an
endless body costs bounded memory, and redirects are not followed (they would carry the API key elsewhere).
"""

from __future__ import annotations

import http.client
import importlib
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from planner.errors import EnvironmentProblem

T = TypeVar("T")

MAX_JSON_BYTES = 1 << 20  # /health, /v1/models, /props answers are a few KiB; a MiB is generous
MAX_STREAM_BYTES = 16 << 20  # a 96-token streamed answer is a few tens of KiB
_READ_SIZE = 64 << 10


class BadReply(EnvironmentProblem):
    """The server answered, but not as an OpenAI-compatible server does, or not completely in time."""


class NotHttp(EnvironmentProblem):
    """Something listens on the port, but it does not speak HTTP."""


def within(seconds: float, work: Callable[[], T], what: str) -> T:
    """work()'s result if it finishes within `seconds`; else BadReply. work()'s own exceptions are raised here."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as err:  # handed to the waiting thread, which raises it
            outcome["error"] = err

    thread = threading.Thread(target=run, name=f"planner: {what}", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise BadReply(f"{what}: no complete answer within {seconds:g} s")
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx comes back as an HTTPError with its status


_OPENER = urllib.request.build_opener(_NoRedirect)


def get_json(url: str, api_key: str | None, *, timeout_s: float, max_bytes: int = MAX_JSON_BYTES) -> tuple[int, Any]:
    """GET url: the HTTP status and the JSON body (None when the body is not JSON), within `timeout_s` in all.

    NotHttp when the service on the port is not HTTP; BadReply when the body is larger than `max_bytes` or the
    answer is not complete in time; urllib's and the socket's own errors when nothing answers.
    """
    return within(timeout_s, lambda: _get_once(url, api_key, timeout_s, max_bytes), f"GET {url}")


def get_status(url: str, *, timeout_s: float) -> int:
    """GET url for its status only: at most a few KiB of the body are read (an endless /health body is harmless)."""
    return within(timeout_s, lambda: _get_once(url, None, timeout_s, 4096, truncate=True)[0], f"GET {url}")


def _get_once(
    url: str, api_key: str | None, timeout_s: float, max_bytes: int, truncate: bool = False
) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {api_key}"} if api_key else {})
    try:
        response = _OPENER.open(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        err.close()
        return err.code, None
    except urllib.error.URLError as err:
        _raise_if_not_http(err.reason, url)
        raise
    except http.client.HTTPException as err:
        _raise_if_not_http(err, url)
        raise
    with response:
        try:
            body = _read_capped(response, max_bytes, truncate)
        except http.client.HTTPException as err:  # a broken chunked body, a body cut short
            raise BadReply(f"{url} sent a broken body ({type(err).__name__})") from None
        if body is None:
            raise BadReply(f"{url} sent more than {max_bytes // 1024} KiB; an OpenAI-compatible server sends a little")
        return response.status, _json_or_none(body)


def _raise_if_not_http(err: object, url: str) -> None:
    # RemoteDisconnected is a BadStatusLine too, but it is a server closing early (one still starting, say).
    if isinstance(err, http.client.HTTPException) and not isinstance(err, http.client.RemoteDisconnected):
        raise NotHttp(f"the service at {url} does not speak HTTP (it sent {str(err).strip()[:80]!r})") from None


def _read_capped(response: http.client.HTTPResponse, max_bytes: int, truncate: bool) -> bytes | None:
    """The body, or None when it is longer than max_bytes (its first max_bytes when `truncate`)."""
    parts: list[bytes] = []
    size = 0
    while size <= max_bytes:
        part = response.read(min(_READ_SIZE, max_bytes + 1 - size))
        if not part:
            return b"".join(parts)
        parts.append(part)
        size += len(part)
    return b"".join(parts)[:max_bytes] if truncate else None


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:  # HTML, garbage, bytes that are not UTF-8
        return None


# --- the openai client ---------------------------------------------------------------------------------------


def openai_http_client(timeout_s: float, max_bytes: int = MAX_STREAM_BYTES) -> Any:
    """An httpx client for the openai client whose response bodies stop at `max_bytes` (BadReply past it).

    The openai client reads a server-sent event into memory until its blank line: without a cap, one endless
    event would grow without bound. httpx is whichever package openai uses (httpx, or httpx2 in newer builds).
    """
    import openai

    httpx = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])

    class CappedBody(httpx.SyncByteStream):  # type: ignore[name-defined]
        def __init__(self, inner: Any, url: str) -> None:
            self.inner, self.url = inner, url

        def __iter__(self) -> Iterator[bytes]:
            size = 0
            for part in self.inner:
                size += len(part)
                if size > max_bytes:
                    raise BadReply(f"{self.url} sent more than {max_bytes >> 20} MiB in one answer")
                yield part

        def close(self) -> None:
            self.inner.close()

    def cap(response: Any) -> None:
        response.stream = CappedBody(response.stream, str(response.request.url))

    return openai.DefaultHttpxClient(timeout=timeout_s, follow_redirects=False, event_hooks={"response": [cap]})
