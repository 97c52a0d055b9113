"""The use cases: each wires the edges (probes, data files, model sources, render, deploy) to the pure core and
returns one typed result. `import planner` exposes these; the CLI is a skin over them.

Errors have standard-library bases (planner.errors): bad input is a ValueError, an environment problem an
OSError, the hub unreachable a ConnectionError, nothing fits a RuntimeError.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from planner.types.findings import Findings
from planner.types.hardware import Hardware
from planner.types.plan import Overrides, Plan, PlanRequest, Runtime, UseCase

if TYPE_CHECKING:
    from collections.abc import Callable
    from contextlib import AbstractContextManager
    from typing import Any

    from planner.core.upgrades import GpuOffer, QuantFile, SmallerModel
    from planner.data.catalog import CatalogListing, RefreshResult
    from planner.data.gpus import GpuList
    from planner.rendering.artifacts import RenderedFiles
    from planner.types.deploy import BenchReport, DeployOptions, DeployReport, StopResult


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
    cpu: str | None = None,
    ram_bandwidth: str | None = None,
) -> Hardware:
    """Hardware to plan for: this machine (or a saved profile) with what you name replaced.

    `gpus=["2x RTX 3090"]` replaces the GPUs (`["none"]` for CPU only) and makes it another machine, whose CPU is
    `cpu` ("Ryzen 9 7950X"), else the SoC the GPU implies, else a stated default, never this one's; `ram="64GB"`
    the RAM, `cpu_cores=8` the cores, `ram_bandwidth="20GB/s"` the RAM bandwidth; what is not named is probed here
    (or read from `hardware_file`, saved by `planner probe --save`).
    """
    from planner.hardware.whatif import resolve_hardware

    path = Path(hardware_file) if hardware_file is not None else None
    return resolve_hardware(
        list(gpus) if gpus is not None else None,
        ram,
        cpu_cores,
        path,
        container=container,
        cpu=cpu,
        ram_bandwidth=ram_bandwidth,
    )


def plan(
    model: str | None = None,
    *,
    hardware: Hardware | None = None,
    overrides: Overrides | None = None,
    offline: bool = False,
    runtime: Runtime = "llama-server",
    margin_bytes: int | None = None,
    use_case: UseCase = "chat",
    upgrade: bool = False,
    prices: str | Path | Mapping[str, float] | None = None,
) -> Plan:
    """How to run `model` (a repo, repo:QUANT, a .gguf path or a catalog alias) on `hardware` (default: probe).

    With no model, the strongest catalog model that runs fluently there. A plan that does not fit comes back with
    `fits == False` and the reasons; raises ValueError for bad input, planner.errors.NothingFits when not even
    the smallest file could be placed. With `upgrade`, a plan that does not fit or runs under the usable speed
    also carries `upgrades`: the smallest changes that fix it (more RAM, another card, a smaller quant or model,
    less context, fewer slots), each re-planned; `prices` (a YAML/JSON file or a mapping of GPU name -> price)
    orders the cards by price, which planner never invents.
    """
    request = PlanRequest(
        model=model,
        hardware=hardware if hardware is not None else probe(container=False),
        runtime=runtime,
        overrides=overrides or Overrides(),
        margin_bytes=margin_bytes,
        offline=offline,
        use_case=use_case,
    )
    return plan_request(request, upgrade=upgrade, prices=prices)


def recommend(
    *,
    hardware: Hardware | None = None,
    overrides: Overrides | None = None,
    runtime: Runtime = "llama-server",
    margin_bytes: int | None = None,
    use_case: UseCase = "chat",
) -> Plan:
    """The catalog model that runs fluently on `hardware` with the best public rating for `use_case` (chat,
    code or reasoning: LMArena's matching category) less its quant's cost; the runners-up are its alternatives."""
    return plan(
        None, hardware=hardware, overrides=overrides, runtime=runtime, margin_bytes=margin_bytes, use_case=use_case
    )


def plan_request(
    request: PlanRequest, *, upgrade: bool = False, prices: str | Path | Mapping[str, float] | None = None
) -> Plan:
    """plan() for a request built elsewhere (the CLI validates options into one)."""
    price_table = _price_table(prices, upgrade)  # a bad price file fails before any planning
    planned = _plan_request(request)
    return _with_upgrades(planned, request, price_table) if upgrade else planned


def _plan_request(request: PlanRequest) -> Plan:
    from planner.core.planning import plan_named, plan_recommended
    from planner.models.candidates import candidates_for, recommended_models

    request = _without_unusable_gpus(request)
    hw = request.hardware
    if request.overrides.tensor_split is not None and len(request.overrides.tensor_split) != len(hw.gpus):
        from planner.errors import BadInput

        raise BadInput(f"--tensor-split has {len(request.overrides.tensor_split)} values for {len(hw.gpus)} GPU(s)")
    request, hw = _with_backend(request)
    if request.use_case == "reasoning" and request.overrides.min_ctx is None:
        from planner.core.objective import REASONING_CTX  # thinking traces need room: the reasoning floor

        overrides = request.overrides.model_copy(update={"min_ctx": REASONING_CTX})
        request = request.model_copy(update={"overrides": overrides})
    if request.model is None:
        return plan_recommended(recommended_models(hw, request.use_case), request)
    candidates, notices = candidates_for(
        request.model, hw, quant=request.overrides.quant, offline=request.offline, margin_bytes=request.margin_bytes
    )
    return plan_named(candidates, request, notices)


def _price_table(prices: str | Path | Mapping[str, float] | None, upgrade: bool) -> dict[str, float] | None:
    from planner.data.prices import load_prices, prices_from
    from planner.errors import BadInput

    if prices is None:
        return None
    if not upgrade:
        raise BadInput("--prices prices the cards that --upgrade suggests; add --upgrade")
    if isinstance(prices, Mapping):
        return prices_from(dict(prices))
    return load_prices(Path(prices))


def _with_upgrades(planned: Plan, request: PlanRequest, prices: dict[str, float] | None) -> Plan:
    """The plan with its upgrade advice: the tables the pure core needs (cards, the model's files, smaller models
    of its line) read here, and every change re-planned by the same use case as the plan itself."""
    from planner.core.upgrades import advise

    if request.model is None:
        note = "upgrade advice is for a named model: a recommendation is already one that runs fluently here"
        return planned.model_copy(update={"upgrade_notes": [note]})
    advice = advise(
        planned,
        request,
        _replan,
        offers=_gpu_offers(request, prices),
        prices_given=prices is not None,
        quants=_quant_files(request),
        smaller_models=_smaller_models(planned),
    )
    return planned.model_copy(update={"upgrades": advice.upgrades, "upgrade_notes": advice.notes})


def _replan(request: PlanRequest) -> Plan | str:
    from planner.errors import BadInput, NothingFits

    try:
        return _plan_request(request)
    except NothingFits as err:
        return f"does not fit: {err.message}"
    except BadInput as err:  # e.g. the smaller model has no file planner can read
        return err.message


def _gpu_offers(request: PlanRequest, prices: dict[str, float] | None) -> list[GpuOffer]:
    """The database's cards a machine could swap in: one device per board, not a whole unified-memory machine,
    of the vendor a fixed --backend runs on, and with code in the image planner deploys."""
    from planner.core.upgrades import GpuOffer
    from planner.data.engines import gpus_the_image_cannot_run
    from planner.data.gpus import gpu_from_spec, load_gpus

    backend = request.overrides.backend
    if backend == "cpu":
        return []
    vendor = _BACKEND_VENDOR.get(backend) if backend else None
    offers = []
    for spec in load_gpus():
        if spec.unified_memory or spec.devices_per_board > 1 or (vendor and spec.vendor != vendor):
            continue
        gpu = gpu_from_spec(spec, 0)
        if gpus_the_image_cannot_run(request.hardware.model_copy(update={"gpus": [gpu]})):
            continue
        offers.append(GpuOffer(gpu, prices.get(spec.name) if prices else None))
    return offers


def _quant_files(request: PlanRequest) -> list[QuantFile]:
    """The model's files when the user fixed the quant (else the plan already compared them all)."""
    from planner.core.upgrades import QuantFile
    from planner.models.sources import resolve_model

    assert request.model is not None
    resolved = resolve_model(request.model, offline=request.offline, quant=request.overrides.quant)
    if not (request.overrides.quant or resolved.quant):
        return []
    return [QuantFile(c.quant, c.size_bytes) for c in resolved.candidates]


def _smaller_models(planned: Plan) -> list[SmallerModel]:
    """Smaller catalog models of the plan's model line: the family without its minor version (Llama 3.3 and
    Llama 3.1 are both Llama 3; Qwen2.5 is Qwen2)."""
    import re

    from planner.core.upgrades import SmallerModel
    from planner.data.catalog import find, load_catalog

    entry = find(planned.model.name) or (find(planned.model.repo) if planned.model.repo else None)
    if entry is None:
        return []

    def line(family: str) -> str:
        return re.sub(r"(\d)\.\d+$", r"\1", family)

    return [
        SmallerModel(m.aliases[0] if m.aliases else m.name, m.shape.n_params, tuple(q.quant for q in m.quants))
        for m in load_catalog()
        if line(m.family) == line(entry.family) and m.shape.n_params < entry.shape.n_params
    ]


# which GPU vendor each backend runs on (Vulkan: any)
_BACKEND_VENDOR = {"cuda": "nvidia", "rocm": "amd", "metal": "apple", "sycl": "intel"}


def _with_backend(request: PlanRequest) -> tuple[PlanRequest, Hardware]:
    """The request with its backend settled: the user's --backend (checked against the GPUs; cpu drops them), else
    the backend of the image planner deploys (ROCm or Vulkan on AMD by the image's gfx targets), so the speed is
    predicted for what will run."""
    from planner.errors import BadInput

    hw = request.hardware
    backend: str | None = request.overrides.backend
    if backend == "cpu":
        hw = hw.model_copy(update={"gpus": [], "warnings": [*hw.warnings, "--backend cpu: the GPUs are not used"]})
    elif backend is not None:
        vendor = _BACKEND_VENDOR.get(backend)
        if not hw.gpus or (vendor and any(g.vendor != vendor for g in hw.gpus)):
            names = ", ".join(g.name for g in hw.gpus) or "no GPU"
            raise BadInput(f"--backend {backend} does not run on the GPUs planned for ({names})")
    elif any(g.vendor in ("amd", "intel") for g in hw.gpus) and not any(g.vendor == "nvidia" for g in hw.gpus):
        from planner.data.engines import server_image_for

        image = server_image_for(hw).backend
        backend = {"intel": "sycl"}.get(image, image) if image in ("rocm", "vulkan", "intel") else None
    if backend == request.overrides.backend and hw is request.hardware:
        return request, hw
    overrides = request.overrides.model_copy(update={"backend": backend})
    return request.model_copy(update={"overrides": overrides, "hardware": hw}), hw


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


def deploy(
    model: str | Plan | PlanRequest,
    options: DeployOptions | None = None,
    *,
    hardware: Hardware | None = None,
    overrides: Overrides | None = None,
    offline: bool = False,
    runtime: Runtime = "llama-server",
    margin_bytes: int | None = None,
    show_report: Callable[[DeployReport], None] | None = None,
    say: Callable[[str], None] | None = None,
    progress: Callable[[], AbstractContextManager[Any]] | None = None,
) -> DeployReport:
    """Plan `model` (or take a Plan), download it (resumable, sha256-verified), write the run files of
    `options.target` into `options.out_dir`, and with `options.launch` start and verify the server.

    With `launch` and not `detach` it serves in the foreground until Ctrl-C or SIGTERM, then stops the server;
    with `detach` the server keeps running (`stop(out_dir)`). A server that fails verification is stopped and a
    PlannerError (exit code 1) is raised. `show_report` and `say` receive the report and progress lines;
    `progress` makes a rich Progress (as a context manager) for the download and the wait for the model.
    """
    from planner.errors import NothingFits
    from planner.serving.pipeline import checked_options, deploy_and_serve
    from planner.types.deploy import DeployOptions

    opts = checked_options(options or DeployOptions(out_dir=Path("planner-deploy")))
    if isinstance(model, PlanRequest):
        planned = plan_request(model)
    elif isinstance(model, str):
        planned = plan(
            model,
            hardware=hardware if hardware is not None else probe(),
            overrides=overrides,
            offline=offline,
            runtime=runtime,
            margin_bytes=margin_bytes,
        )
    else:
        planned = model
    if not planned.fits:
        name = planned.model.source or planned.model.name
        raise NothingFits(f"{name} does not fit this hardware; `planner plan {name}` shows the alternatives")
    return deploy_and_serve(
        planned, opts, show_report=show_report or (lambda report: None), say=say or (lambda line: None),
        progress=progress,
    )  # fmt: skip


def render(
    plan: Plan,
    *,
    target: str = "compose",
    out_dir: str | Path = "planner-deploy",
    host: str = "127.0.0.1",
    port: int = 8080,
    alias: str | None = None,
    fit: bool = False,
    models_dir: str | Path | None = None,
) -> RenderedFiles:
    """The run files of `target` for `plan`, as they would be written into `out_dir` (contents and modes);
    nothing is written and nothing downloaded (the model's files are named where the download would put them)."""
    from planner.serving.artifacts import prepare
    from planner.serving.download import ensure_model

    where = Path(models_dir) if models_dir is not None else None
    files = ensure_model(plan.model, models_dir=where, download=False)
    return prepare(
        plan, model_files=files.files, out_dir=Path(out_dir), target=target, host=host, port=port, alias=alias,
        fit=fit,
    )  # fmt: skip


def bench(
    url: str,
    *,
    api_key: str | None = None,
    api_key_file: str | Path | None = None,
    concurrency: int = 1,
    requests: int = 8,
    timeout_s: float = 60,
    progress: Callable[[], AbstractContextManager[Any]] | None = None,
) -> BenchReport:
    """Verify an OpenAI-compatible server at `url` and measure it: tokens/s, time to first token, latency.
    `report.failure` says in one line why it did not pass (None when it passed)."""
    from planner.errors import BadInput
    from planner.serving.bench import bench_failure, check_url, run_bench

    check_url(url)
    if api_key_file is not None:
        try:
            api_key = Path(api_key_file).read_text(encoding="utf-8").strip().splitlines()[0]
        except (OSError, IndexError, UnicodeDecodeError):
            raise BadInput(f"cannot read an API key from {api_key_file}") from None
    with progress() if progress is not None else nullcontext() as bars:
        report = run_bench(url, api_key, concurrency=concurrency, requests=requests, timeout_s=timeout_s, progress=bars)
    report.failure = bench_failure(report)
    return report


def stop(out_dir: str | Path = "planner-deploy", *, timeout_s: float = 20) -> StopResult:
    """Stop the server a detached deploy left running in `out_dir` (only a process confirmed to be it)."""
    from planner.serving.launch import stop_deployment
    from planner.types.deploy import StopResult

    state, message = stop_deployment(Path(out_dir).expanduser().resolve(), timeout_s=timeout_s)
    return StopResult(stopped=True, message=message, state=state)
