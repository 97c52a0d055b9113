"""Render a Plan into files a person can run: compose.yml, a command line, a systemd unit, Kubernetes manifests.

The templates live in templates/ (planner.data.paths.templates()); this module builds their context from the Plan,
the model files, the image choice and what the caller gathered (the API key, the server binary, the service user,
the hub's download URLs: RenderInputs) and returns the files' contents and modes. It writes nothing:
planner.serving.artifacts writes them without ever clobbering a file the user edited.
"""

from __future__ import annotations

import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from planner.core.argv import build_from_image, llama_cpp_python_args, llama_server_args
from planner.errors import BadInput
from planner.types.plan import Plan
from planner.types.untrusted import check_printable, comment_text, shown
from planner.types.version import VERSION

Target = Literal["compose", "command", "systemd", "k8s"]
TARGETS: tuple[str, ...] = ("compose", "command", "systemd", "k8s")

API_KEY_FILE = "api-key"  # the key, alone on its line (llama-server --api-key-file); 0600
ENV_FILE = ".env"  # LLAMA_API_KEY=...: compose env_file and systemd EnvironmentFile
CONTAINER_MODELS = "/models"
JIT_CACHE_MAX_BYTES = 4 * 2**30  # CUDA_CACHE_MAXSIZE's documented maximum; the PTX of all kernels is large


class RenderInputs(BaseModel):
    """What rendering needs from the world, gathered by the caller (planner.serving.artifacts)."""

    api_key: str
    server_binary: str = "llama-server"  # the native command's program (a path from PATH, or the bare name)
    service_user: str | None = None  # User= of the systemd unit; None runs it as root
    downloads: list[dict[str, str]] = Field(default_factory=list)  # k8s init container: name, url, sha256


class RenderedFile(BaseModel):
    name: str  # relative to the output folder
    content: str
    mode: int  # 0o600 for secrets, 0o755 for scripts, 0o644 otherwise


class RenderedFiles(BaseModel):
    """The files of one target, not yet written, and how to reach the server they describe."""

    target: str
    out_dir: str
    files: list[RenderedFile] = Field(default_factory=list)
    api_key_file: str
    endpoint: str
    alias: str
    command: list[str] = Field(default_factory=list)  # the native argv, for the command/systemd targets
    image: str | None = None
    notes: list[str] = Field(default_factory=list)


class Rendered(BaseModel):
    """What planner.serving.artifacts wrote (or left as it was) and how to reach the server it describes."""

    target: str
    out_dir: str
    files: list[str] = Field(default_factory=list)
    backups: list[str] = Field(default_factory=list)
    api_key_file: str
    endpoint: str
    alias: str
    command: list[str] = Field(default_factory=list)  # the native argv, for the command/systemd targets
    image: str | None = None
    notes: list[str] = Field(default_factory=list)


def default_alias(plan: Plan) -> str:
    """A short, stable model id for clients: the GGUF file name without extension, lower case."""
    name = Path(plan.model.file or plan.model.repo or "model").name
    name = re.sub(r"(-0+1-of-\d+)?\.gguf$", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9._-]+", "-", name.lower()).strip("-") or "model"


_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_ALIAS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def check_host(host: str) -> str:
    """--host as llama-server binds it: an IP address or a host name (it also goes into URLs and unit files)."""
    import ipaddress

    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    if len(host) <= 253 and _HOSTNAME.fullmatch(host):
        return host
    raise BadInput(f"--host {host!r}: expected an IP address or a host name, e.g. 127.0.0.1, 0.0.0.0 or ::")


def check_alias(alias: str) -> str:
    """--alias names the model for clients and, for systemd, the unit file: keep it to a file-name-safe word."""
    if not _ALIAS.fullmatch(alias):
        raise BadInput(
            f"--alias {alias!r}: use up to 128 letters, digits, '.', '_', '-' or ':', starting with a letter or digit"
        )
    return alias


def client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


def is_loopback(host: str) -> bool:
    """True when `host` binds this machine only (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host.lower().rstrip(".") == "localhost" or host.lower().endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def exposure_note(host: str, port: int, api_key_file: str) -> str | None:
    """The warning for a bind that other machines can reach; None for loopback."""
    if is_loopback(host):
        return None
    where = "every network interface" if host in ("0.0.0.0", "::", "") else host
    return (
        f"--host {host}: the server listens on {where}, so port {port} is reachable from other machines on the "
        f"network; every request still needs the API key in {api_key_file}. Use --host 127.0.0.1 to keep it local "
        "(or a firewall rule)."
    )


def endpoint_for(host: str, port: int) -> str:
    host = client_host(host)
    return f"http://[{host}]:{port}/v1" if ":" in host else f"http://{host}:{port}/v1"


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from planner.data.paths import templates

    env = Environment(
        loader=FileSystemLoader(str(templates())),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["q"] = _yaml_string
    env.filters["shq"] = shlex.quote
    env.filters["comment"] = comment_text
    env.filters["sdtext"] = systemd_text
    env.filters["sdpath"] = systemd_path_word
    return env


def _yaml_string(value: object) -> str:
    """A YAML double-quoted scalar, so no value can break the document.

    Printable characters stay as they are (UTF-8); the rest is escaped by YAML's own rules, which JSON's are
    not: JSON writes an emoji as a surrogate pair (\\ud83d\\ude00) that YAML reads as two broken characters,
    and leaves NEL, U+2028 and U+2029 raw, which YAML folds as line breaks.
    """
    return '"' + "".join(_yaml_char(ch) for ch in str(value)) + '"'


def _yaml_char(ch: str) -> str:
    if ch in '"\\':
        return "\\" + ch
    if ch.isprintable() and ch not in "\x85\u2028\u2029":
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def systemd_quote(arg: str) -> str:
    """One ExecStart= word: systemd splits on spaces, honours double quotes and expands $ and % specifiers."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("$", "$$").replace("%", "%%")
    return f'"{escaped}"' if re.search(r'[\s"\'\\$%;]', arg) or not arg else escaped


