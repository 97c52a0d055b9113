"""A hostile OpenAI-compatible server on 127.0.0.1: it answers as llama-server does, except where its mode misbehaves.

Real sockets and real HTTP (or, for "banner", a service that is not HTTP at all). The routes are the ones planner's
verification uses: GET /health, GET /v1/models, GET /props, POST /v1/chat/completions (streamed, and the one-token
request with a wrong key). Modes:

  ok              behaves (401 for a wrong key, a stream that ends with finish_reason "stop", usage and [DONE])
  markup          ok, but the answer is rich markup: "[/INST] [bold red]boom[/]"
  html            every route answers 200 with an HTML page
  garbage_json    /v1/models answers JSON cut in the middle
  empty_models    /v1/models lists no models
  bad_n_ctx       /v1/models reports meta.n_ctx "lots"
  bad_props_ctx   no meta in /v1/models; /props reports n_ctx 2048.5
  endless_body    every GET answers 200 and then sends bytes forever
  stall_health    /health sends its headers, then nothing
  stall_models    /v1/models sends its headers, then nothing
  stall_stream    the chat completion sends its headers, then nothing
  trickle_stream  the chat completion sends a text chunk every 0.5 s, forever (each read is quick; the whole is not)
  endless_event   the chat completion sends one server-sent event that never ends
  cut_stream      the chat completion sends two text chunks, then closes: no finish_reason, no [DONE]
  broken_sse      the chat completion's event data is not JSON
  bad_chunk       the chat completion's chunks have "choices": "nope"
  any_key         ok, but a wrong API key is accepted too
  never_ready     /health answers 503 (loading the model), forever
  banner          not HTTP: it greets every connection with an SSH banner

Run as a program (`python hostile_server.py --host H --port P [--alias A] [--api-key-file F] [--ctx-size N]`,
mode from $HOSTILE_MODE) it stands in for `llama-server` on PATH, taking and ignoring llama-server's other flags.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

MODES = (
    "ok", "markup", "html", "garbage_json", "empty_models", "bad_n_ctx", "bad_props_ctx", "endless_body",
    "stall_health", "stall_models", "stall_stream", "trickle_stream", "endless_event", "cut_stream", "broken_sse",
    "bad_chunk", "any_key", "never_ready", "banner",
)  # fmt: skip
MARKUP_ANSWER = "[/INST] [bold red]boom[/]"
HTML = b"<!doctype html><html><head><title>Welcome to nginx!</title></head><body><h1>It works</h1></body></html>"
UNAUTHORIZED = {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}
STALL_LIMIT_S = 120  # a stalled answer ends by then even if the test forgot to close the server


class HostileServer:
    """`with HostileServer("stall_stream") as server:` ... server.url is http://127.0.0.1:PORT/v1."""

    def __init__(self, mode: str = "ok", *, api_key: str = "right-key", model: str = "hostile-model",
                 host: str = "127.0.0.1", port: int = 0, n_ctx: int = 2048) -> None:  # fmt: skip
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode, self.api_key, self.model, self.n_ctx = mode, api_key, model, n_ctx
        self.closing = threading.Event()
        if mode == "banner":
            self._server: Any = _BannerServer((host, port), self.closing)
        else:
            self._server = ThreadingHTTPServer((host, port), _Handler)
            self._server.daemon_threads = True
            self._server.hostile = self  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.closing.set()  # ends every stall and endless answer
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hostile/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests print what matters
        pass

    @property
    def hostile(self) -> HostileServer:
        return self.server.hostile  # type: ignore[attr-defined]

    # --- plumbing ---------------------------------------------------------------------------------------

    def _headers(self, status: int, content_type: str, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is None:  # the body ends when the connection does
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self._headers(status, content_type, len(body))
        self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, json.dumps(value).encode())

    def _stall(self, content_type: str = "application/json") -> None:
        self._headers(200, content_type)
        self.wfile.flush()
        self.hostile.closing.wait(STALL_LIMIT_S)

    def _endless(self, content_type: str, piece: bytes) -> None:
        self._headers(200, content_type)
        try:
            while not self.hostile.closing.is_set():
                self.wfile.write(piece)
        except OSError:  # the client gave up: that is the point
            pass

    def _authorized(self) -> bool:
        return self.headers.get("Authorization") == f"Bearer {self.hostile.api_key}" or self.hostile.mode == "any_key"

    # --- routes -----------------------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        mode = self.hostile.mode
        if mode == "html":
            return self._send(200, HTML, "text/html")
        if mode == "endless_body":
            return self._endless("application/json", b'{"data": [' * 4096)
        if self.path == "/health":
            return self._health(mode)
        if self.path == "/v1/models":
            return self._models(mode)
        if self.path == "/props":
            return self._json(
                200, {"default_generation_settings": {"n_ctx": 2048.5 if mode == "bad_props_ctx" else 2048}}
            )
        return self._json(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})

    def _health(self, mode: str) -> None:
        if mode == "stall_health":
            return self._stall()
        if mode == "never_ready":
            return self._json(503, {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})
        return self._json(200, {"status": "ok"})

    def _models(self, mode: str) -> None:
        if not self._authorized():
            return self._json(
                401, {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}
            )
        if mode == "stall_models":
            return self._stall()
        if mode == "garbage_json":
            return self._send(200, b'{"object": "list", "data": [{"id": "hostile-mo')
        if mode == "empty_models":
            return self._json(200, {"object": "list", "data": []})
        meta = {"n_ctx": "lots" if mode == "bad_n_ctx" else self.hostile.n_ctx, "n_params": 134515008}
        model: dict[str, Any] = {"id": self.hostile.model, "object": "model", "owned_by": "llamacpp"}
        if mode != "bad_props_ctx":
            model["meta"] = meta
        return self._json(200, {"object": "list", "data": [model]})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        request = json.loads(self.rfile.read(length) or b"{}")
        if self.hostile.mode == "html":
            return self._send(200, HTML, "text/html")
        if self.path != "/v1/chat/completions":
            return self._json(404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}})
        if not self._authorized():
            return self._json(
                401, {"error": {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}}
            )
        if not request.get("stream"):
            return self._json(200, _completion(self.hostile.model))
        self._stream(self.hostile.mode)

    def _stream(self, mode: str) -> None:
        if mode == "stall_stream":
            return self._stall("text/event-stream")
        if mode == "endless_event":
            return self._endless("text/event-stream", b"data: " + b"x" * 65536)
        self._headers(200, "text/event-stream")
        model = self.hostile.model
        try:
            if mode == "broken_sse":
                self._event(b"{this is not json")
                return
            if mode == "bad_chunk":
                self._event(json.dumps({"id": "c", "object": "chat.completion.chunk", "choices": "nope"}).encode())
                return
            self._event(_chunk(model, {"role": "assistant", "content": None}))
            if mode == "trickle_stream":
                while not self.hostile.closing.wait(0.5):
                    self._event(_chunk(model, {"content": "more "}))
                return
            words = [MARKUP_ANSWER] if mode == "markup" else ["Saturn", "'s rings", " surprise", " me", "."]
            for word in words[:2] if mode == "cut_stream" else words:
                self._event(_chunk(model, {"content": word}))
            if mode == "cut_stream":
                return  # the connection closes here: no finish_reason, no [DONE]
            self._event(_chunk(model, {}, finish_reason="stop"))
            self._event(json.dumps(_usage_chunk(model, len(words))).encode())
            self._event(b"[DONE]")
        except OSError:
            pass

    def _event(self, data: bytes) -> None:
        self.wfile.write(b"data: " + data + b"\n\n")
        self.wfile.flush()


