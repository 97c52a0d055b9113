"""`planner deploy MODEL`, `planner stop [OUT_DIR]`, `planner bench URL`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from planner.cli.options import JsonOpt, PlanOptions, with_plan_options
from planner.errors import BadInput, NothingFits, PlannerError

if TYPE_CHECKING:
    import subprocess

    from rich.console import Console, RenderableType
    from rich.progress import ProgressColumn, Task

    from planner.types.deploy import DeployOptions
    from planner.types.plan import Plan

DEFAULT_OUT = Path("planner-deploy")

DEPLOY_EPILOG = """Examples:

  planner deploy Qwen/Qwen1.5-14B-Chat-GGUF                       download, write compose.yml + .env

  planner deploy Qwen/Qwen1.5-14B-Chat-GGUF --launch --detach      ... start it, verify it, leave it running

  planner deploy ./model.gguf --target systemd --out /srv/llm      a systemd unit for a local file

  planner deploy qwen1.5-14b-chat:Q3_K_M --gpu "Tesla P4" --target k8s --no-download
"""

_D = "Deployment"


def register(app: typer.Typer) -> None:
    @app.command("deploy", epilog=DEPLOY_EPILOG)
    @with_plan_options
    def deploy(
        model: Annotated[str, typer.Argument(help="owner/repo, owner/repo:QUANT, hf.co/..., a .gguf path or alias.")],
        out: Annotated[
            Path, typer.Option("--out", "-o", help="Folder for the rendered files.", rich_help_panel=_D)
        ] = DEFAULT_OUT,
        target: Annotated[
            str, typer.Option("--target", help="compose, command, systemd or k8s.", rich_help_panel=_D)
        ] = "compose",
        host: Annotated[
            str, typer.Option("--host", help="Listen address (0.0.0.0 exposes it).", rich_help_panel=_D)
        ] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", min=1, max=65535, rich_help_panel=_D)] = 8080,
        alias: Annotated[str | None, typer.Option("--alias", help="Model id clients use.", rich_help_panel=_D)] = None,
        models_dir: Annotated[
            Path | None,
            typer.Option("--models-dir", help="Download here instead of the HF cache.", rich_help_panel=_D),
        ] = None,
        no_download: Annotated[
            bool, typer.Option("--no-download", help="Plan and render only.", rich_help_panel=_D)
        ] = False,
        fit: Annotated[
            bool, typer.Option("--fit", help="Let llama.cpp re-fit at start (--fit on).", rich_help_panel=_D)
        ] = False,
        force: Annotated[
            bool, typer.Option("--force", help="Replace edited files (keeps .bak).", rich_help_panel=_D)
        ] = False,
        launch: Annotated[bool, typer.Option("--launch", help="Start and verify it.", rich_help_panel=_D)] = False,
        detach: Annotated[
            bool, typer.Option("--detach", help="Leave it running (planner stop).", rich_help_panel=_D)
        ] = False,
        launch_with: Annotated[
            str, typer.Option("--launch-with", help="auto, docker, native or embedded.", rich_help_panel=_D)
        ] = "auto",
        ready_timeout: Annotated[
            float, typer.Option("--ready-timeout", min=1, help="Seconds to wait for the model to load.")
        ] = 600,
        json_output: JsonOpt = False,
        options: PlanOptions | None = None,
    ) -> None:
        """Plan MODEL, download it (resumable, sha256-checked), write run files, and optionally launch it."""
        from rich.console import Console

        from planner.api import plan_request
        from planner.cli.interrupt import raise_on_interrupt
        from planner.rendering.artifacts import TARGETS, check_alias, check_host
        from planner.serving.files import check_writable_dir
        from planner.types.deploy import DeployOptions

        if target not in TARGETS:
            raise BadInput(f"--target {target!r}: choose one of {', '.join(TARGETS)}")
        if launch_with not in ("auto", "docker", "native", "embedded"):
            raise BadInput(f"--launch-with {launch_with!r}: expected auto, docker, native or embedded")
        if detach and not launch:
            raise BadInput("--detach needs --launch")
        check_host(host)
        if alias is not None:
            check_alias(alias)
        out = check_writable_dir(out, "--out")  # before planning and downloading: a bad folder fails at once
        if models_dir is not None and not no_download:
            models_dir = check_writable_dir(models_dir, "--models-dir")
        assert options is not None  # filled in by with_plan_options
        request = options.request(model, container=True)
        plan = plan_request(request)
        if not plan.fits:
            raise NothingFits(f"{model} does not fit this hardware; `planner plan {model}` shows the alternatives")
        opts = DeployOptions(
            out_dir=out, target=target, host=host, port=port, alias=alias, models_dir=models_dir,
            download=not no_download, fit=fit, force=force, launch=launch, detach=detach,
            launch_with=launch_with, ready_timeout_s=ready_timeout,
        )  # fmt: skip
        with raise_on_interrupt():  # from here a Ctrl-C must stop the server deploy may start
            run_deploy(plan, opts, json_output=json_output, console=Console(stderr=json_output))

    @app.command("stop")
    def stop(
        out_dir: Annotated[
            Path, typer.Argument(help="The --out folder of a `deploy --launch --detach`.")
        ] = DEFAULT_OUT,
        timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds before SIGKILL.")] = 20,
        json_output: JsonOpt = False,
    ) -> None:
        """Stop the server that `planner deploy --launch --detach` left running."""
        import json

        from planner.serving.launch import stop_deployment

        state, message = stop_deployment(out_dir.expanduser().resolve(), timeout_s=timeout)
        if json_output:
            print(json.dumps({"stopped": True, "message": message, "state": state.model_dump()}, indent=2))
        else:
            print(message)

    @app.command(
        "bench",
        epilog="Example:\n\n  planner bench http://127.0.0.1:8080/v1 --api-key-file planner-deploy/api-key -c 4 -n 16",
    )
    def bench(
        url: Annotated[str, typer.Argument(help="Base URL of an OpenAI-compatible server, e.g. http://host:8080/v1")],
        api_key: Annotated[str | None, typer.Option("--api-key", envvar="OPENAI_API_KEY", help="API key.")] = None,
        api_key_file: Annotated[Path | None, typer.Option("--api-key-file", help="Read the key from a file.")] = None,
        concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, help="Parallel streams.")] = 1,
        requests: Annotated[int, typer.Option("--requests", "-n", min=0, help="Requests in total (0: none).")] = 8,
        timeout: Annotated[
            float, typer.Option("--timeout", min=1, help="Seconds to wait for readiness, and for each request.")
        ] = 60,
        json_output: JsonOpt = False,
    ) -> None:
        """Verify any OpenAI-compatible server and measure it: tokens/s, time to first token, latency."""
        from rich.console import Console
        from rich.progress import Progress, TextColumn

        from planner.serving.bench import bench_failure, check_url, run_bench
        from planner.serving.show import show_bench

        check_url(url)  # before the progress display starts, so a typo is the only thing printed
        if api_key_file is not None:
            try:
                api_key = api_key_file.read_text(encoding="utf-8").strip().splitlines()[0]
            except (OSError, IndexError, UnicodeDecodeError):
                raise BadInput(f"cannot read an API key from {api_key_file}") from None
        console = Console(stderr=json_output)
        # Off when not a terminal: rich would print only a final frame there, a blank line when nothing ran.
        columns = (TextColumn("{task.description}", markup=False), *Progress.get_default_columns()[1:])
        with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
            report = run_bench(url, api_key, concurrency=concurrency, requests=requests, timeout_s=timeout,
                               progress=progress)  # fmt: skip
        if json_output:
            print(report.model_dump_json(indent=2))
        else:
            show_bench(report, console)
        failure = bench_failure(report)
        if failure is not None:  # the report above says everything; the error line says it failed, and why
            raise PlannerError(failure, exit_code=1)


def run_deploy(plan: Plan, opts: DeployOptions, *, json_output: bool, console: Console) -> None:
    """Run the pipeline with progress bars, print the report, and serve in the foreground unless detached."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from planner.serving.pipeline import deploy, serve_until_interrupted, stop_now
    from planner.serving.show import show_deploy
    from planner.serving.verify import failure_summary

    # markup=False: a download's description is the hub's file name, printed as it is.
    columns = (
        TextColumn("{task.description}", markup=False), BarColumn(), _bytes_only(DownloadColumn()),
        _bytes_only(TransferSpeedColumn()), _bytes_only(TimeRemainingColumn()),
    )  # fmt: skip
    # Off when not a terminal (a log, a pipe): rich would print only a final frame, a blank line before an error.
    with Progress(*columns, console=console, transient=False, disable=not console.is_terminal) as progress:
        report, launched = deploy(plan, opts, progress=progress, wait_progress=progress)
    foreground = launched is not None and not opts.detach
    verified = report.launch is None or report.launch.verified
    try:
        if json_output:
            print(report.model_dump_json(indent=2))
        else:
            show_deploy(report, console)
        if foreground and verified:
            console.print(f"Serving on {report.endpoint}; Ctrl-C stops it.", markup=False)
            console.print(serve_until_interrupted(launched, report, _wait), markup=False)
    except KeyboardInterrupt:
        pass  # Ctrl-C before the server was being waited on: still stop it below
    finally:
        if foreground and report.launch is not None and report.launch.stopped is None:
            # unverified, or interrupted early: nothing left running
            console.print(stop_now(launched, report), markup=False)
    if not verified and report.launch is not None:
        problems = report.launch.verification.problems if report.launch.verification else []
        raise PlannerError(f"{failure_summary(problems)}; the server was stopped", exit_code=1)


def _bytes_only(column: ProgressColumn) -> ProgressColumn:
    """Show a byte column for download tasks only (the wait-for-the-server task has no bytes)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class BytesOnly(ProgressColumn):
        def render(self, task: Task) -> RenderableType:
            return column.render(task) if task.fields.get("bytes") else Text("")

    return BytesOnly()


def _wait(process: subprocess.Popen | None) -> None:
    import time

    if process is None:  # docker: the compose project runs on its own; wait for Ctrl-C
        while True:
            time.sleep(3600)
    process.wait()