def systemd_path_word(path: str) -> str:
    """One path in a list setting (ReadOnlyPaths=): split on spaces, unquoted with backslash escapes, then
    % specifiers resolved; $ is not expanded there. Quoted, a path with spaces stays one absolute path (unquoted,
    systemd read its pieces as relative paths and dropped the whole line)."""
    escaped = path.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    return f'"{escaped}"' if re.search(r'[\s"\'\\]', path) else escaped


def systemd_text(value: object) -> str:
    """A raw string setting (Description=, EnvironmentFile=): taken as it is up to the line's end, only the %
    specifiers resolved. Control characters are refused before rendering, and the templates never end a line
    with such a value (a trailing backslash would join the next line)."""
    return str(value).replace("%", "%%")


def _used_gpus(plan: Plan) -> list[int]:
    used = [d.index for d in plan.memory.devices if d.layers or d.output_layer or d.weights_bytes]
    if used:
        return sorted(set(used))
    return [g.index for g in plan.hardware.gpus] if plan.settings.n_gpu_layers else []


def model_name(plan: Plan, model_files: list[str]) -> str:
    """What the files call the model: the repo, else the first file's name (never its folder)."""
    return plan.model.repo or Path(model_files[0]).name


def render_files(
    plan: Plan,
    inputs: RenderInputs,
    *,
    model_files: list[str],
    out_dir: Path,
    target: str = "compose",
    host: str = "127.0.0.1",
    port: int = 8080,
    alias: str | None = None,
    fit: bool = False,
) -> RenderedFiles:
    """The files of `target` for `plan` (and the API key files), as they would be written into `out_dir`."""
    if target not in TARGETS:
        raise BadInput(f"unknown target {target!r}: choose one of {', '.join(TARGETS)}")
    if not model_files:
        raise BadInput("no model file to render a deployment for")
    alias = check_alias(alias) if alias is not None else default_alias(plan)
    key = inputs.api_key
    rendered = RenderedFiles(
        target=target, out_dir=str(out_dir), api_key_file=str(out_dir / API_KEY_FILE),
        endpoint=endpoint_for(host, port), alias=alias,
    )  # fmt: skip
    # k8s binds inside the pod and is published by a ClusterIP Service: --host does not apply there.
    if target != "k8s" and (note := exposure_note(host, port, rendered.api_key_file)):
        rendered.notes.append(note)
    files = [Path(f) for f in model_files]
    ctx: dict[str, Any] = {
        "plan": plan,
        "alias": alias,
        "host": host,
        "port": port,
        "settings": plan.settings,
        "model_name": model_name(plan, model_files),
        "quant": plan.model.quant,
        "version": VERSION,
        "api_key_file": str(out_dir / API_KEY_FILE),
        "env_file": str(out_dir / ENV_FILE),
    }
    env = _environment()
    pending: list[tuple[str, str, int]] = [
        (API_KEY_FILE, key + "\n", 0o600),
        (ENV_FILE, f"LLAMA_API_KEY={key}\n", 0o600),
    ]
    if target in ("compose", "k8s"):
        pending += _container_files(plan, env, ctx, rendered, files, fit=fit, inputs=inputs)
    else:
        key_file = out_dir / API_KEY_FILE if target == "command" else None  # systemd: EnvironmentFile
        model = files[0].expanduser().absolute()  # absolute, but not resolved: a cache link keeps its name
        argv = _native_argv(plan, model, alias, host, port, fit, key_file, inputs.server_binary, rendered)
        for word in argv:  # the server binary (from PATH or --server-binary) and the interpreter are paths too
            check_printable(word, "the server command word")
        rendered.command = argv
        if target == "command":
            pending.append(("command.sh", _command_script(plan, argv, out_dir, ctx["model_name"]), 0o755))
        else:
            ctx |= {
                "exec_start": " ".join(systemd_quote(a) for a in argv),
                "user": _service_user(inputs.service_user),
                "model_dirs": sorted({str(Path(f).resolve().parent) for f in files} | {str(out_dir)}),
                "unit_name": f"llama-server-{alias}",
            }
            pending.append(
                (f"llama-server-{alias}.service", env.get_template("llama-server.service.j2").render(ctx), 0o644)
            )
    rendered.files = [RenderedFile(name=name, content=content, mode=mode) for name, content, mode in pending]
    return rendered


