"""`planner deploy MODEL`, `planner stop [OUT_DIR]`, `planner bench URL`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from planner.cli.options import JsonOpt, PlanOptions, with_plan_options
from planner.cli.output import emit
from planner.errors import PlannerError

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
        import planner
        from planner.cli.interrupt import raise_on_interrupt
        from planner.rendering.deploy import show_deploy
        from planner.rendering.progress import console_for, deploy_progress
        from planner.types.deploy import DeployOptions

        assert options is not None  # filled in by with_plan_options
        opts = DeployOptions(
            out_dir=out, target=target, host=host, port=port, alias=alias, models_dir=models_dir,
            download=not no_download, fit=fit, force=force, launch=launch, detach=detach,
            launch_with=launch_with, ready_timeout_s=ready_timeout,
        )  # fmt: skip
        console = console_for(json_output)
        with raise_on_interrupt():  # from here a Ctrl-C must stop the server deploy may start
            planner.deploy(
                options.request(model, container=True),
                opts,
                show_report=lambda report: emit(
                    report, json_output=json_output, show=lambda r: show_deploy(r, console)
                ),
                say=lambda line: console.print(line, markup=False),
                progress=lambda: deploy_progress(console),
            )

    @app.command("stop")
    def stop(
        out_dir: Annotated[
            Path, typer.Argument(help="The --out folder of a `deploy --launch --detach`.")
        ] = DEFAULT_OUT,
        timeout: Annotated[float, typer.Option("--timeout", min=0, help="Seconds before SIGKILL.")] = 20,
        json_output: JsonOpt = False,
    ) -> None:
        """Stop the server that `planner deploy --launch --detach` left running."""
        import planner
        from planner.rendering.deploy import show_stop

        emit(planner.stop(out_dir, timeout_s=timeout), json_output=json_output, show=show_stop)

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
        import planner
        from planner.rendering.deploy import show_bench
        from planner.rendering.progress import bench_progress, console_for

        console = console_for(json_output)
        report = planner.bench(
            url, api_key=api_key, api_key_file=api_key_file, concurrency=concurrency, requests=requests,
            timeout_s=timeout, progress=lambda: bench_progress(console),
        )  # fmt: skip
        emit(report, json_output=json_output, show=lambda r: show_bench(r, console))
        if report.failure is not None:  # the report above says everything; the error line says it failed, and why
            raise PlannerError(report.failure, exit_code=1)
