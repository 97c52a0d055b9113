"""Rendered files onto disk: gather what rendering needs from this machine (the API key already in the folder, the
llama-server on PATH, the user a unit runs as, the hub's download URLs), render, then write without clobbering a
file the user edited (planner.serving.files keeps the manifest and the .bak copies).
"""

from __future__ import annotations

import getpass
import re
import shutil
from pathlib import Path

from planner.config import sudo_user
from planner.rendering.artifacts import (
    API_KEY_FILE,
    Rendered,
    RenderedFiles,
    RenderInputs,
    render_files,
)
from planner.serving.files import ManagedWriter, api_key_for, check_writable_dir, make_dir
from planner.types.plan import Plan
from planner.types.untrusted import check_printable


def render_inputs(
    plan: Plan, model_files: list[str], out_dir: Path, *, server_binary: str | None = None
) -> RenderInputs:
    """The API key (kept from out_dir/api-key, else a new random one), the server binary, the unit's user and the
    hub URLs of the model files, read from this machine."""
    return RenderInputs(
        api_key=api_key_for(out_dir),
        server_binary=server_binary or shutil.which("llama-server") or "llama-server",
        service_user=sudo_user() or getpass.getuser(),
        downloads=hub_downloads(plan, [Path(f) for f in model_files]),
    )


def prepare(
    plan: Plan,
    *,
    model_files: list[str],
    out_dir: Path,
    target: str = "compose",
    host: str = "127.0.0.1",
    port: int = 8080,
    alias: str | None = None,
    fit: bool = False,
    server_binary: str | None = None,
) -> RenderedFiles:
    """The files `target` would write into `out_dir`, rendered; nothing is written."""
    out_dir = check_writable_dir(out_dir, "--out")
    check_rendered_names(plan, model_files)
    inputs = render_inputs(plan, model_files, out_dir, server_binary=server_binary)
    return render_files(
        plan, inputs, model_files=model_files, out_dir=out_dir, target=target, host=host, port=port, alias=alias,
        fit=fit,
    )  # fmt: skip


def render_artifacts(
    plan: Plan,
    *,
    model_files: list[str],
    out_dir: Path,
    target: str = "compose",
    host: str = "127.0.0.1",
    port: int = 8080,
    alias: str | None = None,
    fit: bool = False,
    force: bool = False,
    server_binary: str | None = None,
) -> Rendered:
    """Render `target` for `plan` into `out_dir`, plus the API key files. Raises BadInput on an edited file."""
    rendered = prepare(
        plan, model_files=model_files, out_dir=out_dir, target=target, host=host, port=port, alias=alias, fit=fit,
        server_binary=server_binary,
    )  # fmt: skip
    return write_rendered(rendered, force=force)


def write_rendered(rendered: RenderedFiles, *, force: bool = False) -> Rendered:
    """Write the files; an edited one is refused (BadInput) unless `force`, which keeps a .bak. The API key
    file, once there, is the user's: it is never rewritten."""
    out_dir = Path(rendered.out_dir)
    make_dir(out_dir)
    writer = ManagedWriter(out_dir, force=force)
    writer.check([f.name for f in rendered.files])
    for f in rendered.files:
        if f.name == API_KEY_FILE and (out_dir / f.name).exists():
            writer.keep(f.name)
            continue
        writer.write(f.name, f.content, f.mode)
    writer.save_manifest()
    return Rendered(
        target=rendered.target, out_dir=rendered.out_dir, files=[str(p) for p in writer.written],
        backups=[str(p) for p in writer.backups], api_key_file=rendered.api_key_file, endpoint=rendered.endpoint,
        alias=rendered.alias, command=rendered.command, image=rendered.image, notes=rendered.notes,
    )  # fmt: skip


def check_rendered_names(plan: Plan, model_files: list[str]) -> None:
    """Refuse (BadInput) any path or name that goes into a rendered file and holds a control character."""
    for path in model_files:
        check_printable(str(path), "model file")
        check_printable(str(Path(path).expanduser().resolve()), "model file (where its link leads)")
    for name in plan.model.file_names():  # the hub's names: the k8s init container downloads them
        check_printable(name, "model file name")
    for key, value in (("repo", plan.model.repo), ("quant", plan.model.quant)):
        if value:
            check_printable(value, f"model {key}")


def hub_downloads(plan: Plan, files: list[Path]) -> list[dict[str, str]]:
    """For the k8s init container: the download URL and sha256 of each hub file (empty for a local model)."""
    repo = plan.model.repo
    if not repo:
        return []
    from huggingface_hub import hf_hub_url

    known = plan.model.known_sha256()
    revision = plan.model.revision or "main"  # the commit the plan was made on, when the hub listed it
    names = plan.model.file_names()
    out = []
    for name, path in zip(names, files, strict=False):
        sha = known.get(name) or blob_sha(path)
        out.append({"name": Path(name).name, "url": hf_hub_url(repo, name, revision=revision), "sha256": sha})
    return out


def blob_sha(path: Path) -> str:
    """In the hub cache a file links to blobs/<sha256> (for LFS files): the name is the checksum."""
    target = path.resolve().name
    return target if re.fullmatch(r"[0-9a-f]{64}", target) else ""
