"""A small Hugging Face Hub on 127.0.0.1 for tests, spoken to by the real `huggingface_hub` client.

It implements the requests huggingface_hub 2.x makes for what planner does (read from its source:
hf_api.py, hf_file_system.py, file_download.py):

  GET  /api/models/{repo}[/revision/{rev}][?blobs=true]      model_info / repo_info (siblings, sha, gated)
  GET  /api/models/{repo}/tree/{rev}[/{path}]?recursive=...   list_repo_tree (lfs: {oid: sha256, size, pointerSize})
  POST /api/models/{repo}/paths-info/{rev}                    get_paths_info (HfFileSystem.info on a refresh)
  HEAD /{repo}/resolve/{rev}/{path}                           get_hf_file_metadata: ETag, X-Linked-Etag/-Size,
                                                              X-Repo-Commit, Content-Length
  GET  /{repo}/resolve/{rev}/{path}  (+ Range: bytes=a-b)     downloads and ranged reads (206 + Content-Range)

Errors are answered as the hub answers them: 404 + `X-Error-Code: RepoNotFound` / `EntryNotFound` /
`RevisionNotFound`, 401 (no token) or 403 (a token without access) + `X-Error-Code: GatedRepo` on a gated repo's
files, 401 `RepoNotFound` for a private repo without a valid token (the hub hides private repos).

Every response's body bytes are counted per request (`hub.requests`, `hub.bytes_served(...)`) so a test can assert
that a remote header read stayed small, and `hub.drop_after(repo, path, n_bytes)` makes the next GET of a file
close its connection after n body bytes, once, to test resumed downloads.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

_CHUNK = 1 << 20
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CREATED = "2024-01-01T00:00:00.000Z"
LFS_MIN_BYTES = 1024  # smaller files are stored as plain git blobs (the hub does it by extension; size is simpler)


@dataclass
class HubFile:
    path: str
    size: int
    sha256: str
    blob_oid: str  # git blob id (of the LFS pointer for LFS files)
    lfs: bool
    data: bytes | None = None  # small files live in memory ...
    source: Path | None = None  # ... large ones are streamed from disk

    def read(self, start: int, end: int) -> Iterator[bytes]:
        """Yield the bytes [start, end) of the file."""
        if self.data is not None:
            yield self.data[start:end]
            return
        assert self.source is not None
        with self.source.open("rb") as fh:
            fh.seek(start)
            left = end - start
            while left > 0:
                chunk = fh.read(min(_CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk

    def pointer(self) -> bytes:
        return f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {self.size}\n".encode()


@dataclass
class HubRepo:
    repo_id: str
    gated: bool = False
    private: bool = False
    files: dict[str, HubFile] = field(default_factory=dict)
    allowed_tokens: set[str] = field(default_factory=set)

    @property
    def sha(self) -> str:
        """A commit id that changes when the file set changes, like a real commit would."""
        digest = hashlib.sha1(self.repo_id.encode())
        for name in sorted(self.files):
            digest.update(f"{name}:{self.files[name].sha256}".encode())
        return digest.hexdigest()


@dataclass
class RequestRecord:
    method: str
    path: str
    status: int
    range: str | None
    bytes_sent: int
    authorization: str | None


_SHA_CACHE: dict[tuple[str, int, float], str] = {}


def _sha256_of_path(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime)
    if key not in _SHA_CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                digest.update(chunk)
        _SHA_CACHE[key] = digest.hexdigest()
    return _SHA_CACHE[key]


def _git_blob_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class LocalHub:
    """A running local hub. Add repos and files at any time; the server sees changes immediately."""

    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.requests: list[RequestRecord] = []
        self._drops: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        handler = type("_Handler", (_HubHandler,), {"hub": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="localhub", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- content --------------------------------------------------------------------------------------------
    def add_repo(self, repo_id: str, *, gated: bool = False, private: bool = False) -> HubRepo:
        repo = self.repos.get(repo_id) or HubRepo(repo_id, gated=gated, private=private)
        repo.gated, repo.private = gated, private
        self.repos[repo_id] = repo
        return repo

    def add_file(self, repo_id: str, path_in_repo: str, content: bytes | Path) -> HubFile:
        """Add (or replace) a file; the repo is created if needed. Paths are served from disk, not copied."""
        repo = self.repos.get(repo_id) or self.add_repo(repo_id)
        if isinstance(content, Path):
            size = content.stat().st_size
            sha256 = _sha256_of_path(content)
            data, source = None, content
        else:
            size, sha256, data, source = len(content), hashlib.sha256(content).hexdigest(), content, None
        lfs = size >= LFS_MIN_BYTES
        hub_file = HubFile(path_in_repo, size, sha256, "", lfs, data=data, source=source)
        hub_file.blob_oid = _git_blob_oid(hub_file.pointer() if lfs else (data or b""))
        repo.files[path_in_repo] = hub_file
        return hub_file

    def grant(self, repo_id: str, token: str) -> None:
        """Let `token` read a gated or private repo."""
        self.repos[repo_id].allowed_tokens.add(token)

    def drop_after(self, repo_id: str, path_in_repo: str, n_bytes: int) -> None:
        """Make the next GET of this file close the connection after `n_bytes` of body, once."""
        with self._lock:
            self._drops[(repo_id, path_in_repo)] = n_bytes

    def _take_drop(self, repo_id: str, path_in_repo: str) -> int | None:
        with self._lock:
            return self._drops.pop((repo_id, path_in_repo), None)

    # --- what was served ------------------------------------------------------------------------------------
    def bytes_served(self, repo_id: str | None = None, path_in_repo: str | None = None) -> int:
        """Body bytes of /resolve/ responses (file content), optionally for one repo or file."""
        total = 0
        for rec in self.requests:
            m = _RESOLVE_RE.match(urlsplit(rec.path).path)
            if not m:
                continue
            repo, _rev, path = m.group("repo"), m.group("rev"), unquote(m.group("path"))
            if (repo_id is None or repo == repo_id) and (path_in_repo is None or path == path_in_repo):
                total += rec.bytes_sent
        return total

    def reset_log(self) -> None:
        self.requests.clear()

    def env(self) -> dict[str, str]:
        """Environment for a subprocess that should use this hub."""
        return {"HF_ENDPOINT": self.url, "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


_API_RE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?P<rest>/.*)?$")
_RESOLVE_RE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


class _HubHandler(BaseHTTPRequestHandler):
    hub: LocalHub
    protocol_version = "HTTP/1.1"
    server_version = "localhub/1"

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    # --- plumbing -----------------------------------------------------------------------------------------
    def _record(self, status: int, sent: int) -> RequestRecord:
        record = RequestRecord(
            self.command,
            self.path,
            status,
            self.headers.get("Range"),
            sent,
            self.headers.get("Authorization"),
        )
        self.hub.requests.append(record)
        return record

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        sent = len(body) if self.command != "HEAD" else 0
        self._record(status, sent)  # before the body: a client may act on it before this thread goes on
        if sent:
            self.wfile.write(body)

    def _json(self, payload: object, status: int = 200) -> None:
        self._send(status, json.dumps(payload).encode())

    def _error(self, status: int, code: str | None, message: str) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers)

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization") or ""
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

    def _repo_or_error(self, repo_id: str, *, files: bool) -> HubRepo | None:
        """The repo if this request may see it (its files, when `files`), else answer the hub's error."""
        repo = self.hub.repos.get(repo_id)
        token = self._token()
        if repo is None or (repo.private and token not in repo.allowed_tokens):
            self._error(401 if repo and not token else 404, "RepoNotFound", "Repository not found")
            return None
        if files and repo.gated and token not in repo.allowed_tokens:
            if token is None:
                msg = f"Access to model {repo_id} is restricted. You must have access to it and be authenticated."
                self._error(401, "GatedRepo", msg)
            else:
                msg = f"Access to model {repo_id} is restricted and you are not in the authorized list."
                self._error(403, "GatedRepo", msg)
            return None
        return repo

    # --- verbs ---------------------------------------------------------------------------------------------
    def do_HEAD(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        m = _API_RE.match(urlsplit(self.path).path)
        if m and (m.group("rest") or "").startswith("/paths-info/"):
            self._paths_info(m.group("repo"), body)
        else:
            self._error(404, None, "Not found")

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if m := _API_RE.match(url.path):
            rest = m.group("rest") or ""
            if rest == "" or rest.startswith("/revision/"):
                self._model_info(m.group("repo"), blobs=query.get("blobs", ["false"])[0].lower() == "true")
            elif rest.startswith("/tree/"):
                rev, _, sub = rest[len("/tree/") :].partition("/")
                self._tree(m.group("repo"), unquote(sub), recursive=query.get("recursive", [""])[0] == "True")
            else:
                self._error(404, None, "Not found")
        elif m := _RESOLVE_RE.match(url.path):
            self._resolve(m.group("repo"), unquote(m.group("path")))
        else:
            self._error(404, None, "Not found")

    # --- API ----------------------------------------------------------------------------------------------
    def _model_info(self, repo_id: str, *, blobs: bool) -> None:
        repo = self._repo_or_error(repo_id, files=False)
        if repo is None:
            return
        siblings = []
        for f in sorted(repo.files.values(), key=lambda f: f.path):
            entry: dict = {"rfilename": f.path}
            if blobs:
                entry |= {"size": f.size, "blobId": f.blob_oid}
                if f.lfs:
                    entry["lfs"] = {"sha256": f.sha256, "size": f.size, "pointerSize": len(f.pointer())}
            siblings.append(entry)
        author = repo_id.split("/")[0]
        self._json(
            {
                "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "modelId": repo_id,
                "author": author,
                "sha": repo.sha,
                "lastModified": _CREATED,
                "createdAt": _CREATED,
                "private": repo.private,
                "gated": "manual" if repo.gated else False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": ["gguf"] if any(p.endswith(".gguf") for p in repo.files) else [],
                "library_name": "gguf" if any(p.endswith(".gguf") for p in repo.files) else None,
                "siblings": siblings,
            }
        )

    def _entry(self, f: HubFile) -> dict:
        entry: dict = {"type": "file", "oid": f.blob_oid, "size": f.size, "path": f.path}
        if f.lfs:
            entry["lfs"] = {"oid": f.sha256, "size": f.size, "pointerSize": len(f.pointer())}
        return entry

    def _tree(self, repo_id: str, sub: str, *, recursive: bool) -> None:
        repo = self._repo_or_error(repo_id, files=False)
        if repo is None:
            return
        prefix = sub.strip("/") + "/" if sub.strip("/") else ""
        if prefix and not any(p.startswith(prefix) for p in repo.files):
            self._error(404, "EntryNotFound", f"{sub} does not exist on main")
            return
        entries: list[dict] = []
        folders: set[str] = set()
        for path in sorted(repo.files):
            if not path.startswith(prefix):
                continue
            rel = path[len(prefix) :]
            if "/" in rel and not recursive:
                folders.add(prefix + rel.split("/")[0])
                continue
            if recursive:
                parts = rel.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    folders.add(prefix + "/".join(parts[:i]))
            entries.append(self._entry(repo.files[path]))
        dirs = [
            {"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
            for d in sorted(folders)
        ]
        self._json(dirs + entries)

    def _paths_info(self, repo_id: str, body: bytes) -> None:
        repo = self._repo_or_error(repo_id, files=False)
        if repo is None:
            return
        ctype = self.headers.get("Content-Type") or ""
        if "json" in ctype:
            paths = json.loads(body or b"{}").get("paths", [])
        else:
            paths = parse_qs(body.decode()).get("paths", [])
        out = [self._entry(repo.files[p]) for p in paths if p in repo.files]
        self._json(out)

    # --- files --------------------------------------------------------------------------------------------
    def _resolve(self, repo_id: str, path: str) -> None:
        repo = self._repo_or_error(repo_id, files=True)
        if repo is None:
            return
        f = repo.files.get(path)
        if f is None:
            self._error(404, "EntryNotFound", f"{path} does not exist on main")
            return
        etag = f'"{f.sha256}"' if f.lfs else f'"{f.blob_oid}"'
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": etag,
            "X-Repo-Commit": repo.sha,
            "Content-Disposition": f'attachment; filename="{Path(path).name}"',
        }
        if f.lfs:
            headers |= {"X-Linked-Etag": etag, "X-Linked-Size": str(f.size)}
        start, end, status = 0, f.size, 200
        if (rng := self.headers.get("Range")) is not None:
            m = _RANGE_RE.match(rng.strip())
            if not m or (m.group(1) == "" and m.group(2) == ""):
                self._error(416, None, "Invalid range")
                return
            if m.group(1) == "":  # suffix range: the last N bytes
                start = max(0, f.size - int(m.group(2)))
            else:
                start = int(m.group(1))
                end = min(f.size, int(m.group(2)) + 1) if m.group(2) else f.size
            if start >= f.size or start >= end:
                self._send(416, b"", {"Content-Range": f"bytes */{f.size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{f.size}"
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(end - start))
        self.end_headers()
        if self.command == "HEAD":
            self._record(status, 0)
            return
        drop = self.hub._take_drop(repo_id, path)
        # Recorded before the body goes out (the client may act on it before this thread goes on); corrected
        # below if the body is cut short.
        record = self._record(status, end - start if drop is None else min(drop, end - start))
        sent = 0
        try:
            for chunk in f.read(start, end):
                if drop is not None and sent + len(chunk) >= drop:
                    self.wfile.write(chunk[: drop - sent])
                    sent = drop
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)  # the peer sees a truncated body
                    break
                self.wfile.write(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client stopped reading (e.g. a ranged read it cut short)
        record.bytes_sent = sent


def use_hub(monkeypatch: pytest.MonkeyPatch, hub: LocalHub, hf_home: Path) -> None:
    """Point this process's environment and huggingface_hub at `hub`, with an empty HF_HOME (no real token)."""
    import huggingface_hub.constants as hf_constants

    for key, value in hub.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("HF_HOME", str(hf_home))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    # huggingface_hub reads these at import time: functions that don't take endpoint= use the constants.
    monkeypatch.setattr(hf_constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(
        hf_constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}"
    )
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HOME", str(hf_home))
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(hf_home / "hub"))
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(hf_home / "token"))
    monkeypatch.setattr(hf_constants, "HF_STORED_TOKENS_PATH", str(hf_home / "stored_tokens"))


@pytest.fixture
def local_hub(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalHub]:
    """A fresh local hub with the environment pointed at it (HF_ENDPOINT, empty HF_HOME, no HF_TOKEN).

    Empty: tests add what they need with `add_file`, or use `populate_standard_repos(hub, ...)`.
    """
    hub = LocalHub()
    use_hub(monkeypatch, hub, tmp_path_factory.mktemp("hf_home"))
    try:
        yield hub
    finally:
        hub.close()
