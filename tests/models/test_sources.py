"""planner.models.sources against the real huggingface_hub client talking to a local hub on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hub_repos import (
    GATED_REPO,
    GEMMA_REPO,
    NO_GGUF_REPO,
    SMOLLM2_FILE,
    SMOLLM2_REPO,
    SPLIT_REPO,
    TINY_REPO,
    HubModels,
)
from typer.testing import CliRunner

from planner.errors import BadInput, EnvironmentProblem
from planner.models.gguf_header import facts_from_headers, read_local
from planner.models.sources import (
    RepoFile,
    facts_for,
    group_ggufs,
    list_repo_ggufs,
    resolve_model,
)

MIB = 2**20


# --- listing -----------------------------------------------------------------------------------------------------


def test_listing_groups_quants_and_sets_aside_mmproj_and_imatrix(hub_models: HubModels) -> None:
    listing = list_repo_ggufs(TINY_REPO)
    assert [c.quant for c in listing.quants] == ["Q8_0", "F16"]  # smallest first
    f16 = listing.choice("f16")  # case-insensitive
    served = hub_models.files["tiny-llama-F16.gguf"]
    assert f16.size_bytes == served.stat().st_size
    assert f16.files[0].sha256 == hub_models.hub.repos[TINY_REPO].files["tiny-llama-F16.gguf"].sha256
    assert [f.path for f in listing.mmproj] == ["mmproj-tiny-llama-f16.gguf"]
    assert listing.skipped == ["imatrix.gguf"]
    assert listing.revision == hub_models.hub.repos[TINY_REPO].sha


def test_split_shards_are_one_candidate_in_order(hub_models: HubModels) -> None:
    listing = list_repo_ggufs(SPLIT_REPO)
    assert len(listing.quants) == 1
    choice = listing.quants[0]
    assert choice.quant == "Q8_0"
    assert choice.paths == [f"tiny-Q8_0-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    assert choice.size_bytes == sum(p.stat().st_size for k, p in hub_models.files.items() if k.startswith("split/"))


def test_incomplete_shard_set_is_skipped_not_offered() -> None:
    files = [RepoFile(path=f"m-Q4_K_M-0000{i}-of-00003.gguf", size=10) for i in (1, 3)]
    files.append(RepoFile(path="m-Q2_K.gguf", size=5))
    quants, mmproj, skipped = group_ggufs(files, where="x")
    assert [q.quant for q in quants] == ["Q2_K"]
    assert skipped == ["m-Q4_K_M: 2 of 3 parts"]


# --- resolving ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        f"{TINY_REPO}:q8_0",
        f"hf.co/{TINY_REPO}:Q8_0",
        f"https://huggingface.co/{TINY_REPO}:Q8_0",
        f"https://huggingface.co/{TINY_REPO}/blob/main/tiny-llama-Q8_0.gguf",
        f"{TINY_REPO}/tiny-llama-Q8_0.gguf",
    ],
)
def test_every_way_of_naming_a_repo_quant(hub_models: HubModels, source: str) -> None:
    resolved = resolve_model(source)
    assert resolved.kind == "repo" and resolved.repo == TINY_REPO
    assert resolved.quant == "Q8_0"
    assert resolved.choice().paths == ["tiny-llama-Q8_0.gguf"]
    assert resolved.mmproj is not None and resolved.mmproj.path == "mmproj-tiny-llama-f16.gguf"


def test_unknown_quant_lists_the_available_ones(hub_models: HubModels) -> None:
    with pytest.raises(BadInput, match=r"has no quant Q4_K_M \(available: Q8_0, F16\)"):
        resolve_model(f"{TINY_REPO}:Q4_K_M")


def test_repo_without_quant_leaves_the_choice_to_the_solver(hub_models: HubModels) -> None:
    resolved = resolve_model(TINY_REPO)
    assert resolved.quant is None
    assert [c.quant for c in resolved.candidates] == ["Q8_0", "F16"]
    with pytest.raises(BadInput, match="several quants"):
        resolved.choice()


# --- header reads ------------------------------------------------------------------------------------------------


def test_remote_header_of_real_smollm2_equals_local_parse_and_stays_small(
    hub_models: HubModels, smollm2_path: Path
) -> None:
    resolved = resolve_model(SMOLLM2_REPO)
    assert resolved.quant == "Q4_1"  # the only model file in the repo
    hub_models.hub.reset_log()
    remote = facts_for(resolved)
    local = facts_from_headers([read_local(smollm2_path)], source=SMOLLM2_REPO, files=[SMOLLM2_FILE])
    served = hub_models.hub.bytes_served(SMOLLM2_REPO, SMOLLM2_FILE)
    # Same facts as parsing the file on disk, tensor by tensor.
    assert remote.tensors == local.tensors
    assert remote.layer_bytes == local.layer_bytes and remote.n_vocab == local.n_vocab == 49152
    assert (remote.arch, remote.n_layer, remote.quant) == ("llama", 30, "Q4_1")
    assert remote.repo == SMOLLM2_REPO and remote.files == [SMOLLM2_FILE]
    # Transferred: the header (~1.1 MB with its vocabulary) in 1 MiB blocks, not the 98 MB of weights.
    assert remote.header_bytes_read == served
    assert served < 3 * MIB, served
    assert served < smollm2_path.stat().st_size / 30


def test_remote_split_model_reads_every_shard_header(hub_models: HubModels) -> None:
    facts = facts_for(resolve_model(SPLIT_REPO))
    local_paths = sorted(p for k, p in hub_models.files.items() if k.startswith("split/"))
    local = facts_from_headers([read_local(p) for p in local_paths], source="x", files=[p.name for p in local_paths])
    assert facts.tensors == local.tensors
    assert len(facts.files) == 3
    assert facts.header_bytes_read == hub_models.hub.bytes_served(SPLIT_REPO)


def test_gemma2_swa_layers_come_through(hub_models: HubModels) -> None:
    facts = facts_for(resolve_model(GEMMA_REPO))
    assert facts.arch == "gemma2"
    assert facts.swa_layers == [True, False] * 3


def test_mmproj_size_is_recorded_on_the_facts(hub_models: HubModels) -> None:
    facts = facts_for(resolve_model(f"{TINY_REPO}:Q8_0"))
    assert facts.mmproj_file == "mmproj-tiny-llama-f16.gguf"
    assert facts.mmproj_bytes == hub_models.files["mmproj-tiny-llama-f16.gguf"].stat().st_size


# --- errors ------------------------------------------------------------------------------------------------------


def test_missing_repo(hub_models: HubModels) -> None:
    with pytest.raises(BadInput, match=r"^no such model repo 'nobody/nothing-GGUF' on http://127\.0\.0\.1"):
        resolve_model("nobody/nothing-GGUF")


def test_repo_without_gguf(hub_models: HubModels) -> None:
    with pytest.raises(BadInput, match="has no GGUF files"):
        resolve_model(NO_GGUF_REPO)


def test_gated_repo_without_and_with_a_refused_token(hub_models: HubModels, monkeypatch: pytest.MonkeyPatch) -> None:
    resolved = resolve_model(GATED_REPO)  # the listing is public, as on the hub; the files are not
    with pytest.raises(EnvironmentProblem, match="accept its licence on the hub and set HF_TOKEN") as err:
        facts_for(resolved)
    assert err.value.exit_code == 4
    monkeypatch.setenv("HF_TOKEN", "hf_wrong")
    with pytest.raises(EnvironmentProblem, match="refused for this HF_TOKEN"):
        facts_for(resolved)
    statuses = [r.status for r in hub_models.hub.requests if "/resolve/" in r.path]
    assert 401 in statuses and 403 in statuses
    hub_models.hub.grant(GATED_REPO, "hf_granted")
    monkeypatch.setenv("HF_TOKEN", "hf_granted")
    assert facts_for(resolved).arch == "llama"


def test_unreachable_hub_falls_back_to_the_catalog(monkeypatch: pytest.MonkeyPatch, local_hub) -> None:
    url = local_hub.url
    local_hub.close()  # nothing listens there any more
    monkeypatch.setenv("HF_ENDPOINT", url)
    resolved = resolve_model("Qwen/Qwen1.5-14B-Chat-GGUF:Q4_K_M")
    assert resolved.kind == "catalog"
    assert resolved.notices and resolved.notices[0].startswith(f"can't reach {url} (offline?)")
    facts = facts_for(resolved)
    assert facts.origin == "catalog" and facts.size_bytes == 9191034336
    assert facts.files == ["qwen1_5-14b-chat-q4_k_m.gguf"]


def test_unreachable_hub_and_no_catalog_entry_is_an_environment_problem(monkeypatch, local_hub) -> None:
    url = local_hub.url
    local_hub.close()
    monkeypatch.setenv("HF_ENDPOINT", url)
    with pytest.raises(EnvironmentProblem, match="not in the offline catalog"):
        resolve_model("someone/unknown-GGUF")


def test_hf_hub_offline_uses_the_catalog_without_touching_the_network(hub_models: HubModels, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_models.hub.reset_log()
    resolved = resolve_model("qwen1.5-7b-chat")
    assert resolved.kind == "catalog" and resolved.repo == "Qwen/Qwen1.5-7B-Chat-GGUF"
    assert hub_models.hub.requests == []


def test_unknown_name(hub_models: HubModels) -> None:
    with pytest.raises(BadInput, match="unknown model 'not a model'"):
        resolve_model("not a model")


@pytest.mark.parametrize(
    ("source", "code", "message"),
    [
        ("nobody/nothing-GGUF", 2, "no such model repo 'nobody/nothing-GGUF'"),
        (NO_GGUF_REPO, 2, "has no GGUF files"),
        (f"{TINY_REPO}:IQ1_S", 2, "available: Q8_0, F16"),
        (GATED_REPO, 4, "accept its licence on the hub and set HF_TOKEN"),
    ],
)
def test_errors_are_one_line_with_the_right_exit_code(hub_models: HubModels, source, code, message) -> None:
    """Through `planner catalog refresh` (a CLI verb that resolves and reads headers), via main()'s handler."""
    env = {**os.environ, **hub_models.hub.env()}
    proc = subprocess.run(
        [sys.executable, "-m", "planner", "catalog", "refresh", source, "--catalog-dir", "/nonexistent-dir"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr


# --- local files -------------------------------------------------------------------------------------------------


def test_local_file(smollm2_path: Path) -> None:
    resolved = resolve_model(str(smollm2_path))
    assert resolved.kind == "local" and resolved.quant == "Q4_1"
    facts = facts_for(resolved)
    assert facts.n_layer == 30 and facts.header_bytes_read is not None


def test_local_shard_brings_the_whole_set(generated_ggufs: dict[str, Path], tmp_path: Path) -> None:
    parts = sorted(p for k, p in generated_ggufs.items() if k.startswith("split/"))
    for p in parts:
        shutil.copy(p, tmp_path / p.name)
    resolved = resolve_model(str(tmp_path / parts[1].name))
    assert resolved.choice().paths == [p.name for p in parts]
    assert len(facts_for(resolved).files) == 3
    (tmp_path / parts[2].name).unlink()
    with pytest.raises(BadInput, match="part of a 3-part model but only 2 parts"):
        resolve_model(str(tmp_path / parts[0].name))


def test_local_directory_with_mmproj(generated_ggufs: dict[str, Path], tmp_path: Path) -> None:
    for name in ("tiny-llama-F16.gguf", "tiny-llama-Q8_0.gguf", "mmproj-tiny-llama-f16.gguf"):
        shutil.copy(generated_ggufs[name], tmp_path / name)
    resolved = resolve_model(str(tmp_path), quant="q8_0")
    facts = facts_for(resolved)
    assert facts.quant == "Q8_0" and facts.mmproj_file == "mmproj-tiny-llama-f16.gguf"
    with pytest.raises(BadInput, match="vision projector"):
        resolve_model(str(tmp_path / "mmproj-tiny-llama-f16.gguf"))


def test_missing_local_file(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"))


def test_cli_runner_catalog_refresh_error(hub_models: HubModels, tmp_path: Path) -> None:
    """The same errors reach Typer's CliRunner as PlannerError (main() turns them into one line)."""
    from planner.cli.app import app

    result = CliRunner().invoke(app, ["catalog", "refresh", "nobody/nothing-GGUF", "--catalog-dir", str(tmp_path)])
    assert isinstance(result.exception, BadInput)
    assert result.exception.exit_code == 2


def test_local_hub_serves_real_downloads_and_drops_a_connection_once(hub_models: HubModels, tmp_path: Path) -> None:
    """The hub the deploy tests reuse: hf_hub_download gets the file; a dropped transfer is resumed by Range."""
    import hashlib

    from huggingface_hub import hf_hub_download

    hub = hub_models.hub
    hub.drop_after(TINY_REPO, "tiny-llama-F16.gguf", 5000)
    out = hf_hub_download(TINY_REPO, "tiny-llama-F16.gguf", local_dir=tmp_path, endpoint=hub.url)
    data = Path(out).read_bytes()
    assert hashlib.sha256(data).hexdigest() == hub.repos[TINY_REPO].files["tiny-llama-F16.gguf"].sha256
    gets = [r for r in hub.requests if r.method == "GET" and r.path.endswith("/tiny-llama-F16.gguf")]
    # Cut once at 5000 bytes; huggingface_hub retried within the call (from the bytes it had flushed: here 0).
    assert len(gets) == 2 and gets[0].bytes_sent == 5000
    start = int((gets[1].range or "bytes=0-").split("=")[1].split("-")[0])
    assert gets[1].bytes_sent == len(data) - start
