"""A hostile OpenAI-compatible server on 127.0.0.1: correct protocol, hostile text (rich markup in every answer).

It is not llama-server and does not pretend to compute anything: it answers /health, /v1/models and
/v1/chat/completions (streamed as SSE, with usage, ending in [DONE]) the way the OpenAI client expects, with
the text it is given. It refuses a wrong API key with 401, as a deployed server must.

As a library: `HostileServer(answer=..., model_id=..., api_key=...)` starts it on a free port in a thread.
As a program it takes llama-server's own flags (--host, --port, --alias, --api-key-file, --ctx-size; --version),
so a `llama-server` shim on PATH lets `planner deploy --launch` start it as a real process.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MARKUP_ANSWER = "[/INST] [bold]not bold[/bold] [/] [wip] :smile: [link=x]y[/link]"
CHUNKS = 4  # the answer is streamed in this many pieces


class HostileServer:
    def __init__(
        self,
        *,
        answer: str = MARKUP_ANSWER,
        model_id: str = "hostile",
        api_key: str = "",
        n_ctx: int = 2048,
        fail_every: int = 0,
        failure: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.answer = answer
        self.model_id = model_id
        self.api_key = api_key
        self.n_ctx = n_ctx
        self.fail_every = fail_every  # every Nth chat request answers 500 with `failure` as its error message
        self.failure = failure
        self.chats = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> HostileServer:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_chat_fails(self) -> bool:
        with self._lock:
            self.chats += 1
            return bool(self.fail_every) and self.chats % self.fail_every == 0


def _handler_for(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
            body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self) -> bool:
            if not server.api_key or self.headers.get("Authorization") == f"Bearer {server.api_key}":
                return True
            self._send(401, {"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}})
            return False

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {"status": "ok"})
            elif self.path == "/v1/models" and self._authorized():
                model = {"id": server.model_id, "object": "model", "created": 0, "owned_by": "hostile"}
                self._send(200, {"object": "list", "data": [model | {"meta": {"n_ctx": server.n_ctx}}]})
            elif self.path != "/v1/models":
                self._send(404, {"error": {"message": "not found", "code": 404}})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = json.loads(self.rfile.read(min(length, 1 << 20)) or b"{}")
            if self.path != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found", "code": 404}})
                return
            if not self._authorized():
                return
            if server.next_chat_fails():
                self._send(500, {"error": {"message": server.failure, "type": "server_error", "code": 500}})
                return
            if request.get("stream"):
                self._stream()
            else:
                usage = {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9}
                message = {"role": "assistant", "content": server.answer}
                choice = {"index": 0, "message": message, "finish_reason": "length"}
                self._send(200, _chunk("chat.completion", [choice]) | {"usage": usage})

        def _stream(self) -> None:
            step = max(1, -(-len(server.answer) // CHUNKS))
            pieces = [server.answer[i : i + step] for i in range(0, len(server.answer), step)]
            events = [_chunk("chat.completion.chunk", [_delta({"role": "assistant", "content": ""})])]
            events += [_chunk("chat.completion.chunk", [_delta({"content": piece})]) for piece in pieces]
            events.append(_chunk("chat.completion.chunk", [_delta({}, finish="stop")]))
            usage = {"prompt_tokens": 8, "completion_tokens": len(pieces), "total_tokens": 8 + len(pieces)}
            events.append(_chunk("chat.completion.chunk", []) | {"usage": usage})
            body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events) + b"data: [DONE]\n\n"
            self._send(200, body, "text/event-stream")

    return Handler


def _chunk(kind: str, choices: list[dict]) -> dict:
    return {"id": "hostile-1", "object": kind, "created": 0, "model": "hostile", "choices": choices}


def _delta(delta: dict, finish: str | None = None) -> dict:
    return {"index": 0, "delta": delta, "finish_reason": finish}


def main(argv: list[str]) -> None:
    """Run as llama-server would be run: its flags, the key from --api-key-file, until killed."""
    if "--version" in argv:
        print("version: 10470 (hostile0)")
        return
    flags = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
    key = ""
    if "--api-key-file" in flags:
        with open(flags["--api-key-file"], encoding="utf-8") as fh:
            key = fh.readline().strip()
    server = HostileServer(
        model_id=flags.get("--alias", "hostile"), api_key=key, n_ctx=int(flags.get("--ctx-size", 2048)),
        host=flags.get("--host", "127.0.0.1"), port=int(flags.get("--port", 8080)),
    )  # fmt: skip
    server.httpd.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
