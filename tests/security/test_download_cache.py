"""Concurrent downloads and hostile copies in the Hugging Face cache, against the local hub with the real client.

Two deploys of one model used to append to the same `.partial` and publish a blob twice the size; a cached blob was
trusted because it existed. Now the download holds huggingface_hub's lock, hashes the file it publishes, and checks
a cached copy's size and sha256 before using it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from localhub import HubFile, LocalHub, local_hub  # noqa: F401 - the fixture

from planner.errors import BadInput
from planner.serving.download import ensure_model
from planner.types.model import PlannedModel

ROOT = Path(__file__).resolve().parents[2]
REPO = "bartowski/SmolLM2-135M-Instruct-GGUF"
FILE = "SmolLM2-135M-Instruct-Q4_1.gguf"

CHILD = """
import json, sys
from planner.serving.download import ensure_model
from planner.types.model import PlannedModel
result = ensure_model(PlannedModel(repo=sys.argv[1], file=sys.argv[2], files=[sys.argv[2]]))
print(json.dumps(result.model_dump()))
"""


class GatedFile(HubFile):
    """A hub file whose body is held back until the test opens the gate: a download that is surely in flight."""

    gate: threading.Event

    def read(self, start: int, end: int) -> Iterator[bytes]:
        assert self.gate.wait(60), "the test never opened the gate"
        yield from super().read(start, end)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def model() -> PlannedModel:
    return PlannedModel(repo=REPO, file=FILE, files=[FILE])


def storage() -> Path:
    return Path(os.environ["HF_HOME"]) / "hub" / f"models--{REPO.replace('/', '--')}"


def resolve_gets(hub: LocalHub) -> list:
    return [r for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]


def wait_for(condition, what: str, timeout_s: float = 60) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def hub(local_hub: LocalHub, smollm2_path: Path) -> LocalHub:  # noqa: F811
    local_hub.add_file(REPO, FILE, smollm2_path)
    return local_hub


@pytest.fixture
def blob(hub: LocalHub, smollm2_path: Path) -> Path:
    """Where the cache keeps the file's bytes: blobs/<etag>, the etag of an LFS file being its sha256."""
    return storage() / "blobs" / hub.repos[REPO].files[FILE].sha256


def test_two_concurrent_deploys_publish_one_correct_blob(hub: LocalHub, smollm2_path: Path):
    plain = hub.repos[REPO].files[FILE]
    gated = GatedFile(**{k: getattr(plain, k) for k in plain.__dataclass_fields__})
    gated.gate = threading.Event()
    hub.repos[REPO].files[FILE] = gated
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-c", CHILD, REPO, FILE], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    first = start()
    try:
        wait_for(lambda: len(resolve_gets(hub)) == 1, "the first download to start")
        second = start()
        try:
            # The second has asked the hub about the file (its last request before the download) ...
            wait_for(lambda: sum("/paths-info/" in r.path for r in hub.requests) == 2, "the second to look it up")
            time.sleep(0.5)  # ... and has had time to reach the download; only now does the first get its bytes
            gated.gate.set()
            outs = [p.communicate(timeout=120) for p in (first, second)]
        finally:
            second.kill()
    finally:
        gated.gate.set()
        first.kill()
    assert [first.returncode, second.returncode] == [0, 0], [err for _, err in outs]
    results = [json.loads(out) for out, _ in outs]

    size = smollm2_path.stat().st_size
    assert all(r["verified_sha256"] for r in results)
    assert sorted(r["downloaded_bytes"] for r in results) == [0, size]  # the second waited and used the first's
    assert results[0]["path"] == results[1]["path"]
    assert sha256_of(Path(results[0]["path"])) == sha256_of(smollm2_path)
    assert len(resolve_gets(hub)) == 1 and hub.bytes_served(REPO, FILE) == size
    blobs = list((storage() / "blobs").iterdir())
    assert [(b.name, b.stat().st_size) for b in blobs] == [(plain.sha256, size)]
    assert (Path(os.environ["HF_HOME"]) / "hub" / ".locks" / storage().name / f"{plain.sha256}.lock").is_file()


