"""`planner deploy`, step by step: model files -> rendered files -> (launch -> verify -> detach | serve)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from planner.errors import BadInput, PlannerError
from planner.serving.artifacts import check_rendered_names, render_artifacts
from planner.serving.download import ensure_model
from planner.serving.files import api_key_for, check_writable_dir
from planner.serving.launch import Launched, launch, stop_launched
from planner.serving.report import predicted_from, python_snippet
from planner.serving.state import clear_state, save_state
from planner.serving.verify import compare_speed, verify_server
from planner.types.deploy import DeployOptions, DeployReport, LaunchReport
from planner.types.plan import Plan
from planner.types.untrusted import check_printable

LAUNCHERS = ("auto", "docker", "native", "embedded")


def checked_options(opts: DeployOptions) -> DeployOptions:
    """The options with --out and --models-dir resolved, or one BadInput line; checked before planning or
    downloading, so a typo costs a second, not a download."""
    from dataclasses import replace

    from planner.rendering.artifacts import TARGETS, check_alias, check_host

    if opts.target not in TARGETS:
        raise BadInput(f"--target {opts.target!r}: choose one of {', '.join(TARGETS)}")
    if opts.launch_with not in LAUNCHERS:
        raise BadInput(f"--launch-with {opts.launch_with!r}: expected auto, docker, native or embedded")
    if opts.detach and not opts.launch:
        raise BadInput("--detach needs --launch")
    check_host(opts.host)
    if opts.alias is not None:
        check_alias(opts.alias)
    out_dir = check_writable_dir(opts.out_dir, "--out")
    models_dir = opts.models_dir
    if models_dir is not None and opts.download:
        models_dir = check_writable_dir(models_dir, "--models-dir")
    return replace(opts, out_dir=out_dir, models_dir=models_dir)


def expected_slot_ctx(plan: Plan) -> int:
    """The per-sequence context llama-server reports: the whole context when unified or single-slot."""
    s = plan.settings
    return s.ctx_size if (s.kv_unified or s.parallel <= 1) else s.ctx_size // s.parallel


def deploy(
    plan: Plan, opts: DeployOptions, progress: Any | None = None, wait_progress: Any | None = None
) -> tuple[DeployReport, Launched | None]:
    """Fetch, render and (optionally) launch + verify. A launched, undetached server is returned still running.

    `progress` (rich) shows the download, `wait_progress` the wait for the model to load.
    """
    check_names_first(plan, opts)
    model = ensure_model(plan.model, models_dir=opts.models_dir, download=opts.download, progress=progress)
    rendered = render_artifacts(
        plan, model_files=model.files, out_dir=opts.out_dir, target=opts.target, host=opts.host, port=opts.port,
        alias=opts.alias, fit=opts.fit, force=opts.force,
    )  # fmt: skip
    out_dir = Path(rendered.out_dir)
    notes = list(rendered.notes)
    if not model.present:
        notes.append(f"--no-download: the model is not on this machine yet; it will be at {model.path}")
    report = DeployReport(
        plan=plan, model_path=model.path, model=model, out_dir=rendered.out_dir, target=opts.target,
        files=rendered.files, backups=rendered.backups, endpoint=rendered.endpoint,
        api_key_file=rendered.api_key_file, alias=rendered.alias, image=rendered.image, notes=notes,
        how_to_call=python_snippet(rendered.endpoint, rendered.api_key_file, rendered.alias),
    )  # fmt: skip
    if not opts.launch:
        return report, None
    if not model.present:
        raise PlannerError("--launch needs the model: drop --no-download", exit_code=2)
    key = api_key_for(out_dir)
    compose = out_dir / "compose.yml" if opts.target == "compose" else None
    launched = launch(
        plan, out_dir=out_dir, model_path=model.path, alias=rendered.alias, host=opts.host, port=opts.port,
        api_key=key, api_key_file=Path(rendered.api_key_file), endpoint=rendered.endpoint, fit=opts.fit,
        compose_file=compose, compose_project=_project_of(compose), method=opts.launch_with,
    )  # fmt: skip
    info = LaunchReport(
        method=launched.method, pid=launched.process.pid if launched.process else None,
        compose_project=launched.compose_project, command=launched.command, log_file=launched.log_file,
        why=launched.reasons, ignored_settings=launched.ignored, predicted=predicted_from(plan),
    )  # fmt: skip
    report.launch = info
    try:
        # Recorded before the wait, which can take minutes: if planner is killed meanwhile, `planner stop OUT_DIR`
        # still finds the server (the record holds its start time and command line, so only it is signalled).
        info.state_file = str(save_state(launched.state(out_dir)))
        verification = verify_server(
            rendered.endpoint, key, timeout_s=opts.ready_timeout_s, request_timeout_s=opts.ready_timeout_s,
            expected_model=rendered.alias, expected_ctx=expected_slot_ctx(plan), alive=launched.alive,
            progress=wait_progress,
        )  # fmt: skip
    except BaseException:
        stop_launched(launched)  # a server that never became usable is not left behind
        clear_state(out_dir)
        raise
    info.verification = verification
    info.verified = verification.ok
    info.measured = verification.measured
    if verification.measured is not None:
        info.comparison = compare_speed(verification.measured, plan.speed)
    if not verification.ok:  # not left running half-working, --detach or not
        info.stopped = stop_launched(launched)
        clear_state(out_dir)
        info.state_file = None
        return report, launched
    save_state(launched.state(out_dir, verified=True))  # `planner stop OUT_DIR` works from another terminal
    info.detached = opts.detach
    return report, launched


def check_names_first(plan: Plan, opts: DeployOptions) -> None:
    """Every path and name that the rendered files will hold, checked before a byte is downloaded or written
    (render_artifacts checks the final paths again)."""
    check_writable_dir(opts.out_dir, "--out")
    if opts.models_dir is not None and opts.download:
        check_writable_dir(opts.models_dir, "--models-dir")
    elif opts.models_dir is not None:  # not written to, but the rendered files name it
        check_printable(str(opts.models_dir.expanduser().absolute()), "--models-dir")
    elif plan.model.repo:
        from huggingface_hub.constants import HF_HUB_CACHE

        check_printable(str(HF_HUB_CACHE), "the Hugging Face cache folder (HF_HOME, HF_HUB_CACHE)")
    check_rendered_names(plan, [plan.model.file] if plan.model.file else [])


def _project_of(compose: Path | None) -> str | None:
    if compose is None or not compose.is_file():
        return None
    import yaml

    return (yaml.safe_load(compose.read_text()) or {}).get("name")


def serve_until_interrupted(launched: Launched, report: DeployReport, wait: Any) -> str:
    """Keep a foreground server running until Ctrl-C (or until it exits), then stop it cleanly."""
    import signal

    def terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt  # SIGTERM (kill, systemd, a container stop) stops the server as Ctrl-C does

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        wait(launched.process)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    message = stop_launched(launched)
    clear_state(Path(report.out_dir))
    if report.launch is not None:
        report.launch.stopped = message
    return message


def stop_now(launched: Launched, report: DeployReport) -> str:
    """Stop a server that failed verification in the foreground: nothing half-working is left running."""
    message = stop_launched(launched)
    clear_state(Path(report.out_dir))
    if report.launch is not None:
        report.launch.stopped = message
    return message


def deploy_and_serve(
    plan: Plan,
    opts: DeployOptions,
    *,
    show_report: Callable[[DeployReport], None] = lambda report: None,
    say: Callable[[str], None] = lambda line: None,
    progress: Callable[[], AbstractContextManager[Any]] | None = None,
) -> DeployReport:
    """The whole of `planner deploy`: fetch, render, and with `launch`, start and verify; then either leave the
    server running (`detach`) or serve in the foreground until Ctrl-C or SIGTERM and stop it.

    `show_report` prints the report once it is known (before the foreground wait); `say` prints a line. A server
    that fails verification is stopped, never left behind, and the failure is one PlannerError (exit 1).
    """
    from planner.serving.verify import failure_summary

    with progress() if progress is not None else nullcontext() as bars:  # closed before the foreground wait
        report, launched = deploy(plan, opts, progress=bars, wait_progress=bars)
    foreground = launched if launched is not None and not opts.detach else None
    verified = report.launch is None or report.launch.verified
    try:
        show_report(report)
        if foreground is not None and verified:
            say(f"Serving on {report.endpoint}; Ctrl-C stops it.")
            say(serve_until_interrupted(foreground, report, _wait_for))
    except KeyboardInterrupt:
        pass  # Ctrl-C before the server was being waited on: still stop it below
    finally:
        if foreground is not None and report.launch is not None and report.launch.stopped is None:
            say(stop_now(foreground, report))  # unverified, or interrupted early: nothing left running
    if not verified and report.launch is not None:
        problems = report.launch.verification.problems if report.launch.verification else []
        raise PlannerError(f"{failure_summary(problems)}; the server was stopped", exit_code=1)
    return report


def _wait_for(process: subprocess.Popen[bytes] | None) -> None:
    if process is None:  # docker: the compose project runs on its own; wait for Ctrl-C
        while True:
            time.sleep(3600)
    process.wait()
