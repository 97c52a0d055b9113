"""The use cases: each wires the edges (probes, data files, model sources, render, deploy) to the pure core and
returns one typed result. `import planner` exposes these; the CLI is a skin over them.

Errors have standard-library bases (planner.errors): bad input is a ValueError, an environment problem an
OSError, the hub unreachable a ConnectionError, nothing fits a RuntimeError.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from planner.types.findings import Findings
from planner.types.hardware import Hardware
from planner.types.plan import Overrides, Plan, PlanRequest, Runtime

if TYPE_CHECKING:
    from planner.data.catalog import CatalogListing, RefreshResult
    from planner.data.gpus import GpuList


def probe(*, models_dir: str | Path | None = None, container: bool = True) -> Hardware:
    """This machine: GPUs of every vendor (NVML first), CPU, RAM, disk of the model cache, docker."""
    from planner.hardware.probe import probe_hardware

    return probe_hardware(Path(models_dir) if models_dir is not None else None, container=container)


def save_profile(hardware: Hardware, path: str | Path, *, force: bool = False) -> Path:
    """Write `hardware` as JSON for `--hardware FILE` / `what_if(hardware_file=...)`; refuses to replace a file
    unless `force`."""
    from planner.hardware.probe import save_hardware

    return save_hardware(hardware, Path(path), force=force)


def what_if(
    gpus: Sequence[str] | None = None,
    ram: str | None = None,
    cpu_cores: int | None = None,
    *,
    hardware_file: str | Path | None = None,
    container: bool = False,
) -> Hardware:
    """Hardware to plan for: this machine (or a saved profile) with what you name replaced.

    `gpus=["2x RTX 3090"]` replaces the GPUs (`["none"]` for CPU only), `ram="64GB"` the RAM, `cpu_cores=8` the
    cores; what is not named is probed here (or read from `hardware_file`, saved by `planner probe --save`).
    """
    from planner.hardware.whatif import resolve_hardware

    path = Path(hardware_file) if hardware_file is not None else None
    return resolve_hardware(list(gpus) if gpus is not None else None, ram, cpu_cores, path, container=container)


def plan(
    model: str | None = None,
    *,
    hardware: Hardware | None = None,
    overrides: Overrides | None = None,
    offline: bool = False,
    runtime: Runtime = "llama-server",
    margin_bytes: int | None = None,
) -> Plan:
    """How to run `model` (a repo, repo:QUANT, a .gguf path or a catalog alias) on `hardware` (default: probe).

    With no model, the strongest catalog model that runs fluently there. A plan that does not fit comes back with
    `fits == False` and the reasons; raises ValueError for bad input, planner.errors.NothingFits when not even
    the smallest file could be placed.
    """
    request = PlanRequest(
        model=model,
        hardware=hardware if hardware is not None else probe(container=False),
        runtime=runtime,
        overrides=overrides or Overrides(),
        margin_bytes=margin_bytes,
        offline=offline,
    )
    return plan_request(request)


def recommend(
    *,
    hardware: Hardware | None = None,
    overrides: Overrides | None = None,
    runtime: Runtime = "llama-server",
    margin_bytes: int | None = None,
) -> Plan:
    """The strongest catalog model that runs fluently on `hardware`; the runners-up are its alternatives."""
    return plan(None, hardware=hardware, overrides=overrides, runtime=runtime, margin_bytes=margin_bytes)


def plan_request(request: PlanRequest) -> Plan:
    """plan() for a request built elsewhere (the CLI validates options into one)."""
    from planner.core.planning import plan_named, plan_recommended
    from planner.models.candidates import candidates_for, recommended_models

    request = _without_unusable_gpus(request)
    hw = request.hardware
    if request.overrides.tensor_split is not None and len(request.overrides.tensor_split) != len(hw.gpus):
        from planner.errors import BadInput

        raise BadInput(f"--tensor-split has {len(request.overrides.tensor_split)} values for {len(hw.gpus)} GPU(s)")
    if request.model is None:
        return plan_recommended(recommended_models(hw), request)
    candidates, notices = candidates_for(
        request.model, hw, quant=request.overrides.quant, offline=request.offline, margin_bytes=request.margin_bytes
    )
    return plan_named(candidates, request, notices)


def _without_unusable_gpus(request: PlanRequest) -> PlanRequest:
    """Plan and doctor agree: a GPU the llama.cpp image has no code for (Kepler on the CUDA images) is left out
    of the plan, which says so; with none left the plan runs on the CPU and keeps llama.cpp off the GPUs."""
    from planner.data.engines import gpus_the_image_cannot_run

    hw = request.hardware
    unusable = gpus_the_image_cannot_run(hw)
    if not unusable:
        return request
    left = [g for g in hw.gpus if all(g is not u for u, _ in unusable)]
    where = "on the other GPUs" if left else "on the CPU, with llama.cpp kept off the GPU (--device none)"
    notes = [
        f"{why}: planned without it, {where} (doctor reports the same: gpu-not-in-image); a llama.cpp build "
        "with Vulkan or an older CUDA toolkit could use it, but planner has no speed measurements for that"
        for why in dict.fromkeys(why for _, why in unusable)  # a K80 board is two devices with one reason
    ]
    reduced = hw.model_copy(update={"gpus": left, "warnings": [*hw.warnings, *notes]})
    return request.model_copy(update={"hardware": reduced, "keep_off_gpus": not left})


def doctor(
    model: str | None = None,
    *,
    hardware: Hardware | None = None,
    quant: str | None = None,
    offline: bool = False,
) -> Findings:
    """What stands between this machine (or `hardware`) and a running model, each finding with its fix.

    With a model, its plan is checked too (RAM, VRAM, disk); a model that fits nowhere is an error finding.
    """
    from planner.checks import run_checks
    from planner.checks.plan_checks import model_on_disk, nothing_fits_finding, plan_findings
    from planner.errors import NothingFits

    hw = hardware if hardware is not None else probe()
    planned: Plan | None = None
    extra = []
    if model is not None:
        try:
            planned = plan(model, hardware=hw, overrides=Overrides(quant=quant), offline=offline)
        except NothingFits as err:
            extra = [nothing_fits_finding(model, err.message)]
        else:
            extra = plan_findings(model, planned)
    findings = run_checks(hw, planned, model=model, model_on_disk=model_on_disk(planned))
    findings.findings[:0] = extra
    return findings


def gpus(query: str | None = None) -> GpuList:
    """The accelerators planner knows whose name, family, architecture or vendor matches `query` (all: None)."""
    from planner.data.gpus import GpuList, closest_names, search_gpus
    from planner.errors import BadInput

    found = GpuList(search_gpus(query or None))
    if query and not found.root:
        close = closest_names(query)
        hint = f"; closest: {', '.join(close)}" if close else "; run `planner gpus` for the full list"
        raise BadInput(f"no GPU in planner's database matches {query!r}{hint}")
    return found


def catalog_list(folder: str | Path | None = None) -> CatalogListing:
    """The offline model catalog (the built-in hardware_db/models, or `folder`)."""
    from planner.models.refresh import list_catalog

    return list_catalog(Path(folder) if folder is not None else None)


def catalog_refresh(repo: str, quants: Sequence[str] | None = None, folder: str | Path | None = None) -> RefreshResult:
    """Create or update `repo`'s catalog entry from its real GGUF headers (needs the hub; reads headers only)."""
    from planner.models.refresh import refresh_entry

    return refresh_entry(repo, list(quants) if quants else None, Path(folder) if folder is not None else None)