def test_a_cached_blob_of_the_wrong_size_is_downloaded_again(hub: LocalHub, blob: Path, smollm2_path: Path):
    blob.parent.mkdir(parents=True)
    blob.write_bytes(smollm2_path.read_bytes()[:1_000_000])  # an older, cut-short or doubled copy
    result = ensure_model(model())
    assert result.downloaded_bytes == smollm2_path.stat().st_size and result.verified_sha256
    assert sha256_of(Path(result.path)) == sha256_of(smollm2_path)
    assert Path(result.path).resolve() == blob.resolve()


def test_a_cached_blob_of_the_right_size_but_wrong_bytes_is_downloaded_again(
    hub: LocalHub, blob: Path, smollm2_path: Path
):
    data = bytearray(smollm2_path.read_bytes())
    data[5_000_000] ^= 0xFF
    blob.parent.mkdir(parents=True)
    blob.write_bytes(bytes(data))
    result = ensure_model(model())
    assert result.downloaded_bytes == len(data)
    assert sha256_of(blob) == sha256_of(smollm2_path)


def test_a_verified_blob_is_trusted_until_it_changes(hub: LocalHub, blob: Path, smollm2_path: Path):
    ensure_model(model())
    hub.reset_log()
    again = ensure_model(model())
    assert again.downloaded_bytes == 0 and again.verified_sha256 and resolve_gets(hub) == []

    # Changed in place (same size): planner's record of the hash no longer matches the file, so it is re-hashed,
    # found wrong and fetched again.
    with blob.open("r+b") as fh:
        fh.seek(1234)
        fh.write(b"\0\0\0\0")
    third = ensure_model(model())
    assert third.downloaded_bytes == smollm2_path.stat().st_size
    assert sha256_of(blob) == sha256_of(smollm2_path)


def test_a_blob_put_there_by_huggingface_hub_is_hashed_once_then_used(hub: LocalHub, blob: Path, smollm2_path: Path):
    from huggingface_hub import hf_hub_download

    hf_hub_download(REPO, FILE)  # another tool's download: no record of planner's
    hub.reset_log()
    result = ensure_model(model())
    assert result.downloaded_bytes == 0 and result.verified_sha256 and resolve_gets(hub) == []
    assert sha256_of(Path(result.path)) == sha256_of(smollm2_path)


def test_a_partial_file_that_is_a_link_is_not_followed(hub: LocalHub, blob: Path, tmp_path: Path, smollm2_path: Path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    blob.parent.mkdir(parents=True)
    (blob.parent / (blob.name + ".partial")).symlink_to(victim)
    result = ensure_model(model())
    assert victim.read_bytes() == b"precious\n"
    assert sha256_of(Path(result.path)) == sha256_of(smollm2_path)


def test_a_file_the_user_put_in_models_dir_is_refused_not_replaced(hub: LocalHub, tmp_path: Path):
    models = tmp_path / "models"
    models.mkdir()
    mine = models / FILE
    mine.write_bytes(b"my own notes, not a model\n")
    with pytest.raises(BadInput, match="is not .*move it away or choose another --models-dir") as info:
        ensure_model(model(), models_dir=models)
    assert "\n" not in info.value.message
    assert mine.read_bytes() == b"my own notes, not a model\n"
    assert resolve_gets(hub) == []


def test_a_cut_short_download_in_models_dir_is_fetched_again(hub: LocalHub, tmp_path: Path, smollm2_path: Path):
    models = tmp_path / "models"
    first = ensure_model(model(), models_dir=models)
    with open(first.path, "r+b") as fh:
        fh.truncate(2_000_000)
    again = ensure_model(model(), models_dir=models)
    assert again.downloaded_bytes == smollm2_path.stat().st_size
    assert sha256_of(Path(again.path)) == sha256_of(smollm2_path)
