"""Rendered files: valid against the official schemas, explicit flags, secrets kept out, user edits kept."""

from __future__ import annotations

import json
import shlex
import shutil
import stat
import subprocess
from importlib.resources import files as package_files
from pathlib import Path

import pytest
import yaml

from planner.core.argv import llama_cpp_python_args, llama_server_args
from planner.errors import BadInput
from planner.serving.artifacts import render_artifacts
from planner.types.hardware import Gpu
from planner.types.model import ModelFile
from planner.types.plan import Plan, Settings

from .conftest import TESLA_P4, make_plan


def compose_errors(doc: dict) -> list[str]:
    """Validate with the compose-spec schema that ships inside check-jsonschema (vendor.compose-spec)."""
    from jsonschema.validators import validator_for

    schema_file = package_files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    validator = validator_for(schema)(schema)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(doc)]


def k8s_docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def validate_k8s(path: Path) -> None:
    import kubernetes_validate

    for doc in k8s_docs(path):
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def render(plan: Plan, out: Path, model: Path, **kw) -> object:
    return render_artifacts(plan, model_files=[str(model)], out_dir=out, **kw)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- compose ------------------------------------------------------------------------------------------------


def test_compose_for_a_tesla_p4_is_valid_and_explicit(p4_plan: Plan, smollm2_path: Path, tmp_path: Path):
    result = render(p4_plan, tmp_path, smollm2_path, port=9123)
    text = (tmp_path / "compose.yml").read_text()
    doc = yaml.safe_load(text)
    assert compose_errors(doc) == []
    service = doc["services"]["llama-server"]
    # The image is pinned to a build and is the CUDA 12 one (CUDA 13 has no Pascal code).
    assert service["image"].startswith("ghcr.io/ggml-org/llama.cpp:server-cuda-b")
    assert "latest" not in service["image"] and result.image == service["image"]
    (gpu,) = service["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == {"driver": "nvidia", "device_ids": ["0"], "capabilities": ["gpu"]}
    args = service["command"]
    assert args == llama_server_args(
        p4_plan.settings, model_path=f"/models/{smollm2_path.name}", alias=result.alias, host="0.0.0.0",
        port=9123, llama_build=10470,
    )  # fmt: skip
    assert args[args.index("--fit") + 1] == "off"
    # Published on loopback only, on the port the server listens on; the healthcheck asks that port.
    assert service["ports"] == [{"target": 9123, "published": "9123", "host_ip": "127.0.0.1", "protocol": "tcp"}]
    assert service["healthcheck"]["test"] == ["CMD", "curl", "-f", "http://localhost:9123/health"]
    assert service["restart"] == "unless-stopped"
    (model_mount,) = [v for v in service["volumes"] if v["type"] == "bind"]
    assert model_mount["read_only"] is True and model_mount["source"] == str(smollm2_path.resolve())
    # Pascal: PTX JIT cache volume, and the minimum driver named.
    assert {"type": "volume", "source": "cuda-jit-cache", "target": "/root/.nv/ComputeCache"} in service["volumes"]
    assert "cuda-jit-cache" in doc["volumes"]
    assert "driver >= 570" in text


def test_the_api_key_is_never_in_compose_yml(p4_plan: Plan, smollm2_path: Path, tmp_path: Path):
    result = render(p4_plan, tmp_path, smollm2_path)
    key = Path(result.api_key_file).read_text().strip()
    assert len(key) >= 40
    assert key not in (tmp_path / "compose.yml").read_text()
    assert (tmp_path / ".env").read_text() == f"LLAMA_API_KEY={key}\n"
    assert mode(tmp_path / ".env") == 0o600 and mode(tmp_path / "api-key") == 0o600
    assert yaml.safe_load((tmp_path / "compose.yml").read_text())["services"]["llama-server"]["env_file"] == [".env"]


def test_host_0000_publishes_on_all_interfaces_and_fit_can_be_asked_for(
    p4_plan: Plan, smollm2_path: Path, tmp_path: Path
):
    result = render(p4_plan, tmp_path, smollm2_path, host="0.0.0.0", fit=True)
    service = yaml.safe_load((tmp_path / "compose.yml").read_text())["services"]["llama-server"]
    assert service["ports"][0]["host_ip"] == "0.0.0.0"
    assert service["command"][service["command"].index("--fit") + 1] == "on"
    assert result.endpoint == "http://127.0.0.1:8080/v1"


def test_compose_for_amd_and_for_cpu_only(smollm2_path: Path, tmp_path: Path):
    rx = Gpu(name="Radeon RX 7900 XTX", vendor="amd", gfx_target="gfx1100", memory_total_bytes=24 * 2**30)
    render(make_plan(smollm2_path, [rx]), tmp_path / "amd", smollm2_path)
    amd = yaml.safe_load((tmp_path / "amd" / "compose.yml").read_text())
    assert compose_errors(amd) == []
    service = amd["services"]["llama-server"]
    assert service["image"].startswith("ghcr.io/ggml-org/llama.cpp:server-rocm-b")
    assert service["devices"] == ["/dev/kfd", "/dev/dri"] and "deploy" not in service

    render(make_plan(smollm2_path, []), tmp_path / "cpu", smollm2_path)
    cpu = yaml.safe_load((tmp_path / "cpu" / "compose.yml").read_text())
    assert compose_errors(cpu) == []
    service = cpu["services"]["llama-server"]
    assert service["image"].startswith("ghcr.io/ggml-org/llama.cpp:server-b")
    assert "deploy" not in service and "devices" not in service and "volumes" not in cpu


# --- the other targets --------------------------------------------------------------------------------------


def test_k8s_manifests_are_valid_and_keep_the_key_in_a_secret(smollm2_path: Path, tmp_path: Path):
    plan = make_plan(smollm2_path, [TESLA_P4], repo="bartowski/SmolLM2-135M-Instruct-GGUF")
    plan.model.file_info = [ModelFile(path=smollm2_path.name, sha256="ab" * 32)]
    result = render(plan, tmp_path, smollm2_path, target="k8s")
    validate_k8s(tmp_path / "k8s.yaml")
    validate_k8s(tmp_path / "k8s-secret.yaml")
    docs = {d["kind"]: d for d in k8s_docs(tmp_path / "k8s.yaml")}
    assert set(docs) == {"PersistentVolumeClaim", "Deployment", "Service"}
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    assert server["resources"]["limits"] == {"nvidia.com/gpu": 1}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert server[probe]["httpGet"] == {"path": "/health", "port": "http"}
    (key_env,) = [e for e in server["env"] if e["name"] == "LLAMA_API_KEY"]
    assert key_env["valueFrom"]["secretKeyRef"]["name"] == docs["Deployment"]["metadata"]["name"] + "-api-key"
    # The init container fetches the file from the hub and checks its sha256.
    script = pod["initContainers"][0]["args"][0]
    assert "ab" * 32 in script and "sha256sum -c" in script and f"/resolve/main/{smollm2_path.name}" in script
    key = Path(result.api_key_file).read_text().strip()
    assert key not in (tmp_path / "k8s.yaml").read_text()
    assert key in (tmp_path / "k8s-secret.yaml").read_text() and mode(tmp_path / "k8s-secret.yaml") == 0o600


def test_systemd_unit_parses_and_is_hardened(p4_plan: Plan, smollm2_path: Path, tmp_path: Path):
    true = shutil.which("true")
    assert true
    result = render(p4_plan, tmp_path, smollm2_path, target="systemd", server_binary=true)
    (unit,) = tmp_path.glob("*.service")
    text = unit.read_text()
    key = Path(result.api_key_file).read_text().strip()
    assert key not in text
    assert f"EnvironmentFile={tmp_path.resolve() / '.env'}" in text
    for line in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only", "PrivateTmp=yes"):
        assert line in text.splitlines()
    exec_line = next(line for line in text.splitlines() if line.startswith("ExecStart="))
    assert shlex.split(exec_line[len("ExecStart=") :]) == result.command
    if shutil.which("systemd-analyze"):
        done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert str(unit) not in done.stderr, done.stderr  # no "unknown key ... ignoring" warnings about our unit
    sections = [line for line in text.splitlines() if line.startswith("[")]
    assert sections == ["[Unit]", "[Service]", "[Install]"]


def test_command_line_round_trips_through_shlex(p4_plan: Plan, smollm2_path: Path, tmp_path: Path):
    odd = tmp_path / "my models" / "it's here"
    odd.mkdir(parents=True)
    model = odd / smollm2_path.name
    model.symlink_to(smollm2_path)
    result = render(p4_plan, tmp_path / "out dir", model, target="command", server_binary="/opt/llama.cpp/llama-server")
    script = (tmp_path / "out dir" / "command.sh").read_text().splitlines()
    assert script[0] == "#!/bin/sh" and script[-1].startswith("exec ")
    argv = shlex.split(script[-1])[1:]
    assert argv == result.command
    assert argv[argv.index("--model") + 1] == str(model)
    assert argv[argv.index("--api-key-file") + 1] == str((tmp_path / "out dir").resolve() / "api-key")
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert mode(tmp_path / "out dir" / "command.sh") == 0o755


def test_embedded_command_passes_the_key_by_environment(smollm2_path: Path, tmp_path: Path):
    plan = make_plan(smollm2_path, [], runtime="llama-cpp-python")
    result = render(plan, tmp_path, smollm2_path, target="command")
    line = (tmp_path / "command.sh").read_text().splitlines()[-1]
    assert line.startswith('API_KEY="$(cat ') and "-m llama_cpp.server" in line
    assert Path(result.api_key_file).read_text().strip() not in line


# --- never clobber ------------------------------------------------------------------------------------------


def test_an_edited_file_is_kept_unless_forced_and_then_backed_up(p4_plan: Plan, smollm2_path: Path, tmp_path: Path):
    first = render(p4_plan, tmp_path, smollm2_path)
    compose = tmp_path / "compose.yml"
    original = compose.read_text()
    key = Path(first.api_key_file).read_text()
    render(p4_plan, tmp_path, smollm2_path)  # unchanged files re-render quietly
    edited = original.replace("restart: unless-stopped", "restart: always")
    compose.write_text(edited)
    with pytest.raises(BadInput, match="changed since planner wrote it.*--force"):
        render(p4_plan, tmp_path, smollm2_path, port=9000)
    assert compose.read_text() == edited  # untouched
    forced = render(p4_plan, tmp_path, smollm2_path, port=9000, force=True)
    assert (tmp_path / "compose.yml.bak").read_text() == edited
    assert forced.backups == [str(tmp_path.resolve() / "compose.yml.bak")]
    assert '"9000"' in compose.read_text()
    assert Path(forced.api_key_file).read_text() == key  # the key survives re-renders


def test_a_file_planner_did_not_write_is_not_replaced(p4_plan: Plan, smollm2_path: Path, tmp_path: Path):
    (tmp_path / "compose.yml").write_text("services: {}\n")
    with pytest.raises(BadInput, match="--force"):
        render(p4_plan, tmp_path, smollm2_path)
    assert not (tmp_path / ".env").exists()  # refused before writing anything


# --- flags --------------------------------------------------------------------------------------------------

FLAG_FOR = {  # every Settings knob and the llama-server flag that carries it
    "n_gpu_layers": "--n-gpu-layers",
    "ctx_size": "--ctx-size",
    "batch_size": "--batch-size",
    "ubatch_size": "--ubatch-size",
    "flash_attn": "--flash-attn",
    "cache_type_k": "--cache-type-k",
    "cache_type_v": "--cache-type-v",
    "threads": "--threads",
    "parallel": "--parallel",
    "kv_unified": "--kv-unified",
    "tensor_split": "--tensor-split",
    "n_cpu_moe": "--n-cpu-moe",
    "mmap": "--load-mode",
    "swa_full": "--swa-full",
    "split_mode": "--split-mode",
    "gpu_off": "--device",
}


def test_every_settings_knob_becomes_a_llama_server_flag():
    assert set(FLAG_FOR) == set(Settings.model_fields), "a new Settings field needs a llama-server flag"
    s = Settings(tensor_split=[3, 1], swa_full=True, n_cpu_moe=4, mmap=False, kv_unified=True, gpu_off=True)
    args = llama_server_args(s, model_path="/m.gguf", alias="m", host="127.0.0.1", port=8080)
    for flag in FLAG_FOR.values():
        assert flag in args
    assert args[args.index("--tensor-split") + 1] == "3,1"
    assert args[args.index("--load-mode") + 1] == "none"
    assert args[args.index("--device") + 1] == "none"
    assert "--api-key" not in args
    old = llama_server_args(s, model_path="/m.gguf", alias="m", host="h", port=1, llama_build=9000)
    assert "--no-mmap" in old and "--load-mode" not in old
    off = llama_server_args(Settings(kv_unified=False), model_path="/m", alias="m", host="h", port=1)
    assert "--no-kv-unified" in off


def test_llama_cpp_python_args_use_its_own_names_and_ggml_type_ids():
    s = Settings(n_gpu_layers=20, ctx_size=4096, cache_type_k="q8_0", cache_type_v="f16", flash_attn="on", parallel=2)
    args, ignored = llama_cpp_python_args(s, model_path="/m.gguf", alias="m", host="127.0.0.1", port=8000)
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--n_gpu_layers"] == "20" and pairs["--n_ctx"] == "4096"
    assert pairs["--type_k"] == "8" and pairs["--type_v"] == "1"  # GGML_TYPE_Q8_0, GGML_TYPE_F16
    assert pairs["--flash_attn"] == "true"
    assert ignored and "parallel=2" in ignored[0]