def _chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
    return json.dumps({
        "id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }).encode()  # fmt: skip


def _usage_chunk(model: str, completion_tokens: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-hostile", "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
        "choices": [], "usage": {"prompt_tokens": 300, "completion_tokens": completion_tokens,
                                 "total_tokens": 300 + completion_tokens},
    }  # fmt: skip


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-hostile", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 300, "completion_tokens": 1, "total_tokens": 301},
    }  # fmt: skip


class _BannerServer:
    """A TCP service that is not HTTP: it greets each connection with an SSH banner and then waits."""

    def __init__(self, address: tuple[str, int], closing: threading.Event) -> None:
        self.closing = closing
        self.sock = socket.create_server(address)
        self.sock.settimeout(0.2)
        self.server_address = self.sock.getsockname()

    def serve_forever(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._greet, args=(conn,), daemon=True).start()

    def _greet(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n")
                conn.settimeout(0.5)
                while not self.closing.is_set():
                    try:
                        if not conn.recv(4096):
                            return
                    except TimeoutError:
                        continue
            except OSError:
                return

    def shutdown(self) -> None:
        self.closing.set()

    def server_close(self) -> None:
        self.sock.close()


def main(argv: list[str]) -> None:
    """Stand in for llama-server: --host, --port, --alias, --api-key-file and --ctx-size are used, others ignored."""
    if "--version" in argv:
        print("version: 0 (hostile)")
        return
    options = {name: argv[i + 1] for i, name in enumerate(argv[:-1]) if name.startswith("--")}
    key_file = options.get("--api-key-file")
    api_key = Path(key_file).read_text().strip() if key_file else "right-key"
    server = HostileServer(
        os.environ.get("HOSTILE_MODE", "ok"), api_key=api_key, model=options.get("--alias", "hostile-model"),
        host=options.get("--host", "127.0.0.1"), port=int(options.get("--port", "8080")),
        n_ctx=int(options.get("--ctx-size", "2048")),
    )  # fmt: skip
    print(f"hostile server ({server.mode}) listening on {server.url}", flush=True)
    server._server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