def _command_script(plan: Plan, argv: list[str], out_dir: Path, name: str) -> str:
    line = " ".join(shlex.quote(a) for a in argv)
    if plan.runtime == "llama-cpp-python":
        key_file = shlex.quote(str(out_dir / API_KEY_FILE))
        line = f'API_KEY="$(cat {key_file})" exec {line}'
    else:
        line = f"exec {line}"
    # The comment names the model, never its path, and spells out anything that could end the line.
    return f"#!/bin/sh\n# Rendered by planner for {comment_text(name)}; `planner deploy` rewrites it.\n{line}\n"


def _native_argv(
    plan: Plan,
    model: Path,
    alias: str,
    host: str,
    port: int,
    fit: bool,
    api_key_file: Path | None,
    server_binary: str,
    rendered: RenderedFiles,
) -> list[str]:
    if plan.runtime == "llama-cpp-python":
        args, ignored = llama_cpp_python_args(plan.settings, model_path=str(model), alias=alias, host=host, port=port)
        rendered.notes += [f"llama-cpp-python ignores {item}" for item in ignored]
        return [sys.executable, "-m", "llama_cpp.server", *args]
    binary = server_binary
    args = llama_server_args(
        plan.settings, model_path=str(model), alias=alias, host=host, port=port, fit=fit,
        api_key_file=str(api_key_file) if api_key_file else None, llama_build=_build_number(plan.llama_cpp_build),
    )  # fmt: skip
    return [binary, *args]


def _build_number(text: str | None) -> int | None:
    match = re.fullmatch(r"b?(\d+)", text or "")
    return int(match.group(1)) if match else None


_USER_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?")


def _service_user(user: str | None) -> str | None:
    """User= for the unit: who ran planner (through sudo, who ran sudo). Both come from the environment, so a
    name systemd would not take as one word is refused rather than written into the unit."""
    if user is None:
        return None
    if not _USER_NAME.fullmatch(user):
        raise BadInput(f"user name {shown(user)} (SUDO_USER or the login name) is not a valid User= for systemd")
    return None if user == "root" else user


def _container_files(
    plan: Plan,
    env: Any,
    ctx: dict[str, Any],
    rendered: RenderedFiles,
    files: list[Path],
    *,
    fit: bool,
    inputs: RenderInputs,
) -> list[tuple[str, str, int]]:
    from planner.data.engines import server_image_for

    image = server_image_for(plan.hardware)
    rendered.image = image.image
    rendered.notes += image.reasons
    if image.jit_warning:
        rendered.notes.append(image.jit_warning)
    model_in_container = f"{CONTAINER_MODELS}/{files[0].name}"
    args = llama_server_args(
        plan.settings, model_path=model_in_container, alias=ctx["alias"], host="0.0.0.0", port=ctx["port"],
        fit=fit, llama_build=build_from_image(image.image),
    )  # fmt: skip
    vendors = {g.vendor for g in plan.hardware.gpus}
    gpus = _used_gpus(plan)
    nvidia = "nvidia" in vendors and image.backend in ("cuda", "vulkan") and bool(gpus)
    dri = image.backend in ("rocm", "vulkan", "intel") and bool(plan.hardware.gpus)
    ctx |= {
        "image": image,
        "server_args": args,
        "project": "planner-" + re.sub(r"[^a-z0-9_-]+", "-", ctx["alias"])[:40].strip("-"),
        "mounts": [{"source": str(f.resolve()), "target": f"{CONTAINER_MODELS}/{f.name}"} for f in files],
        "nvidia_device_ids": [str(i) for i in gpus] if nvidia else [],
        "devices": (["/dev/kfd"] if image.backend == "rocm" else []) + (["/dev/dri"] if dri else []),
        "jit_cache_dir": image.jit_cache_dir if image.jit_warning else None,
        "jit_cache_max_bytes": JIT_CACHE_MAX_BYTES,
        "health_url": f"http://localhost:{ctx['port']}/health",
    }
    if rendered.target == "compose":
        return [("compose.yml", env.get_template("compose.yml.j2").render(ctx), 0o644)]
    size = plan.model.size_bytes or sum(f.stat().st_size for f in files if f.exists())
    host_mem = plan.memory.host.total_bytes
    ctx |= {
        "name": ctx["project"],
        "gpu_resource": "amd.com/gpu" if image.backend == "rocm" else "nvidia.com/gpu",
        "gpu_count": len(gpus) if (nvidia or image.backend == "rocm") else 0,
        "pvc_gib": math.ceil(size / 2**30) + 1,  # the files plus room for the JIT cache and a partial download
        "memory_request": f"{math.ceil(host_mem / 2**20)}Mi" if host_mem else None,
        "downloads": inputs.downloads,
        "key": inputs.api_key,
    }
    return [
        ("k8s.yaml", env.get_template("k8s.yaml.j2").render(ctx), 0o644),
        ("k8s-secret.yaml", env.get_template("k8s-secret.yaml.j2").render(ctx), 0o600),
    ]
